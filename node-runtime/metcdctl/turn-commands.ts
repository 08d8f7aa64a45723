// Locks and elections: `lock NAME [COMMAND ARGS…]` and `elect NAME PROPOSAL` / `elect -l NAME`,
// as etcdctl's.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:os';
import { MetcdError } from '../../worker/client/index.ts';
import { UsageError, intFlag, interrupted, message, untilAborted, type Command } from './command.ts';

export const TURN_COMMANDS: Record<string, Command> = {
  lock: {
    usage:
      'lock NAME [COMMAND ARGS…] [--ttl S] [--wait DURATION]   (with COMMAND: runs it holding the lock, env ETCD_LOCK_KEY/ETCD_LOCK_REV, exits with its code; else prints the key and the fencing token and holds until Ctrl-C)',
    options: { ttl: { type: 'string' }, wait: { type: 'string' } },
    passThroughAfter: 1,
    async run({ client, values, args, passThrough, json, timeoutMs, out }) {
      if (args.length !== 1) throw new UsageError('lock command needs lock name as argument');
      const stop = interrupted();
      const ttl = intFlag(values, 'ttl') ?? 60;
      const wait = typeof values['wait'] === 'string' ? values['wait'] : '5m';
      const held = await client.lock(args[0]!, { ttl, wait, signal: stop.signal });
      if (passThrough.length > 0) {
        let code: number;
        try {
          code = await runHolding(passThrough, held);
        } finally {
          await held.release({ timeoutMs });
        }
        return code;
      }
      out(
        json
          ? JSON.stringify({ key: held.key, lease: held.lease, revision: held.revision })
          : `${held.key}\nfencing token ${held.revision}`,
      );
      const lost = await Promise.race([held.lost, untilAborted(stop.signal)]);
      if (lost instanceof MetcdError) throw new MetcdError(lost.status, lost.code, `lock lost: ${lost.message}`);
      await held.release({ timeoutMs });
    },
  },
  elect: {
    usage:
      'elect NAME PROPOSAL [--ttl S]   (campaigns, prints the key and the proposal, leads until Ctrl-C) | elect -l NAME   (prints each leader)',
    options: { ttl: { type: 'string' }, listen: { type: 'boolean', short: 'l' } },
    async run({ client, values, args, json, timeoutMs, out }) {
      if (args.length !== 1 && args.length !== 2)
        throw new UsageError('elect takes one election name argument and an optional proposal argument');
      const stop = interrupted();
      if (args.length === 1) {
        if (values['listen'] !== true) throw new UsageError('no proposal argument but -l not set');
        for await (const leader of client.observe(args[0]!, { signal: stop.signal, timeoutMs })) {
          if (leader === null) continue; // etcdctl prints leaders only
          out(json ? JSON.stringify(leader) : `${leader.key}\n${leader.value}`);
        }
        return;
      }
      const ttl = intFlag(values, 'ttl') ?? 60;
      const led = await client.campaign(args[0]!, args[1]!, { ttl, wait: '5m', signal: stop.signal, timeoutMs: 6 * 60_000 });
      out(json ? JSON.stringify({ key: led.key, lease: led.lease, revision: led.revision }) : `${led.key}\n${args[1]}`);
      const lost = await Promise.race([led.lost, untilAborted(stop.signal)]);
      if (lost instanceof MetcdError) throw new MetcdError(lost.status, lost.code, `leadership lost: ${lost.message}`);
      await led.resign({ timeoutMs });
    },
  },
};

/** Runs `command` with the lock's key and fencing token in its environment, passing Ctrl-C and
 *  SIGTERM on (the command decides when to end); resolves to its exit code (128 + the signal's number when a signal ended it). */
async function runHolding(
  command: string[],
  held: { key: string; revision: number; lease: string; lost: Promise<MetcdError> },
): Promise<number> {
  const env = {
    ...process.env,
    ETCD_LOCK_KEY: held.key,
    ETCD_LOCK_REV: String(held.revision),
    METCD_LOCK_KEY: held.key,
    METCD_LOCK_REV: String(held.revision),
    METCD_LOCK_LEASE: held.lease,
  };
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  void held.lost.then((e) => process.stderr.write(`Warning: lock lost while the command runs: ${message(e)}\n`));
  try {
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    return code ?? 128 + (signal === null ? 0 : (constants.signals[signal] ?? 0));
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
