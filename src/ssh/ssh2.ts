/** Connection over SSH with ssh2: key file or agent, host keys checked, sudo for non-root users. */
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import ssh2 from 'ssh2';
import type { Client as ClientType, ConnectConfig } from 'ssh2';

const { Client, utils } = ssh2;
import { UserError } from '../errors.js';
import { expandPath } from '../site/secrets.js';
import { shq } from '../facts/shell.js';
import type { ConnectOptions, Connection, ExecOptions, ExecResult } from './connection.js';
import { fingerprint, keyTypeOf, knownHostsLine, lookup, pinnedMatches } from './known-hosts.js';

type Refusal = { message: string } | null;

function checkHostKey(opts: ConnectOptions, blob: Buffer): Refusal {
  const where = `host ${opts.name} (${opts.address}:${opts.port})`;
  const fp = `${fingerprint(blob)} (${keyTypeOf(blob)})`;
  if (opts.hostKey) {
    return pinnedMatches(opts.hostKey, blob) ? null : { message: `${where}: host key ${fp} does not match the host_key pinned in the playbook: refusing to connect (possible man-in-the-middle)` };
  }
  const text = existsSync(opts.knownHostsFile) ? readFileSync(opts.knownHostsFile, 'utf8') : '';
  const v = lookup(text, opts.address, opts.port, blob);
  if (v.status === 'match') return null;
  if (v.status === 'revoked') return { message: `${where}: host key ${fp} is marked @revoked in ${opts.knownHostsFile}:${v.line}: refusing to connect` };
  if (v.status === 'changed') {
    return {
      message: `${where}: HOST KEY CHANGED: it now offers ${fp}, but ${opts.knownHostsFile}:${v.line} holds another key. Refusing to connect (possible man-in-the-middle); if the host was really reinstalled, remove that line.`,
    };
  }
  if (!opts.acceptNew) {
    return { message: `${where}: unknown host key ${fp}: check it on the host (ssh-keygen -lf /etc/ssh/ssh_host_${keyTypeOf(blob).replace(/^ssh-/, '')}_key.pub), then re-run with --accept-new to record it in ${opts.knownHostsFile}` };
  }
  mkdirSync(dirname(opts.knownHostsFile), { recursive: true, mode: 0o700 });
  appendFileSync(opts.knownHostsFile, `${text && !text.endsWith('\n') ? '\n' : ''}${knownHostsLine(opts.address, opts.port, blob)}\n`, { mode: 0o600 });
  return null;
}

function authConfig(opts: ConnectOptions): Pick<ConnectConfig, 'privateKey' | 'agent'> {
  if (opts.identity) {
    const path = expandPath(opts.identity, process.cwd());
    let key: Buffer;
    try {
      key = readFileSync(path);
    } catch (e) {
      throw new UserError(`host ${opts.name}: cannot read the SSH identity ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const parsed = utils.parseKey(key);
    if (parsed instanceof Error) {
      const enc = /encrypted|passphrase/i.test(parsed.message);
      throw new UserError(`host ${opts.name}: ${enc ? `the SSH identity ${path} is protected by a passphrase: load it into ssh-agent (ssh-add) and drop identity from the playbook` : `cannot use the SSH identity ${path}: ${parsed.message}`}`);
    }
    return { privateKey: key };
  }
  const agent = process.env['SSH_AUTH_SOCK'];
  if (!agent) throw new UserError(`host ${opts.name}: no SSH identity in the playbook (hosts[].ssh.identity) and no ssh-agent (SSH_AUTH_SOCK is not set)`);
  return { agent };
}

function describeError(opts: ConnectOptions, e: Error & { code?: string; level?: string }): string {
  const where = `host ${opts.name} (${opts.address}:${opts.port})`;
  if (e.level === 'client-authentication') return `${where}: permission denied (publickey) for user ${opts.user}`;
  if (/timed out/i.test(e.message)) return `${where}: timed out waiting for the SSH handshake (is it an SSH server?)`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return `${where}: connection refused (is sshd running and the port right?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `${where}: cannot resolve ${opts.address}`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `${where}: host unreachable`;
    case 'ETIMEDOUT':
      return `${where}: timed out connecting`;
    default:
      return `${where}: ${e.message}`;
  }
}

export async function connect(opts: ConnectOptions): Promise<Connection> {
  const auth = authConfig(opts);
  const client = new Client();
  let refusal: Refusal = null;
  const timeout = (opts.timeout ?? 15) * 1000;
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (f: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      f();
    };
    const timer = setTimeout(() => {
      client.end();
      settle(() => reject(new UserError(`host ${opts.name} (${opts.address}:${opts.port}): timed out after ${timeout / 1000}s connecting`)));
    }, timeout + 1000);
    client.once('ready', () => settle(resolve));
    // ssh2 may report several errors for one failure (e.g. a timeout, then the lost socket): the first
    // one decides, the others must not go unhandled. Errors after the handshake surface through the
    // commands' streams, which close.
    client.on('error', (e: Error & { code?: string; level?: string }) => {
      settle(() => reject(new UserError(refusal ? refusal.message : describeError(opts, e))));
    });
    client.connect({
      host: opts.address,
      port: opts.port,
      username: opts.user,
      ...auth,
      readyTimeout: timeout,
      keepaliveInterval: 15000,
      keepaliveCountMax: 4,
      hostVerifier: (key: Buffer) => {
        refusal = checkHostKey(opts, key);
        return refusal === null;
      },
    });
  });
  return new Ssh2Connection(opts, client);
}

class Ssh2Connection implements Connection {
  roundTrips = 0;
  constructor(
    private readonly opts: ConnectOptions,
    private readonly client: ClientType,
  ) {}

  get host(): string {
    return this.opts.name;
  }

  async exec(command: string, eo: ExecOptions = {}): Promise<ExecResult> {
    this.roundTrips++;
    const sudo = this.opts.user !== 'root' && eo.root !== false;
    const full = sudo ? `sudo -n sh -c ${shq(command)}` : command;
    const r = await new Promise<ExecResult>((resolve, reject) => {
      this.client.exec(full, (err, stream) => {
        if (err) return reject(new UserError(`host ${this.opts.name}: cannot run a command: ${err.message}`));
        const out: Buffer[] = [];
        const errs: Buffer[] = [];
        let code = -1;
        stream.on('data', (d: Buffer) => {
          out.push(d);
          eo.onStdout?.(d.toString('utf8'));
        });
        stream.stderr.on('data', (d: Buffer) => errs.push(d));
        stream.on('exit', (c: number | null, signal?: string) => {
          code = c ?? (signal ? 128 : -1);
        });
        stream.on('close', () => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(errs).toString('utf8') }));
        stream.on('error', reject);
        if (eo.stdin !== undefined) stream.end(eo.stdin);
        else stream.end();
      });
    });
    if (sudo && r.code !== 0 && /sudo: (a password is required|a terminal is required)|is not in the sudoers file|may not run sudo/.test(r.stderr)) {
      throw new UserError(`host ${this.opts.name}: user ${this.opts.user} cannot run sudo without a password (step: ${command.trim().split(/\s+/).slice(0, 3).join(' ')}...)`);
    }
    return r;
  }

  async close(): Promise<void> {
    this.client.end();
  }
}
