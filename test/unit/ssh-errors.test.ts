/** SSH failures the user causes read as one clear line (real sockets on loopback, no server needed). */
import { createServer } from 'node:net';
import type { AddressInfo, Server } from 'node:net';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/ssh/ssh2.js';
import { UserError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-ssh-'));
const identity = join(dir, 'id');
execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', identity]);
const base = { name: 'mx1', address: '127.0.0.1', user: 'root', identity, knownHostsFile: join(dir, 'known_hosts'), acceptNew: false };

async function listen(onConn: (s: import('node:net').Socket) => void): Promise<Server> {
  const srv = createServer(onConn);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return srv;
}

describe('ssh errors', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('connection refused', async () => {
    const srv = await listen(() => undefined);
    const port = (srv.address() as AddressInfo).port;
    srv.close();
    await expect(connect({ ...base, port })).rejects.toThrow(/host mx1 \(127\.0\.0\.1:\d+\): connection refused/);
  });

  it('a server that never answers times out', async () => {
    const srv = await listen(() => undefined);
    servers.push(srv);
    const err = await connect({ ...base, port: (srv.address() as AddressInfo).port, timeout: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(String((err as Error).message)).toMatch(/timed out/);
  });

  it('an unreadable identity, and no identity and no agent', async () => {
    await expect(connect({ ...base, port: 22, identity: join(dir, 'missing') })).rejects.toThrow(/cannot read the SSH identity .*missing: no such file \(ENOENT\)/);
    const agent = process.env['SSH_AUTH_SOCK'];
    delete process.env['SSH_AUTH_SOCK'];
    const { identity: _omit, ...noIdentity } = base;
    void _omit;
    await expect(connect({ ...noIdentity, port: 22 })).rejects.toThrow(/no SSH identity in the playbook .* and no ssh-agent/);
    if (agent) process.env['SSH_AUTH_SOCK'] = agent;
  });

  it('a passphrase-protected identity says to use the agent', async () => {
    const locked = join(dir, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret-passphrase', '-f', locked]);
    await expect(connect({ ...base, port: 22, identity: locked })).rejects.toThrow(/protected by a passphrase, which mailops does not ask for: load it into ssh-agent/);
  });
});
