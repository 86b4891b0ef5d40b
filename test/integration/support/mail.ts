/** Real protocol sessions for the scenario: SMTP submission and relay attempts, IMAP and POP3 reading. */
import { Wire, oneLine } from '../../../src/verify/wire.js';
import { imapFetchAll as probeFetchAll, imapSession as probeSession } from '../../../src/probe/mail.js';

export interface Ep {
  host: string;
  port(p: number): number;
}

type Reply = { code: number; text: string };

/** A reply on one line, "CODE text" (Exim's continuation lines joined): verify's own reading. */
export const flat = oneLine;

export interface Turn {
  cmd: string;
  code: number;
  /** The reply on one line (see flat). */
  text: string;
  /** Every line's text, e.g. the EHLO keywords. */
  lines: string[];
}

/**
 * One scripted SMTP session on `port` (465: implicit TLS): each command's reply, the greeting first
 * (cmd ""). "STARTTLS" upgrades the connection when it is accepted. `AUTH PLAIN user password` is
 * encoded. Stops early when the server closes the connection.
 */
export async function dialogue(ep: Ep, port: 25 | 587 | 465, cmds: string[]): Promise<Turn[]> {
  const w = await Wire.open({ host: ep.host, port: ep.port(port), tls: port === 465, servername: 'mail.example.test', timeoutMs: 20000 });
  const turns: Turn[] = [];
  const push = (cmd: string, r: { code: number; lines: string[] }) => turns.push({ cmd, code: r.code, text: flat(r), lines: r.lines });
  try {
    push('', await w.smtpReply());
    for (const cmd of cmds) {
      const plain = /^AUTH PLAIN (\S+) (\S+)$/.exec(cmd);
      const line = plain ? `AUTH PLAIN ${Buffer.from(`\0${plain[1]}\0${plain[2]}`).toString('base64')}` : cmd;
      let r: { code: number; lines: string[] };
      try {
        r = await w.smtp(line);
      } catch {
        break;
      }
      push(cmd, r);
      if (cmd === 'STARTTLS' && r.code === 220) await w.startTls();
    }
    return turns;
  } finally {
    w.close();
  }
}

/** The EHLO keywords of a reply (AUTH, STARTTLS...), upper case, without the first line. */
export function ehloKeywords(t: Turn): string[] {
  return t.lines.slice(1).map((l) => l.split(' ')[0]!.toUpperCase());
}

export interface SmtpOpts {
  port: 25 | 587 | 465;
  auth?: { user: string; password: string };
  starttls?: boolean;
  from: string;
  to: string[];
  body?: string;
  /** SIZE= on MAIL FROM. */
  size?: number;
}

export interface SmtpOutcome {
  stage: 'connect' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'done';
  reply: Reply;
  /** RCPT replies, one per recipient. */
  rcpts: Reply[];
}

export function message(from: string, to: string, subject: string, body = 'Hello from the mailops scenario.\r\n'): string {
  return [`From: <${from}>`, `To: <${to}>`, `Subject: ${subject}`, `Message-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@mailops.test>`, `Date: ${new Date().toUTCString()}`, '', body].join('\r\n');
}

/** One SMTP transaction; stops at the first refusal and says where. Replies are one line each (flat). */
export async function smtp(ep: Ep, o: SmtpOpts): Promise<SmtpOutcome> {
  const w = await Wire.open({ host: ep.host, port: ep.port(o.port), tls: o.port === 465, servername: 'mail.example.test', timeoutMs: 20000 });
  const rcpts: Reply[] = [];
  const say = async (cmd: string): Promise<Reply> => one(await w.smtp(cmd));
  const one = (r: { code: number; lines: string[] }): Reply => ({ code: r.code, text: flat(r) });
  try {
    const greet = one(await w.smtpReply());
    if (greet.code !== 220) return { stage: 'connect', reply: greet, rcpts };
    await say('EHLO client.mailops.test');
    if (o.starttls ?? o.port === 587) {
      const r = await say('STARTTLS');
      if (r.code !== 220) return { stage: 'starttls', reply: r, rcpts };
      await w.startTls();
      await say('EHLO client.mailops.test');
    }
    if (o.auth) {
      const r = await say(`AUTH PLAIN ${Buffer.from(`\0${o.auth.user}\0${o.auth.password}`).toString('base64')}`);
      if (r.code !== 235) return { stage: 'auth', reply: r, rcpts };
    }
    const m = await say(`MAIL FROM:<${o.from}>${o.size ? ` SIZE=${o.size}` : ''}`);
    if (m.code !== 250) return { stage: 'mail', reply: m, rcpts };
    for (const t of o.to) rcpts.push(await say(`RCPT TO:<${t}>`));
    const bad = rcpts.find((r) => r.code !== 250);
    if (bad) return { stage: 'rcpt', reply: bad, rcpts };
    const d = await say('DATA');
    if (d.code !== 354) return { stage: 'data', reply: d, rcpts };
    const body = (o.body ?? message(o.from, o.to[0]!, 'scenario')).replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
    w.send(`${body}${body.endsWith('\r\n') ? '' : '\r\n'}.`);
    const end = one(await w.smtpReply());
    await w.smtp('QUIT').catch(() => undefined);
    return { stage: end.code === 250 ? 'done' : 'data', reply: end, rcpts };
  } finally {
    w.close();
  }
}

/** The product's IMAPS session (src/probe/mail.ts), with the name the test certificates carry for SNI. */
const sni = (ep: Ep) => ({ ...ep, servername: 'mail.example.test' });
const imapSession: typeof probeSession = (ep, user, password, fn) => probeSession(sni(ep), user, password, fn);

/** The mailboxes of a user as IMAP LIST shows them, e.g. `* LIST (\HasNoChildren \Junk) "/" Junk`. */
export function imapList(ep: Ep, user: string, password: string): Promise<string[]> {
  return imapSession(ep, user, password, async (cmd) => (await cmd('LIST "" "*"')).filter((l) => l.startsWith('* LIST ')));
}

/** Every message of one of a user's mailboxes (INBOX unless said), read over IMAPS (993). */
export const imapFetchAll = (ep: Ep, user: string, password: string, mailbox = 'INBOX'): Promise<string[]> => probeFetchAll(sni(ep), user, password, mailbox);

/** Number of messages in a mailbox, read over POP3S (995). */
export async function pop3Count(ep: Ep, user: string, password: string): Promise<number> {
  const w = await Wire.open({ host: ep.host, port: ep.port(995), tls: true, servername: 'mail.example.test', timeoutMs: 20000 });
  try {
    await w.line();
    w.send(`USER ${user}`);
    if (!(await w.line()).startsWith('+OK')) throw new Error('POP3 USER refused');
    w.send(`PASS ${password}`);
    const p = await w.line();
    if (!p.startsWith('+OK')) throw new Error(`POP3 PASS refused: ${p}`);
    w.send('STAT');
    const s = await w.line();
    w.send('QUIT');
    return Number(/^\+OK (\d+)/.exec(s)?.[1] ?? -1);
  } finally {
    w.close();
  }
}

/** Wait until `f` gives a truthy value (delivery takes a moment). */
export async function eventually<T>(f: () => Promise<T>, ok: (v: T) => boolean, seconds = 20): Promise<T> {
  let last: T = await f();
  for (let i = 0; i < seconds * 2 && !ok(last); i++) {
    await new Promise((r) => setTimeout(r, 500));
    last = await f();
  }
  return last;
}

/** An IMAPS session (993): log in, then each command in turn; the untagged and tagged lines of each. A NO or BAD throws. */
export function imapCommands(ep: Ep, user: string, password: string, commands: string[]): Promise<string[][]> {
  return imapSession(ep, user, password, async (cmd) => {
    const out: string[][] = [];
    for (const c of commands) out.push(await cmd(c));
    return out;
  });
}
