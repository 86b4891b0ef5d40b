/**
 * A Docker engine on demand. If `docker info` answers, that engine is used. Otherwise, as root on
 * Debian/Ubuntu, docker.io is installed when dockerd is missing and dockerd is started in the
 * background (log in /var/log/mailops-dockerd.log, pid in /run/mailops-dockerd.pid); a dockerd that
 * is already running (ours from an earlier run, or anyone's) is waited for, never doubled. Anywhere
 * else the error says what to install.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { UserError } from '../errors.js';
import { commandExists, run, sbinEnv, tail, tryRun } from './docker.js';
import type { Log } from './log.js';
import { silent } from './log.js';

export const DOCKERD_LOG = '/var/log/mailops-dockerd.log';
export const DOCKERD_PIDFILE = '/run/mailops-dockerd.pid';
const LOCK_DIR = '/run/mailops-dockerd.lock';
const SOCKET = '/var/run/docker.sock';

export interface EngineOptions {
  log?: Log;
  /** How long to wait for a starting dockerd to answer (default 90 s). */
  timeoutMs?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `docker info` answers, and if not, why. */
export async function engineAnswers(): Promise<{ ok: boolean; detail: string }> {
  const r = await tryRun('docker', ['info', '--format', '{{.ServerVersion}}'], { timeoutMs: 20_000 });
  if (r.code === 0 && r.stdout.trim()) return { ok: true, detail: `Docker ${r.stdout.trim()}` };
  return { ok: false, detail: r.code === 127 ? 'the docker client is not installed' : tail(r, 2) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Pids of running dockerd processes (any owner, however started). */
export function dockerdPids(): number[] {
  const pids: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/comm`, 'utf8').trim() === 'dockerd') pids.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function ourDockerd(): number | undefined {
  try {
    const pid = Number(readFileSync(DOCKERD_PIDFILE, 'utf8').trim());
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function debianLike(): boolean {
  try {
    const osr = readFileSync('/etc/os-release', 'utf8');
    const ids = [/^ID=(.*)$/m.exec(osr)?.[1], /^ID_LIKE=(.*)$/m.exec(osr)?.[1]].join(' ').replace(/"/g, '');
    return /\b(debian|ubuntu)\b/.test(ids);
  } catch {
    return existsSync('/etc/debian_version');
  }
}

const HOW_TO_INSTALL =
  'install and start a Docker engine, then try again: on Debian/Ubuntu as root `apt-get install docker.io iptables` ' +
  '(mailops starts dockerd itself when run as root), elsewhere Docker Engine or Docker Desktop; ' +
  'a remote engine is used through DOCKER_HOST';

/** One process at a time decides whether to install or start dockerd (two test runs may start together). */
async function withLock<T>(log: Log, fn: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      mkdirSync(LOCK_DIR);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let age = 0;
      try {
        age = Date.now() - statSync(LOCK_DIR).mtimeMs;
      } catch {
        continue;
      }
      // An installer holds the lock for a few minutes at most; older means its holder died.
      if (age > 10 * 60_000) {
        rmdirSync(LOCK_DIR);
        continue;
      }
      if (i % 20 === 0) log('another process is setting up the Docker engine; waiting...');
      await sleep(500);
      if ((await engineAnswers()).ok) return fn();
    }
  }
  try {
    return await fn();
  } finally {
    try {
      rmdirSync(LOCK_DIR);
    } catch {
      // already gone
    }
  }
}

async function aptInstall(log: Log, pkgs: string[]): Promise<void> {
  const env = sbinEnv({ DEBIAN_FRONTEND: 'noninteractive' });
  log(`installing ${pkgs.join(' ')} (apt-get update, apt-get install)...`);
  const u = await run('apt-get', ['update', '-q'], { env });
  if (u.code !== 0) log(`apt-get update failed (going on with the lists there are): ${tail(u, 1)}`);
  const r = await run('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { env });
  if (r.code !== 0) throw new UserError(`could not install ${pkgs.join(' ')} with apt-get: ${tail(r)}`);
}

/**
 * dockerd programs NAT and port forwarding with iptables. Debian's iptables speaks nf_tables by
 * default; where the kernel has only the legacy tables, switch the alternatives to iptables-legacy.
 * Returns the extra dockerd arguments (none, unless no flavour works at all).
 */
async function prepareFirewall(log: Log): Promise<string[]> {
  const env = sbinEnv();
  if (!(await commandExists('iptables')) && !existsSync('/usr/sbin/iptables')) await aptInstall(log, ['iptables']);
  if ((await tryRun('iptables', ['-t', 'nat', '-S'], { env })).code === 0) return [];
  if ((await tryRun('iptables-legacy', ['-t', 'nat', '-S'], { env })).code === 0) {
    log('iptables (nf_tables) does not work with this kernel; switching to iptables-legacy');
    for (const [name, path] of [['iptables', '/usr/sbin/iptables-legacy'], ['ip6tables', '/usr/sbin/ip6tables-legacy']] as const) {
      await tryRun('update-alternatives', ['--set', name, path], { env });
    }
    return [];
  }
  log('warning: neither iptables flavour works here; dockerd starts with --iptables=false: ports published on 127.0.0.1 still work, containers will not reach the network');
  return ['--iptables=false', '--ip-masq=false'];
}

function logTail(): string {
  try {
    return readFileSync(DOCKERD_LOG, 'utf8').trim().split('\n').slice(-5).join('\n');
  } catch {
    return '';
  }
}

async function startDockerd(log: Log): Promise<number> {
  const extra = await prepareFirewall(log);
  log(`starting dockerd (log: ${DOCKERD_LOG})...`);
  const out = openSync(DOCKERD_LOG, 'a');
  try {
    const child = spawn('dockerd', extra, { detached: true, stdio: ['ignore', out, out], env: sbinEnv() });
    child.on('error', () => undefined);
    child.unref();
    if (child.pid === undefined) throw new UserError(`dockerd could not be started; ${HOW_TO_INSTALL}`);
    writeFileSync(DOCKERD_PIDFILE, `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

async function waitForEngine(pid: number | undefined, timeoutMs: number): Promise<void> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if ((await engineAnswers()).ok) return;
    if (pid !== undefined && !alive(pid)) throw new UserError(`dockerd exited while starting; the end of ${DOCKERD_LOG}:\n${logTail()}`);
    await sleep(500);
  }
  throw new UserError(`dockerd did not answer within ${Math.round(timeoutMs / 1000)} s; see ${DOCKERD_LOG}:\n${logTail()}`);
}

/** Makes sure `docker info` answers, installing and starting the engine where that is possible. */
export async function ensureDockerEngine(opts: EngineOptions | Log = {}): Promise<void> {
  const o: EngineOptions = typeof opts === 'function' ? { log: opts } : opts;
  const log = o.log ?? silent;
  const timeoutMs = o.timeoutMs ?? 90_000;
  const first = await engineAnswers();
  if (first.ok) return;
  if (process.env['DOCKER_HOST']) throw new UserError(`the Docker engine at DOCKER_HOST=${process.env['DOCKER_HOST']} does not answer (${first.detail})`);
  if (process.platform !== 'linux' || process.getuid?.() !== 0 || !debianLike()) {
    throw new UserError(`no Docker engine answers (${first.detail}): ${HOW_TO_INSTALL}`);
  }
  await withLock(log, async () => {
    if ((await engineAnswers()).ok) return;
    // A dockerd that is running already (ours from an earlier run, a service, anyone's): wait for it.
    const running = ourDockerd() ?? dockerdPids()[0];
    if (running !== undefined) {
      log(`dockerd (pid ${running}) is running but does not answer yet; waiting...`);
      await waitForEngine(running, timeoutMs);
      return;
    }
    const haveDaemon = (await commandExists('dockerd')) || existsSync('/usr/sbin/dockerd');
    if (!haveDaemon || !(await commandExists('docker'))) {
      // docker.io has both the daemon and the client.
      await aptInstall(log, ['docker.io', 'iptables']);
      // Where systemd runs, the package starts its own service.
      if ((await engineAnswers()).ok) return;
    }
    if (existsSync(SOCKET)) log(`${SOCKET} is left over from an engine that is gone; dockerd replaces it`);
    const pid = await startDockerd(log);
    await waitForEngine(pid, timeoutMs);
    log(`dockerd is up (pid ${pid})`);
  });
}
