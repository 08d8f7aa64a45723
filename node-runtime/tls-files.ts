// The TLS files named by the flags (tls-flags.ts), read and checked once at start: the
// listener's certificate and key and the CAs client certificates are checked against, and what
// this node presents and trusts when it calls other members. A file that cannot be used stops
// the start with one line naming the flag and the file, never anything of its contents.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { CertAuth } from './cert-auth.ts';
import type { PeerTlsOptions } from './peer-agents.ts';
import type { TlsFlags } from './tls-flags.ts';

/** https.createServer's TLS options. */
export interface ServerTls {
  cert: Buffer;
  key: Buffer;
  /** The CAs client certificates may chain to: both, since one listener serves clients and peers. */
  ca?: Buffer[];
  requestCert: boolean;
}

export interface NodeTls {
  /** Null: the listener serves plain HTTP. */
  server: ServerTls | null;
  /** Null: no route needs a client certificate. */
  certAuth: CertAuth | null;
  peer: PeerTlsOptions;
}

export class TlsFileError extends Error {
  override name = 'TlsFileError';
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** OpenSSL's reason without its error-queue prefix ("error:05800074:x509 certificate routines::"). */
function reason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/^error:[0-9A-Fa-f]+:[^:]*:[^:]*:/, '');
}

function read(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new TlsFileError(`--${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? reason(err)})`);
  }
}

function certificates(flag: string, file: string): { pem: Buffer; certs: X509Certificate[] } {
  const pem = read(flag, file);
  const blocks = pem.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) throw new TlsFileError(`--${flag} ${file}: holds no PEM certificate`);
  try {
    return { pem, certs: blocks.map((block) => new X509Certificate(block)) };
  } catch (err) {
    throw new TlsFileError(`--${flag} ${file}: holds a certificate that cannot be parsed (${reason(err)})`);
  }
}

function keyPair(certFlag: string, certFile: string, keyFlag: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const cert = read(certFlag, certFile);
  const key = read(keyFlag, keyFile);
  try {
    createSecureContext({ cert, key }); // parses both and checks that the key is the certificate's
  } catch (err) {
    throw new TlsFileError(`--${certFlag} ${certFile} with --${keyFlag} ${keyFile}: ${reason(err)}`);
  }
  return { cert, key };
}

/** Throws TlsFileError when a file cannot be used. */
export function loadTls(flags: TlsFlags): NodeTls {
  const peerCas = flags.peerTrustedCaFile === '' ? null : certificates('peer-trusted-ca-file', flags.peerTrustedCaFile);
  const peer: PeerTlsOptions = {
    ...(flags.peerCertFile === '' ? {} : keyPair('peer-cert-file', flags.peerCertFile, 'peer-key-file', flags.peerKeyFile)),
    ...(peerCas === null ? {} : { ca: peerCas.pem }),
  };
  if (flags.certFile === '') return { server: null, certAuth: null, peer };

  const pair = keyPair('cert-file', flags.certFile, 'key-file', flags.keyFile);
  const clientCas = flags.trustedCaFile === '' ? null : certificates('trusted-ca-file', flags.trustedCaFile);
  const requestCert = flags.clientCertAuth || flags.peerClientCertAuth;
  if (!requestCert) return { server: { ...pair, requestCert: false }, certAuth: null, peer };
  const ca = [clientCas, peerCas].flatMap((c) => (c === null ? [] : [c.pem]));
  return {
    server: { ...pair, ca, requestCert: true },
    certAuth: new CertAuth({
      clientCas: clientCas?.certs ?? [],
      peerCas: peerCas?.certs ?? [],
      requireClient: flags.clientCertAuth,
      requirePeer: flags.peerClientCertAuth,
    }),
    peer,
  };
}
