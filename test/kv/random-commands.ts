// Random KV commands for property tests and benchmarks: a small key space so keys collide,
// stamps with retries and stale seqs so sessions are exercised, compares that match about
// half the time, and the occasional malformed command.

import type { SeededRandom } from '../../worker/raft/random.ts';
import type { KvCommand, KvStateMachine } from '../../worker/kv/index.ts';

const ALPHABET = ['a', 'b', 'c', 'é', '😀', '/', '\ufeff', 'z'];

export function randomString(rnd: SeededRandom, lengthMax: number): string {
  let s = '';
  const n = rnd.nextInt(lengthMax + 1);
  for (let i = 0; i < n; i++) s += ALPHABET[rnd.nextInt(ALPHABET.length)]!;
  return s;
}

export interface CommandSource {
  next(sm: KvStateMachine): KvCommand;
}

export function randomCommands(rnd: SeededRandom, opts: { keys: number; clients: number }): CommandSource {
  const seqs = new Map<string, number>();
  const lastCommand = new Map<string, KvCommand>();
  const key = () => `k${rnd.nextInt(opts.keys)}${rnd.nextInt(4) === 0 ? '/é' : ''}`;
  return {
    next(sm) {
      const client = `client-${rnd.nextInt(opts.clients)}`;
      const roll = rnd.nextInt(100);
      // A retry of the client's last command (Raft committed it twice).
      if (roll < 10 && lastCommand.has(client)) return lastCommand.get(client)!;
      let cmd: KvCommand;
      if (roll < 15) {
        cmd = { op: 'put', pairs: [['', 'empty key is invalid']] };
      } else if (roll < 60) {
        const pairs: Array<[string, string]> = [];
        const used = new Set<string>();
        const n = 1 + rnd.nextInt(3);
        for (let i = 0; i < n; i++) {
          const k = key();
          if (!used.has(k)) pairs.push([k, randomString(rnd, 6)]);
          used.add(k);
        }
        cmd = { op: 'put', pairs };
      } else {
        const keys = [...new Set([key(), key()])];
        cmd = { op: 'delete', keys };
      }
      if (rnd.nextInt(3) === 0) {
        const k = key();
        const actual = sm.get(k)?.modRevision ?? 0;
        cmd.compare = { key: k, modRevision: rnd.nextInt(2) === 0 ? actual : rnd.nextInt(sm.revision + 1) };
      }
      if (rnd.nextInt(4) !== 0) {
        const last = seqs.get(client) ?? 0;
        // Mostly the next seq; sometimes a stale one or a jump.
        const r = rnd.nextInt(10);
        const seq = r === 0 && last > 1 ? last - 1 : r === 1 ? last + 5 : last + 1;
        seqs.set(client, Math.max(last, seq));
        cmd.stamp = { client, seq };
        lastCommand.set(client, cmd);
      }
      return cmd;
    },
  };
}
