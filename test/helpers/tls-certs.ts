// Certificates made by the test: a private CA and server certificates it signs, written to a
// temp dir as PEM files so configs can name them (tls.ca, listen.tls.cert/key).

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TestCa {
  cert: string;
  key: string;
  certFile: string;
}

export interface TestServerCert {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

let dirPromise: Promise<string> | undefined;
const dir = () => (dirPromise ??= mkdtemp(join(tmpdir(), 'spillway-tls-')));
let counter = 0;

async function save(name: string, text: string): Promise<string> {
  const file = join(await dir(), `${counter++}-${name}`);
  await writeFile(file, text);
  return file;
}

/** A self-signed CA certificate (the trust anchor tests give to tls.ca). */
export async function makeCa(commonName = 'spillway test CA'): Promise<TestCa> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: pems.cert, key: pems.private, certFile: await save('ca.pem', pems.cert) };
}

/** A server certificate signed by `ca`, valid for 127.0.0.1, ::1, localhost and `names`. */
export async function makeServerCert(ca: TestCa, names: string[] = []): Promise<TestServerCert> {
  const pems = await generate([{ name: 'commonName', value: names[0] ?? 'localhost' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.key, cert: ca.cert },
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 7, ip: '127.0.0.1' },
          { type: 7, ip: '::1' },
          { type: 2, value: 'localhost' },
          ...names.map((value) => ({ type: 2 as const, value })),
        ],
      },
    ],
  });
  return { cert: pems.cert, key: pems.private, certFile: await save('cert.pem', pems.cert), keyFile: await save('key.pem', pems.private) };
}
