// The only WebSocket frame the gateway writes itself: Close (RFC 6455 §5.5.1), sent when it ends
// a tunnel (idle timeout, shutdown). Frames towards a server must be masked, towards a client not.

import { randomBytes } from 'node:crypto';

export const CLOSE_GOING_AWAY = 1001;

export function closeFrame(code: number, reason: string, masked: boolean): Buffer {
  const text = Buffer.from(reason.slice(0, 120), 'utf8');
  const payload = Buffer.alloc(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  if (!masked) return Buffer.concat([Buffer.from([0x88, payload.length]), payload]);
  const mask = randomBytes(4);
  for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from([0x88, 0x80 | payload.length]), mask, payload]);
}
