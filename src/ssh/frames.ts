/**
 * The wire between the CLI and the connection broker (shared.ts, broker.ts): over a Unix socket, frames of
 * one type byte, a 32-bit big-endian length and the payload.
 *
 * - CLI → broker: `q` the request (JSON), then `i` the command's stdin when the request announced some.
 * - broker → CLI: `o` stdout and `e` stderr bytes as they arrive, then `r` the result (JSON) or `x` an
 *   error (JSON: its message, and whether it is the user's to fix).
 */
import type { Socket } from 'node:net';

export type FrameType = 'q' | 'i' | 'o' | 'e' | 'r' | 'x';

export function frame(type: FrameType, payload: Buffer | string): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Calls `on` with every whole frame that arrives on the socket, in order. */
export function readFrames(sock: Socket, on: (type: FrameType, payload: Buffer) => void): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.on('data', (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      const type = buf.toString('latin1', 0, 1) as FrameType;
      const payload = buf.subarray(5, 5 + len);
      buf = buf.subarray(5 + len);
      on(type, payload);
    }
  });
}
