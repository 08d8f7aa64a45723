// The members table: every member's role, term, commit and applied indexes, how far it lags the
// leader's log, and which one leads, refreshed every second. On the edge each peer is asked for
// its own status (?peer=<id>); on Node only the serving node can be asked, and the leader's
// status carries every member's match index (its replication progress).

import type { PeerStatus } from '../../client/index.ts';
import { CALL_TIMEOUT_MS, type Connection } from './connection.ts';
import { byId, cell, el, say } from './dom.ts';

const REFRESH_MS = 1000;

interface MemberView {
  id: string;
  address: string;
  voter: boolean;
  match: number | null;
}

function membersOf(status: PeerStatus): MemberView[] {
  return status.members.map((m) => {
    const match = (m as { match?: unknown }).match;
    return { id: m.id, address: m.address, voter: m.voter, match: typeof match === 'number' ? match : null };
  });
}

export function startClusterView(conn: Connection): void {
  const body = byId<HTMLTableSectionElement>('members-body');
  const note = byId('cluster-note');
  const error = byId('cluster-error');
  const where = byId('where');

  async function refresh(): Promise<void> {
    let own: PeerStatus;
    try {
      own = await conn.client.status({ timeoutMs: CALL_TIMEOUT_MS });
    } catch (err) {
      say(error, conn.failed(err));
      return;
    }
    conn.noteStatus(own);
    say(error, '');
    const statuses = new Map<string, PeerStatus | string>([[own.id, own]]);
    if (conn.runtime === 'edge') {
      await Promise.all(
        own.members
          .filter((m) => m.id !== own.id)
          .map(async (m) => {
            try {
              statuses.set(m.id, await conn.peer(m.id).status({ timeoutMs: CALL_TIMEOUT_MS }));
            } catch (err) {
              statuses.set(m.id, conn.failed(err));
            }
          }),
      );
    }
    const leaderStatus = [...statuses.values()].find((s): s is PeerStatus => typeof s !== 'string' && s.role === 'leader');
    render(own, statuses, leaderStatus);
  }

  function render(own: PeerStatus, statuses: Map<string, PeerStatus | string>, leader: PeerStatus | undefined): void {
    const leaderId = leader?.id ?? own.leader;
    const progress = new Map(membersOf(leader ?? own).map((m) => [m.id, m.match]));
    const leaderLast = leader === undefined ? null : Number(leader['lastIndex']);
    body.replaceChildren(
      ...membersOf(own).map((m) => {
        const s = statuses.get(m.id);
        const status = typeof s === 'object' ? s : undefined;
        const isLeader = m.id === leaderId && leaderId !== '';
        const row = el('tr', '', { 'data-testid': 'member-row', 'data-member': m.id, 'data-leader': String(isLeader) });
        const name = el('th', m.id, { scope: 'row' });
        if (isLeader) name.append(el('span', 'leader', { class: 'badge', 'data-testid': 'leader-badge' }));
        if (!m.voter) name.append(el('span', 'learner', { class: 'badge' }));
        const match = progress.get(m.id) ?? null;
        const lag = leaderLast === null || match === null ? null : Math.max(0, leaderLast - match);
        row.append(
          name,
          // A member this page cannot ask (Node: every one but the serving node) has no role here.
          typeof s === 'string' ? cell(s) : cell(status?.role),
          cell(status?.term),
          cell(status?.commit),
          cell(status?.applied),
          cell(match),
          cell(lag),
          cell(status?.revision),
          cell(m.address),
        );
        return row;
      }),
    );
    where.textContent = `served by ${own.id} (${own.role}); leader: ${own.leader === '' ? 'none known' : own.leader}; revision ${own.revision}`;
    note.replaceChildren();
    if (conn.runtime === 'edge') {
      note.append('Edge runtime: every peer is a Durable Object behind this Worker, asked for its own status with ?peer=<id>.');
    } else {
      note.append(
        `Node runtime: this page is served by ${own.id} and can only ask it. Other members' role, term and indexes show on their own dashboards; the leader's status has every member's match index.`,
      );
      if (conn.leaderDashboard !== '') {
        note.append(
          ' Writes go to the leader: ',
          el('a', conn.leaderDashboard, { href: conn.leaderDashboard, 'data-testid': 'leader-link' }),
          '.',
        );
        note.className = 'warn';
      } else note.className = '';
    }
  }

  const loop = async (): Promise<void> => {
    await refresh();
    setTimeout(() => void loop(), REFRESH_MS);
  };
  void loop();
  conn.changed(() => void refresh());
}
