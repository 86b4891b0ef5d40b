/** The ssh2 connection against a real OpenSSH server on 127.0.0.1: exec, host keys, auth, sudo, failures. */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { ConnectOptions, Connection } from '../../src/ssh/connection.js';
import { fingerprint } from '../../src/ssh/known-hosts.js';
import { connect } from '../../src/ssh/ssh2.js';
import { addUser, freePort, keygen, localSshdUnavailable, rootOptions, SSHD, startAgent, startLocalSshd } from './support/local-sshd.js';
import type { LocalSshd } from './support/local-sshd.js';

const unavailable = localSshdUnavailable();

describe.skipIf(unavailable !== null)(`ssh2 connection against a local sshd${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let sshd: LocalSshd;
  let work: string;
  let base: ConnectOptions;
  const open: Connection[] = [];
  const servers: Server[] = [];
  const savedAgent = process.env['SSH_AUTH_SOCK'];

  /** Connect and remember the connection for clean-up. */
  async function conn(o: Partial<ConnectOptions> = {}): Promise<Connection> {
    const c = await connect({ ...base, ...o });
    open.push(c);
    return c;
  }
  /** The UserError message a connect attempt fails with. */
  async function refusal(o: Partial<ConnectOptions>): Promise<string> {
    const e = await connect({ ...base, ...o }).then(
      (c) => {
        open.push(c);
        return new Error('connected');
      },
      (x: unknown) => x as Error,
    );
    expect(e, e.message).toBeInstanceOf(UserError);
    return e.message;
  }
  const kh = (name: string) => join(work, name);

  beforeAll(async () => {
    sshd = await startLocalSshd();
    work = mkdtempSync(join(tmpdir(), 'mailops-ssh-test-'));
    base = rootOptions(sshd, work);
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((c) => c.close()));
    if (savedAgent === undefined) delete process.env['SSH_AUTH_SOCK'];
    else process.env['SSH_AUTH_SOCK'] = savedAgent;
  });
  afterAll(async () => {
    servers.forEach((s) => s.close());
    await sshd?.stop();
  });

  describe('exec', () => {
    it('returns stdout, stderr and the exit code, runs sh -c, and counts round trips', async () => {
      const c = await conn();
      const r = await c.exec('echo out; echo err >&2; for w in a b; do printf "%s" "$w"; done; exit 3');
      expect(r).toEqual({ code: 3, stdout: 'out\nab', stderr: 'err\n' });
      expect((await c.exec('readlink /proc/$$/exe')).stdout).toMatch(/\/(dash|sh|bash)\n$/);
      expect((await c.exec("printf '%s' 'it'\"'\"'s quoted'")).stdout).toBe("it's quoted");
      expect(c.roundTrips).toBe(3);
      expect(c.host).toBe('mx1');
    });

    it('a 5 MB stdin round-trips intact, as text and as bytes', async () => {
      const c = await conn();
      const data = randomBytes(5 * 1024 * 1024);
      const r = await c.exec('sha256sum', { stdin: data });
      expect(r.code).toBe(0);
      expect(r.stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
      const back = await c.execBuffer!('cat', { stdin: data });
      expect(back.stdout.equals(data)).toBe(true);
      expect((await c.exec('true', { stdin: data })).code).toBe(0); // a command that never reads it
    });

    it('streams stdout and stderr, UTF-8 intact', async () => {
      const c = await conn();
      let out = '';
      let err = '';
      const r = await c.exec('for i in 1 2 3; do echo "ä$i"; sleep 0.1; done; echo é >&2', { onStdout: (s) => (out += s), onStderr: (s) => (err += s) });
      expect(out).toBe('ä1\nä2\nä3\n');
      expect(err).toBe('é\n');
      expect(r.stdout).toBe(out);
    });

    it('a command killed by a signal exits 128+n; a per-command timeout stops it and the connection stays usable', async () => {
      const c = await conn();
      const k = await c.exec('kill -TERM $$');
      expect(k.code).toBe(143);
      await expect(c.exec('sleep 30', { timeout: 1, step: 'wait a while' })).rejects.toThrow('host mx1: the command did not finish within 1s and was stopped (step: wait a while)');
      expect((await c.exec('echo still here')).stdout).toBe('still here\n');
    });

    it('runs more commands side by side than sshd has sessions', async () => {
      const c = await conn();
      const rs = await Promise.all(Array.from({ length: 14 }, (_, i) => c.exec(`sleep 0.2; echo ${i}`)));
      expect(rs.map((r) => r.stdout.trim())).toEqual(Array.from({ length: 14 }, (_, i) => String(i)));
    });

    it('a connection closed under a running command fails it clearly', async () => {
      const c = await connect(base);
      const running = c.exec('sleep 10', { step: 'long step' });
      await new Promise((r) => setTimeout(r, 300));
      await c.close();
      await expect(running).rejects.toThrow(/^host mx1: the connection was lost \(closed\) \(step: long step\)$/);
    });
  });

  describe('host keys', () => {
    const hostFp = () => execFileSync('ssh-keygen', ['-lf', `${sshd.hostKey.path}.pub`], { encoding: 'utf8' }).split(' ')[1]!;

    it('an unknown key is refused with its fingerprint and the --accept-new hint; nothing is written', async () => {
      const file = kh('unknown/known_hosts');
      const m = await refusal({ hostKey: undefined, knownHostsFile: file });
      expect(m).toBe(`host mx1 (127.0.0.1:${sshd.port}): unknown host key ${hostFp()} (ssh-ed25519); check it, then re-run with --accept-new to record it in ${file}`);
      expect(existsSync(file)).toBe(false);
    });

    it('--accept-new records it (creating the directory 0700), and the next connect matches', async () => {
      const file = kh('fresh/.ssh/known_hosts');
      const c = await conn({ hostKey: undefined, knownHostsFile: file, acceptNew: true });
      expect((await c.exec('echo hi')).stdout).toBe('hi\n');
      const line = `[127.0.0.1]:${sshd.port} ${sshd.hostKey.publicLine.split(' ').slice(0, 2).join(' ')}\n`;
      expect(readFileSync(file, 'utf8')).toBe(line);
      expect(statSync(kh('fresh/.ssh')).mode & 0o777).toBe(0o700);
      await conn({ hostKey: undefined, knownHostsFile: file });
      await conn({ hostKey: undefined, knownHostsFile: file, acceptNew: true });
      expect(readFileSync(file, 'utf8')).toBe(line); // recorded once
      expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', file], { encoding: 'utf8' })).toContain('found: line 1');
    });

    it('a hashed entry (ssh-keygen -H) matches', async () => {
      const file = kh('hashed_known_hosts');
      writeFileSync(file, `[127.0.0.1]:${sshd.port} ${sshd.hostKey.publicLine}\n`);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', file], { stdio: 'ignore' });
      expect(readFileSync(file, 'utf8')).toMatch(/^\|1\|/);
      await conn({ hostKey: undefined, knownHostsFile: file });
    });

    it('a changed key is refused even with --accept-new, naming the line; the file is left alone', async () => {
      const file = kh('changed_known_hosts');
      const other = keygen(work, 'other_host_key');
      const text = `# old entry\n[127.0.0.1]:${sshd.port} ${other.publicLine}\n`;
      writeFileSync(file, text);
      const m = await refusal({ hostKey: undefined, knownHostsFile: file, acceptNew: true });
      expect(m).toContain(`host mx1 (127.0.0.1:${sshd.port}): WARNING: HOST KEY CHANGED: the host now offers ${hostFp()} (ssh-ed25519), but ${file}:2 holds another ssh-ed25519 key for it (${fingerprint(other.blob)})`);
      expect(m).toContain('remove line 2');
      expect(m).not.toContain('\n');
      expect(readFileSync(file, 'utf8')).toBe(text);
    });

    it('a host known by another key type that it does not offer is refused as CHANGED, naming the line and both fingerprints; --accept-new records nothing', async () => {
      const file = kh('rsa_known_hosts');
      const rsa = keygen(work, 'rsa_host_key', 'rsa');
      const text = `# the host's RSA key\n[127.0.0.1]:${sshd.port} ${rsa.publicLine}\n`;
      writeFileSync(file, text);
      const want =
        `host mx1 (127.0.0.1:${sshd.port}): WARNING: HOST KEY CHANGED: the host now offers ${hostFp()} (ssh-ed25519), but ${file}:2 holds its ssh-rsa key (${fingerprint(rsa.blob)}), which it no longer offers. ` +
        `Refusing to connect, with or without --accept-new (possible man-in-the-middle); if the host's keys were really replaced, check the new key on it and remove line 2 of ${file}.`;
      expect(await refusal({ hostKey: undefined, knownHostsFile: file, acceptNew: true })).toBe(want);
      expect(await refusal({ hostKey: undefined, knownHostsFile: file })).toBe(want);
      expect(readFileSync(file, 'utf8')).toBe(text);
    });

    it('a host holding both types is asked for the recorded one: known by its RSA key, it connects, and --accept-new adds nothing', async () => {
      // A second sshd of the same set-up, with an RSA host key besides the Ed25519 one (Ed25519 listed first).
      const rsa = keygen(work, 'second_rsa_host_key', 'rsa');
      const port = await freePort();
      const config = join(work, 'sshd_config_two_keys');
      const cfg = readFileSync(join(sshd.dir, 'sshd_config'), 'utf8').replace(/^Port \d+$/m, `Port ${port}`).replace(/^(HostKey .*)$/m, `$1\nHostKey ${rsa.path}`);
      expect(cfg).toContain(`\nHostKey ${rsa.path}\n`);
      writeFileSync(config, cfg);
      const second = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      try {
        let log = '';
        second.stderr!.on('data', (d: Buffer) => (log += d.toString()));
        for (let i = 0; i < 200 && !/Server listening on/.test(log); i++) await new Promise((r) => setTimeout(r, 50));
        expect(log).toMatch(/Server listening on/);
        const file = kh('two_keys_known_hosts');
        const text = `[127.0.0.1]:${port} ${rsa.publicLine}\n`;
        writeFileSync(file, text);
        const c = await conn({ hostKey: undefined, knownHostsFile: file, acceptNew: true, port });
        expect((await c.exec('echo hi')).stdout).toBe('hi\n');
        expect(readFileSync(file, 'utf8')).toBe(text);
        await c.close();
        // Without the RSA line the same server is simply unknown, and offers its Ed25519 key.
        const none = kh('two_keys_unknown');
        expect(await refusal({ hostKey: undefined, knownHostsFile: none, port })).toContain(`unknown host key ${hostFp()} (ssh-ed25519);`);
      } finally {
        if (second.exitCode === null) {
          const gone = new Promise((r) => second.once('exit', r));
          second.kill('SIGTERM');
          await gone;
        }
      }
    });

    it('a revoked key is refused', async () => {
      const file = kh('revoked_known_hosts');
      writeFileSync(file, `@revoked * ${sshd.hostKey.publicLine}\n[127.0.0.1]:${sshd.port} ${sshd.hostKey.publicLine}\n`);
      expect(await refusal({ hostKey: undefined, knownHostsFile: file, acceptNew: true })).toBe(
        `host mx1 (127.0.0.1:${sshd.port}): host key ${hostFp()} (ssh-ed25519) is marked @revoked in ${file}:1: refusing to connect`,
      );
    });

    it('a pinned host_key: match connects (known_hosts unread), mismatch is refused', async () => {
      await conn({ knownHostsFile: kh('never/known_hosts') });
      expect(existsSync(kh('never'))).toBe(false);
      const other = keygen(work, 'pinned_other');
      const m = await refusal({ hostKey: other.publicLine, acceptNew: true });
      expect(m).toBe(
        `host mx1 (127.0.0.1:${sshd.port}): host key ${hostFp()} (ssh-ed25519) does not match the host_key pinned in the playbook, ${fingerprint(other.blob)} (ssh-ed25519): refusing to connect (possible man-in-the-middle)`,
      );
      expect(await refusal({ hostKey: 'ssh-ed25519 garbage' })).toMatch(/^host mx1: ssh.host_key is not a public key line/);
    });
  });

  describe('authentication', () => {
    it('a wrong identity: permission denied (publickey) for the user', async () => {
      const wrong = keygen(work, 'wrong_id');
      expect(await refusal({ identity: wrong.path })).toBe(`host mx1 (127.0.0.1:${sshd.port}): permission denied (publickey) for user root with identity ${wrong.path}`);
    });

    it('an identity with a passphrase says to use ssh-agent', async () => {
      const locked = keygen(work, 'locked_id', 'ed25519', 'a passphrase');
      expect(await refusal({ identity: locked.path })).toMatch(/^host mx1: the SSH identity .*locked_id is protected by a passphrase, which mailops does not ask for: load it into ssh-agent \(ssh-add /);
    });

    it('the ssh-agent at SSH_AUTH_SOCK, when the playbook names no identity', async () => {
      const { identity: _unused, ...noIdentity } = base;
      void _unused;
      const agent = await startAgent(work, [sshd.client.path]);
      try {
        process.env['SSH_AUTH_SOCK'] = agent.socket;
        const c = await connect(noIdentity);
        open.push(c);
        expect((await c.exec('whoami')).stdout).toBe('root\n');
      } finally {
        await agent.stop();
      }
      const empty = await startAgent(work, []);
      try {
        process.env['SSH_AUTH_SOCK'] = empty.socket;
        const m = await connect(noIdentity).catch((e: Error) => e.message);
        expect(m).toBe(`host mx1 (127.0.0.1:${sshd.port}): permission denied (publickey) for user root: the ssh-agent at ${empty.socket} holds no keys (add yours with ssh-add, or set ssh.identity)`);
      } finally {
        await empty.stop();
      }
      delete process.env['SSH_AUTH_SOCK'];
      await expect(connect(noIdentity)).rejects.toThrow(/^host mx1: no SSH identity in the playbook \(hosts\[\]\.ssh\.identity\) and no ssh-agent \(SSH_AUTH_SOCK is not set\)/);
    });
  });

  describe('a non-root login', () => {
    it('with passwordless sudo: commands run as root, stdin passes through, root: false runs as the user', async () => {
      const remove = addUser(sshd, 'mailops-test', { sudo: true });
      try {
        const c = await conn({ user: 'mailops-test' });
        expect((await c.exec('id -u')).stdout).toBe('0\n');
        expect((await c.exec('id -un', { root: false })).stdout).toBe('mailops-test\n');
        const data = randomBytes(256 * 1024);
        expect((await c.exec('sha256sum', { stdin: data })).stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
        expect((await c.exec("echo 'single '\"'\"' quote'; exit 4")).code).toBe(4);
      } finally {
        remove();
      }
    });

    it('without it: refused clearly, naming the step', async () => {
      const remove = addUser(sshd, 'mailops-nosudo', { sudo: false });
      try {
        const c = await conn({ user: 'mailops-nosudo' });
        await expect(c.exec('cat /etc/shadow >/dev/null')).rejects.toThrow(
          'host mx1: user mailops-nosudo cannot run sudo without a password (step: cat /etc/shadow >/dev/null): give it passwordless sudo (a sudoers line "mailops-nosudo ALL=(ALL) NOPASSWD: ALL") or connect as root',
        );
        expect((await c.exec('id -un', { root: false })).stdout).toBe('mailops-nosudo\n');
      } finally {
        remove();
      }
    });
  });

  describe('unreachable', () => {
    async function listen(onConn: (s: Socket) => void): Promise<number> {
      const srv = createServer(onConn);
      servers.push(srv);
      await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
      return (srv.address() as AddressInfo).port;
    }

    it('connection refused on a closed port', async () => {
      const port = await freePort();
      expect(await refusal({ port })).toBe(`host mx1 (127.0.0.1:${port}): connection refused (is sshd running, and listening on port ${port}?)`);
    });

    it('a server that accepts and never answers times out', async () => {
      const port = await listen(() => undefined);
      const t0 = Date.now();
      expect(await refusal({ port, timeout: 1 })).toBe(`host mx1 (127.0.0.1:${port}): timed out after 1s waiting for the SSH handshake (connected, but is an SSH server listening on port ${port}?)`);
      expect(Date.now() - t0).toBeLessThan(5000);
    });

    it('a server that hangs up at once', async () => {
      const port = await listen((s) => s.end());
      expect(await refusal({ port })).toBe(`host mx1 (127.0.0.1:${port}): the host closed the connection during the SSH handshake`);
    });

    it('a server that does not speak SSH', async () => {
      const port = await listen((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
      expect(await refusal({ port, timeout: 2 })).toBe(`host mx1 (127.0.0.1:${port}): the server on port ${port} does not speak SSH (it said "HTTP/1.1 400 Bad Request")`);
    });

    it('a name that does not resolve', async () => {
      expect(await refusal({ address: 'no-such-host.invalid' })).toMatch(/^host mx1 \(no-such-host\.invalid:\d+\): cannot resolve no-such-host\.invalid \(DNS lookup failed/);
    });
  });
});
