// The TLS flags, with etcd's names, and the rules that tie them together and to the advertised
// URL. Like flags.ts this only reads argv, plus whether each named file can be read: a typo in
// a path is a one-line error before anything starts. The files' contents are loaded at start
// (tls-files.ts).

import { accessSync, constants, statSync } from 'node:fs';

export interface TlsFlags {
  /** '' when not given. The listener serves HTTPS when set. */
  certFile: string;
  keyFile: string;
  /** The CA client certificates must chain to (with clientCertAuth). */
  trustedCaFile: string;
  clientCertAuth: boolean;
  /** What this node presents when it calls other members. */
  peerCertFile: string;
  peerKeyFile: string;
  /** Verifies other members' server certificates, and their certificates on /raft/*. */
  peerTrustedCaFile: string;
  peerClientCertAuth: boolean;
}

export const TLS_FLAGS: Record<string, { type: 'string' | 'boolean'; default: string; help: string }> = {
  'cert-file': { type: 'string', default: '', help: 'serve HTTPS (clients and peers) with this PEM certificate' },
  'key-file': { type: 'string', default: '', help: 'the PEM private key of --cert-file' },
  'trusted-ca-file': { type: 'string', default: '', help: 'PEM CA that client certificates must chain to (--client-cert-auth)' },
  'client-cert-auth': {
    type: 'boolean',
    default: 'false',
    help: 'client requests need a certificate from --trusted-ca-file or --peer-trusted-ca-file (else 401)',
  },
  'peer-cert-file': { type: 'string', default: '', help: 'PEM certificate this node presents when it calls members (Raft, join, proxy)' },
  'peer-key-file': { type: 'string', default: '', help: 'the PEM private key of --peer-cert-file' },
  'peer-trusted-ca-file': {
    type: 'string',
    default: '',
    help: "PEM CA that verifies members' certificates (default for calls: the system's CAs)",
  },
  'peer-client-cert-auth': {
    type: 'boolean',
    default: 'false',
    help: '/raft/* needs a certificate from --peer-trusted-ca-file (else 401)',
  },
};

/** Why `file` cannot be read, or null. */
export function fileProblem(file: string): string | null {
  try {
    if (statSync(file).isDirectory()) return 'it is a directory';
    accessSync(file, constants.R_OK);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'no such file';
    if (code === 'EACCES') return 'permission denied';
    return code ?? String(err);
  }
}

/** The TLS flags from parseArgs' values; `fail` throws the caller's one-line flag error. */
export function parseTlsFlags(
  values: Record<string, string | boolean | undefined>,
  fail: (message: string) => never,
  problem: (file: string) => string | null = fileProblem,
): TlsFlags {
  const file = (flag: string): string => {
    const value = values[flag];
    if (typeof value !== 'string') return '';
    if (value === '') fail(`--${flag}: expected a file path`);
    const why = problem(value);
    if (why !== null) fail(`--${flag}: cannot read ${JSON.stringify(value)}: ${why}`);
    return value;
  };
  const tls: TlsFlags = {
    certFile: file('cert-file'),
    keyFile: file('key-file'),
    trustedCaFile: file('trusted-ca-file'),
    clientCertAuth: values['client-cert-auth'] === true,
    peerCertFile: file('peer-cert-file'),
    peerKeyFile: file('peer-key-file'),
    peerTrustedCaFile: file('peer-trusted-ca-file'),
    peerClientCertAuth: values['peer-client-cert-auth'] === true,
  };
  const pair = (cert: string, key: string, certFlag: string, keyFlag: string) => {
    if (cert !== '' && key === '') fail(`--${certFlag} needs --${keyFlag}`);
    if (key !== '' && cert === '') fail(`--${keyFlag} needs --${certFlag}`);
  };
  pair(tls.certFile, tls.keyFile, 'cert-file', 'key-file');
  pair(tls.peerCertFile, tls.peerKeyFile, 'peer-cert-file', 'peer-key-file');
  if (tls.clientCertAuth && tls.trustedCaFile === '')
    fail('--client-cert-auth needs --trusted-ca-file (the CA client certificates chain to)');
  if (tls.peerClientCertAuth && tls.peerTrustedCaFile === '') {
    fail('--peer-client-cert-auth needs --peer-trusted-ca-file (the CA peer certificates chain to)');
  }
  // Client certificates are asked for during the TLS handshake: there is none on plain HTTP.
  if (tls.certFile === '') {
    for (const flag of ['trusted-ca-file', 'client-cert-auth', 'peer-client-cert-auth']) {
      if (values[flag] !== undefined && values[flag] !== false) fail(`--${flag} needs --cert-file and --key-file (an HTTPS listener)`);
    }
  }
  return tls;
}

/** The advertised URL's scheme must be the listener's: peers and redirected clients use it. */
export function checkAdvertiseScheme(advertise: string, tls: TlsFlags, fail: (message: string) => never): void {
  const https = advertise.startsWith('https:');
  if (https && tls.certFile === '') {
    fail(`this node's URL ${advertise} is https:// but it serves plain HTTP: give --cert-file and --key-file, or advertise http://`);
  }
  if (!https && tls.certFile !== '') {
    fail(`this node's URL ${advertise} is http:// but it serves HTTPS (--cert-file): advertise https:// (--advertise, --initial-cluster)`);
  }
}
