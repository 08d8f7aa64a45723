// Access control on a Node node: the shared authorizer (worker/api/authorize.ts) given this
// node's secrets. The root token is read once at start, from --root-token-file or
// METCD_ROOT_TOKEN; only its digest is kept. The cluster token, the peers' credential, may
// change membership and leadership (a joining node asks /join with it) and nothing else.

import { readFileSync } from 'node:fs';
import { ROOT_TOKEN_CHARS_MIN, createAuthorizer, digestOf, rootTokenText, type Authorize } from '../worker/api/router.ts';
import type { TokenView } from '../worker/kv/tokens.ts';
import { FlagError, isLoopback, type NodeConfig } from './flags.ts';
import type { Logger } from './log.ts';

/** The root token's text, checked; a FlagError names the source, never the secret. */
function readRootToken(source: NonNullable<NodeConfig['rootToken']>): string {
  let text: string;
  if (source.from === 'env') text = source.value;
  else {
    try {
      text = readFileSync(source.path, 'utf8');
    } catch (err) {
      throw new FlagError(`--root-token-file ${source.path}: ${(err as NodeJS.ErrnoException).code ?? 'unreadable'}`);
    }
  }
  const token = rootTokenText(text);
  const where = source.from === 'env' ? 'METCD_ROOT_TOKEN' : `--root-token-file ${source.path}`;
  if (token === null) throw new FlagError(`${where}: the root token must be at least ${ROOT_TOKEN_CHARS_MIN} characters without spaces`);
  return token;
}

export function nodeAuthorizer(cfg: NodeConfig, tokens: () => TokenView, log: Logger): Authorize {
  const clusterDigest = cfg.clusterToken === '' ? undefined : digestOf(cfg.clusterToken);
  if (cfg.auth === 'open') {
    if (isLoopback(cfg.listenHost)) log.info('access control is off (--auth open, or no root token on a loopback address)');
    else log.warn(`ACCESS CONTROL IS OFF (--auth open): anyone who reaches ${cfg.listenHost} may read, write and delete every key`);
    return createAuthorizer({ mode: 'open', ...(clusterDigest ? { clusterDigest } : {}), now: Date.now }, tokens);
  }
  const rootDigest = digestOf(readRootToken(cfg.rootToken!));
  return createAuthorizer({ mode: 'tokens', rootDigest, ...(clusterDigest ? { clusterDigest } : {}), now: Date.now }, tokens);
}
