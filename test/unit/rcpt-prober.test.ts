/**
 * The stranger's RCPT probes of `mailops test` (RcptProber): one session for many transactions, a new one
 * after a refusal, and once more when the server closed the one left open. A scripted SMTP server on a
 * local port records what each session was sent; the real daemons answer it in limits.test.ts.
 */
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RcptProber } from '../../src/probe/mail.js';

interface Scripted {
  server: Server;
  port: number;
  /** The commands of each session, in order. */
  sessions: string[][];
}

/**
 * Greets with `greeting(n)` (n: the session's number from 0), refuses RCPT to unknown@ with 550, and
 * closes a session by itself after `closeAfter` transactions (RSETs), without a word, as a server does
 * at its idle timeout.
 */
async function scripted(opts: { greeting?: (n: number) => string; closeAfter?: number } = {}): Promise<Scripted> {
  const sessions: string[][] = [];
  const server = createServer((s: Socket) => {
    const n = sessions.length;
    const seen: string[] = [];
    sessions.push(seen);
    const greeting = opts.greeting?.(n) ?? '220 mail.test ESMTP';
    s.write(`${greeting}\r\n`);
    if (!greeting.startsWith('220')) {
      s.end();
      return;
    }
    let buf = '';
    let rsets = 0;
    s.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 2);
        seen.push(line);
        const cmd = line.toUpperCase();
        if (cmd.startsWith('EHLO')) s.write('250-mail.test\r\n250 PIPELINING\r\n');
        else if (cmd.startsWith('MAIL')) s.write('250 2.1.0 Ok\r\n');
        else if (cmd.startsWith('RCPT')) s.write(/unknown@/i.test(line) ? '550 5.1.1 <unknown@a.test>: Recipient address rejected: User unknown\r\n' : '250 2.1.5 Ok\r\n');
        else if (cmd === 'RSET') {
          s.write('250 2.0.0 Ok\r\n');
          if (++rsets === opts.closeAfter) s.destroy();
        } else if (cmd === 'QUIT') s.end('221 2.0.0 Bye\r\n');
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, sessions };
}

let open: Scripted | undefined;
afterEach(async () => {
  await new Promise((r) => open?.server.close(r) ?? r(undefined));
  open = undefined;
});

const prober = (t: Scripted) => new RcptProber({ host: '127.0.0.1', port: () => t.port }, 'mx.peer.test', 5000);

describe('RcptProber (the RCPT probes of mailops test)', () => {
  it('runs transaction after transaction in one session: EHLO once, MAIL, RCPT, RSET each', async () => {
    const t = (open = await scripted());
    const p = prober(t);
    const a = await p.probe('x@peer.test', 'alice@a.test');
    const b = await p.probe('x@peer.test', 'bob@a.test');
    p.close();
    expect([a.stage, a.reply.text, b.stage, b.reply.text]).toEqual(['done', '250 2.1.5 Ok', 'done', '250 2.1.5 Ok']);
    await new Promise((r) => setTimeout(r, 50));
    expect(t.sessions).toEqual([['EHLO mx.peer.test', 'MAIL FROM:<x@peer.test>', 'RCPT TO:<alice@a.test>', 'RSET', 'MAIL FROM:<x@peer.test>', 'RCPT TO:<bob@a.test>', 'RSET', 'QUIT']]);
  });

  it('says the refusal and leaves that session (QUIT); the next probe opens another', async () => {
    const t = (open = await scripted());
    const p = prober(t);
    const refused = await p.probe('x@peer.test', 'unknown@a.test');
    const next = await p.probe('x@peer.test', 'alice@a.test');
    p.close();
    expect(refused).toEqual({ stage: 'rcpt', reply: { code: 550, text: '550 5.1.1 <unknown@a.test>: Recipient address rejected: User unknown' }, rcpts: [{ code: 550, text: '550 5.1.1 <unknown@a.test>: Recipient address rejected: User unknown' }] });
    expect(next.stage).toBe('done');
    await new Promise((r) => setTimeout(r, 50));
    expect(t.sessions.map((s) => s.at(-1))).toEqual(['QUIT', 'QUIT']);
  });

  it('opens a new session, once, when the server closed the one left open', async () => {
    const t = (open = await scripted({ closeAfter: 1 }));
    const p = prober(t);
    expect((await p.probe('x@peer.test', 'alice@a.test')).stage).toBe('done');
    await new Promise((r) => setTimeout(r, 50));
    const again = await p.probe('x@peer.test', 'bob@a.test');
    p.close();
    expect(again.stage).toBe('done');
    expect(t.sessions).toHaveLength(2);
    expect(t.sessions[1]!.slice(0, 3)).toEqual(['EHLO mx.peer.test', 'MAIL FROM:<x@peer.test>', 'RCPT TO:<bob@a.test>']);
  });

  it('a greeting other than 220 is the answer (421 of a connection rate limit), not retried', async () => {
    const t = (open = await scripted({ greeting: () => '421 4.7.0 mail.test Error: too many connections from 127.0.0.1' }));
    const p = prober(t);
    const r = await p.probe('x@peer.test', 'alice@a.test');
    p.close();
    expect(r).toEqual({ stage: 'connect', reply: { code: 421, text: '421 4.7.0 mail.test Error: too many connections from 127.0.0.1' }, rcpts: [] });
    expect(t.sessions).toHaveLength(1);
  });
});
