/**
 * A small line-protocol client for SMTP, IMAP and POP3 checks: plain or implicit TLS, STARTTLS upgrade,
 * and the exact server replies (which client libraries hide, and the checks must see).
 */
import { connect as netConnect } from 'node:net';
import type { Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export interface WireOptions {
  host: string;
  port: number;
  /** Implicit TLS from the first byte (465, 993, 995). */
  tls?: boolean;
  /** Name for SNI and certificate checks. */
  servername?: string;
  timeoutMs?: number;
}

export interface TlsInfo {
  protocol: string;
  cipher: string;
  /** Certificate verified against the system CAs for servername. */
  trusted: boolean;
  trustError?: string;
  selfSigned: boolean;
  subjectNames: string[];
  validTo: string;
  /** SHA-256 of the certificate (hex, lower case). */
  fingerprint: string;
}

export class Wire {
  private buf = '';
  private waiters: Array<() => void> = [];
  private ended = false;
  private error: Error | null = null;
  tlsInfo: TlsInfo | null = null;

  private constructor(
    private socket: Socket,
    private readonly opts: WireOptions,
  ) {
    this.attach(socket);
  }

  static async open(opts: WireOptions): Promise<Wire> {
    const timeout = opts.timeoutMs ?? 10000;
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s: Socket = opts.tls
        ? tlsConnect({ host: opts.host, port: opts.port, servername: opts.servername ?? opts.host, rejectUnauthorized: false, minVersion: 'TLSv1.2' })
        : netConnect({ host: opts.host, port: opts.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`timed out connecting to ${opts.host}:${opts.port}`));
      }, timeout);
      s.once(opts.tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(new Error(`${opts.host}:${opts.port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`));
      });
    });
    const w = new Wire(socket, opts);
    if (opts.tls) w.tlsInfo = describeTls(socket as TLSSocket);
    return w;
  }

  private attach(s: Socket): void {
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    s.on('end', () => {
      this.ended = true;
      this.wake();
    });
    s.on('close', () => {
      this.ended = true;
      this.wake();
    });
    s.on('error', (e) => {
      this.error = e;
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Next line (without CRLF). */
  async line(): Promise<string> {
    const deadline = Date.now() + (this.opts.timeoutMs ?? 10000);
    for (;;) {
      const i = this.buf.indexOf('\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i).replace(/\r$/, '');
        this.buf = this.buf.slice(i + 1);
        return l;
      }
      if (this.error) throw this.error;
      if (this.ended) throw new Error('connection closed by the server');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for the server');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(text: string): void {
    this.socket.write(`${text}\r\n`);
  }

  /** An SMTP reply: code and every line's text. */
  async smtpReply(): Promise<{ code: number; lines: string[]; text: string }> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      lines.push(l.slice(4));
      if (!/^\d{3}-/.test(l)) {
        const code = Number(l.slice(0, 3));
        return { code, lines, text: `${l.slice(0, 3)} ${lines.join(' / ')}` };
      }
    }
  }

  async smtp(cmd: string): Promise<{ code: number; lines: string[]; text: string }> {
    this.send(cmd);
    return this.smtpReply();
  }

  /** Upgrade the connection to TLS (after STARTTLS / STLS was accepted). */
  async startTls(): Promise<TlsInfo> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, servername: this.opts.servername ?? this.opts.host, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
      s.once('secureConnect', () => resolve(s));
      s.once('error', reject);
    });
    this.socket = secure;
    this.buf = '';
    this.attach(secure);
    this.tlsInfo = describeTls(secure);
    return this.tlsInfo;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** What a TLS session shows of itself: protocol, cipher, trust for the name asked (SNI), certificate. */
export function describeTls(s: TLSSocket): TlsInfo {
  const cert = s.getPeerCertificate() as PeerCertificate;
  const alt = (cert.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((x) => x.startsWith('DNS:'))
    .map((x) => x.slice(4));
  const cn = cert.subject?.CN;
  const names = [...new Set([...alt, ...(typeof cn === 'string' ? [cn] : [])])];
  const issuer = JSON.stringify(cert.issuer ?? {});
  const subject = JSON.stringify(cert.subject ?? {});
  return {
    protocol: s.getProtocol() ?? 'unknown',
    cipher: s.getCipher()?.name ?? 'unknown',
    trusted: s.authorized,
    ...(s.authorizationError ? { trustError: String(s.authorizationError) } : {}),
    selfSigned: issuer === subject,
    subjectNames: names,
    validTo: cert.valid_to ?? '',
    fingerprint: (cert.fingerprint256 ?? '').replace(/:/g, '').toLowerCase(),
  };
}

/**
 * A reply as a client shows it: one line, "CODE text". Exim splits a reply past 75 characters over
 * several lines (each repeating the code and the enhanced status code); a client joins them, and so
 * does this, so the text of one MTA compares with the other's.
 */
export function oneLine(r: { code: number; lines: string[] }): string {
  const lines = r.lines.map((l) => l.trim());
  const esc = /^\d\.\d{1,3}\.\d{1,3}(?= |$)/.exec(lines[0] ?? '')?.[0];
  const rest = lines.slice(1).map((l) => (esc && l.startsWith(`${esc} `) ? l.slice(esc.length + 1) : l));
  return [`${r.code}`, lines[0], ...rest].filter((x) => x !== '' && x !== undefined).join(' ');
}

/** Does a certificate name (maybe a wildcard) cover `host`? */
export function certCovers(names: string[], host: string): boolean {
  const h = host.toLowerCase();
  return names.some((n) => {
    const x = n.toLowerCase();
    if (x === h) return true;
    if (x.startsWith('*.')) {
      const rest = h.slice(h.indexOf('.') + 1);
      return rest === x.slice(2) && h.indexOf('.') > 0;
    }
    return false;
  });
}
