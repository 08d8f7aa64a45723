// Log lines: one per event, logfmt, with level, node and term; below --log-level dropped.

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../node-runtime/log.ts';

describe('logger', () => {
  it('writes one logfmt line per event with level, node and term, quoting what needs it', () => {
    const lines: string[] = [];
    const log = createLogger({ level: 'info', node: 'n1', term: () => 7, write: (l) => lines.push(l), nowMs: () => 0 });
    log.debug('not shown');
    log.info('peer.role', { role: 'leader', leader: 'n1' });
    log.warn('torn tail truncated', { file: '/d/wal 1.log', offset: 42, term: 3 });
    expect(lines).toEqual([
      'time=1970-01-01T00:00:00.000Z level=info node=n1 term=7 msg="peer.role" role=leader leader=n1',
      'time=1970-01-01T00:00:00.000Z level=warn node=n1 term=3 msg="torn tail truncated" file="/d/wal 1.log" offset=42',
    ]);
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('keeps a multi-line message on one line', () => {
    const lines: string[] = [];
    createLogger({ level: 'debug', node: 'n2', write: (l) => lines.push(l), nowMs: () => 0 }).error('boom\nstack', { detail: 'a\nb' });
    expect(lines).toEqual(['time=1970-01-01T00:00:00.000Z level=error node=n2 msg="boom\\nstack" detail="a\\nb"']);
  });
});
