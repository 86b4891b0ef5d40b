/**
 * One HTTPS request to a host's endpoint (the address and port verify connects to: with --sandbox,
 * 127.0.0.1 and the mapped port) under a name it serves: the name is the SNI and the Host header. The
 * certificate is not refused here; the answer carries what the TLS session showed, and the caller judges
 * it (tlsDetail). No redirect is followed.
 */
import { request } from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { Endpoint } from './checks.js';
import { describeTls } from './wire.js';
import type { TlsInfo } from './wire.js';

export interface HttpsAnswer {
  status: number;
  /** The media type, without parameters ("application/xml"). */
  type: string;
  body: string;
  tls: TlsInfo;
}

/** Larger answers are cut off: nothing the endpoint serves comes near. */
const MAX_BODY = 1 << 20;

export function httpsFetch(ep: Endpoint, name: string, path: string, o: { method?: 'GET' | 'POST'; body?: string; timeoutMs?: number } = {}): Promise<HttpsAnswer> {
  const port = ep.port(443);
  const where = `https://${name}${path} (at ${ep.address}:${port})`;
  const timeout = o.timeoutMs ?? 10000;
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { Host: name, 'User-Agent': 'mailops-verify', Accept: '*/*' };
    if (o.body !== undefined) Object.assign(headers, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(o.body) });
    const req = request({ host: ep.address, port, path, method: o.method ?? 'GET', servername: name, headers, rejectUnauthorized: false, minVersion: 'TLSv1.2', agent: false, timeout }, (res) => {
      const tls = describeTls(res.socket as TLSSocket);
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`the answer is larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase(), body: Buffer.concat(chunks).toString('utf8'), tls }));
      res.on('error', (e) => reject(new Error(`${where}: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeout / 1000} s`)));
    req.on('error', (e) => reject(new Error(`${where}: ${(e as NodeJS.ErrnoException).code ?? e.message}${(e as NodeJS.ErrnoException).code ? ` (${e.message})` : ''}`)));
    req.end(o.body);
  });
}
