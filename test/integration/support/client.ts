/**
 * SMTP from an outside client of the mail world (images/client): a swaks session run inside the client's
 * container, so the hosts see the client's own address, PTR and HELO, as a stranger on the Internet.
 * Its transcript is read back into the same outcome as smtp() (support/mail.ts) gives.
 */
import { flat } from './mail.js';
import type { SmtpOutcome } from './mail.js';

export interface ClientSmtp {
  server: string;
  port: 25 | 587;
  helo: string;
  from: string;
  to: string;
  /** AUTH PLAIN after STARTTLS (587). */
  auth?: { user: string; password: string };
  /** The whole message, header and body (sent as is; line ends become CRLF). */
  data: string;
}

const shq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The shell command (run with the message on stdin). */
export function swaksCommand(o: ClientSmtp): string {
  const args = ['--server', o.server, '--port', String(o.port), '--helo', o.helo, '--from', o.from, '--to', o.to, '--data', '-', '--timeout', '60'];
  if (o.port === 587) args.push('--tls');
  if (o.auth) args.push('-a', 'PLAIN', '-au', o.auth.user, '-ap', o.auth.password);
  return `swaks ${args.map(shq).join(' ')}`;
}

interface Exchange {
  cmd: string;
  code: number;
  lines: string[];
}

/** Every server reply of a swaks transcript with the client line sent just before it ('' for the greeting). */
export function swaksExchanges(transcript: string): Exchange[] {
  const out: Exchange[] = [];
  let cmd = '';
  let pending: { code: number; lines: string[] } | undefined;
  for (const raw of transcript.split(/\r?\n/)) {
    const client = /^ (?:->|~>) (.*)$/.exec(raw);
    if (client) {
      cmd = client[1]!;
      continue;
    }
    const server = /^<(?:-|~|\*\*|~\*) +(\d{3})([- ]?)(.*)$/.exec(raw);
    if (!server) continue;
    pending ??= { code: Number(server[1]), lines: [] };
    pending.lines.push(server[3]!);
    if (server[2] !== '-') {
      out.push({ cmd, ...pending });
      pending = undefined;
    }
  }
  return out;
}

const STAGE: Array<[RegExp, SmtpOutcome['stage']]> = [
  [/^STARTTLS/i, 'starttls'],
  [/^AUTH /i, 'auth'],
  [/^MAIL FROM/i, 'mail'],
  [/^RCPT TO/i, 'rcpt'],
];

/** What the session came to: the first refusal and its stage, or 'done' with the reply to the end of data. */
export function swaksOutcome(transcript: string): SmtpOutcome {
  const ex = swaksExchanges(transcript).filter((e) => !/^QUIT$/i.test(e.cmd));
  const reply = (e: Exchange) => ({ code: e.code, text: flat(e) });
  const rcpts = ex.filter((e) => /^RCPT TO/i.test(e.cmd)).map(reply);
  const bad = ex.find((e) => e.code >= 400);
  const stageOf = (e: Exchange, i: number): SmtpOutcome['stage'] => {
    if (i === 0 || /^(EHLO|HELO) /i.test(e.cmd)) return 'connect';
    return STAGE.find(([re]) => re.test(e.cmd))?.[1] ?? 'data';
  };
  if (bad) return { stage: stageOf(bad, ex.indexOf(bad)), reply: reply(bad), rcpts };
  const last = ex[ex.length - 1];
  if (!last || last.cmd !== '.') throw new Error(`the swaks session ended before the end of data:\n${transcript}`);
  return { stage: 'done', reply: reply(last), rcpts };
}
