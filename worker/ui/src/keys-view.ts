// The key browser: a prefix search a page at a time (GET /key?prefix=&start=&limit=, paged by
// X-Metcd-Next-Start), a value view with the key's revisions, put and delete.

import type { Connection } from './connection.ts';
import { byId, el, preview, say } from './dom.ts';

export function startKeysView(conn: Connection): void {
  const searchForm = byId<HTMLFormElement>('search-form');
  const prefixInput = byId<HTMLInputElement>('prefix');
  const pageSize = byId<HTMLSelectElement>('page-size');
  const body = byId<HTMLTableSectionElement>('keys-body');
  const caption = byId('keys-caption');
  const prev = byId<HTMLButtonElement>('prev-page');
  const next = byId<HTMLButtonElement>('next-page');
  const error = byId('keys-error');
  const view = byId('value-view');
  const del = byId<HTMLButtonElement>('delete-key');
  const putForm = byId<HTMLFormElement>('put-form');
  const putResult = byId('put-result');

  let prefix = '';
  /** Where each earlier page began (Previous goes back through them). */
  let earlier: Array<string | undefined> = [];
  let start: string | undefined;
  let nextStart: string | null = null;
  let viewed = '';

  /** On Node the page reads what the serving node has applied (a follower would redirect). */
  const level = () => (conn.runtime === 'edge' ? undefined : ('stale' as const));

  async function load(from: string | undefined): Promise<void> {
    const limit = Number(pageSize.value);
    try {
      const page = await conn.client.range({ prefix, ...(from === undefined ? {} : { start: from }), limit, level: level() });
      conn.succeeded();
      start = from;
      nextStart = page.more ? page.nextStart : null;
      body.replaceChildren(
        ...page.kvs.map((kv) => {
          const open = el('button', kv.key, { type: 'button', class: 'link', 'data-testid': 'key-link' });
          open.addEventListener('click', () => void show(kv.key));
          const row = el('tr', '', { 'data-testid': 'key-row', 'data-key': kv.key });
          const th = el('th', '', { scope: 'row' });
          th.append(open);
          row.append(th, el('td', preview(kv.value)));
          return row;
        }),
      );
      const shown = page.kvs.length === 0 ? 'none' : `${page.kvs.length}${page.more ? ', more on the next page' : ''}`;
      caption.textContent = `Keys under ${JSON.stringify(prefix)} (page ${earlier.length + 1}: ${shown}; revision ${page.revision})`;
      prev.disabled = earlier.length === 0;
      next.disabled = nextStart === null;
      say(error, '');
    } catch (err) {
      say(error, conn.failed(err));
    }
  }

  async function show(key: string): Promise<void> {
    try {
      const kv = await conn.client.get(key, { level: level() });
      viewed = key;
      byId('value-key').textContent = key;
      byId('value-value').textContent = kv === null ? '(no such key)' : kv.value;
      byId('value-create').textContent = kv === null ? '—' : String(kv.createRevision);
      byId('value-mod').textContent = kv === null ? '—' : String(kv.modRevision);
      byId('value-version').textContent = kv === null ? '—' : String(kv.version);
      view.hidden = false;
      del.hidden = kv === null;
      say(error, '');
    } catch (err) {
      say(error, conn.failed(err));
    }
  }

  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    prefix = prefixInput.value;
    earlier = [];
    void load(undefined);
  });
  next.addEventListener('click', () => {
    if (nextStart === null) return;
    earlier.push(start);
    void load(nextStart);
  });
  prev.addEventListener('click', () => {
    if (earlier.length === 0) return;
    void load(earlier.pop());
  });
  del.addEventListener('click', async () => {
    const key = viewed;
    try {
      const { deleted, revision } = await conn.client.delete(key);
      say(putResult, deleted === 1 ? `deleted ${key} at revision ${revision}` : `${key} was already gone`);
      view.hidden = true;
      del.hidden = true;
      await load(start);
    } catch (err) {
      say(putResult, conn.failed(err));
    }
  });
  putForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(putForm);
    const key = String(data.get('key') ?? '');
    const value = String(data.get('value') ?? '');
    const lease = String(data.get('lease') ?? '').trim();
    try {
      const { revision } = await conn.client.put(key, value, lease === '' ? {} : { lease });
      say(putResult, `put ${key} at revision ${revision}`);
      await load(start);
      await show(key);
    } catch (err) {
      say(putResult, conn.failed(err));
    }
  });
  conn.changed(() => void load(start));
  void load(undefined);
}
