/**
 * `mailops test` as a CI job runs it: the example playbook proven in throwaway containers by the product image
 * with the host's Docker socket (JSON and JUnit
 * reports, nothing skipped, nothing left behind), a broken change caught with --base (the mail from
 * before the change is kept, and the case that breaks says what the server answered), and two replicated
 * mailbox hosts converged by one apply (Postfix and Exim), a playbook unlike the examples, and a commit
 * tested against its parent (a git revision) that switches the MTA, drops an alias and adds a domain.
 */
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/password.js';
import { run } from '../../src/testbed/docker.js';
import { nodeBaseImage } from '../../src/testbed/images.js';
import type { TestReport } from '../../src/testrun/report.js';
import { cli, repo } from './support/env.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-mtest-'));
const example = readFileSync(join(repo, 'playbooks', 'examples', 'sandbox.yaml'), 'utf8');
const env = { MAILOPS_ALICE_PASSWORD: 'alice-Mtest-1', MAILOPS_BOB_PASSWORD: 'bob-Mtest-2' };
const cases = (r: TestReport, suite: string) => r.suites.find((s) => s.name === suite)?.cases ?? [];
/** This run's containers still there (by the name prefix it printed; other runs on the machine are theirs). */
const leftovers = async (stderr: string) => {
  const prefix = /throwaway containers \((mailops-test-[0-9a-z]+)-\*\)/.exec(stderr)?.[1];
  expect(prefix, 'the run names its containers').toBeDefined();
  return (await run('docker', ['ps', '-aq', '--filter', `name=^${prefix}-`])).stdout.trim();
};

/** `mailops test` on a playbook written to the scratch directory: exit 0, every case passed, nothing left behind. */
async function passes(name: string, text: string, options: string[] = []): Promise<TestReport> {
  const site = join(dir, `${name}.yaml`);
  writeFileSync(site, text);
  const r = await cli(['test', site, '--json', ...options], env);
  expect(r.code, r.stderr.slice(-4000)).toBe(0);
  const report = JSON.parse(r.stdout) as TestReport;
  expect(report.suites.flatMap((s) => s.cases).filter((c) => c.status !== 'passed')).toEqual([]);
  expect(await leftovers(r.stderr)).toBe('');
  return report;
}

describe('mailops test', () => {
  it('the example, run by the Dockerfile\'s image with the host\'s Docker socket: applied, verified with nothing skipped, every mailbox, alias, catch-all and sender proven, re-applied with 0 changes; JSON and JUnit; nothing left behind', async () => {
    const base = await nodeBaseImage((l) => process.stderr.write(`[mailops test] ${l}\n`));
    const tag = 'mailops/cli:test';
    const b = await run('docker', ['build', '--build-arg', `BASE=${base}`, '-t', tag, repo], { env: { ...process.env, DOCKER_BUILDKIT: '0' } });
    expect(b.code, b.stdout.slice(-2000) + b.stderr.slice(-2000)).toBe(0);
    const work = mkdtempSync(join(tmpdir(), 'mailops-mtest-image-'));
    writeFileSync(join(work, 'site.yaml'), example);
    // As the README says: the host's network (the throwaway containers publish on its 127.0.0.1) and socket.
    const r = await run('docker', ['run', '--rm', '--network', 'host', '-v', '/var/run/docker.sock:/var/run/docker.sock', '-v', `${work}:/work`, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), tag, 'test', 'site.yaml', '--json', '--junit', 'report.xml']);
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const report = JSON.parse(r.stdout) as TestReport;
    expect(report.ok).toBe(true);
    expect(report.suites.map((s) => s.name)).toEqual(['setup', 'apply', 'verify', 'checks', 're-apply']);
    const all = report.suites.flatMap((s) => s.cases);
    expect(all.filter((c) => c.status !== 'passed')).toEqual([]);
    const checks = Object.fromEntries(cases(report, 'checks').map((c) => [c.name, c.detail]));
    expect(checks['alias partners@example.test delivers to alice@example.test, someone@partner.example']).toBe('delivered once to alice@example.test, someone@partner.example (at the peer)');
    expect(checks['catch-all of example.test delivers unknown addresses to alice@example.test']).toBe('delivered once to alice@example.test');
    expect(checks['bob@example.test may send as sales@example.test']).toBe('MAIL FROM:<sales@example.test> and RCPT accepted');
    expect(checks['alice@example.test may not send as bob@example.test']).toMatch(/^refused at RCPT: 553 5\.7\.1 <bob@example\.test>: Sender address rejected: not owned by user alice@example\.test$/);
    expect(checks['shop.example.test: an unknown recipient is refused at RCPT']).toMatch(/^550 5\.1\.1 <nobody-[0-9a-z]+@shop\.example\.test>: Recipient address rejected: User unknown in virtual mailbox table$/);
    expect(checks['bob@example.test: quota 1M reported over IMAP']).toBe('GETQUOTAROOT: STORAGE limit 1048576 bytes');
    expect(cases(report, 're-apply')).toMatchObject([{ name: 're-apply makes 0 changes', status: 'passed', detail: '0 changes' }]);
    expect(cases(report, 'verify').length).toBeGreaterThan(40);

    const x = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@' }).parse(readFileSync(join(work, 'report.xml'), 'utf8'));
    expect(x.testsuites).toMatchObject({ '@tests': String(all.length), '@failures': '0', '@skipped': '0' });
    expect(x.testsuites.testsuite.map((s: Record<string, string>) => s['@name'])).toEqual(['setup', 'apply', 'verify', 'checks', 're-apply']);
    expect(r.stderr).toMatch(/^mailops test: PASSED: \d+ passed, 0 failed, 0 skipped in [\d.]+ s$/m);
    expect(await leftovers(r.stderr)).toBe('');
  });

  it('a broken change (--base): the mail from before is kept, and the case it breaks fails with the reply; a hash-only mailbox gets a test password, said in a note; POP3 and antispam turned on by the change work; exit 1', async () => {
    const base = join(dir, 'old.yaml');
    // The base has no POP3 and no antispam (nor Dovecot's POP3 and Sieve packages): the change turns both on,
    // and its apply installs them before it validates (sievec) and starts anything.
    expect(example).toMatch(/^ {2}pop3: true$/m);
    expect(example).not.toMatch(/^ {2}antispam:/m);
    writeFileSync(base, example.replace(/^ {2}pop3: true$/m, '  pop3: false\n  antispam: false'));
    const site = join(dir, 'new.yaml');
    // bob's quota cut below the mail he holds; a new mailbox known only by its hash.
    writeFileSync(
      site,
      example.replace('quota: 1M ', 'quota: 1K ').replace(
        "        send_as: [sales]\n",
        `        send_as: [sales]\n      - name: carol\n        password_hash: "${hashPassword('nobody-knows-it')}"\n`,
      ),
    );
    const r = await cli(['test', site, '--base', base, '--json'], env);
    expect(r.code, r.stderr.slice(-4000)).toBe(1);
    const report = JSON.parse(r.stdout) as TestReport;
    expect(report.ok).toBe(false);
    expect(report.base).toBe(base);
    expect(cases(report, 'the change').filter((c) => c.name.startsWith('no mail lost')).map((c) => [c.name, c.status])).toEqual([
      ['no mail lost: alice@example.test', 'passed'],
      ['no mail lost: bob@example.test', 'passed'],
      ['no mail lost: orders@shop.example.test', 'passed'],
    ]);
    expect(cases(report, 'the change').find((c) => c.name === 'mx1: services restarted only where the plan said')?.status).toBe('passed');
    const failed = report.suites.flatMap((s) => s.cases).filter((c) => c.status === 'failed');
    expect(failed.map((c) => c.name)).toEqual(['bob@example.test: mail from a stranger is delivered', 'alias sales@example.test delivers to alice@example.test, bob@example.test']);
    expect(failed[0]!.detail).toBe('RCPT TO:<bob@example.test> from a stranger on port 25 answered "552 5.2.2 <bob@example.test>: Recipient address rejected: Mailbox is full (over quota)"');
    // Dovecot refused it (over quota): the bounce that came back to the stranger says so, at once.
    expect(failed[1]!.detail).toBe('not delivered to bob@example.test (delivered to alice@example.test): the sender got a bounce, "552 5.2.2 <bob@example.test> Mailbox is full (over quota)"');
    expect(report.notes).toContain('mailbox carol@example.test: only a password_hash is given, so the throwaway copy logs in with a test password of its own');
    expect(cases(report, 'checks').filter((c) => c.name.startsWith('carol@example.test')).map((c) => c.status)).toEqual(['passed', 'passed', 'passed', 'passed', 'passed', 'passed']);
    for (const m of ['alice@example.test', 'bob@example.test', 'carol@example.test']) expect(cases(report, 'checks').find((c) => c.name === `${m}: POP3 login`)?.status).toBe('passed');
    expect(r.stderr).toContain('  FAILED bob@example.test: mail from a stranger is delivered: RCPT TO:<bob@example.test> from a stranger on port 25 answered "552 5.2.2');
    expect(await leftovers(r.stderr)).toBe('');
  });

  for (const mta of ['postfix', 'exim'] as const) it(`two replicated mailbox hosts, ${mta}, Ed25519 DKIM: one apply converges them (each pins the certificate the other made in the same run), and every case passes on both${mta === 'postfix' ? '; made from a one-host site (--base): the mail from before is on both' : ''}`, async () => {
    const twin = (hosts: string[], replication: boolean) => `site: twin
hosts:
${hosts.join('\n')}
stack: { mta: ${mta}${replication ? ', replication: true' : ''} }
dns: { nameservers: [ns1.dns.test] }
domains:
  - name: twin.test
    dkim: { selector: k1, key: ed25519 }
    mailboxes:
      - { name: hana, password: { env: MAILOPS_ALICE_PASSWORD } }
      - { name: ivan, password: { env: MAILOPS_BOB_PASSWORD }, quota: 100M }
    aliases:
      all: [hana, ivan]
`;
    const ra = '  - { name: ra, ssh: { address: 198.51.100.30 }, hostname: mail1.twin.test, ipv4: 198.51.100.30 }';
    const rb = '  - { name: rb, ssh: { address: 198.51.100.31 }, hostname: mail2.twin.test, ipv4: 198.51.100.31 }';
    // Postfix: the second host joins a site that had one (its store gets the first one's mail).
    const base = join(dir, `twin-${mta}-one-host.yaml`);
    if (mta === 'postfix') writeFileSync(base, twin([ra], false));
    const report = await passes(`twin-${mta}`, twin([ra, rb], true), mta === 'postfix' ? ['--base', base] : []);
    if (mta === 'postfix') {
      expect(cases(report, 'the change').map((c) => [c.name, c.detail])).toEqual([
        ['no mail lost: hana@twin.test', expect.stringMatching(/^the message from before the change is still there on ra and rb \(/)],
        ['no mail lost: ivan@twin.test', expect.stringMatching(/^the message from before the change is still there on ra and rb \(/)],
        ['ra: services restarted only where the plan said', expect.stringMatching(/^restarted: dovecot, mailops-firewall; stopped: none; all as planned$/)],
        ['rb: services restarted only where the plan said', 'no service restarted'],
      ]);
    }
    expect(cases(report, 're-apply')).toMatchObject([{ name: 're-apply makes 0 changes', status: 'passed', detail: '0 changes' }]);
    expect(cases(report, 'verify').map((c) => c.name)).toEqual(expect.arrayContaining(['ra: authenticated submission (587)', 'rb: authenticated submission (587)', 'ra: replication ra → rb', 'rb: replication rb → ra']));
    expect(cases(report, 'checks').find((c) => c.name === 'alias all@twin.test delivers to hana@twin.test, ivan@twin.test')?.status).toBe('passed');
  });

  it('a playbook unlike the examples (a host named dns, as the test world\'s own server is, Exim, POP3 only, three domains, one without DKIM, a disabled mailbox, send: false, a send_limit on the only sender of a domain), on Debian 13 (--debian trixie: Dovecot 2.4): every case passes', async () => {
    const report = await passes(
      'riverside',
      `site: riverside
hosts:
  - { name: dns, ssh: { address: 203.0.113.70 }, hostname: post.riverside.test, ipv4: 203.0.113.70 }
stack:
  mta: exim
  imap: false
  pop3: true
  antispam: false
  autoconfig: false
  mta_sts: enforce
  auth_ban: { attempts: 3, within: 5m, ban: 30m }
dns: { nameservers: [ns.registrar.test], tlsrpt: tls@riverside.test }
domains:
  - name: riverside.test
    dkim: { selector: r1, key: rsa-4096 }
    dmarc: { policy: none, rua: dmarc@riverside.test }
    mailboxes:
      - { name: maria, password: { env: MAILOPS_ALICE_PASSWORD }, quota: 500M, send_as: [office] }
      - { name: old.staff, password: { env: MAILOPS_BOB_PASSWORD }, enabled: false }
      - { name: kiosk, password: { env: MAILOPS_BOB_PASSWORD }, send: false }
    aliases: { office: maria, billing: [maria, accounts@bank.test], tls: maria, dmarc: maria, postmaster: maria }
  - name: riverside-shop.test
    mailboxes:
      - { name: sales, password: { env: MAILOPS_BOB_PASSWORD }, send_limit: 2/hour }
    aliases: { postmaster: maria@riverside.test }
    catch_all: sales
  - name: riverside.example.test
    dkim: { selector: x, key: ed25519 }
    aliases: { hello: maria@riverside.test, postmaster: maria@riverside.test }
`,
      ['--debian', 'trixie'],
    );
    expect(cases(report, 'apply').map((c) => c.detail).join('\n')).toContain('Debian GNU/Linux 13 (trixie)');
    const checks = Object.fromEntries(cases(report, 'checks').map((c) => [c.name, c.detail]));
    // verify sent the shop's deliverability message as sales, the only sender there: the probe gets the rest.
    expect(checks['sales@riverside-shop.test: send_limit 2/hour enforced']).toMatch(/^1 accepted \(verify submitted up to 1 as sales@riverside-shop\.test in this run\), then: 450 4\.7\.1 <sales@riverside-shop\.test>: SASL login name rejected: .*Sending limit reached/);
    expect(Object.keys(checks).filter((n) => n.includes('IMAP'))).toEqual([]);
    expect(checks['old.staff@riverside.test (enabled: false): POP3 login refused']).toBeDefined();
    expect(checks['kiosk@riverside.test (send: false): submission refused']).toBeDefined();
    const verify = Object.fromEntries(cases(report, 'verify').map((c) => [c.name, c.detail]));
    expect(verify['dns: deliverability riverside-shop.test → peer.test']).toMatch(/^the peer's verdict: no DKIM \(riverside-shop\.test has no key in the playbook\), spf=pass, dmarc=pass, HELO post\.riverside\.test/);
    expect(verify['dns: deliverability riverside.test → peer.test']).toMatch(/^the peer's verdict: dkim=pass \(rsa-sha256, s=r1\), spf=pass, dmarc=pass/);
  });

  it('a smarthost playbook (Exim, a backup MX, no IMAP and no POP3): the test smarthost stands in with its SPF include; mail leaves through it and the peer judges it by DKIM, SPF and DMARC; delivered mail is found in the store', async () => {
    const report = await passes('harbor', `site: harbor
hosts:
  - { name: store, ssh: { address: 203.0.113.80 }, hostname: mail.harbor.test, ipv4: 203.0.113.80 }
  - { name: backup, ssh: { address: 203.0.113.81 }, hostname: mx2.harbor.test, ipv4: 203.0.113.81, role: backup-mx }
stack:
  mta: exim
  imap: false
  pop3: false
  relay: { host: smtp.sendgrid.test, port: 465, username: apikey, password: { env: MAILOPS_BOB_PASSWORD } }
dns: { nameservers: [ns1.provider.test] }
domains:
  - name: harbor.test
    dkim: { selector: h1 }
    spf: { include: [sendgrid.test] }
    mailboxes:
      - { name: captain, password: { env: MAILOPS_ALICE_PASSWORD }, send_as: [bridge] }
    aliases: { bridge: captain, postmaster: captain }
`);
    expect(report.notes).toEqual(expect.arrayContaining(['domain harbor.test: spf.include sendgrid.test → _spf.relay.test, the include of the stand-in smarthost', "no IMAP and no POP3: the checks find delivered mail in the mailbox host's store (doveadm search)"]));
    expect(cases(report, 'checks').find((c) => c.name === 'captain@harbor.test: mail from a stranger is delivered')?.detail).toBe('delivered once to captain@harbor.test');
    const verify = Object.fromEntries(cases(report, 'verify').map((c) => [c.name, c.detail]));
    expect(verify['store: deliverability harbor.test → peer.test']).toMatch(/^the peer's verdict: dkim=pass \(rsa-sha256, s=h1\), spf=pass, dmarc=pass, HELO smtp\.relay\.test, PTR smtp\.relay\.test \[[0-9.]+\] \(the smarthost\), over TLSv1\.3$/);
    expect(verify['relay smtp.relay.test:465: relay accepts our login']).toMatch(/login as apikey: "235 /);
  });

  it('a commit that switches the MTA to Exim, drops an alias and adds an Ed25519 domain, tested against its parent (--base HEAD, a git revision): no mail lost, Postfix and its helpers stopped as planned, the new domain proven; JUnit', async () => {
    const git = (...a: string[]) => run('git', ['-C', repoDir, '-c', 'user.name=ci', '-c', 'user.email=ci@example.test', ...a]);
    const repoDir = mkdtempSync(join(dir, 'repo-'));
    const site = join(repoDir, 'site.yaml');
    writeFileSync(site, example);
    for (const a of [['init', '-q'], ['add', 'site.yaml'], ['commit', '-qm', 'the site']]) expect((await git(...a)).code).toBe(0);
    expect(example).toMatch(/^ {2}mta: postfix$/m);
    expect(example).toContain('      partners: [alice, someone@partner.example]\n');
    writeFileSync(
      site,
      `${example.replace(/^ {2}mta: postfix$/m, '  mta: exim').replace('      partners: [alice, someone@partner.example]\n', '')}  - name: new.example.test
    dkim: { selector: n1, key: ed25519 }
    mailboxes:
      - { name: nina, password: { env: MAILOPS_BOB_PASSWORD } }
    aliases: { postmaster: nina }
`,
    );
    const junit = join(dir, 'switch.xml');
    const r = await cli(['test', site, '--base', 'HEAD', '--json', '--junit', junit], env);
    expect(r.code, r.stderr.slice(-4000)).toBe(0);
    const report = JSON.parse(r.stdout) as TestReport;
    expect(report.base).toBe('HEAD:site.yaml');
    expect(report.suites.flatMap((s) => s.cases).filter((c) => c.status !== 'passed')).toEqual([]);
    expect(cases(report, 'the change').map((c) => [c.name, c.detail])).toEqual([
      ['no mail lost: alice@example.test', expect.stringMatching(/^the message from before the change is still there/)],
      ['no mail lost: bob@example.test', expect.stringMatching(/^the message from before the change is still there/)],
      ['no mail lost: orders@shop.example.test', expect.stringMatching(/^the message from before the change is still there/)],
      ['mx1: services restarted only where the plan said', 'restarted: dovecot; stopped: postsrsd, opendkim, opendkim-ed25519, postfix; all as planned'],
    ]);
    const checks = Object.fromEntries(cases(report, 'checks').map((c) => [c.name, c.detail]));
    expect(checks['nina@new.example.test: mail from a stranger is delivered']).toBe('delivered once to nina@new.example.test');
    expect(Object.keys(checks).filter((n) => n.includes('partners@'))).toEqual([]);
    const verify = Object.fromEntries(cases(report, 'verify').map((c) => [c.name, c.detail]));
    expect(verify['mx1: deliverability new.example.test → peer.test']).toMatch(/^the peer's verdict: dkim=pass \(ed25519-sha256, s=n1\), dkim=pass \(rsa-sha256, s=n1-rsa\), spf=pass, dmarc=pass/);
    const xml = new XMLParser({ ignoreAttributes: false }).parse(readFileSync(junit, 'utf8')) as { testsuites: { testsuite: Array<{ '@_name': string; '@_failures': string }> } };
    expect(xml.testsuites.testsuite.map((t) => [t['@_name'], t['@_failures']])).toEqual(report.suites.map((s) => [s.name, '0']));
    expect(await leftovers(r.stderr)).toBe('');
  });

  it('Ctrl-C while it runs: the containers, the network and the throwaway copy are removed', async () => {
    const site = join(dir, 'interrupted.yaml');
    writeFileSync(site, example);
    const scratch = () => readdirSync(tmpdir()).filter((n) => n.startsWith('mailops-test-')).sort();
    const before = scratch();
    const r = await cli(['test', site], env, { signalOn: { match: /^ok {6}setup: throwaway containers started/m, signal: 'SIGINT' } });
    expect(r.code).toBe(130);
    expect(r.stderr).toMatch(/^ok {6}setup: throwaway containers started/m);
    expect(scratch()).toEqual(before);
    expect(await leftovers(r.stderr)).toBe('');
    const prefix = /throwaway containers \((mailops-test-[0-9a-z]+)-\*\)/.exec(r.stderr)![1];
    expect((await run('docker', ['network', 'ls', '-q', '--filter', `name=^${prefix}`])).stdout.trim()).toBe('');
  });
});
