/** plan/apply safety on a real host: host keys, drift, checker failures, concurrency, a dropped connection, sudo. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';
import { Wire } from '../../src/verify/wire.js';
import { PASSWORDS, cli, cliPath, hostYaml, writePlaybook } from './support/env.js';

/** What a host planned from the no-op memo says. */
const NOT_AGAIN = 'up to date (it answered as when last found so: not planned again)';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function playbook(cluster: VpsCluster, h: VpsHost, o: { user?: string; pinned?: boolean; extraStack?: string; alias?: string } = {}): string {
  let host = hostYaml(cluster, h, { hostname: 'mail.example.test', ...(o.user ? { user: o.user } : {}) });
  if (o.pinned === false) host = host.replace(/\n\s+host_key: .*$/m, '');
  return `site: it-apply
hosts:
${host}
stack:
  mta: postfix
  pop3: false
${o.extraStack ?? ''}
dns:
  nameservers: [ns1.example.test]
domains:
  - name: example.test
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
${o.alias ?? ''}
`;
}

describe('apply safety', () => {
  let cluster: VpsCluster;
  let vps: VpsHost;
  let file: string;
  const mainCf = async () => (await cluster.exec(vps, 'cat /etc/postfix/main.cf')).stdout;
  const banner = async () => {
    const w = await Wire.open({ host: '127.0.0.1', port: vps.ports[25]!, timeoutMs: 10000 });
    try {
      return (await w.smtpReply()).text;
    } finally {
      w.close();
    }
  };

  beforeAll(async () => {
    cluster = await startVps({ image: inject('stackImage'), count: 1, publish: [22, 25, 143, 465, 587, 993] });
    vps = cluster.hosts[0]!;
    file = writePlaybook(playbook(cluster, vps));
    const r = await cli(['apply', '--yes', file], PASSWORDS);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => cluster?.stop());

  it('refuses an unknown host key with its fingerprint; --accept-new records it; a changed key is always refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-kh-'));
    const kh = join(dir, 'known_hosts');
    const f = writePlaybook(playbook(cluster, vps, { pinned: false }));
    const fp = (await cluster.exec(vps, 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub')).stdout.split(' ')[1]!;
    const unknown = await cli(['plan', '--known-hosts', kh, f], PASSWORDS);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain(`unknown host key ${fp}`);
    expect(unknown.stderr).toContain('--accept-new');
    const accept = await cli(['plan', '--known-hosts', kh, '--accept-new', f], PASSWORDS);
    expect(accept.code, accept.stdout + accept.stderr).toBe(0);
    expect(readFileSync(kh, 'utf8')).toContain(`[127.0.0.1]:${vps.ports[22]} ssh-ed25519 `);
    const known = await cli(['plan', '--known-hosts', kh, f], PASSWORDS);
    expect(known.code, known.stderr).toBe(0);
    writeFileSync(kh, `[127.0.0.1]:${vps.ports[22]} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ\n`);
    const changed = await cli(['plan', '--known-hosts', kh, '--accept-new', f], PASSWORDS);
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/HOST KEY CHANGED/);
  });

  it('host keys made anew on the host while a shared connection is open: the next plan is refused as a direct connect refuses it; the old keys back, it plans again', async () => {
    // Two plans: the broker holds the connection, and has read the host's key files once.
    for (let i = 0; i < 2; i++) expect((await cli(['plan', file], PASSWORDS)).code).toBe(0);
    await cluster.exec(vps, 'mkdir -p /root/keys.bak && cp -a /etc/ssh/ssh_host_* /root/keys.bak/ && rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh');
    try {
      const refused = await cli(['plan', file], PASSWORDS);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/host key|HOST KEY/);
      const direct = await cli(['plan', file], { ...PASSWORDS, MAILOPS_SSH_PERSIST: '0' });
      expect(refused.stderr).toBe(direct.stderr);
    } finally {
      await cluster.exec(vps, 'cp -a /root/keys.bak/ssh_host_* /etc/ssh/ && rm -rf /root/keys.bak && systemctl restart ssh');
    }
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
  });

  it('a manual edit shows in plan as a diff, and apply puts the file back', async () => {
    const good = await mainCf();
    await cluster.exec(vps, "echo '# a manual edit' >> /etc/postfix/main.cf");
    const p = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
    expect(p.code).toBe(2);
    expect(p.stdout).toMatch(/^\s+-# a manual edit$/m);
    const a = await cli(['apply', '--yes', file], PASSWORDS);
    expect(a.code, a.stderr).toBe(0);
    expect(sha(await mainCf())).toBe(sha(good));
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
  });

  it('what the host keeps for the fact script (the unit states, the file snapshot) never hides drift: a service stopped, one failed, a file edited in place with its time put back', async () => {
    // Settled for more than five seconds: the next plans keep and then reuse both.
    await new Promise((r) => setTimeout(r, 6000));
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
    // This machine's no-op memo (src/apply/memo.ts) too: the second plan asked and was not planned again.
    const second = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
    expect(second.code).toBe(0);
    expect(second.stderr).toContain(`${vps.name}: ${NOT_AGAIN}`);
    expect((await cluster.exec(vps, 'ls /var/lib/mailops/facts')).stdout.split('\n')).toEqual(expect.arrayContaining(['snapshot', 'states']));
    await cluster.exec(vps, 'systemctl stop dovecot');
    let p = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
    expect(p.code).toBe(2);
    expect(p.stdout).toContain('service dovecot: start (it is inactive)');
    expect((await cli(['apply', '--yes', file], PASSWORDS)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 3000));
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
    // Killed: failed (dovecot.service has no Restart=).
    await cluster.exec(vps, 'systemctl kill -s KILL dovecot; sleep 1');
    p = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
    expect(p.stdout).toContain('service dovecot: start (it is failed)');
    expect((await cli(['apply', '--yes', file], PASSWORDS)).code).toBe(0);
    await new Promise((r) => setTimeout(r, 6000));
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
    // The same size, inode and modification time (to the nanosecond): only its change time tells. Broken
    // as it is (a line without "="), apply puts it back.
    const good = await mainCf();
    await cluster.exec(vps, "cp -p /etc/postfix/main.cf /root/main.cf.time && printf 'Q' | dd of=/etc/postfix/main.cf bs=1 seek=0 conv=notrunc 2>/dev/null && touch -r /root/main.cf.time /etc/postfix/main.cf");
    const [now, before] = (await cluster.exec(vps, 'stat -c %y /etc/postfix/main.cf /root/main.cf.time')).stdout.split('\n');
    expect(now).toBe(before);
    p = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
    expect(p.code).toBe(2);
    expect(p.stdout).toContain('/etc/postfix/main.cf');
    const fixed = await cli(['apply', '--yes', file], PASSWORDS);
    expect(fixed.code, fixed.stderr + fixed.stdout).toBe(0);
    expect(sha(await mainCf())).toBe(sha(good));
  });

  it('the no-op memo: a host found up to date is not rendered and planned again while it answers the same; another password, playbook or answer, or an entry an hour old, is planned in full', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'mailops-memo-'));
    const env = { ...PASSWORDS, XDG_CACHE_HOME: cache };
    const plan = (e: Record<string, string> = env) => cli(['plan', '--detailed-exitcode', file], e);
    let p = await plan();
    expect(p.code, p.stderr).toBe(0);
    expect(p.stderr).not.toContain(NOT_AGAIN);
    p = await plan();
    expect(p.code).toBe(0);
    expect(p.stderr).toContain(`${vps.name}: ${NOT_AGAIN}`);
    expect(p.stdout).toContain(`${vps.name} (Debian GNU/Linux 12 (bookworm)): up to date, nothing to do\nPlan: 0 changes on 1 host`);
    const a = await cli(['apply', '--yes', file], env);
    expect(a.code).toBe(0);
    expect(a.stderr).toContain(NOT_AGAIN);
    expect(a.stdout).toContain(`${vps.name}: unchanged`);
    // The file holds the script and digests, no password.
    const [memoName] = readdirSync(join(cache, 'mailops', 'plans'));
    const memoPath = join(cache, 'mailops', 'plans', memoName!);
    expect(readFileSync(memoPath, 'utf8')).not.toContain(PASSWORDS['IT_ALICE_PASSWORD']!);
    // Another password: the users file changes (the inputs' key is another).
    p = await plan({ ...env, IT_ALICE_PASSWORD: 'another-Passw0rd-for-alice' });
    expect(p.code).toBe(2);
    expect(p.stderr).not.toContain(NOT_AGAIN);
    expect(p.stdout).toContain('/etc/dovecot/users');
    // Another playbook, in the same file: an alias more.
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, playbook(cluster, vps, { alias: '      sales: alice\n' }));
    try {
      p = await plan();
      expect(p.code).toBe(2);
      expect(p.stderr).not.toContain(NOT_AGAIN);
      expect(p.stdout).toContain('sales@example.test');
    } finally {
      writeFileSync(file, text);
    }
    p = await plan();
    expect(p.code).toBe(0);
    expect(p.stderr).toContain(NOT_AGAIN);
    // Another answer: a file edited on the host.
    await cluster.exec(vps, "echo '# edited by hand' >> /etc/postfix/main.cf");
    p = await plan();
    expect(p.code).toBe(2);
    expect(p.stdout).toMatch(/^\s+-# edited by hand$/m);
    expect((await cli(['apply', '--yes', file], env)).code).toBe(0);
    expect((await plan()).code).toBe(0);
    p = await plan();
    expect(p.stderr).toContain(NOT_AGAIN);
    // An entry an hour old is not used; the plan in full keeps it anew.
    const memo = JSON.parse(readFileSync(memoPath, 'utf8')) as { hosts: Record<string, { until: number }> };
    for (const e of Object.values(memo.hosts)) e.until = Math.floor(Date.now() / 1000) - 1;
    writeFileSync(memoPath, JSON.stringify(memo));
    p = await plan();
    expect(p.code).toBe(0);
    expect(p.stderr).not.toContain(NOT_AGAIN);
    expect((await plan()).stderr).toContain(NOT_AGAIN);
  });

  it('a change that cannot work (certificate files that do not exist) is refused before activation, with a clear message; the old config stays and SMTP answers', async () => {
    const before = (await cluster.exec(vps, 'sha256sum /etc/dovecot/dovecot.conf /etc/postfix/main.cf')).stdout;
    const bad = writePlaybook(playbook(cluster, vps, { extraStack: '  tls: { mode: files, cert: /etc/ssl/missing/cert.pem, key: /etc/ssl/missing/key.pem }' }));
    const r = await cli(['apply', '--yes', bad], PASSWORDS);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/tls: \/etc\/ssl\/missing\/cert\.pem is not a certificate \(PEM\): nothing was activated/);
    expect((await cluster.exec(vps, 'sha256sum /etc/dovecot/dovecot.conf /etc/postfix/main.cf')).stdout).toBe(before);
    expect(await banner()).toMatch(/^220 mail\.example\.test/);
    expect((await cli(['plan', '--detailed-exitcode', file], PASSWORDS)).code).toBe(0);
  });

  it('two applies at once: one applies, the other waits and then applies nothing or refuses clearly', async () => {
    const f = writePlaybook(playbook(cluster, vps, { alias: '      abuse: alice' }));
    const [a, b] = await Promise.all([cli(['apply', '--yes', '--json', f], PASSWORDS), cli(['apply', '--yes', '--json', f], PASSWORDS)]);
    const results = [a, b];
    const applied = results.filter((r) => r.code === 0 && JSON.parse(r.stdout).changes > 0);
    expect(applied.length, results.map((r) => r.stderr).join('\n----\n')).toBe(1);
    const other = results.find((r) => r !== applied[0])!;
    if (other.code !== 0) expect(other.stdout + other.stderr).toMatch(/changed on the host since it was planned|another mailops apply/);
    const again = await cli(['apply', '--yes', '--json', f], PASSWORDS);
    expect(JSON.parse(again.stdout).changes).toBe(0);
    await cli(['apply', '--yes', file], PASSWORDS);
  });

  it('the connection killed in the middle of apply leaves the old or the new config, never a mix; the next apply converges', async () => {
    const old = await mainCf();
    const f = writePlaybook(playbook(cluster, vps, { extraStack: '  message_size_limit: 20M' }));
    // mailops (and with it the SSH connection) is killed the moment the host reports that the activation
    // validates or swaps the files, not after a fixed delay, which may land before the activation starts
    // (or after it ends) and then proves nothing.
    const host = new RegExp(`^${vps.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ((?:validate|swap)\\b.*)$`, 'm');
    const r = await new Promise<{ code: number | null; signal: string | null; step: string | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [cliPath, 'apply', '--yes', f], { env: { ...process.env, NO_COLOR: '1', ...PASSWORDS }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let step: string | null = null;
      const giveUp = setTimeout(() => p.kill('SIGKILL'), 300_000);
      p.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = step === null ? host.exec(stderr) : null;
        if (m) {
          step = m[1]!;
          p.kill('SIGKILL');
        }
      });
      p.on('close', (code, signal) => {
        clearTimeout(giveUp);
        resolve({ code, signal, step, stderr });
      });
    });
    expect(r.step ?? '(mailops ran to its end: no validate or swap step was reported)', `the activation on the host validated or swapped files when the connection dropped; mailops said:\n${r.stderr}`).toMatch(/^(validate|swap)\b/);
    expect(r.signal, 'mailops died of the kill, not of its own accord').toBe('SIGKILL');
    await new Promise((res) => setTimeout(res, 8000));
    const now = await mainCf();
    const isOld = sha(now) === sha(old);
    const isNew = now.includes('message_size_limit = 20971520');
    expect(isOld || isNew).toBe(true);
    // main.cf and the maps of the same run are consistent with each other: the activation is all or nothing.
    const next = await cli(['apply', '--yes', f], PASSWORDS);
    expect(next.code, next.stderr).toBe(0);
    expect((await cli(['plan', '--detailed-exitcode', f], PASSWORDS)).code).toBe(0);
    expect(await banner()).toMatch(/^220 /);
    await cli(['apply', '--yes', file], PASSWORDS);
  });

  it('a non-root user with passwordless sudo works; one without sudo is refused clearly', async () => {
    await cluster.addUser(vps, 'deploy');
    const ok = await cli(['plan', '--detailed-exitcode', writePlaybook(playbook(cluster, vps, { user: 'deploy' }))], PASSWORDS);
    expect(ok.code, ok.stderr).toBe(0);
    await cluster.addUser(vps, 'nosudo', { sudo: false });
    const no = await cli(['plan', writePlaybook(playbook(cluster, vps, { user: 'nosudo' }))], PASSWORDS);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/user nosudo cannot run sudo without a password/);
  });
});
