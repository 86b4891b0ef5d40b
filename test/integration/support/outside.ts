/**
 * Real mail clients run inside an outside client box of the mail world (images/client): swaks for SMTP,
 * curl for IMAP and POP3, nc for bare TCP. What the server answered is read back from their transcripts,
 * each reply on one line as a client shows it (see flat()).
 */
import type { World, WorldClient } from '../../../src/testbed/world.js';
import { flat } from './mail.js';

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface Exchange {
  /** What the client sent ('' for the greeting). */
  cmd: string;
  /** The server's reply on one line, "CODE text". */
  reply: string;
}

/**
 * A swaks transcript as (command, reply) pairs. swaks marks what the client sends with " -> " (" ~> "
 * under TLS) and what the server answers with "<- " / "<~ " ("*" added to a reply it counts as an error,
 * "<**" for errors in plain text); a multi-line reply has "CODE-" on every line but the last.
 */
export function swaksExchanges(transcript: string): Exchange[] {
  const out: Exchange[] = [];
  let cmd = '';
  let lines: string[] = [];
  let code = 0;
  for (const raw of transcript.split('\n')) {
    const sent = /^ [-~]> (.*)$/.exec(raw);
    if (sent) {
      cmd = sent[1]!;
      continue;
    }
    const got = /^<(?:[-~][ *]|\*\*) ?(\d{3})([ -])(.*)$/.exec(raw);
    if (!got) continue;
    code = Number(got[1]);
    lines.push(got[3]!);
    if (got[2] === ' ') {
      out.push({ cmd, reply: flat({ code, lines }) });
      lines = [];
      cmd = '';
    }
  }
  return out;
}

export interface SwaksResult {
  code: number;
  exchanges: Exchange[];
  /** The reply to the first command that starts with `prefix` (e.g. "RCPT TO", "AUTH"), or undefined. */
  replyTo(prefix: string): string | undefined;
  transcript: string;
}

/** One swaks run in a client box; `args` are swaks options (the server address and port are given). */
export async function swaks(world: World, client: WorldClient, server: string, port: 25 | 587 | 465, args: string[]): Promise<SwaksResult> {
  const tls = port === 587 ? ['--tls'] : port === 465 ? ['--tls-on-connect'] : [];
  const r = await world.exec(client.container, `swaks --server ${shq(server)} --port ${port} ${tls.join(' ')} --timeout 30 ${args.map(shq).join(' ')} 2>&1`);
  const exchanges = swaksExchanges(r.stdout);
  return {
    code: r.code,
    exchanges,
    replyTo: (prefix) => exchanges.find((e) => e.cmd.toUpperCase().startsWith(prefix.toUpperCase()))?.reply,
    transcript: r.stdout,
  };
}

/** SMTP AUTH PLAIN on submission, then QUIT: the reply to AUTH. */
export async function smtpAuth(world: World, client: WorldClient, server: string, port: 587 | 465, user: string, password: string): Promise<string | undefined> {
  const r = await swaks(world, client, server, port, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', user, '--auth-password', password, '--quit-after', 'AUTH']);
  return r.replyTo('AUTH');
}

/**
 * (Dovecot greets an address with recent failed logins only after a delay that grows with each failure:
 * curl waits up to 30 s for it.)
 * A login with curl (IMAP over 993; POP3 after STLS on 110): the server's
 * final answer to it, without the IMAP tag ("OK ... Logged in", "NO [AUTHENTICATIONFAILED] ...",
 * "+OK Logged in.", "-ERR [AUTH] ..."), or "no answer: <curl's error>" when it never got that far.
 */
export async function mailLogin(world: World, client: WorldClient, server: string, protocol: 'imap' | 'pop3', user: string, password: string): Promise<string> {
  const url = protocol === 'imap' ? `imaps://${server}/` : `pop3://${server}/`;
  const r = await world.exec(client.container, `curl -v -k -sS --ssl-reqd --connect-timeout 30 -m 90 --user ${shq(`${user}:${password}`)} ${shq(url)} 2>&1`);
  const lines = r.stdout.split('\n').map((l) => l.replace(/\r$/, ''));
  if (protocol === 'imap') {
    const auth = lines.map((l) => /^> (A\d+) (?:AUTHENTICATE|LOGIN) /.exec(l)?.[1]).find(Boolean);
    const tagged = auth ? lines.find((l) => l.startsWith(`< ${auth} `)) : undefined;
    if (tagged) return tagged.slice(`< ${auth} `.length);
  } else {
    const at = lines.findIndex((l) => /^> (AUTH |USER )/.test(l));
    const final = at < 0 ? undefined : lines.slice(at + 1).find((l) => /^< [-+](OK|ERR)/.test(l));
    if (final) return final.slice(2);
  }
  return `no answer: ${lines.filter((l) => l.startsWith('curl:')).join(' ') || `curl exit ${r.code}`}`;
}

/** Can the client open a TCP connection to the port: "open", "refused", or nc's own words. */
export async function tcpConnect(world: World, client: WorldClient, server: string, port: number): Promise<string> {
  const r = await world.exec(client.container, `nc -z -v -w 5 ${shq(server)} ${port} 2>&1`);
  if (r.code === 0 && /succeeded/.test(r.stdout)) return 'open';
  if (/Connection refused/.test(r.stdout)) return 'refused';
  return r.stdout.trim() || `nc exit ${r.code}`;
}

/** The SSH server's greeting as the client sees it ("SSH-2.0-OpenSSH_..."), or '' when there is none. */
export async function sshGreeting(world: World, client: WorldClient, server: string, port = 22): Promise<string> {
  const r = await world.exec(client.container, `nc -w 5 ${shq(server)} ${port} </dev/null 2>/dev/null | head -n 1`);
  return r.stdout.trim();
}

/** Polls `f` every half second until `ok`, for at most `seconds`; the last value. */
export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, seconds: number): Promise<T> {
  const end = Date.now() + seconds * 1000;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 500));
    v = await f();
  }
  return v;
}
