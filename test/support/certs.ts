// Certificates for the TLS tests, made at run time with the openssl CLI in a temporary dir: no
// key is checked in and nothing in the repository expires. P-256 keys keep it to a fraction of
// a second.
//
//   peer CA    issues the node certificates (server and peer: one listener serves both)
//   client CA  issues the client certificates (--trusted-ca-file), and an intermediate CA
//   other CA   trusted by no node: a certificate from "another CA"

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface KeyPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  peerCa: string;
  clientCa: string;
  /** Issued by the peer CA for 127.0.0.1 and localhost, for serverAuth and clientAuth. */
  node: KeyPair;
  /** Issued by the client CA, clientAuth only. */
  client: KeyPair;
  /** Issued by an intermediate CA of the client CA; the file holds it and the intermediate. */
  chainedClient: KeyPair;
  /** The intermediate CA and the client CA in one file. */
  clientCaBundle: string;
  /** Issued by a CA no node trusts. */
  otherCaClient: KeyPair;
  /** Self-signed, clientAuth. */
  selfSigned: KeyPair;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string): KeyPair {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  openssl(['req', '-x509', ...EC, '-keyout', pair.key, '-out', pair.cert, '-days', '2', '-subj', `/CN=metcd test ${name}`]);
  return pair;
}

function issue(dir: string, name: string, ca: KeyPair, extensions: string[]): KeyPair {
  const pair = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  const csr = path.join(dir, `${name}.csr`);
  const ext = path.join(dir, `${name}.ext`);
  const isCa = extensions.some((e) => e.startsWith('basicConstraints='));
  writeFileSync(ext, [...(isCa ? [] : ['basicConstraints=CA:FALSE']), ...extensions].join('\n') + '\n');
  openssl(['req', '-new', ...EC, '-keyout', pair.key, '-out', csr, '-subj', `/CN=${name}`]);
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-set_serial',
    `0x${randomBytes(8).toString('hex')}`,
    '-days',
    '2',
    '-extfile',
    ext,
    '-out',
    pair.cert,
  ]);
  return pair;
}

/** Writes a full set of CAs and certificates into `dir` (which must exist). */
export function makeTestCerts(dir: string): TestCerts {
  const peerCa = makeCa(dir, 'peer-ca');
  const clientCa = makeCa(dir, 'client-ca');
  const otherCa = makeCa(dir, 'other-ca');
  const clientExt = ['extendedKeyUsage=clientAuth'];
  const selfSigned = { cert: path.join(dir, 'self-signed.pem'), key: path.join(dir, 'self-signed.key') };
  openssl([
    'req',
    '-x509',
    ...EC,
    '-keyout',
    selfSigned.key,
    '-out',
    selfSigned.cert,
    '-days',
    '2',
    '-subj',
    '/CN=self-signed',
    '-addext',
    'extendedKeyUsage=clientAuth',
  ]);
  const intermediate = issue(dir, 'client-intermediate-ca', clientCa, [
    'basicConstraints=critical,CA:TRUE',
    'keyUsage=critical,keyCertSign',
  ]);
  const chainedClient = issue(dir, 'chained-client', intermediate, clientExt);
  writeFileSync(chainedClient.cert, Buffer.concat([readFileSync(chainedClient.cert), readFileSync(intermediate.cert)]));
  const clientCaBundle = path.join(dir, 'client-ca-bundle.pem');
  writeFileSync(clientCaBundle, Buffer.concat([readFileSync(intermediate.cert), readFileSync(clientCa.cert)]));
  return {
    dir,
    peerCa: peerCa.cert,
    clientCa: clientCa.cert,
    node: issue(dir, 'node', peerCa, ['subjectAltName=IP:127.0.0.1,DNS:localhost', 'extendedKeyUsage=serverAuth,clientAuth']),
    client: issue(dir, 'client', clientCa, clientExt),
    chainedClient,
    clientCaBundle,
    otherCaClient: issue(dir, 'other-client', otherCa, clientExt),
    selfSigned,
  };
}
