/**
 * One scenario, every MTA and every Debian release: apply a playbook to a fresh VPS container (Debian 12
 * with Dovecot 2.3, Debian 13 with Dovecot 2.4), then prove over real protocols that mail flows and that
 * what must be refused is refused; change the playbook, re-apply, re-check.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';
import type { World } from '../../src/testbed/world.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import { verifyHost } from '../../src/verify/host.js';
import { Wire } from '../../src/verify/wire.js';
import { PASSWORDS, cli, scenarioPlaybook, startVpsWorld, writePlaybook } from './support/env.js';
import { dialogue, ehloKeywords, eventually, imapFetchAll, message, pop3Count, smtp } from './support/mail.js';
import type { Ep, Turn } from './support/mail.js';

const alice = { user: 'alice@example.test', password: PASSWORDS.IT_ALICE_PASSWORD };
const bob = { user: 'bob@example.test', password: PASSWORDS.IT_BOB_PASSWORD };
const carol = { user: 'carol@other.test', password: PASSWORDS.IT_ALICE_PASSWORD };

/**
 * What clients see, the same from Postfix and Exim: per command, the reply code, or the exact reply as a
 * client shows it (one line: Exim's replies past 75 characters are split over lines, see flat()).
 */
type Want = number | string;
type Script = Array<[cmd: string, want: Want]>;
const ALICE_AUTH = `AUTH PLAIN ${alice.user} ${alice.password}`;
const helo504 = (h: string) => `504 5.5.2 <${h}>: Helo command rejected: need fully-qualified hostname`;
const helo501 = (h: string, why: 'Invalid name' | 'invalid ip address') => `501 5.5.2 <${h}>: Helo command rejected: ${why}`;
/**
 * Port 25, a stranger's HELO name → the RCPT reply. RFC 5321 4.1.4: a fully-qualified host name or an
 * address literal; both MTAs judge the name by Postfix's reject_invalid_helo_hostname and
 * reject_non_fqdn_helo_hostname and refuse at RCPT (the EHLO itself is answered 250).
 */
const HELO_ON_25: Array<[helo: string, rcpt: Want]> = [
  ['[192.168.1.23]', 250],
  ['[IPv6:2001:db8::1]', 250],
  ['mail.sender.example', 250],
  ['my_pc.example.com', 250],
  ['localhost', helo504('localhost')],
  ['localhost.', helo504('localhost.')],
  ['MY_PC', helo504('MY_PC')],
  ['192.168.1.23', helo504('192.168.1.23')],
  ['[999.1.1.1]', helo501('[999.1.1.1]', 'invalid ip address')],
  ['[192.168.1.23', helo501('[192.168.1.23', 'invalid ip address')],
  ['foo..example', helo501('foo..example', 'Invalid name')],
  ['-foo.example', helo501('-foo.example', 'Invalid name')],
];
/** What mail clients behind NAT send on submission: every one is accepted on 587 and 465. */
const MUA_HELOS = ['[192.168.1.23]', 'localhost', 'MY_PC'];
const AUTH_NOT_ENABLED = '503 5.5.1 Error: authentication not enabled';
const STARTTLS_FIRST = '530 5.7.0 Must issue a STARTTLS command first';
const tempfail = (rcpt: string) => `451 4.3.5 <${rcpt}>: Recipient address rejected: Server configuration problem`;
const unknownUser = (rcpt: string) => `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`;
const overQuota = (rcpt: string) => `552 5.2.2 <${rcpt}>: Recipient address rejected: Mailbox is full (over quota)`;

/** Run a script; what the server answered, each reply shaped as its expectation (code or exact text). */
async function play(ep: Ep, port: 25 | 587 | 465, script: Script): Promise<{ seen: Script; turns: Turn[] }> {
  const turns = await dialogue(ep, port, script.map(([c]) => c));
  const seen: Script = script.map(([cmd, want], i) => {
    const t = turns[i + 1];
    return [cmd, t === undefined ? 'no reply (connection closed)' : typeof want === 'number' ? t.code : t.text];
  });
  return { seen, turns };
}

// Dovecot's quota-status service made unreachable (connection refused) and back, inside the host.
const QUOTA_BLOCK = `nft add table inet it_quota_block && nft add chain inet it_quota_block out '{ type filter hook output priority 0; policy accept; }' && nft add rule inet it_quota_block out tcp dport 12340 reject with tcp reset`;
const QUOTA_UNBLOCK = 'nft delete table inet it_quota_block';

const RUNS = [
  ['postfix', 'bookworm'],
  ['exim', 'bookworm'],
  ['postfix', 'trixie'],
  ['exim', 'trixie'],
] as const;

for (const [mta, release] of RUNS) {
  describe(`scenario on ${mta}${release === 'bookworm' ? '' : `, Debian ${release}`}`, () => {
    let world: World;
    let cluster: VpsCluster;
    let vps: VpsHost;
    let file: string;
    let ep: Ep;
    const apply = (...extra: string[]) => cli(['apply', '--yes', '--json', ...extra, file], PASSWORDS);
    const json = (s: string) => JSON.parse(s) as { changes: number; hosts: Array<{ ok: boolean; changes: number; error?: string; plan?: Array<{ kind: string; action: string; unit?: string }> }> };

    beforeAll(async () => {
      // Strangers on port 25 are this test process, a sender with FCrDNS and SPF in the world's DNS.
      world = await startVpsWorld({ vps: inject(release === 'bookworm' ? 'vpsImage' : 'vpsTrixieImage'), dns: inject('dnsImage') }, [{ name: 'vps1', hostname: 'mail.example.test' }]);
      cluster = world.vps;
      vps = cluster.hosts[0]!;
      file = writePlaybook(scenarioPlaybook(cluster, vps, mta));
      ep = { host: '127.0.0.1', port: (p) => vps.ports[p]! };
    });
    afterAll(async () => world?.stop());

    it('a fresh host converges: apply succeeds, every service is active and listening', async () => {
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      const out = json(r.stdout);
      expect(out.hosts[0]!.ok).toBe(true);
      expect(out.changes).toBeGreaterThan(10);
      const st = await cluster.exec(vps, `systemctl is-active ${mta === 'postfix' ? 'postfix opendkim' : 'exim4'} dovecot`);
      expect(st.stdout.trim().split('\n')).toEqual(mta === 'postfix' ? ['active', 'active', 'active'] : ['active', 'active']);
    });

    it('a second apply changes nothing and restarts nothing; plan agrees', async () => {
      const before = await cluster.exec(vps, 'systemctl show -p ActiveEnterTimestampMonotonic dovecot');
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      expect(json(r.stdout).changes).toBe(0);
      const p = await cli(['plan', '--detailed-exitcode', file], PASSWORDS);
      expect(p.code, p.stdout + p.stderr).toBe(0);
      const after = await cluster.exec(vps, 'systemctl show -p ActiveEnterTimestampMonotonic dovecot');
      expect(after.stdout).toBe(before.stdout);
    });

    it('the certificate covers the host name and every name the zone points at the host, lives 397 days, and is made again near its end', async () => {
      const names = ['mail.example.test', ...['example.test', 'other.test'].flatMap((d) => ['imap', 'pop', 'smtp', 'autoconfig', 'autodiscover', 'mta-sts'].map((l) => `${l}.${d}`))];
      const served = async () => {
        const w = await Wire.open({ host: '127.0.0.1', port: vps.ports[993]!, tls: true, servername: 'imap.example.test' });
        w.close();
        return w.tlsInfo!;
      };
      const first = await served();
      expect([...first.subjectNames].sort()).toEqual([...names].sort());
      const days = (Date.parse(first.validTo) - Date.now()) / 86400_000;
      expect(days).toBeGreaterThan(396);
      expect(days).toBeLessThanOrEqual(397);
      // Ten days left: the next apply makes a new one, and the services present it.
      const cert = '/etc/mailops/tls/mail.example.test';
      const short = await cluster.exec(vps, `openssl req -x509 -key ${cert}.key -sha256 -days 10 -subj /CN=mail.example.test -addext 'subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}' -out ${cert}.crt 2>&1`);
      expect(short.code, short.stdout).toBe(0);
      const p = await cli(['plan', file], PASSWORDS);
      expect(p.stdout).toContain(`run: self-signed certificate for ${names.join(', ')}`);
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      const renewed = await served();
      expect((Date.parse(renewed.validTo) - Date.now()) / 86400_000).toBeGreaterThan(396);
      expect(renewed.fingerprint).not.toBe(first.fingerprint);
      expect(readState(file).tls['mail.example.test']).toBe(renewed.fingerprint);
      expect(json((await apply()).stdout).changes).toBe(0);
    });

    it('mailops verify passes every protocol check', async () => {
      Object.assign(process.env, PASSWORDS);
      const { site } = loadSite(file, { secrets: 'error' });
      const checks = await verifyHost(site, readState(file), site.hosts[0]!, { address: '127.0.0.1', port: (p) => vps.ports[p]! });
      const failed = checks.filter((c) => c.status === 'failed');
      expect(failed, JSON.stringify(failed, null, 2)).toEqual([]);
      expect(checks.filter((c) => c.status === 'ok').length).toBeGreaterThanOrEqual(12);
    });

    it('submission on 587 (STARTTLS+AUTH) and 465 (TLS+AUTH) delivers, readable over IMAPS and POP3S, DKIM-signed and verifying', async () => {
      const s1 = await smtp(ep, { port: 587, auth: alice, from: alice.user, to: [bob.user], body: message(alice.user, bob.user, 'via 587') });
      expect(s1.stage, s1.reply.text).toBe('done');
      const s2 = await smtp(ep, { port: 465, auth: alice, from: alice.user, to: [bob.user], body: message(alice.user, bob.user, 'via 465') });
      expect(s2.stage, s2.reply.text).toBe('done');
      const msgs = await eventually(() => imapFetchAll(ep, bob.user, bob.password), (m) => m.length >= 2);
      expect(msgs.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim()).sort()).toEqual(['via 465', 'via 587']);
      expect(await pop3Count(ep, bob.user, bob.password)).toBe(2);
      const state = readState(file);
      const key = state.dkim['mail._domainkey.example.test'];
      expect(key, 'apply recorded the DKIM public key').toBeDefined();
      const resolver = async (name: string) => {
        if (name === 'mail._domainkey.example.test') return [[`v=DKIM1; k=${key!.algorithm}; p=${key!.publicKey}`]];
        const e = new Error('not found') as NodeJS.ErrnoException;
        e.code = 'ENOTFOUND';
        throw e;
      };
      const res = (await dkimVerify(Buffer.from(msgs[0]!), { resolver })) as { results: Array<{ signingDomain: string; status: { result: string } }> };
      const sig = res.results.find((x) => x.signingDomain === 'example.test');
      expect(sig?.status.result, JSON.stringify(res.results)).toBe('pass');
    });

    it('aliases reach every target; the catch-all takes unknown local parts; an external target is queued for relay', async () => {
      const s = await smtp(ep, { port: 25, from: 'someone@sender.example', to: ['sales@example.test', 'whoever@other.test', 'partners@example.test'] });
      expect(s.stage, s.reply.text).toBe('done');
      const a = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.length >= 1);
      expect(a.length).toBeGreaterThanOrEqual(1);
      const b = await eventually(() => imapFetchAll(ep, bob.user, bob.password), (m) => m.length >= 3);
      expect(b.length).toBe(3);
      const c = await eventually(() => imapFetchAll(ep, carol.user, carol.password), (m) => m.length >= 1);
      expect(c.length).toBe(1);
      // The external target goes to the remote transport (no DNS here: it is deferred or bounced there).
      const log = await eventually(
        () => cluster.exec(vps, mta === 'postfix' ? 'journalctl -q --no-pager -t postfix/smtp -t postfix/error -t postfix/qmgr' : 'cat /var/log/exim4/mainlog').then((r) => r.stdout),
        (t) => (mta === 'postfix' ? /to=<someone@partner\.example>.*relay=/ : /someone@partner\.example.*R=dnslookup|R=dnslookup.*someone@partner\.example|someone@partner\.example.*(defer|Unrouteable|retry)/).test(t),
      );
      expect(log).toMatch(mta === 'postfix' ? /to=<someone@partner\.example>.*relay=/ : /someone@partner\.example/);
    });

    it('unauthenticated on 25: local mailbox accepted, other domain "Relay access denied", unknown local rejected at RCPT', async () => {
      expect((await smtp(ep, { port: 25, from: 'x@sender.example', to: [alice.user] })).stage).toBe('done');
      const relay = await smtp(ep, { port: 25, from: 'x@sender.example', to: ['victim@elsewhere.example'] });
      expect(relay.stage).toBe('rcpt');
      expect(relay.reply.text).toBe('554 5.7.1 <victim@elsewhere.example>: Relay access denied');
      const unknown = await smtp(ep, { port: 25, from: 'x@sender.example', to: ['nobody@example.test'] });
      expect(unknown.stage).toBe('rcpt');
      expect(unknown.reply.text).toBe(unknownUser('nobody@example.test'));
    });

    it('AUTH before STARTTLS refused; a wrong password refused; send_as allowed; another mailbox\'s address refused', async () => {
      const clear = await smtp(ep, { port: 587, starttls: false, auth: alice, from: alice.user, to: [bob.user] });
      expect(clear.stage).toBe('auth');
      expect(clear.reply.text).toBe(STARTTLS_FIRST);
      const wrong = await smtp(ep, { port: 587, auth: { user: alice.user, password: 'wrong' }, from: alice.user, to: [bob.user] });
      expect(wrong.stage).toBe('auth');
      expect(wrong.reply.code).toBe(535);
      expect((await smtp(ep, { port: 587, auth: bob, from: 'sales@example.test', to: [alice.user] })).stage).toBe('done');
      const spoof = await smtp(ep, { port: 587, auth: bob, from: alice.user, to: [alice.user] });
      // Postfix refuses at RCPT (smtpd_delay_reject), Exim at MAIL: the same words either way.
      expect(['mail', 'rcpt']).toContain(spoof.stage);
      expect(spoof.reply.text).toBe('553 5.7.1 <alice@example.test>: Sender address rejected: not owned by user bob@example.test');
    });

    it(`a failed login is counted by the brute-force filter, from the line Dovecot ${release === 'bookworm' ? '2.3' : '2.4'} logs for it`, async () => {
      const failed = async () => {
        const st = await cluster.exec(vps, 'fail2ban-client status mailops-auth');
        return Number(/Total failed:\s*(\d+)/.exec(st.stdout)?.[1] ?? NaN);
      };
      const before = await failed();
      expect(Number.isInteger(before)).toBe(true);
      const wrong = await smtp(ep, { port: 465, auth: { user: bob.user, password: 'wrong' }, from: bob.user, to: [alice.user] });
      expect(wrong.reply.code).toBe(535);
      expect(await eventually(failed, (n) => n === before + 1)).toBe(before + 1);
    });

    it('a message over message_size_limit is refused; a full mailbox refuses mail with a quota error', async () => {
      const big = 'x'.repeat(76) + '\r\n';
      const huge = await smtp(ep, { port: 25, from: 'x@sender.example', to: [alice.user], body: message('x@sender.example', alice.user, 'huge', big.repeat(Math.ceil((3 * 1024 * 1024) / big.length))) });
      expect(huge.stage).toBe('data');
      expect(huge.reply.code).toBe(552);
      // bob's quota is 1M: fill most of it, then announce a message that does not fit.
      const fill = await smtp(ep, { port: 25, from: 'x@sender.example', to: [bob.user], body: message('x@sender.example', bob.user, 'fill', big.repeat(Math.ceil((900 * 1024) / big.length))) });
      expect(fill.stage, fill.reply.text).toBe('done');
      await eventually(() => imapFetchAll(ep, bob.user, bob.password), (m) => m.some((x) => x.includes('Subject: fill')));
      const over = await smtp(ep, { port: 25, from: 'x@sender.example', to: [bob.user], size: 500_000 });
      expect(over.stage).toBe('rcpt');
      expect(over.reply.text).toBe(overQuota(bob.user));
    });

    it('a new mailbox logs in right after re-apply, with no restart of unrelated services; a removed alias stops delivering', async () => {
      const text = readFileSync(file, 'utf8')
        .replace('        quota: 1M\n', '        quota: 1M\n      - name: dave\n        password: { env: IT_BOB_PASSWORD }\n')
        .replace('      partners: [alice, someone@partner.example]\n', '');
      writeFileSync(file, text);
      const r = await apply();
      expect(r.code, r.stderr).toBe(0);
      const plan = json(r.stdout).hosts[0]!.plan ?? [];
      const restarts = plan.filter((c) => c.kind === 'service' && (c.action === 'restart' || c.action === 'start'));
      expect(restarts, JSON.stringify(plan)).toEqual([]);
      const dave = await smtp(ep, { port: 587, auth: { user: 'dave@example.test', password: PASSWORDS.IT_BOB_PASSWORD }, from: 'dave@example.test', to: [alice.user] });
      expect(dave.stage, dave.reply.text).toBe('done');
      const gone = await smtp(ep, { port: 25, from: 'x@sender.example', to: ['partners@example.test'] });
      expect(gone.stage).toBe('rcpt');
      expect(gone.reply.text).toBe(unknownUser('partners@example.test'));
    });

    it('EHLO on 25: an address literal or a fully-qualified name is accepted; localhost, bare names and malformed names are refused at RCPT', async () => {
      for (const [helo, rcpt] of HELO_ON_25) {
        const script: Script = [[`EHLO ${helo}`, 250], ['MAIL FROM:<x@sender.example>', 250], [`RCPT TO:<${alice.user}>`, rcpt], ['QUIT', 221]];
        expect((await play(ep, 25, script)).seen, `EHLO ${helo}`).toEqual(script);
      }
      // No name at all is a syntax error, at once.
      const none: Script = [['EHLO', '501 Syntax: EHLO hostname'], ['QUIT', 221]];
      expect((await play(ep, 25, none)).seen).toEqual(none);
    });

    it('submission (587 after STARTTLS, 465) accepts the EHLO names of clients behind NAT: [192.168.1.23], localhost, MY_PC', async () => {
      for (const helo of MUA_HELOS) {
        const tail: Script = [[ALICE_AUTH, 235], [`MAIL FROM:<${alice.user}>`, 250], [`RCPT TO:<${alice.user}>`, 250], ['QUIT', 221]];
        const s587: Script = [[`EHLO ${helo}`, 250], ['STARTTLS', 220], [`EHLO ${helo}`, 250], ...tail];
        expect((await play(ep, 587, s587)).seen, `587 EHLO ${helo}`).toEqual(s587);
        const s465: Script = [[`EHLO ${helo}`, 250], ...tail];
        expect((await play(ep, 465, s465)).seen, `465 EHLO ${helo}`).toEqual(s465);
      }
    });

    it('AUTH is offered and accepted on 587 after STARTTLS and on 465 only: never on 25, in clear or after STARTTLS', async () => {
      const on25: Script = [['EHLO client.mailops.test', 250], [ALICE_AUTH, AUTH_NOT_ENABLED], ['STARTTLS', 220], ['EHLO client.mailops.test', 250], [ALICE_AUTH, AUTH_NOT_ENABLED], ['QUIT', 221]];
      const r25 = await play(ep, 25, on25);
      expect(r25.seen).toEqual(on25);
      const ehlo25 = r25.turns.filter((t) => t.cmd.startsWith('EHLO')).map(ehloKeywords);
      expect(ehlo25[0]).toContain('STARTTLS');
      expect(ehlo25.flat().filter((k) => k.startsWith('AUTH'))).toEqual([]);

      const on587: Script = [['EHLO client.mailops.test', 250], [ALICE_AUTH, STARTTLS_FIRST], ['STARTTLS', 220], ['EHLO client.mailops.test', 250], [ALICE_AUTH, 235], ['QUIT', 221]];
      const r587 = await play(ep, 587, on587);
      expect(r587.seen).toEqual(on587);
      const [clear, secure] = r587.turns.filter((t) => t.cmd.startsWith('EHLO')).map(ehloKeywords);
      expect(clear).not.toContain('AUTH');
      expect(secure).toContain('AUTH');

      const on465: Script = [['EHLO client.mailops.test', 250], [ALICE_AUTH, 235], ['QUIT', 221]];
      const r465 = await play(ep, 465, on465);
      expect(r465.seen).toEqual(on465);
      expect(ehloKeywords(r465.turns[1]!)).toContain('AUTH');
    });

    it('+tag sub-addressing: alice+tag@ lands in alice\'s INBOX (from a stranger on 25, and sent by alice as alice+tag@ on 587); unknown+tag@ is unknown; bob+tag@ is over quota', async () => {
      const tag = `${mta}-${Date.now()}`;
      const in25 = await smtp(ep, { port: 25, from: 'x@sender.example', to: [`alice+${tag}@example.test`], body: message('x@sender.example', `alice+${tag}@example.test`, `plus on 25 ${tag}`) });
      expect(in25.stage, in25.reply.text).toBe('done');
      const own = await smtp(ep, { port: 587, auth: alice, from: `alice+${tag}@example.test`, to: [`alice+news@example.test`], body: message(`alice+${tag}@example.test`, 'alice+news@example.test', `plus on 587 ${tag}`) });
      expect(own.stage, own.reply.text).toBe('done');
      const inbox = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.filter((x) => x.includes(tag)).length >= 2);
      expect(inbox.map((m) => /^Subject: (.*)$/m.exec(m)?.[1]?.trim()).filter((x) => x?.includes(tag)).sort()).toEqual([`plus on 25 ${tag}`, `plus on 587 ${tag}`]);
      const refused: Script = [
        ['EHLO client.mailops.test', 250],
        ['MAIL FROM:<x@sender.example> SIZE=2000000', 250],
        ['RCPT TO:<nobody+tag@example.test>', unknownUser('nobody+tag@example.test')],
        ['RCPT TO:<bob+tag@example.test>', overQuota('bob+tag@example.test')],
        ['QUIT', 221],
      ];
      expect((await play(ep, 25, refused)).seen).toEqual(refused);
    });

    it('quota-status unreachable: RCPT to a mailbox is tempfailed (451) on 25 and on submission, never accepted; mail that leaves is not held; restored, mail flows', async () => {
      const block = await cluster.exec(vps, QUOTA_BLOCK);
      expect(block.code, block.stderr).toBe(0);
      try {
        const on25: Script = [
          ['EHLO client.mailops.test', 250],
          ['MAIL FROM:<x@sender.example>', 250],
          [`RCPT TO:<${alice.user}>`, tempfail(alice.user)],
          ['RCPT TO:<alice+tag@example.test>', tempfail('alice+tag@example.test')],
          ['RCPT TO:<sales@example.test>', tempfail('sales@example.test')],
          ['QUIT', 221],
        ];
        expect((await play(ep, 25, on25)).seen).toEqual(on25);
        const on465: Script = [
          ['EHLO client.mailops.test', 250],
          [ALICE_AUTH, 235],
          [`MAIL FROM:<${alice.user}>`, 250],
          [`RCPT TO:<${bob.user}>`, tempfail(bob.user)],
          ['RCPT TO:<someone@partner.example>', 250],
          ['QUIT', 221],
        ];
        expect((await play(ep, 465, on465)).seen).toEqual(on465);
      } finally {
        const unblock = await cluster.exec(vps, QUOTA_UNBLOCK);
        expect(unblock.code, unblock.stderr).toBe(0);
      }
      const back = await smtp(ep, { port: 25, from: 'x@sender.example', to: [alice.user], body: message('x@sender.example', alice.user, `quota-status is back on ${mta}`) });
      expect(back.stage, back.reply.text).toBe('done');
      const inbox = await eventually(() => imapFetchAll(ep, alice.user, alice.password), (m) => m.some((x) => x.includes(`quota-status is back on ${mta}`)));
      expect(inbox.some((x) => x.includes(`quota-status is back on ${mta}`))).toBe(true);
    });

    it('TLS per port, judged by a real scanner (sslscan): where passwords travel (465, 587, IMAP, POP3) TLS 1.2+ with forward-secret authenticated ciphers only (Mozilla intermediate); port 25 opportunistic, TLS 1.2+', async () => {
      const scan = (port: number, starttls?: 'smtp' | 'imap' | 'pop3') => {
        const r = spawnSync('sslscan', ['--xml=-', '--no-colour', '--no-heartbleed', '--no-compression', '--no-fallback', '--no-renegotiation', ...(starttls ? [`--starttls-${starttls}`] : []), `127.0.0.1:${vps.ports[port]}`], { encoding: 'utf8', timeout: 120_000 });
        const ciphers = [...r.stdout.matchAll(/<cipher status="(\w+)" sslversion="([^"]+)" bits="\d+" cipher="([^"]+)"/g)].map((m) => ({ status: m[1]!, version: m[2]!, name: m[3]! }));
        const protocols = [...r.stdout.matchAll(/<protocol type="(\w+)" version="([\d.]+)" enabled="1"/g)].map((m) => `${m[1]}${m[2]}`);
        expect(ciphers.length, `sslscan of ${port}: ${r.stdout.slice(0, 500)} ${r.stderr}`).toBeGreaterThan(0);
        return { ciphers, protocols };
      };
      for (const [port, starttls] of [[465], [587, 'smtp'], [993], [143, 'imap'], [995], [110, 'pop3']] as Array<[number, ('smtp' | 'imap' | 'pop3')?]>) {
        const { ciphers, protocols } = scan(port, starttls);
        expect(protocols.sort(), `port ${port}`).toEqual(['tls1.2', 'tls1.3']);
        const tls12 = ciphers.filter((c) => c.version === 'TLSv1.2').map((c) => c.name);
        expect(tls12.length, `port ${port}`).toBeGreaterThan(0);
        // ECDHE key exchange (forward secret, no finite-field DH groups) and AEAD only: no anonymous, no RSA key exchange, no CBC.
        for (const c of tls12) expect(c, `port ${port}`).toMatch(/^ECDHE-(RSA|ECDSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
      }
      const on25 = scan(25, 'smtp');
      expect(on25.protocols.sort()).toEqual(['tls1.2', 'tls1.3']);
    });
  });
}
