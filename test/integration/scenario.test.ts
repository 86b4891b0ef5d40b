/**
 * One scenario, every MTA: apply a playbook to a fresh VPS container, then prove over real protocols
 * that mail flows and that what must be refused is refused; change the playbook, re-apply, re-check.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { startVps } from '../../src/testbed/harness.js';
import type { VpsCluster, VpsHost } from '../../src/testbed/harness.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import { verifyHost } from '../../src/verify/checks.js';
import { PASSWORDS, cli, scenarioPlaybook, writePlaybook } from './support/env.js';
import { eventually, imapFetchAll, message, pop3Count, smtp } from './support/mail.js';
import type { Ep } from './support/mail.js';

const alice = { user: 'alice@example.test', password: PASSWORDS.IT_ALICE_PASSWORD };
const bob = { user: 'bob@example.test', password: PASSWORDS.IT_BOB_PASSWORD };
const carol = { user: 'carol@other.test', password: PASSWORDS.IT_ALICE_PASSWORD };

for (const mta of ['postfix', 'exim'] as const) {
  describe(`scenario on ${mta}`, () => {
    let cluster: VpsCluster;
    let vps: VpsHost;
    let file: string;
    let ep: Ep;
    const apply = (...extra: string[]) => cli(['apply', '--yes', '--json', ...extra, file], PASSWORDS);
    const json = (s: string) => JSON.parse(s) as { changes: number; hosts: Array<{ ok: boolean; changes: number; error?: string; plan?: Array<{ kind: string; action: string; unit?: string }> }> };

    beforeAll(async () => {
      cluster = await startVps({ image: inject('vpsImage'), count: 1 });
      vps = cluster.hosts[0]!;
      file = writePlaybook(scenarioPlaybook(cluster, vps, mta));
      ep = { host: '127.0.0.1', port: (p) => vps.ports[p]! };
    });
    afterAll(async () => cluster?.stop());

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
      expect(relay.reply.text).toMatch(/^554 .*Relay access denied/);
      const unknown = await smtp(ep, { port: 25, from: 'x@sender.example', to: ['nobody@example.test'] });
      expect(unknown.stage).toBe('rcpt');
      expect(unknown.reply.code).toBe(550);
    });

    it('AUTH before STARTTLS refused; a wrong password refused; send_as allowed; another mailbox\'s address refused', async () => {
      const clear = await smtp(ep, { port: 587, starttls: false, auth: alice, from: alice.user, to: [bob.user] });
      expect(clear.stage).toBe('auth');
      expect(clear.reply.code).toBeGreaterThanOrEqual(500);
      const wrong = await smtp(ep, { port: 587, auth: { user: alice.user, password: 'wrong' }, from: alice.user, to: [bob.user] });
      expect(wrong.stage).toBe('auth');
      expect(wrong.reply.code).toBe(535);
      expect((await smtp(ep, { port: 587, auth: bob, from: 'sales@example.test', to: [alice.user] })).stage).toBe('done');
      const spoof = await smtp(ep, { port: 587, auth: bob, from: alice.user, to: [alice.user] });
      expect(['mail', 'rcpt']).toContain(spoof.stage);
      expect(spoof.reply.code).toBe(553);
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
      expect(over.reply.text).toMatch(/^552 .*(quota|full)/i);
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
      expect(gone.reply.code).toBe(550);
    });
  });
}
