/** Connection over SSH with ssh2: key file or agent, host keys checked, sudo for a non-root login. */
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import ssh2 from 'ssh2';
import type { Client as ClientType } from 'ssh2';
import { UserError } from '../errors.js';
import { expandHome } from '../paths.js';
import { authConfig, authFailure, authFor } from './auth.js';
import type { Auth } from './auth.js';
import type { ConnectOptions, Connection, ExecBufferResult, ExecOptions, ExecResult } from './connection.js';
import { firstWords, runChannel, sudoMessage, sudoProblem, textResult, wrapCommand } from './exec.js';
import { KeptShell } from './kept-shell.js';
import { checkHostKey, checkPinnedSyntax, hostKeyAlgorithms, recordHostKey, where } from './host-key.js';
import type { HostKeyCheck } from './host-key.js';
import { keyTypeOf } from './known-hosts.js';

const { Client } = ssh2;

/** sshd allows 10 sessions per connection (MaxSessions): stay below it when commands run side by side. */
const MAX_CHANNELS = 8;

type NetError = Error & { code?: string; level?: string };

/** The one line for a failed TCP connection. */
export function connectErrorMessage(at: string, address: string, port: number, code: string | undefined, timeoutS: number, detail = ''): string {
  switch (code) {
    case 'ECONNREFUSED':
      return `${at}: connection refused (is sshd running, and listening on port ${port}?)`;
    case 'ENOTFOUND':
    case 'EAI_NONAME':
    case 'EAI_NODATA':
      return `${at}: cannot resolve ${address} (DNS lookup failed: no such name)`;
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `${at}: cannot resolve ${address} (DNS lookup failed: no answer from the resolver)`;
    case 'EHOSTUNREACH':
    case 'EHOSTDOWN':
      return `${at}: host unreachable (no route to ${address})`;
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return `${at}: network unreachable (no route to ${address})`;
    case 'ETIMEDOUT':
      return `${at}: timed out after ${timeoutS}s connecting (host down, or port ${port} filtered by a firewall?)`;
    case 'ECONNRESET':
    case 'EPIPE':
      return `${at}: the connection was reset by the host`;
    default:
      return `${at}: cannot connect: ${[code, detail].filter(Boolean).join(' ')}`;
  }
}

function openSocket(opts: ConnectOptions, timeoutS: number): Promise<Socket> {
  const at = where(opts);
  return new Promise((resolve, reject) => {
    // No Nagle: every SSH exchange is small packets each waiting for the other side's answer, and with
    // Nagle each exchange can stall for the peer's delayed ACK (40 ms on Linux).
    const sock = tcpConnect({ host: opts.address, port: opts.port, noDelay: true });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new UserError(connectErrorMessage(at, opts.address, opts.port, 'ETIMEDOUT', timeoutS)));
    }, timeoutS * 1000);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolve(sock);
    });
    sock.once('error', (e: NetError) => {
      clearTimeout(timer);
      sock.destroy();
      reject(new UserError(connectErrorMessage(at, opts.address, opts.port, e.code, timeoutS, e.message)));
    });
  });
}

/** Connect, check the host key, log in. Every failure the user can cause is a one-line UserError. */
export async function connect(input: ConnectOptions): Promise<SshConnection> {
  const opts: ConnectOptions = { ...input, knownHostsFile: expandHome(input.knownHostsFile) };
  checkPinnedSyntax(opts);
  const auth = authFor(opts);
  const at = where(opts);
  const timeoutS = opts.timeout ?? 15;
  const algorithms = hostKeyAlgorithms(opts);
  const sock = await openSocket(opts, timeoutS);
  const client = new Client();
  let check: HostKeyCheck | null = null;
  let handshaken = false;
  let agentError: string | undefined;
  let greeting = '';
  let presented = '';

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (message: string | Promise<string>) => {
      if (settled) return;
      settled = true;
      client.end();
      sock.destroy();
      void Promise.resolve(message).then((m) => reject(new UserError(m)));
    };
    client.once('ready', () => {
      if (settled) return;
      settled = true;
      resolve();
    });
    client.once('handshake', () => {
      handshaken = true;
      // Only now has the server proved it holds the key: record it (--accept-new).
      if (check?.record) {
        try {
          recordHostKey(opts, check.record);
        } catch (e) {
          fail((e as Error).message);
        }
      }
    });
    // ssh2 may report several errors for one failure: the first decides, the others must not go unhandled.
    client.on('error', (e: NetError) => {
      if (check?.refusal) return fail(check.refusal);
      if (e.level === 'agent') {
        agentError = e.message; // ssh2 goes on with the next method; it matters only if login fails
        return;
      }
      fail(describeError(at, opts, auth, e, { timeoutS, handshaken, agentError, greeting }));
    });
    client.once('close', () => fail(check?.refusal ?? `${at}: the host closed the connection during the SSH ${handshaken ? 'login' : 'handshake'}`));
    client.connect({
      sock,
      username: opts.user,
      ...authConfig(auth),
      readyTimeout: timeoutS * 1000,
      keepaliveInterval: (opts.keepalive ?? 15) * 1000,
      keepaliveCountMax: 4,
      algorithms: { serverHostKey: algorithms as never },
      hostVerifier: (key: Buffer) => {
        presented = key.toString('base64');
        check = checkHostKey(opts, keyTypeOf(key), key);
        return check.refusal === null;
      },
    });
    // What the server said first: tells a non-SSH service from a server that hung up.
    sock.once('data', (d: Buffer) => (greeting = d.subarray(0, 200).toString('latin1')));
  });
  return new Ssh2Connection(opts, client, sock, presented);
}

function describeError(at: string, opts: ConnectOptions, auth: Auth, e: NetError, s: { timeoutS: number; handshaken: boolean; agentError: string | undefined; greeting: string }): string | Promise<string> {
  if (e.level === 'client-authentication') return authFailure(at, opts.user, auth, s.agentError);
  if (e.level === 'client-timeout') {
    return s.handshaken
      ? `${at}: timed out after ${s.timeoutS}s logging in as ${opts.user}`
      : `${at}: timed out after ${s.timeoutS}s waiting for the SSH handshake (connected, but is an SSH server listening on port ${opts.port}?)`;
  }
  if (/Connection lost before handshake/.test(e.message)) {
    const said = s.greeting.split(/\r?\n/).find((l) => l.trim())?.trim();
    if (said && !said.startsWith('SSH-')) return `${at}: the server on port ${opts.port} does not speak SSH (it said ${JSON.stringify(said.slice(0, 60))})`;
    return `${at}: the host closed the connection during the SSH handshake`;
  }
  if (e.level === 'protocol' && /identification|header/i.test(e.message)) return `${at}: the server on port ${opts.port} does not speak SSH (${e.message})`;
  if (e.level === 'handshake') return `${at}: SSH handshake failed: ${e.message}`;
  if (e.code) return connectErrorMessage(at, opts.address, opts.port, e.code, s.timeoutS, e.message);
  return `${at}: ${e.message}`;
}

/** A connection made here: it also says whether it is still up. */
export interface SshConnection extends Connection {
  readonly lost: string | null;
  /** The host key the host proved it holds at the handshake (base64 of its wire form). */
  readonly hostKey: string;
  execBuffer(command: string, opts?: ExecOptions): Promise<ExecBufferResult>;
  /**
   * Runs a command through the shell kept open on the host (kept-shell.ts), made at the first call: one
   * at a time; while it runs one, or when it cannot be kept, as execBuffer runs it. As root, as execBuffer
   * runs commands by default.
   */
  execKept(command: string, opts?: Pick<ExecOptions, 'step' | 'openTimeout' | 'onStdoutBytes'>): Promise<ExecBufferResult>;
}

class Ssh2Connection implements SshConnection {
  roundTrips = 0;
  private lostReason: string | null = null;
  private closed = false;
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** The shell kept open on the host (it holds one of the MAX_CHANNELS while it lives). */
  private kept: Promise<KeptShell> | null = null;

  constructor(
    private readonly opts: ConnectOptions,
    private readonly client: ClientType,
    private readonly sock: Socket,
    /** The host key the host proved it holds at the handshake (base64 of its wire form). */
    readonly hostKey: string,
  ) {
    client.on('error', (e: NetError) => {
      this.lostReason ??= e.level === 'client-timeout' ? `no answer to keepalives: ${e.message}` : e.message;
    });
    client.on('close', () => {
      this.lostReason ??= this.closed ? 'closed' : 'closed by the host';
    });
  }

  get host(): string {
    return this.opts.name;
  }

  /** Why the connection is gone, or null while it is up. */
  get lost(): string | null {
    return this.lostReason;
  }

  async exec(command: string, eo: ExecOptions = {}): Promise<ExecResult> {
    return textResult(await this.execBuffer(command, eo));
  }

  async execBuffer(command: string, eo: ExecOptions = {}): Promise<ExecBufferResult> {
    this.roundTrips++;
    const sudo = this.opts.user !== 'root' && eo.root !== false;
    const step = eo.step ?? firstWords(command);
    await this.slot();
    let r: ExecBufferResult;
    try {
      r = await runChannel(this.client, wrapCommand(command, sudo), eo, {
        host: this.opts.name,
        step,
        lost: () => this.lostReason,
        ...(eo.openTimeout !== undefined ? { openTimeout: eo.openTimeout } : {}),
        ...(eo.signal ? { signal: eo.signal } : {}),
      });
    } finally {
      this.release();
    }
    const problem = sudo ? sudoProblem(r.code, r.stderr.toString('utf8')) : null;
    if (problem) throw new UserError(sudoMessage(this.opts.name, this.opts.user, problem, step));
    return r;
  }

  async execKept(command: string, eo: Pick<ExecOptions, 'step' | 'openTimeout' | 'onStdoutBytes'> = {}): Promise<ExecBufferResult> {
    const step = eo.step ?? firstWords(command);
    const sudo = this.opts.user !== 'root';
    if (!this.kept) {
      const made: Promise<KeptShell> = (async () => {
        await this.slot();
        // Its slot is given back once, as it ends (or could not start).
        const ended = () => {
          this.release();
          if (this.kept === made) this.kept = null;
        };
        try {
          return await KeptShell.open(this.client, wrapCommand('exec sh', sudo), { host: this.opts.name, step, lost: () => this.lostReason, ...(eo.openTimeout !== undefined ? { openTimeout: eo.openTimeout } : {}) }, ended);
        } catch (e) {
          ended();
          throw e;
        }
      })();
      this.kept = made;
    }
    const shell = await this.kept;
    if (!shell.idle) return this.execBuffer(command, eo);
    this.roundTrips++;
    // sudo ran once, as the shell started: a shell it refused has ended, and so has this command.
    return shell.run(command, eo);
  }

  private async slot(): Promise<void> {
    if (this.active < MAX_CHANNELS) {
      this.active++;
      return;
    }
    await new Promise<void>((go) => this.waiting.push(go));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.lostReason ??= 'closed';
    if (this.sock.destroyed) return;
    await new Promise<void>((done) => {
      const timer = setTimeout(() => {
        this.sock.destroy();
        done();
      }, 2000);
      this.sock.once('close', () => {
        clearTimeout(timer);
        done();
      });
      this.client.end();
    });
  }
}
