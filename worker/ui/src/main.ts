// The dashboard's entry point (bundled into worker/ui/dist/app.js by worker/ui/build.ts): the
// token form, then the views, each of which talks to the cluster through the one Connection.

import { Connection } from './connection.ts';
import { byId } from './dom.ts';
import { startClusterView } from './cluster-view.ts';
import { startKeysView } from './keys-view.ts';
import { startWatchView } from './watch-view.ts';
import { startLeasesView, startTurnsView } from './leases-view.ts';

function startTokenForm(conn: Connection): void {
  const form = byId<HTMLFormElement>('token-form');
  const input = byId<HTMLInputElement>('token');
  const state = byId('auth-state');
  const show = (): void => {
    if (conn.tokenNeeded) {
      state.textContent = `Token needed: ${conn.tokenProblem}. Enter the root token or an API token.`;
      state.className = 'warn';
      state.dataset['needed'] = 'true';
      if (document.activeElement !== input) input.focus();
    } else {
      state.textContent = conn.hasToken ? 'using the token of this tab' : 'no token (access control is off, or enter one)';
      state.className = '';
      state.dataset['needed'] = 'false';
    }
  };
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    conn.setToken(input.value.trim());
    input.value = '';
  });
  byId('token-forget').addEventListener('click', () => conn.setToken(''));
  conn.authChanged(show);
  show();
}

const conn = new Connection();
startTokenForm(conn);
startClusterView(conn);
startKeysView(conn);
const turns = startTurnsView(conn);
startLeasesView(conn);
startWatchView(conn, (e) => {
  if (e.key.startsWith('lock/') || e.key.startsWith('election/')) turns.refresh();
});
