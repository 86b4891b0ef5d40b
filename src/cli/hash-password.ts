import type { Command } from 'commander';
import { hashPassword } from '../crypto/password.js';
import { UserError } from '../errors.js';
import { out } from './output.js';

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return promptHidden('Password: ');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new UserError('interrupted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export function registerHashPassword(p: Command): void {
  p.command('hash-password')
    .description('read a password from stdin, print a Dovecot-compatible hash ({SHA512-CRYPT}$6$...) for password_hash')
    .action(async () => {
      const pw = await readStdin();
      if (pw === '') throw new UserError('empty password on stdin');
      if (pw.includes('\n')) throw new UserError('the password on stdin has several lines: give one line');
      out(hashPassword(pw));
    });
}
