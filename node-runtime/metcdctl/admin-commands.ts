// Administration: snapshot save|status, auth token create|list|revoke.

import { createWriteStream, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { MetcdError } from '../../worker/client/index.ts';
import { readBackup } from '../../worker/backup/format.ts';
import { UsageError, intFlag, table, type Command } from './command.ts';

export const ADMIN_COMMANDS: Record<string, Command> = {
  'snapshot save': {
    usage: 'snapshot save FILE   (the whole download within --command-timeout, as etcdctl)',
    async run({ client, args, json, timeoutMs, out }) {
      if (args.length !== 1) throw new UsageError('snapshot save expects one argument');
      const file = args[0]!;
      const part = `${file}.part`;
      const deadline = AbortSignal.timeout(timeoutMs);
      const snap = await client.snapshot({ signal: deadline });
      const sink = createWriteStream(part, { mode: 0o600 });
      try {
        for await (const chunk of snap.body) if (!sink.write(chunk)) await once(sink, 'drain');
        sink.end();
        await once(sink, 'finish');
        readBackup(readFileSync(part)); // a cut-short download is refused here, not later
      } catch (err) {
        sink.destroy();
        rmSync(part, { force: true });
        if (deadline.aborted) throw new MetcdError(0, 'timeout', `the snapshot did not arrive within ${timeoutMs} ms`);
        throw err;
      }
      renameSync(part, file);
      out(
        json
          ? JSON.stringify({ file, revision: snap.revision, bytes: statSync(file).size })
          : `Snapshot saved at ${file} (revision ${snap.revision})`,
      );
    },
  },
  'snapshot status': {
    usage: 'snapshot status FILE   (verifies the checksum)',
    async run(ctx) {
      const { args, json, out } = ctx;
      if (args.length !== 1) throw new UsageError('snapshot status requires exactly one argument');
      const bytes = readFileSync(args[0]!);
      const { header, state } = readBackup(bytes);
      const row = {
        revision: header.revision,
        totalKey: state.records.length,
        totalSize: bytes.length,
        appliedIndex: header.appliedIndex,
        clusterId: header.clusterId,
        takenAt: new Date(header.createdAtMs).toISOString(),
        version: header.version,
      };
      if (json) return out(JSON.stringify(row));
      if (ctx.writeOut === 'table')
        return table(
          ctx,
          ['REVISION', 'TOTAL KEYS', 'TOTAL SIZE', 'CLUSTER', 'TAKEN AT'],
          [[row.revision, row.totalKey, row.totalSize, row.clusterId, row.takenAt]],
        );
      out(`${row.revision}, ${row.totalKey}, ${row.totalSize}, ${row.clusterId}, ${row.takenAt}`);
    },
  },
  'auth token create': {
    usage: 'auth token create NAME [--rule PREFIX=read|write|readwrite]… [--admin] [--status] [--ttl S]',
    options: {
      rule: { type: 'string', multiple: true },
      admin: { type: 'boolean' },
      status: { type: 'boolean' },
      ttl: { type: 'string' },
    },
    async run({ client, values, args, json, out }) {
      if (args.length !== 1) throw new UsageError('auth token create needs a token name');
      const rules = ((values['rule'] as string[] | undefined) ?? []).map((r) => {
        const eq = r.lastIndexOf('=');
        const access = r.slice(eq + 1);
        if (eq < 0 || !['read', 'write', 'readwrite'].includes(access))
          throw new UsageError(`--rule ${r}: expected PREFIX=read|write|readwrite`);
        return { prefix: r.slice(0, eq), access: access as 'read' | 'write' | 'readwrite' };
      });
      const ttl = intFlag(values, 'ttl');
      const t = await client.tokens.create({
        name: args[0]!,
        rules,
        admin: values['admin'] === true,
        status: values['status'] === true,
        ...(ttl === undefined ? {} : { ttl }),
      });
      out(json ? JSON.stringify(t) : `Token ${t.id} created\n${t.token}`);
    },
  },
  'auth token list': {
    usage: 'auth token list',
    async run(ctx) {
      const list = await ctx.client.tokens.list();
      if (ctx.json) return ctx.out(JSON.stringify(list));
      const rulesOf = (t: (typeof list)[number]) => t.rules.map((r) => `${r.prefix}=${r.access}`).join(' ');
      if (ctx.writeOut === 'table')
        return table(
          ctx,
          ['ID', 'NAME', 'RULES', 'ADMIN', 'STATUS', 'EXPIRES'],
          list.map((t) => [t.id, t.name, rulesOf(t), t.admin, t.status, t.expired ? 'expired' : (t.expiresAt ?? 'never')]),
        );
      for (const t of list) {
        const flags = [t.admin ? 'admin' : '', t.status ? 'status' : '', t.expired ? 'expired' : ''].filter((f) => f !== '').join(' ');
        ctx.out(`${t.id}, ${t.name}, [${rulesOf(t)}]${flags === '' ? '' : `, ${flags}`}`);
      }
    },
  },
  'auth token revoke': {
    usage: 'auth token revoke ID',
    async run({ client, args, json, out }) {
      if (args.length !== 1) throw new UsageError('auth token revoke needs a token id');
      const r = await client.tokens.revoke(args[0]!);
      out(json ? JSON.stringify(r) : `Token ${args[0]} revoked`);
    },
  },
};
