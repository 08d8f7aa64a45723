// Cluster commands: member list|add|remove|promote, endpoint status|health [--cluster],
// move-leader.

import { MetcdError, type EndpointOptions } from '../../worker/client/index.ts';
import { UsageError, message, table, type Command, type Ctx } from './command.ts';

interface Target {
  /** How the peer is named in the output: its URL, or the Worker's URL with ?peer=. */
  label: string;
  opts: EndpointOptions;
}

/** The peers to report on: the given endpoints, or with --cluster every member (a member whose
 *  address is no URL, as on the edge, through the endpoint in use with ?peer=). */
async function targetsOf(ctx: Ctx): Promise<Target[]> {
  if (ctx.values['cluster'] !== true) return ctx.client.endpoints.map((e) => ({ label: e, opts: { endpoint: e } }));
  const m = await ctx.client.members();
  const via = ctx.client.endpoint;
  return m.members.map((x) =>
    /^https?:\/\//.test(x.address)
      ? { label: x.address, opts: { endpoint: x.address } }
      : { label: `${via}?peer=${x.id}`, opts: { endpoint: via, peer: x.id } },
  );
}

export const CLUSTER_COMMANDS: Record<string, Command> = {
  'member list': {
    usage: 'member list',
    async run(ctx) {
      const m = await ctx.client.members();
      if (ctx.json) return ctx.out(JSON.stringify(m));
      const rows = m.members.map((x) => [x.id, x.voter ? 'voter' : 'learner', x.address, x.id === m.leader]);
      if (ctx.writeOut === 'table') return table(ctx, ['ID', 'ROLE', 'ADDRESS', 'IS LEADER'], rows);
      for (const r of rows) ctx.out(r.join(', '));
    },
  },
  'member add': {
    usage: 'member add ID --peer-urls URL [--learner]',
    options: { 'peer-urls': { type: 'string' }, learner: { type: 'boolean' } },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member name not provided');
      const address = typeof values['peer-urls'] === 'string' ? values['peer-urls'] : undefined;
      const m = await client.addMember({
        id: args[0]!,
        ...(address === undefined ? {} : { address }),
        learner: values['learner'] === true,
      });
      out(json ? JSON.stringify(m) : `Member ${args[0]} added to cluster`);
    },
  },
  'member remove': {
    usage: 'member remove ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member ID is not provided');
      const m = await client.removeMember(args[0]!);
      out(json ? JSON.stringify(m) : `Member ${args[0]} removed from cluster`);
    },
  },
  'member promote': {
    usage: 'member promote ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('member ID is not provided');
      const m = await client.promoteMember(args[0]!);
      out(json ? JSON.stringify(m) : `Member ${args[0]} promoted in cluster`);
    },
  },
  'endpoint status': {
    usage: 'endpoint status [--cluster]   (each endpoint: id, role, term, leader, revision, commit, applied)',
    options: { cluster: { type: 'boolean' } },
    async run(ctx) {
      const rows: Array<Record<string, unknown>> = [];
      let failed = false;
      for (const { label, opts } of await targetsOf(ctx)) {
        try {
          rows.push({ endpoint: label, ...(await ctx.client.status(opts)) });
        } catch (err) {
          failed = true;
          process.stderr.write(`Failed to get the status of endpoint ${label} (${message(err)})\n`);
        }
      }
      if (ctx.json) ctx.out(JSON.stringify(rows));
      else if (ctx.writeOut === 'table')
        table(
          ctx,
          ['ENDPOINT', 'ID', 'ROLE', 'RAFT TERM', 'LEADER', 'REVISION', 'RAFT INDEX', 'RAFT APPLIED INDEX', 'DB SIZE'],
          rows.map(
            (s) =>
              [
                s['endpoint'],
                s['id'],
                s['role'],
                s['term'],
                s['leader'] || '-',
                s['revision'],
                s['commit'],
                s['applied'],
                s['stateBytes'],
              ] as string[],
          ),
        );
      else
        for (const s of rows)
          ctx.out(
            `${s['endpoint']}, ${s['id']}, ${s['role']}, term ${s['term']}, leader ${(s['leader'] as string) || '-'}, revision ${s['revision']}, commit ${s['commit']}, applied ${s['applied']}`,
          );
      if (failed) throw new MetcdError(0, 'unavailable', 'failed to get the status of every endpoint');
    },
  },
  'endpoint health': {
    usage: 'endpoint health [--cluster]',
    options: { cluster: { type: 'boolean' } },
    async run(ctx) {
      const rows: Array<{ endpoint: string; health: boolean; took: string; error?: string }> = [];
      for (const { label, opts } of await targetsOf(ctx)) {
        const t0 = performance.now();
        const h = await ctx.client.health(opts).catch((err: unknown) => ({ ok: false, reason: message(err) }));
        const took = `${(performance.now() - t0).toFixed(1)}ms`;
        rows.push({ endpoint: label, health: h.ok, took, ...(h.ok ? {} : { error: h.reason ?? '' }) });
      }
      if (ctx.json) ctx.out(JSON.stringify(rows));
      else if (ctx.writeOut === 'table')
        table(
          ctx,
          ['ENDPOINT', 'HEALTH', 'TOOK', 'ERROR'],
          rows.map((r) => [r.endpoint, r.health, r.took, r.error ?? '']),
        );
      else
        for (const r of rows) {
          if (r.health) ctx.out(`${r.endpoint} is healthy: successfully answered /health: took = ${r.took}`);
          else process.stderr.write(`${r.endpoint} is unhealthy: failed to answer /health: ${r.error ?? ''}\n`);
        }
      if (rows.some((r) => !r.health)) throw new MetcdError(0, 'unavailable', 'unhealthy cluster');
    },
  },
  'move-leader': {
    usage: 'move-leader ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('move-leader command needs 1 argument');
      const r = await client.moveLeader(args[0]!);
      out(json ? JSON.stringify(r) : `Leadership transferred to ${r.leader}`);
    },
  },
};
