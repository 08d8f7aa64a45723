// The cluster token check: peers' Raft traffic and membership or leadership changes carry
// `Authorization: Bearer <token>`. Compared as SHA-256 digests (equal lengths, constant time);
// the token's own digest is made once.

import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** A check of an Authorization header against `token` ('' = no token configured: anything passes). */
export function tokenChecker(token: string): (header: string | null) => boolean {
  if (token === '') return () => true;
  const expected = digest(token);
  return (header) => header !== null && header.startsWith('Bearer ') && timingSafeEqual(digest(header.slice('Bearer '.length)), expected);
}
