/** How mailops logs in: the playbook's identity file, else the ssh-agent at SSH_AUTH_SOCK. Public keys only. */
import { readFileSync, statSync } from 'node:fs';
import ssh2 from 'ssh2';
import { UserError } from '../errors.js';
import { expandHome } from '../paths.js';
import type { ConnectOptions } from './connection.js';

const { OpenSSHAgent, utils } = ssh2;

export type Auth =
  | { kind: 'identity'; path: string; privateKey: Buffer }
  | { kind: 'agent'; socket: string };

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a parent is not a directory',
};

function identityAuth(name: string, identity: string): Auth {
  const path = expandHome(identity);
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new UserError(`host ${name}: cannot read the SSH identity ${path}: ${READ_ERRORS[code] ? `${READ_ERRORS[code]} (${code})` : code || (e as Error).message}`);
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    if (/encrypted|passphrase/i.test(parsed.message)) {
      throw new UserError(
        `host ${name}: the SSH identity ${path} is protected by a passphrase, which mailops does not ask for: load it into ssh-agent (ssh-add ${path}) and drop ssh.identity from the playbook, so the agent is used`,
      );
    }
    throw new UserError(`host ${name}: the SSH identity ${path} is not a private key mailops can use (${parsed.message})`);
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || !key.isPrivateKey()) {
    throw new UserError(`host ${name}: the SSH identity ${path} is a public key: point ssh.identity at the private key file (without .pub)`);
  }
  return { kind: 'identity', path, privateKey: data };
}

function agentAuth(name: string): Auth {
  const socket = process.env['SSH_AUTH_SOCK'];
  if (!socket) {
    throw new UserError(
      `host ${name}: no SSH identity in the playbook (hosts[].ssh.identity) and no ssh-agent (SSH_AUTH_SOCK is not set): set ssh.identity to a private key file, or start ssh-agent and add your key with ssh-add`,
    );
  }
  let isSocket = false;
  let why = 'not a socket';
  try {
    isSocket = statSync(socket).isSocket();
  } catch (e) {
    why = READ_ERRORS[(e as NodeJS.ErrnoException).code ?? ''] ?? 'unreadable';
  }
  if (!isSocket) {
    throw new UserError(`host ${name}: SSH_AUTH_SOCK=${socket} is not an ssh-agent socket (${why}): start ssh-agent and ssh-add your key, or set ssh.identity in the playbook`);
  }
  return { kind: 'agent', socket };
}

/** The credentials for one host, checked before any connection is made. */
export function authFor(opts: Pick<ConnectOptions, 'name' | 'identity'>): Auth {
  return opts.identity !== undefined ? identityAuth(opts.name, opts.identity) : agentAuth(opts.name);
}

/** The ssh2 connect settings for these credentials. */
export function authConfig(auth: Auth): { privateKey: Buffer } | { agent: string } {
  return auth.kind === 'identity' ? { privateKey: auth.privateKey } : { agent: auth.socket };
}

/** How many keys the agent holds (null when it cannot be asked): explains an authentication failure. */
export function agentKeyCount(socket: string): Promise<number | null> {
  return new Promise((done) => {
    const timer = setTimeout(() => done(null), 3000);
    new OpenSSHAgent(socket).getIdentities((err, keys) => {
      clearTimeout(timer);
      done(err || !keys ? null : keys.length);
    });
  });
}

/** "permission denied (publickey) for user X", with what was tried. */
export async function authFailure(at: string, user: string, auth: Auth, agentError?: string): Promise<string> {
  const base = `${at}: permission denied (publickey) for user ${user}`;
  if (auth.kind === 'identity') return `${base} with identity ${auth.path}`;
  if (agentError) return `${base}: the ssh-agent at ${auth.socket} failed (${agentError})`;
  const n = await agentKeyCount(auth.socket);
  if (n === 0) return `${base}: the ssh-agent at ${auth.socket} holds no keys (add yours with ssh-add, or set ssh.identity)`;
  return `${base} with the ${n === null ? '' : `${n} `}key${n === 1 ? '' : 's'} in ssh-agent`;
}
