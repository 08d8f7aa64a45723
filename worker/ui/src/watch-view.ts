// The live feed: the client's watch iterator over Server-Sent Events, from the revision after
// the one the page saw when the watch was asked for (so nothing written after that is missed,
// however long the stream takes to open), newest first, at most FEED_ITEMS_MAX entries.

import type { Watch, WatchEvent } from '../../client/index.ts';
import { CALL_TIMEOUT_MS, type Connection } from './connection.ts';
import { byId, el, preview, say } from './dom.ts';

const FEED_ITEMS_MAX = 200;

export function startWatchView(conn: Connection, onEvent: (e: WatchEvent) => void): void {
  const form = byId<HTMLFormElement>('watch-form');
  const input = byId<HTMLInputElement>('watch-prefix');
  const stopButton = byId<HTMLButtonElement>('watch-stop');
  const state = byId('watch-state');
  const feed = byId<HTMLUListElement>('watch-feed');
  let current: Watch | null = null;

  function stop(): void {
    current?.close();
    current = null;
  }

  async function start(prefix: string): Promise<void> {
    stop();
    let from: number;
    try {
      from = (await conn.client.status({ timeoutMs: CALL_TIMEOUT_MS })).revision + 1;
    } catch (err) {
      say(state, conn.failed(err));
      return;
    }
    const watch = conn.client.watch({ prefix, fromRevision: from });
    current = watch;
    say(state, `watching ${JSON.stringify(prefix)} from revision ${from}`);
    try {
      for await (const frame of watch) {
        for (const e of frame.events) {
          const text =
            e.type === 'put' ? `${frame.revision} PUT ${e.key} = ${preview(e.value ?? '')}` : `${frame.revision} DELETE ${e.key}`;
          feed.prepend(el('li', text, { 'data-testid': 'watch-event', 'data-key': e.key, 'data-type': e.type }));
          onEvent(e);
        }
        while (feed.children.length > FEED_ITEMS_MAX) feed.lastElementChild?.remove();
      }
      if (current === watch) say(state, 'stopped');
    } catch (err) {
      if (current === watch) say(state, `stopped: ${conn.failed(err)}`);
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void start(input.value);
  });
  stopButton.addEventListener('click', () => {
    stop();
    say(state, 'stopped');
  });
  conn.changed(() => void start(input.value));
  void start(input.value);
}
