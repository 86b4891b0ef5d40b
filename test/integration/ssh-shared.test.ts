/**
 * Shared SSH connections (src/ssh/shared.ts, broker.ts) against a real OpenSSH server on 127.0.0.1: the
 * broker runs in this process on a socket of a private runtime directory; runs connect through it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import type { ConnectOptions } from '../../src/ssh/connection.js';
import { serveBroker } from '../../src/ssh/broker.js';
import { brokerSocket, connectShared, persistSeconds, originOf, warmBroker } from '../../src/ssh/shared.js';
import { connect } from '../../src/ssh/ssh2.js';
import { VERSION } from '../../src/version.js';
import { keygen, localSshdUnavailable, rootOptions, startLocalSshd } from './support/local-sshd.js';
import type { LocalSshd } from './support/local-sshd.js';

const unavailable = localSshdUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(unavailable !== null)(`shared SSH connections through the broker${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  let sshd: LocalSshd;
  let work: string;
  let base: ConnectOptions;
  let broker: Promise<void> | undefined;
  let stop = new AbortController();
  const saved = { XDG_RUNTIME_DIR: process.env['XDG_RUNTIME_DIR'], MAILOPS_SSH_PERSIST: process.env['MAILOPS_SSH_PERSIST'] };
  /** Logins sshd has accepted so far. */
  const logins = () => (sshd.log().match(/Accepted publickey for /g) ?? []).length;
  /** The UserError message a promise fails with. */
  const refusal = async (p: Promise<unknown>) => {
    const e = await p.then(
      () => new Error('it succeeded'),
      (x: unknown) => x as Error,
    );
    expect(e, e.message).toBeInstanceOf(UserError);
    return e.message;
  };
  /** A broker of its own for a test, on the socket connectShared finds (a fresh runtime directory). */
  const startBroker = (persist = 30) => {
    process.env['XDG_RUNTIME_DIR'] = mkdtempSync(join(work, 'run-'));
    process.env['MAILOPS_SSH_PERSIST'] = String(persist);
    const path = brokerSocket()!;
    stop.abort();
    stop = new AbortController();
    broker = serveBroker({ path, persist, stop: stop.signal });
    return path;
  };
  const waitFor = async (what: () => boolean, ms = 5000) => {
    for (let t = 0; t < ms && !what(); t += 50) await sleep(50);
    return what();
  };

  beforeAll(async () => {
    sshd = await startLocalSshd();
    work = mkdtempSync(join(tmpdir(), 'mailops-shared-test-'));
    base = rootOptions(sshd, work);
  });
  beforeEach(async () => {
    startBroker();
    await waitFor(() => existsSync(brokerSocket()!));
  });
  afterEach(async () => {
    stop.abort();
    await broker;
    process.env['MAILOPS_SSH_PERSIST'] = saved.MAILOPS_SSH_PERSIST ?? '';
    if (saved.MAILOPS_SSH_PERSIST === undefined) delete process.env['MAILOPS_SSH_PERSIST'];
  });
  afterAll(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await sshd?.stop();
  });

  it('runs commands over one login for many runs: output, exit codes, stdin and streaming as a direct connection has them', async () => {
    const before = logins();
    const a = await connectShared(base);
    const r = await a.exec('echo out; echo err >&2; for w in a b; do printf "%s" "$w"; done; exit 3');
    expect(r).toEqual({ code: 3, stdout: 'out\nab', stderr: 'err\n' });
    await a.close();
    // The next run: the same connection, no new login.
    const b = await connectShared(base);
    const data = randomBytes(3 * 1024 * 1024);
    expect((await b.exec('sha256sum', { stdin: data })).stdout.split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
    expect((await b.execBuffer!('cat', { stdin: data })).stdout.equals(data)).toBe(true);
    let out = '';
    let err = '';
    const s = await b.exec('for i in 1 2 3; do echo "ä$i"; sleep 0.1; done; echo é >&2', { onStdout: (x) => (out += x), onStderr: (x) => (err += x) });
    expect([out, err, s.stdout]).toEqual(['ä1\nä2\nä3\n', 'é\n', 'ä1\nä2\nä3\n']);
    expect((await b.exec('kill -TERM $$')).code).toBe(143);
    await expect(b.exec('sleep 30', { timeout: 1, step: 'wait a while' })).rejects.toThrow('host mx1: the command did not finish within 1s and was stopped (step: wait a while)');
    const rs = await Promise.all(Array.from({ length: 14 }, (_, i) => b.exec(`sleep 0.2; echo ${i}`)));
    expect(rs.map((x) => x.stdout.trim())).toEqual(Array.from({ length: 14 }, (_, i) => String(i)));
    expect(b.roundTrips).toBe(19);
    expect(logins() - before).toBe(1);
  });

  it('a connection is shared only with the same one: another identity or pin logs in anew, and refusals are those of a direct connect', async () => {
    await (await connectShared(base)).exec('true');
    const before = logins();
    // Another identity file with the same contents is another connection; so is the same file with other contents.
    const other = keygen(work, `other-${Date.now()}`);
    const denied = await refusal(connectShared({ ...base, identity: other.path }));
    expect(denied).toBe(await refusal(connect({ ...base, identity: other.path })));
    expect(denied).toMatch(/permission denied|publickey/i);
    const wrongPin = keygen(work, `pin-${Date.now()}`).publicLine;
    const refused = await refusal(connectShared({ ...base, hostKey: wrongPin }));
    expect(refused).toBe(await refusal(connect({ ...base, hostKey: wrongPin })));
    const copy = join(work, `copy-${Date.now()}`);
    writeFileSync(copy, execFileSync('cat', [sshd.client.path]), { mode: 0o600 });
    await (await connectShared({ ...base, identity: copy })).exec('true');
    expect(logins() - before).toBe(1);
    writeFileSync(copy, execFileSync('cat', [other.path]), { mode: 0o600 });
    await refusal(connectShared({ ...base, identity: copy }));
  });

  it('the fact script runs ahead, from the next run connecting, while that run renders; it gets the answer only for the very same script', async () => {
    const log = join(work, `ahead-${Date.now()}`);
    const facts = `echo facts >> ${log}; date +%s%N`;
    const runs = () => (existsSync(log) ? execFileSync('cat', [log], { encoding: 'utf8' }).split('\n').filter(Boolean) : []);
    const ns = () => BigInt(Date.now()) * 1_000_000n;
    // The first run teaches the broker the script.
    await (await connectShared(base)).exec(facts, { prefetch: true });
    expect(runs()).toEqual(['facts']);
    // The next run: the script ran as it connected, not when it asked, and once.
    const opened = ns();
    const second = await connectShared(base);
    await sleep(400);
    const asked = ns();
    const ran = BigInt((await second.exec(facts, { prefetch: true })).stdout.trim());
    expect(ran > opened && ran < asked, `ran at ${ran}, connected at ${opened}, asked at ${asked}`).toBe(true);
    expect(runs()).toEqual(['facts', 'facts']);
    // A run that asks for another script (the playbook changed) gets that one's answer.
    const third = await connectShared(base);
    await sleep(200);
    expect((await third.exec(`echo changed >> ${log}; echo changed`, { prefetch: true })).stdout).toBe('changed\n');
    expect(runs()).toEqual(['facts', 'facts', 'facts', 'changed']);
    // The same script not marked as one that may run ahead runs anew (the one run ahead is not its answer).
    const fourth = await connectShared(base);
    await sleep(200);
    expect((await fourth.exec(`echo changed >> ${log}; echo changed`)).stdout).toBe('changed\n');
    expect(runs()).toEqual(['facts', 'facts', 'facts', 'changed', 'changed', 'changed']);
  });

  it('the fact script run ahead goes through one shell kept on the host, each run in a subshell of its own, as a channel of its own would run it; a shell that ends is made anew', async () => {
    const script = `echo "shell $$"; echo "was \${MAILOPS_SEEN-unset}"; MAILOPS_SEEN=1; export MAILOPS_SEEN; cd /; cat; echo "to stderr" >&2; exit 3`;
    const run = async (s = script) => (await connectShared(base)).exec(s, { prefetch: true });
    const first = await run();
    expect(first.code).toBe(3);
    // The next runs: answered by the kept shell, the same one, with nothing left of the run before.
    await sleep(100);
    const second = await run();
    await sleep(100);
    const third = await run();
    for (const r of [second, third]) {
      expect(r.code).toBe(3);
      expect(r.stdout).toMatch(/^shell \d+\nwas unset\n$/);
      expect(r.stderr).toBe('to stderr\n');
    }
    const shellOf = (r: { stdout: string }) => r.stdout.split('\n')[0];
    expect(shellOf(second)).toBe(shellOf(third));
    expect(shellOf(first)).not.toBe(shellOf(second));
    // A script that ends the shell (here, kills it): that run is answered all the same (asked anew), and the
    // next one through a new shell.
    const killer = `echo "shell $$"; kill -9 $$`;
    await run(killer);
    await sleep(100);
    const killed = await run(killer);
    expect(killed.stdout).toMatch(/^shell \d+\n$/);
    await run();
    await sleep(100);
    const after = await run();
    expect(after.stdout).toMatch(/^shell \d+\nwas unset\n$/);
    expect(shellOf(after)).not.toBe(shellOf(second));
  });

  it('a run that begins warms the connections its origin opened last time: their facts run before it connects, once, and its open takes them over', async () => {
    const log = join(work, `warm-${Date.now()}`);
    const facts = `echo facts >> ${log}; date +%s%N`;
    const runs = () => (existsSync(log) ? execFileSync('cat', [log], { encoding: 'utf8' }).split('\n').filter(Boolean) : []);
    const ns = () => BigInt(Date.now()) * 1_000_000n;
    const argv = (...a: string[]) => ['node', 'mailops', ...a];
    const origin = originOf(argv('plan', 'site.yaml'));
    // The first run of this origin: the broker learns its connection and its fact script.
    await (await connectShared(base, { run: `first-${Date.now()}`, origin })).exec(facts, { prefetch: true });
    expect(runs()).toEqual(['facts']);
    // The next run of the same origin (apply --yes of the same playbook) tells the broker as it begins.
    const next = { run: `next-${Date.now()}`, origin };
    expect(originOf(argv('apply', '--yes', '--json', 'site.yaml'))).toBe(origin);
    const begun = ns();
    await warmBroker(argv('apply', '--yes', 'site.yaml'), next);
    expect(await waitFor(() => runs().length === 2)).toBe(true);
    await sleep(200);
    const opened = ns();
    const conn = await connectShared(base, next);
    const ran = BigInt((await conn.exec(facts, { prefetch: true })).stdout.trim());
    expect(ran > begun && ran < opened, `ran at ${ran}, begun at ${begun}, connected at ${opened}`).toBe(true);
    expect(runs()).toEqual(['facts', 'facts']);
    // Another origin (other hosts: --host) warms nothing; nor does a command that reaches no host.
    const other = { run: `other-${Date.now()}`, origin: originOf(argv('plan', '--host', 'mx2', 'site.yaml')) };
    expect(other.origin).not.toBe(origin);
    await warmBroker(argv('plan', '--host', 'mx2', 'site.yaml'), other);
    await warmBroker(argv('validate', 'site.yaml'), { run: `v-${Date.now()}`, origin });
    await sleep(400);
    expect(runs()).toEqual(['facts', 'facts']);
  });

  it('without a pinned key, an edited known_hosts is read again: a changed key is refused, as by a direct connect', async () => {
    const kh = join(work, `known_hosts-${Date.now()}`);
    const line = (key: string) => `[127.0.0.1]:${sshd.port} ${key.split(' ').slice(0, 2).join(' ')}\n`;
    writeFileSync(kh, line(sshd.hostKey.publicLine));
    const { hostKey: _, ...unpinned } = { ...base, knownHostsFile: kh };
    expect((await (await connectShared(unpinned)).exec('echo known')).stdout).toBe('known\n');
    writeFileSync(kh, line(keygen(work, `changed-${Date.now()}`).publicLine));
    const refused = await refusal(connectShared(unpinned));
    expect(refused).toMatch(/HOST KEY CHANGED/);
    expect(refused).toBe(await refusal(connect(unpinned)));
  });

  it('a connection the host dropped is made again at the next run', async () => {
    const c = await connectShared(base);
    // The sshd process that serves this connection (the command's parent): killed, as a reboot would.
    const session = Number((await c.exec('echo $PPID')).stdout.trim());
    process.kill(session, 'SIGKILL');
    await sleep(300);
    const before = logins();
    const again = await connectShared(base);
    expect((await again.exec('echo back')).stdout).toBe('back\n');
    expect(logins() - before).toBe(1);
  });

  it('a connection that no longer answers (the host gone without closing it) is given up, and the command, never started, runs over a new one', async () => {
    const c = await connectShared(base);
    const session = Number((await c.exec('echo $PPID')).stdout.trim());
    process.kill(session, 'SIGSTOP');
    try {
      const before = logins();
      const again = await connectShared(base);
      expect((await again.exec('echo "$PPID"')).stdout.trim()).not.toBe(String(session));
      expect(logins() - before).toBe(1);
    } finally {
      process.kill(session, 'SIGKILL');
    }
  });

  it('the broker drops its connections and exits after MAILOPS_SSH_PERSIST idle seconds', async () => {
    const path = startBroker(1);
    await waitFor(() => existsSync(path));
    await (await connectShared(base)).exec('true');
    const closed = (sshd.log().match(/Disconnected from user root|Received disconnect/g) ?? []).length;
    let exited = false;
    void broker!.then(() => (exited = true));
    expect(await waitFor(() => exited, 6000)).toBe(true);
    expect(existsSync(path)).toBe(false);
    expect((sshd.log().match(/Disconnected from user root|Received disconnect/g) ?? []).length).toBeGreaterThan(closed);
    // With no broker, a run connects directly, as ever.
    const direct = await connectShared(base);
    expect((await direct.exec('echo direct')).stdout).toBe('direct\n');
    await direct.close();
  });

  it('MAILOPS_SSH_PERSIST=0 connects directly; a bad value is a clear error; a runtime directory others can enter is not used', async () => {
    process.env['MAILOPS_SSH_PERSIST'] = '0';
    const before = logins();
    const d = await connectShared(base);
    await d.exec('true');
    await d.close();
    expect(logins() - before).toBe(1);
    process.env['MAILOPS_SSH_PERSIST'] = 'soon';
    await expect(connectShared(base)).rejects.toThrow('MAILOPS_SSH_PERSIST=soon: not a number of seconds (0 turns connection sharing off)');
    expect(() => persistSeconds({ MAILOPS_SSH_PERSIST: '-1' })).toThrow(UserError);
    const open = mkdtempSync(join(work, 'wide-'));
    const uid = process.getuid!();
    const dir = join(open, `mailops-${uid}`);
    execFileSync('mkdir', ['-m', '0755', dir]);
    expect(brokerSocket({ XDG_RUNTIME_DIR: open })).toBeNull();
    chmodSync(dir, 0o700);
    expect(brokerSocket({ XDG_RUNTIME_DIR: open })).toMatch(new RegExp(`^${dir}/ssh-${VERSION.replaceAll('.', '\\.')}-[0-9a-f]{12}\\.sock$`));
  });

  it('the CLI starts the broker itself: the first plan logs in directly, the next through the broker, the third not at all', async () => {
    stop.abort();
    await broker;
    process.env['XDG_RUNTIME_DIR'] = mkdtempSync(join(work, 'cli-'));
    const file = join(work, 'site.yaml');
    writeFileSync(
      file,
      `site: shared
hosts:
  - name: mx1
    ssh: { address: 127.0.0.1, port: ${sshd.port}, identity: ${sshd.client.path}, host_key: "${sshd.hostKey.publicLine}" }
    hostname: mail.example.org
    ipv4: 192.0.2.1
dns: { nameservers: [ns1.example.net] }
domains:
  - name: example.org
    mailboxes:
      - { name: alice, password_hash: "{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0" }
`,
    );
    const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
    // plan only reads (the facts of this machine, over the local sshd); --json: the plan as data.
    const plan = () => spawnSync(process.execPath, [cli, 'plan', '--json', file], { encoding: 'utf8', env: { ...process.env, MAILOPS_SSH_PERSIST: '10', MAILOPS_SHARED_SECRET: 'do-not-keep-me' } });
    const counts: number[] = [];
    const outputs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const before = logins();
      const r = plan();
      expect(r.stderr).not.toMatch(/internal error/);
      outputs.push(JSON.stringify(JSON.parse(r.stdout).hosts));
      await sleep(300); // sshd's log reaches this process once its event loop runs again
      counts.push(logins() - before);
      // Ten idle seconds: a broker that starts slowly on a busy machine is still there for the next run.
      if (i === 0) expect(await waitFor(() => readdirSync(join(process.env['XDG_RUNTIME_DIR']!, `mailops-${process.getuid!()}`)).some((f) => f.endsWith('.sock')), 15000)).toBe(true);
    }
    expect(counts).toEqual([1, 1, 0]);
    // The broker (found by the runtime directory it was given) keeps none of the run's other variables.
    const runtime = `XDG_RUNTIME_DIR=${process.env['XDG_RUNTIME_DIR']}`;
    const brokers = readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .flatMap((p) => {
        try {
          const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
          const env = readFileSync(`/proc/${p}/environ`, 'utf8').split('\0');
          return cmd.includes('ssh-broker') && env.includes(runtime) ? [env] : [];
        } catch {
          return [];
        }
      });
    expect(brokers).toHaveLength(1);
    expect(brokers[0]).toContain('MAILOPS_SSH_PERSIST=10');
    expect(brokers[0]!.some((v) => v.includes('do-not-keep-me'))).toBe(false);
    expect(new Set(outputs).size).toBe(1);
    // Ten idle seconds later the broker has gone, and its socket with it.
    const dir = join(process.env['XDG_RUNTIME_DIR']!, `mailops-${process.getuid!()}`);
    expect(await waitFor(() => !readdirSync(dir).some((f) => f.endsWith('.sock')), 20000)).toBe(true);
  });
});
