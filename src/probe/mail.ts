/**
 * Mail sessions as a client makes them, with the exact replies: one SMTP transaction, IMAP and POP3 logins,
 * reading a mailbox. Used by `mailops test` (and the integration tests) against hosts reached on
 * 127.0.0.1 through published ports.
 */
import { randomBytes } from 'node:crypto';
import { Wire } from '../verify/wire.js';

/** Where a host's service ports are reached (ports published on 127.0.0.1 for containers). */
export interface Ep {
  host: string;
  port(p: number): number;
  /** Name for SNI (the host's mail name). */
  servername?: string;
}

export interface Reply {
  code: number;
  /** The reply on one line: "550 5.1.1 <x@y>: Recipient address rejected: ..." (continuations joined by " / "). */
  text: string;
}

export const flat = (r: { code: number; lines: string[] }): string => `${r.code} ${r.lines.join(' / ')}`;
const replyOf = (r: { code: number; lines: string[] }): Reply => ({ code: r.code, text: flat(r) });

export interface SmtpOpts {
  port: 25 | 587 | 465;
  /** EHLO name (default client.mailops.test). */
  helo?: string;
  auth?: { user: string; password: string };
  from: string;
  to: string[];
  /** The message (default: a short one from `from` to the first recipient). */
  body?: string;
  /** Stop after RCPT (RSET, QUIT): what the server answers, without sending. */
  rcptOnly?: boolean;
  timeoutMs?: number;
}

export interface SmtpOutcome {
  /** Where the transaction stopped: 'done' when the message was accepted (or, rcptOnly, every RCPT was). */
  stage: 'connect' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'done';
  /** The reply that ended it (the refusal, or the last 250). */
  reply: Reply;
  /** Every RCPT reply, in order. */
  rcpts: Reply[];
}

/** A message with a Message-ID of its own; `token` goes into the subject and body so it can be found. */
export function composeMessage(from: string, to: string, subject: string, token: string): string {
  return [
    `From: <${from}>`,
    `To: <${to}>`,
    `Subject: ${subject} [${token}]`,
    `Message-ID: <${token}@mailops.invalid>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `Sent by mailops test (${token}).`,
    '',
  ].join('\r\n');
}

export const newToken = (): string => `mt${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;

/** One SMTP transaction; stops at the first refusal and says where. */
export async function smtpTransaction(ep: Ep, o: SmtpOpts): Promise<SmtpOutcome> {
  const w = await Wire.open({ host: ep.host, port: ep.port(o.port), tls: o.port === 465, servername: ep.servername ?? ep.host, timeoutMs: o.timeoutMs ?? 30000 });
  const rcpts: Reply[] = [];
  const say = async (cmd: string): Promise<Reply> => replyOf(await w.smtp(cmd));
  try {
    const greet = replyOf(await w.smtpReply());
    if (greet.code !== 220) return { stage: 'connect', reply: greet, rcpts };
    const helo = o.helo ?? 'client.mailops.test';
    await say(`EHLO ${helo}`);
    if (o.port === 587) {
      const r = await say('STARTTLS');
      if (r.code !== 220) return { stage: 'starttls', reply: r, rcpts };
      await w.startTls();
      await say(`EHLO ${helo}`);
    }
    if (o.auth) {
      const r = await say(`AUTH PLAIN ${Buffer.from(`\0${o.auth.user}\0${o.auth.password}`).toString('base64')}`);
      if (r.code !== 235) return { stage: 'auth', reply: r, rcpts };
    }
    const m = await say(`MAIL FROM:<${o.from}>`);
    if (m.code !== 250) return { stage: 'mail', reply: m, rcpts };
    // No recipient: the sender alone (counts against no sending limit).
    if (o.rcptOnly && o.to.length === 0) {
      await say('RSET');
      return { stage: 'done', reply: m, rcpts };
    }
    for (const t of o.to) rcpts.push(await say(`RCPT TO:<${t}>`));
    const bad = rcpts.find((r) => r.code !== 250 && r.code !== 251);
    if (bad) return { stage: 'rcpt', reply: bad, rcpts };
    if (o.rcptOnly) {
      await say('RSET');
      return { stage: 'done', reply: rcpts[rcpts.length - 1]!, rcpts };
    }
    const d = await say('DATA');
    if (d.code !== 354) return { stage: 'data', reply: d, rcpts };
    const body = (o.body ?? composeMessage(o.from, o.to[0]!, 'mailops test', newToken())).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    w.send(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
    const end = replyOf(await w.smtpReply());
    return { stage: end.code === 250 ? 'done' : 'data', reply: end, rcpts };
  } finally {
    w.send('QUIT');
    w.close();
  }
}

/**
 * RCPT probes on port 25 as a stranger's MTA makes them: one session (EHLO once) for transaction after
 * transaction (MAIL, RCPT, RSET), as a sending MTA reuses its connection, so that a host's limit on
 * connections a minute from one address (Postfix: 60 on port 25) is not what a long run of probes meets.
 * After a refusal the session is closed and the next probe opens another (servers slow down and then drop
 * a session that keeps making errors); one the server closed, or answered 421 in, is opened again once.
 */
export class RcptProber {
  private w: Wire | undefined;

  constructor(
    private readonly ep: Ep,
    private readonly helo: string,
    private readonly timeoutMs = 30000,
  ) {}

  /** What the server answers to MAIL FROM and RCPT TO (stage 'done' when the recipient was accepted). */
  async probe(from: string, to: string): Promise<SmtpOutcome> {
    for (let fresh = !this.w; ; fresh = true) {
      try {
        if (!this.w) {
          const w = await Wire.open({ host: this.ep.host, port: this.ep.port(25), tls: false, servername: this.ep.servername ?? this.ep.host, timeoutMs: this.timeoutMs });
          const greet = replyOf(await w.smtpReply().catch((e) => (w.close(), Promise.reject(e))));
          if (greet.code !== 220) {
            w.close();
            return { stage: 'connect', reply: greet, rcpts: [] };
          }
          const ehlo = replyOf(await w.smtp(`EHLO ${this.helo}`));
          if (ehlo.code !== 250) {
            this.end(w);
            return { stage: 'connect', reply: ehlo, rcpts: [] };
          }
          this.w = w;
        }
        const w = this.w;
        const m = replyOf(await w.smtp(`MAIL FROM:<${from}>`));
        if (m.code === 421 && !fresh) throw new Error(m.text);
        if (m.code !== 250) {
          this.close();
          return { stage: 'mail', reply: m, rcpts: [] };
        }
        const r = replyOf(await w.smtp(`RCPT TO:<${to}>`));
        if (r.code === 421 && !fresh) throw new Error(r.text);
        if (r.code !== 250 && r.code !== 251) {
          this.close();
          return { stage: 'rcpt', reply: r, rcpts: [r] };
        }
        if ((await w.smtp('RSET')).code !== 250) this.close();
        return { stage: 'done', reply: r, rcpts: [r] };
      } catch (e) {
        // The session the last probe left open is gone (closed by the server, or 421): once more, in a new one.
        this.close();
        if (fresh) throw e;
      }
    }
  }

  /** QUIT, and forget the session. */
  close(): void {
    if (this.w) this.end(this.w);
    this.w = undefined;
  }

  private end(w: Wire): void {
    try {
      w.send('QUIT');
    } catch {
      // closed already
    }
    w.close();
  }
}

export type ImapCmd = (c: string) => Promise<string[]>;

/** The IMAP quoted form of a string. */
export const imapQuote = (s: string) => `"${s.replace(/(["\\])/g, '\\$1')}"`;
const q = imapQuote;

export interface ImapSessionOptions {
  /** Called after the greeting, before the password is sent: throws when the TLS session may not be trusted. */
  trust?: (w: Wire) => void;
  timeoutMs?: number;
}

/**
 * An IMAPS (993) session: logs in (a refused login throws with the server's tagged reply) and runs `fn`
 * with a command runner that returns the untagged lines and the tagged OK. A command may carry a
 * non-synchronizing literal (`APPEND INBOX {n+}\r\n<message>`); a failure names its first line only.
 */
export async function imapSession<T>(ep: Ep, user: string, password: string, fn: (cmd: ImapCmd, w: Wire, tag: () => string) => Promise<T>, opts: ImapSessionOptions = {}): Promise<T> {
  const w = await Wire.open({ host: ep.host, port: ep.port(993), tls: true, servername: ep.servername ?? ep.host, timeoutMs: opts.timeoutMs ?? 30000 });
  try {
    await w.line();
    opts.trust?.(w);
    let n = 0;
    const tag = () => `t${++n}`;
    const cmd = async (c: string): Promise<string[]> => {
      const t = tag();
      w.send(`${t} ${c}`);
      const lines: string[] = [];
      for (;;) {
        const l = await w.line();
        lines.push(l);
        if (l.startsWith(`${t} `)) {
          if (!l.startsWith(`${t} OK`)) throw new Error(`IMAP ${c.startsWith('LOGIN') ? 'LOGIN' : c.split('\r\n')[0]}: ${l.slice(t.length + 1)}`);
          return lines;
        }
      }
    };
    await cmd(`LOGIN ${q(user)} ${q(password)}`);
    const out = await fn(cmd, w, tag);
    await cmd('LOGOUT').catch(() => undefined);
    return out;
  } finally {
    w.close();
  }
}

/** Every message of a mailbox (INBOX unless said), raw, read over IMAPS. */
export async function imapFetchAll(ep: Ep, user: string, password: string, mailbox = 'INBOX'): Promise<string[]> {
  return imapSession(ep, user, password, async (cmd, w, nextTag) => {
    const sel = await cmd(`EXAMINE ${q(mailbox)}`);
    const exists = Number(/\* (\d+) EXISTS/.exec(sel.join('\n'))?.[1] ?? 0);
    const out: string[] = [];
    for (let i = 1; i <= exists; i++) {
      const tag = nextTag();
      w.send(`${tag} FETCH ${i} BODY.PEEK[]`);
      const head = await w.line();
      const size = Number(/\{(\d+)\}$/.exec(head)?.[1] ?? -1);
      if (size < 0) throw new Error(`unexpected FETCH reply: ${head}`);
      let text = '';
      while (Buffer.byteLength(text) < size) text += `${await w.line()}\r\n`;
      out.push(Buffer.from(text).subarray(0, size).toString());
      for (;;) {
        const l = await w.line();
        if (l.startsWith(`${tag} `)) break;
      }
    }
    return out;
  });
}

/** The Message-IDs of the messages in a mailbox that carry `token` in their subject (IMAP SEARCH). */
export async function imapFind(ep: Ep, user: string, password: string, token: string, mailbox = 'INBOX'): Promise<number> {
  return imapSession(ep, user, password, async (cmd) => {
    await cmd(`EXAMINE ${q(mailbox)}`);
    const lines = await cmd(`SEARCH SUBJECT ${q(token)}`);
    const hits = lines.find((l) => l.startsWith('* SEARCH'))?.slice('* SEARCH'.length).trim();
    return hits ? hits.split(/\s+/).length : 0;
  });
}

/** The storage limit IMAP reports for INBOX (GETQUOTAROOT), in bytes; undefined when none. */
export async function imapQuota(ep: Ep, user: string, password: string): Promise<number | undefined> {
  return imapSession(ep, user, password, async (cmd) => {
    const lines = await cmd('GETQUOTAROOT INBOX');
    const m = lines.map((l) => /^\* QUOTA .*\(.*STORAGE \d+ (\d+).*\)/.exec(l)).find(Boolean);
    return m ? Number(m[1]) * 1024 : undefined;
  });
}

/** A POP3S (995) session: logs in (a refused login throws with the server's reply) and runs `fn`. */
async function pop3Session<T>(ep: Ep, user: string, password: string, fn: (cmd: (c: string, multi?: boolean) => Promise<string[]>) => Promise<T>): Promise<T> {
  const w = await Wire.open({ host: ep.host, port: ep.port(995), tls: true, servername: ep.servername ?? ep.host, timeoutMs: 30000 });
  try {
    await w.line();
    const cmd = async (c: string, multi = false): Promise<string[]> => {
      w.send(c);
      const first = await w.line();
      if (!first.startsWith('+OK')) throw new Error(`POP3 ${c.startsWith('PASS') ? 'PASS' : c}: ${first}`);
      const lines = [first];
      if (multi) for (let l = await w.line(); l !== '.'; l = await w.line()) lines.push(l.startsWith('..') ? l.slice(1) : l);
      return lines;
    };
    await cmd(`USER ${user}`);
    await cmd(`PASS ${password}`);
    const out = await fn(cmd);
    await cmd('QUIT').catch(() => undefined);
    return out;
  } finally {
    w.close();
  }
}

/** A POP3S (995) login; the number of messages (STAT). */
export function pop3Stat(ep: Ep, user: string, password: string): Promise<number> {
  return pop3Session(ep, user, password, async (cmd) => Number(/^\+OK (\d+)/.exec((await cmd('STAT'))[0]!)?.[1] ?? -1));
}

/** How many messages of the mailbox carry `token` in their subject, read over POP3S (TOP n 0). */
export function pop3Find(ep: Ep, user: string, password: string, token: string): Promise<number> {
  return pop3Session(ep, user, password, async (cmd) => {
    const n = Number(/^\+OK (\d+)/.exec((await cmd('STAT'))[0]!)?.[1] ?? 0);
    let hits = 0;
    for (let i = 1; i <= n; i++) if ((await cmd(`TOP ${i} 0`, true)).some((l) => /^subject:/i.test(l) && l.includes(token))) hits++;
    return hits;
  });
}

/** Polls `f` until it returns true or the deadline passes. */
export async function until(f: () => Promise<boolean>, timeoutMs: number, stepMs = 300): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await f()) return true;
    } catch {
      /* not yet */
    }
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
