// Leases (the list, GET /lease; look one up by id: its TTL left and its keys; grant, keep alive
// once, revoke) and the locks and elections held. Locks and elections are their contenders' keys, lock/<name>/<lease in hex> and
// election/<name>/<lease in hex>, ordered by create revision: the first holds the turn, and its
// create revision is the fencing token (README, "Locks and elections").

import type { Connection } from './connection.ts';
import { byId, cell, el, preview, say } from './dom.ts';

const TURNS_REFRESH_MS = 5000;
/** Contenders read per refresh (each is one GET for its create revision). */
const CONTENDERS_MAX = 100;
/** Leases the list shows (one GET /lease page). */
const LEASES_SHOWN = 100;

export interface TurnsView {
  refresh(): void;
}

export function startLeasesView(conn: Connection): void {
  const form = byId<HTMLFormElement>('lease-form');
  const idInput = byId<HTMLInputElement>('lease-id');
  const grantForm = byId<HTMLFormElement>('grant-form');
  const ttlInput = byId<HTMLInputElement>('grant-ttl');
  const view = byId('lease-view');
  const error = byId('lease-error');
  const listBody = byId<HTMLTableSectionElement>('leases-body');

  async function list(): Promise<void> {
    try {
      const { leases, more } = await conn.client.lease.list({ limit: LEASES_SHOWN });
      const rows = leases.map((lease) => {
        const row = el('tr', '', { 'data-testid': 'lease-row', 'data-id': lease.id });
        const look = el('button', 'Look up', { type: 'button' });
        look.addEventListener('click', () => {
          idInput.value = lease.id;
          void lookup();
        });
        const action = el('td');
        action.append(look);
        row.append(el('th', lease.id, { scope: 'row' }), cell(lease.grantedTtl), action);
        return row;
      });
      if (rows.length === 0) {
        const none = el('tr');
        none.append(el('td', 'none', { colspan: '3' }));
        rows.push(none);
      }
      if (more) {
        const rest = el('tr');
        rest.append(el('td', `more than ${LEASES_SHOWN}: look one up by id`, { colspan: '3' }));
        rows.push(rest);
      }
      listBody.replaceChildren(...rows);
    } catch (err) {
      say(error, conn.failed(err));
    }
  }

  async function lookup(): Promise<void> {
    const id = idInput.value.trim();
    if (id === '') return;
    try {
      const info = await conn.client.lease.timeToLive(id);
      byId('lease-view-id').textContent = info.id;
      byId('lease-view-ttl').textContent = String(info.ttl);
      byId('lease-view-granted').textContent = String(info.grantedTtl);
      byId('lease-view-keys').textContent = info.keys.length === 0 ? '(none)' : info.keys.join(', ');
      view.hidden = false;
      say(error, '');
      void list();
    } catch (err) {
      view.hidden = true;
      say(error, conn.failed(err));
    }
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void lookup();
  });
  grantForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const lease = await conn.client.lease.grant(Number(ttlInput.value));
      idInput.value = lease.id;
      await lookup();
    } catch (err) {
      say(error, conn.failed(err));
    }
  });
  byId('lease-keepalive').addEventListener('click', async () => {
    try {
      await conn.client.lease.keepAlive(idInput.value.trim());
      await lookup();
    } catch (err) {
      say(error, conn.failed(err));
    }
  });
  const loop = async (): Promise<void> => {
    await list();
    setTimeout(() => void loop(), TURNS_REFRESH_MS);
  };
  conn.changed(() => void list());
  void loop();
  byId('lease-revoke').addEventListener('click', async () => {
    try {
      const { deleted } = await conn.client.lease.revoke(idInput.value.trim());
      view.hidden = true;
      say(error, `revoked; ${deleted} key(s) deleted`);
      void list();
    } catch (err) {
      say(error, conn.failed(err));
    }
  });
}

interface Contender {
  key: string;
  value: string;
  createRevision: number;
}

export function startTurnsView(conn: Connection): TurnsView {
  const body = byId<HTMLTableSectionElement>('turns-body');
  const error = byId('turns-error');
  let running = false;

  const level = () => (conn.runtime === 'edge' ? undefined : ('stale' as const));

  async function contenders(kind: 'lock' | 'election'): Promise<Map<string, Contender[]>> {
    const page = await conn.client.range({ prefix: `${kind}/`, limit: CONTENDERS_MAX, level: level() });
    const byName = new Map<string, Contender[]>();
    for (const kv of page.kvs) {
      const got = await conn.client.get(kv.key, { level: level() });
      if (got === null) continue; // released meanwhile
      const name = kv.key.slice(kind.length + 1, kv.key.lastIndexOf('/'));
      const list = byName.get(name) ?? [];
      list.push({ key: kv.key, value: got.value, createRevision: got.createRevision });
      byName.set(name, list);
    }
    return byName;
  }

  async function refresh(): Promise<void> {
    if (running) return;
    running = true;
    try {
      const rows: HTMLTableRowElement[] = [];
      for (const kind of ['lock', 'election'] as const) {
        for (const [name, list] of await contenders(kind)) {
          list.sort((a, b) => a.createRevision - b.createRevision);
          const holder = list[0]!;
          const leaseHex = holder.key.slice(holder.key.lastIndexOf('/') + 1);
          const lease = /^[0-9a-f]+$/.test(leaseHex) ? String(parseInt(leaseHex, 16)) : '?';
          const row = el('tr', '', { 'data-testid': 'turn-row', 'data-kind': kind, 'data-name': name });
          row.append(
            cell(kind),
            el('th', name, { scope: 'row' }),
            cell(holder.key),
            cell(holder.createRevision),
            cell(lease),
            cell(preview(holder.value, 40)),
            cell(list.length - 1),
          );
          rows.push(row);
        }
      }
      if (rows.length === 0) {
        const none = el('tr');
        none.append(el('td', 'none held', { colspan: '7' }));
        rows.push(none);
      }
      body.replaceChildren(...rows);
      say(error, '');
    } catch (err) {
      say(error, conn.failed(err));
    } finally {
      running = false;
    }
  }

  const loop = async (): Promise<void> => {
    await refresh();
    setTimeout(() => void loop(), TURNS_REFRESH_MS);
  };
  byId('turns-refresh').addEventListener('click', () => void refresh());
  conn.changed(() => void refresh());
  void loop();
  return { refresh: () => void refresh() };
}
