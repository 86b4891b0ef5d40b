/**
 * Shared SSH connections, as OpenSSH's ControlPersist keeps them (and Ansible by default): one background
 * process per user, the broker (broker.ts), holds the connections mailops made for MAILOPS_SSH_PERSIST
 * seconds (default 60) after their last use, and the next plan or apply of the same hosts runs its
 * commands over them. It skips the TCP and SSH handshakes and the login, which cost each host more CPU
 * than the whole no-op plan (sshd's re-exec, key exchange, PAM, the journal).
 *
 * - The broker's socket is in a directory of the user's own, mode 0700 ($XDG_RUNTIME_DIR or the temporary
 *   directory); whoever can reach it can run commands on the hosts, as with OpenSSH's control sockets and
 *   ssh-agent's. When the directory is not the user's alone, nothing is shared.
 * - A connection is shared only with a run that asks for the same one: the same address, port, user,
 *   identity (its file's contents too), agent, pinned host key and known_hosts policy. A changed key, a
 *   new pin or another identity makes a new connection, checked and logged in as ever.
 * - The broker makes its connections with the same `connect` and runs commands with the same channel code
 *   as a direct connection, so the messages are the same; its errors come back as the run's own.
 * - When no broker answers, the run connects directly, as always, and starts one for the next run.
 * - A plan or apply tells the broker as it begins (warmBroker, before the CLI loads the rest of its code):
 *   the connections its origin opened last time start their fact scripts, which the run's `open`s take over.
 * - MAILOPS_SSH_PERSIST=0 turns sharing off.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { connect as unixConnect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { UserError } from '../errors.js';
import { expandHome, packageRoot } from '../paths.js';
import { VERSION } from '../version.js';
import type { ConnectOptions, Connection, ExecBufferResult, ExecOptions, ExecResult } from './connection.js';
import { firstWords, textResult } from './exec.js';
import { frame, readFrames } from './frames.js';

/** A direct connection; the SSH client (some 15 ms to load) is loaded only for it. */
const connect = async (o: ConnectOptions): Promise<Connection> => (await import('./ssh2.js')).connect(o);

export const PERSIST_ENV = 'MAILOPS_SSH_PERSIST';
const DEFAULT_PERSIST = 60;

/** Seconds a shared connection stays open after its last use; 0 when sharing is off. */
export function persistSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const v = env[PERSIST_ENV];
  if (v === undefined || v.trim() === '') return DEFAULT_PERSIST;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UserError(`${PERSIST_ENV}=${v}: not a number of seconds (0 turns connection sharing off)`);
  return n;
}

/**
 * The broker's socket, in a directory only this user can enter (made when missing); null when there is no
 * such place (another owner, wider permissions, a symlink), and then nothing is shared.
 */
export function brokerSocket(env: NodeJS.ProcessEnv = process.env): string | null {
  const uid = process.getuid?.();
  if (uid === undefined) return null;
  const dir = join(env['XDG_RUNTIME_DIR'] || tmpdir(), `mailops-${uid}`);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return null;
  }
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) return null;
  } catch {
    return null;
  }
  return join(dir, `ssh-${VERSION}-${buildId()}.sock`);
}

/**
 * This installation and build of mailops: a broker of another one (another protocol, other code) is never
 * asked, nor one started before the last build.
 */
function buildId(): string {
  let built = '';
  try {
    built = String(statSync(join(packageRoot, 'dist', 'cli.js')).mtimeMs);
  } catch {
    // not built (run from the sources)
  }
  return createHash('sha256').update(`${packageRoot}\0${built}`).digest('hex').slice(0, 12);
}

/** What the broker is asked. */
export interface BrokerRequest {
  op: 'open' | 'exec';
  /** The connection, with absolute paths. */
  opts: ConnectOptions;
  /** The ssh-agent's socket, when the connection logs in through the agent. */
  agent?: string;
  command?: string;
  root?: boolean;
  timeout?: number;
  step?: string;
  /** Bytes of stdin that follow in an `i` frame. */
  stdin?: number;
  /** The command may have run ahead for this run (ExecOptions.prefetch). */
  prefetch?: boolean;
  /** The run's session: what its `open` started ahead is kept for it under this name. */
  session?: string;
  /** The run (RunIdentity): its `open`s take over what its `warm` started, and tell the broker its origin's connections. */
  run?: string;
  origin?: string;
}

/** A run has begun: what its origin's last run opened may start its fact scripts (broker.ts, warm). */
export interface WarmRequest {
  op: 'warm';
  run: string;
  origin: string;
}

/**
 * This run, for the broker: `run` names it, `origin` is what decides which hosts it reaches (the working
 * directory and the arguments, but for the command's name and the flags that only shape the output), so
 * that `plan site.yaml` and a later `apply --yes site.yaml` are one origin.
 */
export interface RunIdentity {
  run: string;
  origin: string;
}

/** Flags of plan and apply that change only what is printed or asked, never which hosts are reached. */
const OUTPUT_FLAGS = new Set(['--json', '--yes', '--timings', '--steps', '--detailed-exitcode', '--no-color', '--color']);

/** The origin of a run with these arguments, in this working directory (RunIdentity). */
export function originOf(argv: string[], cwd: string = process.cwd()): string {
  const args = argv.slice(2);
  const command = args.findIndex((a) => !a.startsWith('-'));
  return JSON.stringify([cwd, args.filter((a, i) => i !== command && !OUTPUT_FLAGS.has(a))]);
}

let identity: RunIdentity | undefined;

/** This process's run. */
export function runIdentity(): RunIdentity {
  identity ??= { run: `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`, origin: originOf(process.argv) };
  return identity;
}

/**
 * As plan or apply begins, before it loads its code and reads the playbook: tells the broker, when one
 * answers, so that the hosts this origin reached last time start on their facts while it loads (their
 * `open`s take the answers over). Asks nothing back and never fails the run, which does not wait for it
 * (the promise settles once the broker has the request, or none answered).
 */
export function warmBroker(argv: string[] = process.argv, run: RunIdentity = runIdentity()): Promise<void> {
  const command = argv.slice(2).find((a) => !a.startsWith('-'));
  if (command !== 'plan' && command !== 'apply') return Promise.resolve();
  let place: string | null;
  try {
    place = persistSeconds() > 0 ? brokerSocket() : null;
  } catch {
    return Promise.resolve(); // a bad MAILOPS_SSH_PERSIST: the command says so
  }
  if (!place) return Promise.resolve();
  const req: WarmRequest = { op: 'warm', ...run };
  return new Promise((done) => {
    const sock = unixConnect(place);
    sock.on('error', () => done());
    sock.on('close', () => done());
    sock.on('connect', () => sock.end(frame('q', JSON.stringify(req))));
    sock.on('data', () => sock.destroy());
    sock.unref();
  });
}

export interface BrokerError {
  message: string;
  user: boolean;
}

let sessions = 0;

/** The broker did not answer (none runs, or it went away): the run connects directly. */
class NoBroker extends Error {}

/** The connection options as the broker must see them: paths absolute, as this process would read them. */
export function absoluteOptions(o: ConnectOptions): ConnectOptions {
  const out: ConnectOptions = { ...o, knownHostsFile: expandHome(o.knownHostsFile) };
  if (o.identity !== undefined) out.identity = expandHome(o.identity);
  return out;
}

/**
 * Connect through the broker when one answers; otherwise directly (and start a broker for the next run).
 * Errors are those of a direct connection (the broker makes it with the same code).
 */
export async function connectShared(input: ConnectOptions, run: RunIdentity = runIdentity()): Promise<Connection> {
  const persist = persistSeconds();
  const place = persist > 0 ? brokerSocket() : null;
  if (!place) return connect(input);
  const opts = absoluteOptions(input);
  const agent = opts.identity === undefined ? process.env['SSH_AUTH_SOCK'] : undefined;
  const base: BrokerRequest = { op: 'open', opts, ...(agent ? { agent } : {}), session: `${process.pid}-${++sessions}`, ...run };
  try {
    // The broker's connect has its own time limits (TCP, then handshake and login): this one only
    // catches a broker that hangs.
    await ask(place, base, {}, (2 * (opts.timeout ?? 15) + 10) * 1000);
  } catch (e) {
    if (!(e instanceof NoBroker)) throw e;
    startBroker(persist);
    return connect(input);
  }
  return new SharedConnection(place, base);
}

let started = false;

/** The environment the broker gets: where it runs and finds files (its socket, the user's ssh files). */
const BROKER_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'TMPDIR', 'XDG_RUNTIME_DIR', 'LANG', 'LC_ALL'];

/** Start the broker in the background (once a run), detached from this run; it serves the next runs. */
function startBroker(persist: number): void {
  const cli = join(packageRoot, 'dist', 'cli.js');
  if (started || !existsSync(cli)) return;
  started = true;
  try {
    // Only what it needs of this run's environment: never the playbook's secrets (its { env } references).
    const env: NodeJS.ProcessEnv = { [PERSIST_ENV]: String(persist) };
    for (const k of BROKER_ENV) if (process.env[k] !== undefined) env[k] = process.env[k];
    const child = spawn(process.execPath, [cli, 'ssh-broker'], { detached: true, stdio: 'ignore', cwd: '/', env });
    child.on('error', () => undefined);
    child.unref();
  } catch {
    // no broker this time: the runs connect directly
  }
}

interface Streams {
  onStdout?: (d: Buffer) => void;
  onStderr?: (d: Buffer) => void;
  stdin?: Buffer;
}

/**
 * One request over its own socket: resolves with the result frame's JSON. Rejects with NoBroker when no
 * broker answers at all, with the broker's error (UserError when the user's) when it reports one.
 */
function ask(place: string, req: BrokerRequest, io: Streams, limitMs?: number): Promise<unknown> {
  return new Promise((resolvePromise, reject) => {
    let answered = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const sock: Socket = unixConnect(place);
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      f();
    };
    if (limitMs !== undefined) timer = setTimeout(() => settle(() => reject(new NoBroker('the broker did not answer'))), limitMs);
    sock.on('error', (e: NodeJS.ErrnoException) => {
      settle(() => reject(answered ? new BrokerGone(e.message) : new NoBroker(e.message)));
    });
    sock.on('close', () => settle(() => reject(answered ? new BrokerGone('closed') : new NoBroker('closed'))));
    sock.on('connect', () => {
      const msg: BrokerRequest = io.stdin?.length ? { ...req, stdin: io.stdin.length } : req;
      sock.write(frame('q', JSON.stringify(msg)));
      if (io.stdin?.length) sock.write(frame('i', io.stdin));
    });
    readFrames(sock, (type, payload) => {
      answered = true;
      if (type === 'o') io.onStdout?.(payload);
      else if (type === 'e') io.onStderr?.(payload);
      else if (type === 'r') settle(() => resolvePromise(JSON.parse(payload.toString('utf8'))));
      else if (type === 'x') {
        const err = JSON.parse(payload.toString('utf8')) as BrokerError;
        settle(() => reject(err.user ? new UserError(err.message) : new Error(err.message)));
      }
    });
  });
}

/** The broker went away in the middle of a command. */
class BrokerGone extends Error {}

/** A connection held by the broker: every command is one request to it. */
class SharedConnection implements Connection {
  roundTrips = 0;

  constructor(
    private readonly place: string,
    private readonly base: BrokerRequest,
  ) {}

  get host(): string {
    return this.base.opts.name;
  }

  async exec(command: string, eo: ExecOptions = {}): Promise<ExecResult> {
    return textResult(await this.execBuffer(command, eo));
  }

  async execBuffer(command: string, eo: ExecOptions = {}): Promise<ExecBufferResult> {
    this.roundTrips++;
    const step = eo.step ?? firstWords(command);
    const out: Buffer[] = [];
    const errs: Buffer[] = [];
    const outText = new StringDecoder('utf8');
    const errText = new StringDecoder('utf8');
    const req: BrokerRequest = { ...this.base, op: 'exec', command, step };
    if (eo.root !== undefined) req.root = eo.root;
    if (eo.timeout !== undefined) req.timeout = eo.timeout;
    if (eo.prefetch) req.prefetch = true;
    const io: Streams = {
      onStdout: (d) => {
        out.push(d);
        if (eo.onStdout) eo.onStdout(outText.write(d));
      },
      onStderr: (d) => {
        errs.push(d);
        if (eo.onStderr) eo.onStderr(errText.write(d));
      },
    };
    if (eo.stdin !== undefined) io.stdin = typeof eo.stdin === 'string' ? Buffer.from(eo.stdin, 'utf8') : eo.stdin;
    let result: { code: number; signal?: string };
    try {
      result = (await ask(this.place, req, io)) as { code: number; signal?: string };
    } catch (e) {
      if (e instanceof NoBroker || e instanceof BrokerGone) {
        throw new UserError(`host ${this.host}: the connection was lost (the shared SSH connection's broker stopped: ${e.message}) (step: ${step})`);
      }
      throw e;
    }
    const tail = [outText.end(), errText.end()];
    if (tail[0] && eo.onStdout) eo.onStdout(tail[0]);
    if (tail[1] && eo.onStderr) eo.onStderr(tail[1]);
    const r: ExecBufferResult = { code: result.code, stdout: Buffer.concat(out), stderr: Buffer.concat(errs) };
    if (result.signal) r.signal = result.signal;
    return r;
  }

  async close(): Promise<void> {
    // The broker keeps the connection for the next run.
  }
}
