/**
 * A shell kept open on a host over one channel: `sh`, fed commands over its standard input, one at a time,
 * each in a subshell of its own (nothing it sets outlives it) with its standard input from /dev/null. No
 * channel is opened, and no login shell nor sh started, for each command: some 5 ms of the host's CPU, and
 * the round trip that opens a channel. The broker runs the fact script ahead through it (broker.ts).
 *
 * A command's end is told by a line with a nonce of this shell's, written after it on its standard output
 * (with its exit status) and on its standard error. A command that ends the shell (a syntax error), or a
 * channel that closes, fails the command running and the shell.
 */
import { randomBytes } from 'node:crypto';
import type { Client, ClientChannel } from 'ssh2';
import { UserError } from '../errors.js';
import type { ExecBufferResult, ExecOptions } from './connection.js';
import { openChannel } from './exec.js';
import type { ChannelContext } from './exec.js';

interface Pending {
  out: Buffer[];
  err: Buffer[];
  code: number | null;
  errDone: boolean;
  opts: ExecOptions;
  resolve: (r: ExecBufferResult) => void;
  reject: (e: Error) => void;
}

export class KeptShell {
  private readonly nonce = randomBytes(8).toString('hex');
  private pending: Pending | null = null;
  private dead: string | null = null;
  private stdout = Buffer.alloc(0);
  private stderr = Buffer.alloc(0);

  private constructor(
    private readonly stream: ClientChannel,
    private readonly ctx: ChannelContext,
    /** Called once, as it ends. */
    private readonly ended: () => void,
  ) {
    stream.on('data', (d: Buffer) => this.onOut(d));
    stream.stderr.on('data', (d: Buffer) => this.onErr(d));
    stream.on('error', () => undefined);
    stream.on('close', () => this.fail(`the shell kept on the host ended`));
  }

  /** Opens the channel and starts the shell (`line`: the command line that starts it, sudo and all). */
  static async open(client: Client, line: string, ctx: ChannelContext, ended: () => void): Promise<KeptShell> {
    return new KeptShell(await openChannel(client, line, ctx), ctx, ended);
  }

  /** Whether it can run a command now: alive, and running none. */
  get idle(): boolean {
    return this.dead === null && this.pending === null;
  }

  /** Runs one command (only when idle), as a channel of its own would: its output, errors and exit status. */
  run(command: string, opts: ExecOptions = {}): Promise<ExecBufferResult> {
    if (!this.idle) return Promise.reject(new Error(this.dead ?? 'the kept shell is busy'));
    return new Promise((resolve, reject) => {
      this.pending = { out: [], err: [], code: null, errDone: false, opts, resolve, reject };
      const mark = `@@mailops-kept-${this.nonce}`;
      this.stream.write(`(\n${command}\n) </dev/null; printf '\\n${mark} %s\\n' "$?"; printf '\\n${mark}\\n' >&2\n`);
    });
  }

  close(): void {
    this.fail('closed');
    this.stream.close();
  }

  private onOut(d: Buffer): void {
    const p = this.pending;
    if (!p) return;
    this.stdout = Buffer.concat([this.stdout, d]);
    const mark = Buffer.from(`\n@@mailops-kept-${this.nonce} `);
    const at = this.stdout.indexOf(mark);
    if (at < 0) {
      // Everything but a tail that may be the start of the marker is the command's.
      const keep = Math.min(this.stdout.length, mark.length - 1);
      const ready = this.stdout.subarray(0, this.stdout.length - keep);
      if (ready.length) this.emitOut(p, ready);
      this.stdout = this.stdout.subarray(this.stdout.length - keep);
      return;
    }
    const eol = this.stdout.indexOf(0x0a, at + mark.length);
    if (eol < 0) return;
    if (at) this.emitOut(p, this.stdout.subarray(0, at));
    p.code = Number(this.stdout.subarray(at + mark.length, eol).toString('latin1'));
    this.stdout = this.stdout.subarray(eol + 1);
    this.settle();
  }

  private emitOut(p: Pending, b: Buffer): void {
    const copy = Buffer.from(b);
    p.out.push(copy);
    p.opts.onStdoutBytes?.(copy);
  }

  private onErr(d: Buffer): void {
    const p = this.pending;
    if (!p) return;
    this.stderr = Buffer.concat([this.stderr, d]);
    const mark = Buffer.from(`\n@@mailops-kept-${this.nonce}\n`);
    const at = this.stderr.indexOf(mark);
    if (at < 0) return;
    p.err.push(Buffer.from(this.stderr.subarray(0, at)));
    this.stderr = this.stderr.subarray(at + mark.length);
    p.errDone = true;
    this.settle();
  }

  private settle(): void {
    const p = this.pending;
    if (!p || p.code === null || !p.errDone) return;
    this.pending = null;
    p.resolve({ code: Number.isInteger(p.code) ? p.code : -1, stdout: Buffer.concat(p.out), stderr: Buffer.concat(p.err) });
  }

  private fail(why: string): void {
    if (this.dead !== null) return;
    this.dead = why;
    this.ended();
    const p = this.pending;
    this.pending = null;
    if (p) {
      // As a channel that closes under its command: the connection's own loss first, when that is why.
      const lost = this.ctx.lost();
      p.reject(new UserError(`host ${this.ctx.host}: ${lost ? `the connection was lost (${lost})` : why} (step: ${this.ctx.step})`));
    }
  }
}
