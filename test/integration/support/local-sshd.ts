/**
 * A real OpenSSH server on 127.0.0.1 for tests, without containers: its own host key, config and
 * authorized keys in a temporary directory. Needs root (sshd switches to the login user) and
 * /usr/sbin/sshd (package openssh-server). Also: an ssh-agent, and throwaway local users with or
 * without passwordless sudo.
 */
import type { ConnectOptions } from '../../../src/ssh/connection.js';
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';

/** Why a local sshd cannot run here, or null when it can. */
export function localSshdUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync(SSHD)) return `${SSHD} is missing (apt-get install openssh-server)`;
  return null;
}

export interface KeyPair {
  /** Private key file. */
  path: string;
  /** "ssh-ed25519 AAAA... comment". */
  publicLine: string;
  blob: Buffer;
  type: string;
}

/** A fresh key pair (no passphrase unless given). */
export function keygen(dir: string, name: string, type = 'ed25519', passphrase = ''): KeyPair {
  const path = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', passphrase, '-C', `mailops-test-${name}`, '-f', path]);
  const publicLine = readFileSync(`${path}.pub`, 'utf8').trim();
  const [t, b64] = publicLine.split(' ');
  return { path, publicLine, blob: Buffer.from(b64!, 'base64'), type: t! };
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface LocalSshd {
  port: number;
  dir: string;
  /** The server's host key (pin it, or expect its fingerprint). */
  hostKey: KeyPair;
  /** A client key authorized for root and for every user added with addUser. */
  client: KeyPair;
  /** Authorize a public key line for a login user. */
  authorize(user: string, publicLine: string): void;
  /** sshd's log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

export async function startLocalSshd(): Promise<LocalSshd> {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-sshd-'));
  chmodSync(dir, 0o755);
  const hostKey = keygen(dir, 'ssh_host_ed25519_key');
  const client = keygen(dir, 'client_ed25519');
  const keysDir = join(dir, 'authorized');
  mkdirSync(keysDir, { mode: 0o755 });
  const authorize = (user: string, line: string) => {
    const f = join(keysDir, user);
    const old = existsSync(f) ? readFileSync(f, 'utf8') : '';
    writeFileSync(f, `${old}${line}\n`, { mode: 0o644 });
  };
  authorize('root', client.publicLine);
  const port = await freePort();
  const config = join(dir, 'sshd_config');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKey.path}`,
      `AuthorizedKeysFile ${keysDir}/%u`,
      'StrictModes no',
      'PermitRootLogin prohibit-password',
      'PubkeyAuthentication yes',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'PidFile none',
      'LogLevel VERBOSE',
      'MaxStartups 50',
      '',
    ].join('\n'),
  );
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  let log = '';
  const proc: ChildProcess = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sshd did not start:\n${log}`)), 10_000);
    const poll = setInterval(() => {
      if (/Server listening on/.test(log)) {
        clearInterval(poll);
        clearTimeout(timer);
        resolve();
      }
    }, 50);
    proc.once('exit', (code) => {
      clearInterval(poll);
      clearTimeout(timer);
      reject(new Error(`sshd exited with ${code}:\n${log}`));
    });
  });
  return {
    port,
    dir,
    hostKey,
    client,
    authorize,
    log: () => log,
    stop: async () => {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface Agent {
  socket: string;
  stop(): Promise<void>;
}

/** An ssh-agent of our own (foreground, so we can stop it by its pid) holding the given keys. */
export async function startAgent(dir: string, keys: string[]): Promise<Agent> {
  const socket = join(dir, `agent-${process.pid}-${Date.now()}.sock`);
  const proc = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  if (!existsSync(socket)) throw new Error('ssh-agent did not start');
  for (const k of keys) execFileSync('ssh-add', ['-q', k], { env: { ...process.env, SSH_AUTH_SOCK: socket }, stdio: 'ignore' });
  return {
    socket,
    stop: async () => {
      if (proc.exitCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await gone;
      }
      rmSync(socket, { force: true });
    },
  };
}

const SUDOERS_DIR = '/etc/sudoers.d';

/**
 * A throwaway local user who can log in with a public key (the password field is `*`: no password
 * login, but not a locked account), optionally with passwordless sudo. Returns its removal.
 */
export function addUser(sshd: LocalSshd, name: string, o: { sudo: boolean }): () => void {
  removeUser(name);
  execFileSync('useradd', ['-m', '-s', '/bin/sh', '-p', '*', name]);
  sshd.authorize(name, sshd.client.publicLine);
  const dropIn = join(SUDOERS_DIR, name.replace(/[^a-z0-9-]/g, '_'));
  if (o.sudo) {
    mkdirSync(SUDOERS_DIR, { recursive: true, mode: 0o755 });
    writeFileSync(dropIn, `${name} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
    execFileSync('visudo', ['-cf', dropIn], { stdio: 'ignore' });
  }
  return () => {
    rmSync(dropIn, { force: true });
    removeUser(name);
  };
}

function removeUser(name: string): void {
  try {
    execFileSync('userdel', ['-r', name], { stdio: 'ignore' });
  } catch {
    // not there (or no home to remove)
  }
}

/** Connection options for root on this sshd, its host key pinned (known_hosts unread). */
export function rootOptions(sshd: LocalSshd, work: string): ConnectOptions {
  return {
    name: 'mx1',
    address: '127.0.0.1',
    port: sshd.port,
    user: 'root',
    identity: sshd.client.path,
    hostKey: sshd.hostKey.publicLine,
    knownHostsFile: join(work, 'unused_known_hosts'),
    acceptNew: false,
    timeout: 5,
  };
}
