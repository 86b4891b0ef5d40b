/**
 * Child processes as promises (through zx), and the docker CLI on top of them. zx is loaded on first
 * use, so the CLI does not pay for it unless the test bed runs a command.
 */
import { constants } from 'node:os';
import type { ProcessPromise } from 'zx';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Called with every complete line of stdout and stderr (progress output). */
  onLine?: (line: string) => void;
  /** Kill the process (SIGKILL) after this long; the result then has code 124. */
  timeoutMs?: number;
}

let zx: Promise<typeof import('zx')> | undefined;
const loadZx = () => (zx ??= import('zx'));

/**
 * Runs a command; resolves with its exit code and output (never rejects on a non-zero exit).
 * zx runs it quiet (prints nothing) and nothrow, every argument quoted by zx. A command that is not
 * on PATH rejects, as spawn does, so tryRun() can say 127.
 */
export async function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const { $, which } = await loadZx();
  const env = opts.env ?? process.env;
  if (!cmd.includes('/') && !(await which(cmd, { path: env['PATH'] ?? '', nothrow: true }))) {
    throw Object.assign(new Error(`spawn ${cmd} ENOENT`), { code: 'ENOENT' });
  }
  let timedOut = false;
  const hasInput = opts.input !== undefined && opts.input.length > 0;
  const p: ProcessPromise = $({
    nothrow: true,
    quiet: true,
    verbose: false,
    env,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
    ...(hasInput ? { input: opts.input } : {}),
  })`exec ${cmd} ${[...args]}`;
  // zx writes `input` and closes stdin; without input, stdin is an empty pipe closed at once.
  if (!hasInput) p.stdin.end();
  const timer =
    opts.timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          void p.kill('SIGKILL').catch(() => undefined);
        }, opts.timeoutMs);
  if (opts.onLine) {
    const onLine = opts.onLine;
    for (const stream of [p.stdout, p.stderr]) {
      let partial = '';
      stream.on('data', (d: Buffer | string) => {
        partial += d.toString();
        let i: number;
        while ((i = partial.indexOf('\n')) >= 0) {
          onLine(partial.slice(0, i).replace(/\r$/, ''));
          partial = partial.slice(i + 1);
        }
      });
    }
  }
  const out = await p;
  if (timer) clearTimeout(timer);
  const code = timedOut ? 124 : (out.exitCode ?? (out.signal ? 128 + (constants.signals[out.signal] ?? 0) : -1));
  return { code, stdout: out.stdout, stderr: out.stderr };
}

/** Like run(), but a command that cannot be started (not installed) gives code 127 instead of rejecting. */
export async function tryRun(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  try {
    return await run(cmd, args, opts);
  } catch (e) {
    return { code: 127, stdout: '', stderr: e instanceof Error ? e.message : String(e) };
  }
}

/** The last lines of a command's output, for error messages. */
export function tail(r: RunResult, lines = 3): string {
  return (r.stderr.trim() || r.stdout.trim()).split('\n').slice(-lines).join(' | ');
}

/** docker ARGS; resolves with trimmed stdout, rejects with the command and the end of stderr on failure. */
export async function docker(args: readonly string[], opts: RunOptions = {}): Promise<string> {
  const r = await run('docker', args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.slice(0, 3).join(' ')} failed (${r.code}): ${tail(r)}`);
  return r.stdout.trim();
}

/** Whether a command is on PATH. */
export async function commandExists(cmd: string): Promise<boolean> {
  return (await tryRun('sh', ['-c', 'command -v "$1" >/dev/null', 'sh', cmd], { env: sbinEnv() })).code === 0;
}

/** The environment with the sbin directories on PATH (dockerd, iptables and debootstrap live there). */
export function sbinEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const path = (process.env['PATH'] ?? '/usr/bin:/bin').split(':');
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!path.includes(d)) path.push(d);
  return { ...process.env, PATH: path.join(':'), ...extra };
}
