// Lease commands: grant, revoke, timetolive, list, keep-alive.

import { UsageError, intArg, interrupted, pause, table, type Command } from './command.ts';

export const LEASE_COMMANDS: Record<string, Command> = {
  'lease grant': {
    usage: 'lease grant TTL',
    async run({ client, args, json, out }) {
      const ttl = intArg(args, 0, 'lease grant command needs TTL argument');
      const l = await client.lease.grant(ttl);
      out(json ? JSON.stringify(l) : `lease ${l.id} granted with TTL(${l.ttl}s)`);
    },
  },
  'lease revoke': {
    usage: 'lease revoke ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('lease revoke command needs 1 argument');
      const r = await client.lease.revoke(args[0]!);
      out(json ? JSON.stringify(r) : `lease ${args[0]} revoked`);
    },
  },
  'lease timetolive': {
    usage: 'lease timetolive ID [--keys]',
    options: { keys: { type: 'boolean' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('lease timetolive command needs lease ID as argument');
      const l = await client.lease.timeToLive(args[0]!);
      if (json) return out(JSON.stringify(l));
      const keys = values['keys'] === true ? `, attached keys([${l.keys.join(' ')}])` : '';
      out(`lease ${l.id} granted with TTL(${l.grantedTtl}s), remaining(${l.ttl}s)${keys}`);
    },
  },
  'lease list': {
    usage: 'lease list   (every lease, in id order)',
    async run(ctx) {
      const { client, args, json, out } = ctx;
      if (args.length !== 0) throw new UsageError('lease list command takes no arguments');
      const leases: Array<{ id: string; grantedTtl: number }> = [];
      let after: string | undefined;
      for (;;) {
        const page = await client.lease.list(after === undefined ? {} : { after });
        leases.push(...page.leases);
        if (!page.more || page.leases.length === 0) break;
        after = page.leases[page.leases.length - 1]!.id;
      }
      if (json) return out(JSON.stringify({ leases }));
      if (ctx.writeOut === 'table')
        return table(
          ctx,
          ['ID', 'GRANTED TTL'],
          leases.map((l) => [l.id, l.grantedTtl]),
        );
      out(`found ${leases.length} leases`);
      for (const l of leases) out(l.id);
    },
  },
  'lease keep-alive': {
    usage: 'lease keep-alive ID [--once]   (every ttl/3 until Ctrl-C)',
    options: { once: { type: 'boolean' } },
    async run({ client, values, args, json, timeoutMs, out }) {
      if (args.length !== 1) throw new UsageError('lease keep-alive command needs lease ID as argument');
      const stop = interrupted();
      for (;;) {
        const l = await client.lease.keepAlive(args[0]!, { signal: stop.signal, timeoutMs });
        out(json ? JSON.stringify(l) : `lease ${l.id} keepalived with TTL(${l.ttl})`);
        if (values['once'] === true) return;
        if (!(await pause(Math.max(500, (l.ttl * 1000) / 3), stop.signal))) return;
      }
    },
  },
};
