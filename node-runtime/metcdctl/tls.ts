// metcdctl's TLS flags (--cacert, --cert, --key, --insecure-skip-tls-verify) as a fetch for the
// client: undici's fetch with an Agent that carries them. The client itself stays free of Node
// APIs; Node's own fetch takes no TLS options without undici's dispatcher.

import { readFileSync } from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import type { FetchFunction } from '../../worker/client/index.ts';
import { UsageError } from './command.ts';

export interface TlsFlags {
  cacert?: string;
  cert?: string;
  key?: string;
  insecureSkipVerify?: boolean;
}

function read(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--${flag} ${file}: ${(err as Error).message}`);
  }
}

/** A fetch with the given TLS options (and close() for its connections), or undefined when none
 *  is given (the global fetch). */
export function tlsFetch(flags: TlsFlags): { fetch: FetchFunction; close(): Promise<void> } | undefined {
  if (flags.cacert === undefined && flags.cert === undefined && flags.key === undefined && flags.insecureSkipVerify !== true)
    return undefined;
  if ((flags.cert === undefined) !== (flags.key === undefined)) throw new UsageError('--cert and --key go together');
  const agent = new Agent({
    connect: {
      ...(flags.cacert === undefined ? {} : { ca: read('cacert', flags.cacert) }),
      ...(flags.cert === undefined ? {} : { cert: read('cert', flags.cert) }),
      ...(flags.key === undefined ? {} : { key: read('key', flags.key) }),
      ...(flags.insecureSkipVerify === true ? { rejectUnauthorized: false } : {}),
    },
  });
  // undici's Response is the web Response the client reads (the same shape; its own class).
  const fetch: FetchFunction = async (input, init) =>
    (await undiciFetch(input, { ...(init as object), dispatcher: agent })) as unknown as Response;
  return { fetch, close: () => agent.close() };
}
