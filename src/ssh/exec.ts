/** One command over one SSH channel: `sh -c` (through `sudo -n` for a non-root login), stdin, exit status. */
import { constants } from 'node:os';
import { StringDecoder } from 'node:string_decoder';
import type { Client, ClientChannel } from 'ssh2';
import { UserError } from '../errors.js';
import type { ExecBufferResult, ExecOptions, ExecResult } from './connection.js';

/** Single-quote a string for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The command line sent to the host: always `sh -c`, whatever the login shell; `sudo -n` when asked. */
export function wrapCommand(command: string, sudo: boolean): string {
  return `${sudo ? 'sudo -n ' : ''}sh -c ${shellQuote(command)}`;
}

/** A command's first words, to name the step in messages: `set -e; cat > /etc/...`. */
export function firstWords(command: string, max = 4): string {
  const line = command.split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#')) ?? '';
  const words = line.split(/\s+/).filter(Boolean);
  let s = words.slice(0, max).join(' ');
  if (s.length > 60) s = s.slice(0, 57);
  return words.length > max || s.length < line.length ? `${s}...` : s;
}

export type SudoProblem = 'password' | 'tty' | 'denied' | 'missing';

/** Why sudo itself refused to run the command (null when it ran it). */
export function sudoProblem(code: number, stderr: string): SudoProblem | null {
  if (code === 0) return null;
  if (/^sudo: .*(password is required|terminal is required)/m.test(stderr)) return 'password';
  if (/is not in the sudoers file|is not allowed to run sudo|may not run sudo/.test(stderr)) return 'password';
  if (/^sudo: sorry, you must have a tty to run sudo/m.test(stderr)) return 'tty';
  if (/^Sorry, user \S+ is not allowed to execute/m.test(stderr)) return 'denied';
  if (code === 127 && /sudo: (command )?not found|sudo: No such file/.test(stderr)) return 'missing';
  return null;
}

/** The one-line explanation of a sudo refusal. */
export function sudoMessage(host: string, user: string, problem: SudoProblem, step: string): string {
  const fix = `give it passwordless sudo (a sudoers line "${user} ALL=(ALL) NOPASSWD: ALL") or connect as root`;
  switch (problem) {
    case 'password':
      return `host ${host}: user ${user} cannot run sudo without a password (step: ${step}): ${fix}`;
    case 'tty':
      return `host ${host}: sudo insists on a terminal for user ${user} ("Defaults requiretty" in sudoers) (step: ${step}): add "Defaults:${user} !requiretty" to sudoers`;
    case 'denied':
      return `host ${host}: sudoers does not let user ${user} run sh as root (step: ${step}): ${fix}`;
    case 'missing':
      return `host ${host}: sudo is not installed, and user ${user} is not root (step: ${step}): install sudo or connect as root`;
  }
}

/** A command's result with its output as UTF-8 text. */
export function textResult(r: ExecBufferResult): ExecResult {
  const out: ExecResult = { code: r.code, stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8') };
  if (r.signal) out.signal = r.signal;
  return out;
}

/** Exit status of a command killed by a signal, as a shell reports it. */
export function signalCode(signal: string | undefined): number {
  const n = signal ? (constants.signals as Record<string, number | undefined>)[signal] : undefined;
  return n === undefined ? -1 : 128 + n;
}

export interface ChannelContext {
  host: string;
  step: string;
  /** Why the connection is gone, or null while it is up. */
  lost: () => string | null;
  /** Milliseconds the host may take to open the channel; past that the command is not run (ChannelOpenError). */
  openTimeout?: number;
  /** Aborted when whoever asked for the command has gone: the channel is closed, as a dropped connection would. */
  signal?: AbortSignal;
}

/** The command was never started: the channel could not be opened (so running it again is safe). */
export class ChannelOpenError extends UserError {}

/**
 * Opens a session channel running `line`. When the host does not open it within ctx.openTimeout, or
 * refuses it, a ChannelOpenError: the command never started. A channel that opens after its time is
 * closed at once.
 */
export function openChannel(client: Client, line: string, ctx: ChannelContext): Promise<ClientChannel> {
  const during = `(step: ${ctx.step})`;
  return new Promise((resolve, reject) => {
    let settled = false;
    const notOpened = (why: string) => {
      settled = true;
      reject(new ChannelOpenError(`host ${ctx.host}: cannot run a command: ${why} ${during}`));
    };
    const timer =
      ctx.openTimeout === undefined
        ? undefined
        : setTimeout(() => {
            if (!settled) notOpened(`the host did not open a channel within ${ctx.openTimeout} ms`);
          }, ctx.openTimeout);
    try {
      client.exec(line, (err: Error | undefined, stream: ClientChannel) => {
        if (timer) clearTimeout(timer);
        if (settled) {
          // Given up on: the command must not run on.
          if (!err) stream.close();
          return;
        }
        if (err) return notOpened(ctx.lost() ?? err.message);
        settled = true;
        resolve(stream);
      });
    } catch (e) {
      if (timer) clearTimeout(timer);
      notOpened(ctx.lost() ?? (e as Error).message);
    }
  });
}

/** Open a session channel, run the command, feed stdin, collect everything until the channel closes. */
export function runChannel(client: Client, line: string, opts: ExecOptions, ctx: ChannelContext): Promise<ExecBufferResult> {
  const during = `(step: ${ctx.step})`;
  return new Promise((resolve, reject) => {
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    const finish = (f: () => void) => {
      if (done) return;
      done = true;
      if (timer) clearTimeout(timer);
      f();
    };
    openChannel(client, line, ctx).then(
      (stream) => {
        if (ctx.signal?.aborted) {
          stream.close();
          return finish(() => reject(new UserError(`host ${ctx.host}: the command was abandoned ${during}`)));
        }
        ctx.signal?.addEventListener('abort', () => {
          stream.close();
          finish(() => reject(new UserError(`host ${ctx.host}: the command was abandoned ${during}`)));
        });
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        const outText = new StringDecoder('utf8');
        const errText = new StringDecoder('utf8');
        let code: number | null = null;
        let signal: string | undefined;
        stream.on('data', (d: Buffer) => {
          out.push(d);
          opts.onStdoutBytes?.(d);
          if (opts.onStdout) opts.onStdout(outText.write(d));
        });
        stream.stderr.on('data', (d: Buffer) => {
          errs.push(d);
          opts.onStderrBytes?.(d);
          if (opts.onStderr) opts.onStderr(errText.write(d));
        });
        stream.on('exit', (c: number | null, sig?: string) => {
          code = c ?? signalCode(sig);
          signal = c === null ? sig : undefined;
        });
        // A command that exits without reading its stdin makes our writes fail: its exit status says what happened.
        stream.on('error', () => undefined);
        stream.on('close', () => {
          // The connection's own error/close comes first when it dropped: look once the current events are done.
          setImmediate(() => {
            const lost = ctx.lost();
            if (code === null && lost) return finish(() => reject(new UserError(`host ${ctx.host}: the connection was lost (${lost}) ${during}`)));
            const tail = [outText.end(), errText.end()];
            if (tail[0] && opts.onStdout) opts.onStdout(tail[0]);
            if (tail[1] && opts.onStderr) opts.onStderr(tail[1]);
            const r: ExecBufferResult = { code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(errs) };
            if (signal) r.signal = signal;
            finish(() => resolve(r));
          });
        });
        if (opts.timeout !== undefined && opts.timeout > 0) {
          timer = setTimeout(() => {
            try {
              stream.signal('KILL');
            } catch {
              // the channel may be closing already
            }
            stream.close();
            finish(() => reject(new UserError(`host ${ctx.host}: the command did not finish within ${opts.timeout}s and was stopped ${during}`)));
          }, opts.timeout * 1000);
        }
        if (opts.stdin !== undefined && opts.stdin.length > 0) stream.end(opts.stdin);
        else stream.end();
      },
      (e: Error) => finish(() => reject(e)),
    );
  });
}
