/**
 * Several hosts done right, in the mail world: the outbound smarthost (stack.relay) for Postfix (port 465,
 * TLS from the first byte) and Exim (587, STARTTLS): every outbound message leaves through the world's
 * relay, which requires AUTH, and the strict peer judges it dkim=pass for our domain; verify checks the
 * relay accepts our login and reports the exact refusal for a wrong password; taken out of the playbook, the
 * relay's login leaves the host and mail goes by MX again. A backup MX (Postfix and Exim)
 * refuses unknown recipients at RCPT, queues mail while the mailbox host is down and delivers it once when it
 * is back. Apply converges the mailbox host and the backup in the order that keeps their recipients in step.
 * verify knows the roles: the backup MX gets the port-25 checks and its recipients (and fails when it
 * accepts an unknown one), the mailbox host the rest and the HTTPS endpoint, whose MTA-STS policy must list
 * exactly the MX records DNS serves.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PEER_HOSTNAME, RELAY_HOSTNAME, startWorld } from '../../src/testbed/world.js';
import type { World } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { judge, verdictOf } from '../../src/verify/verdict.js';
import type { Host } from '../../src/model/site.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import { resolverFor } from '../../src/verify/dns.js';
import { hostChecks } from '../../src/verify/host.js';
import { verifySite } from '../../src/verify/site.js';
import { mtaStsChecks } from '../../src/verify/web-checks.js';
import { cli, writePlaybook } from './support/env.js';
import { dialogue, eventually, imapFetchAll, message, smtp } from './support/mail.js';
import type { Ep } from './support/mail.js';

const RELAY_USER = 'relay-user';
const PW = { IT_ALICE_PASSWORD: 'alice-Secret-1', IT_RELAY_PASSWORD: 'relay^Pass word-7' };

let world: World;

beforeAll(async () => {
  world = await startWorld({
    images: { vps: inject('vpsImage'), dns: inject('dnsImage'), peer: inject('peerImage'), relay: inject('relayImage') },
    relay: { username: RELAY_USER, password: PW.IT_RELAY_PASSWORD },
    hosts: [
      { name: 'pf', hostname: 'mail.pf.test', image: inject('stackImage') },
      { name: 'ex', hostname: 'mail.ex.test', image: inject('stackEximImage') },
      { name: 'mb', hostname: 'mx1.bx.test', image: inject('stackImage') },
      { name: 'bk', hostname: 'mx2.bx.test', image: inject('stackImage') },
      { name: 'emb', hostname: 'mx1.bxe.test', image: inject('stackEximImage') },
      { name: 'ebk', hostname: 'mx2.bxe.test', image: inject('stackEximImage') },
    ],
  });
});
afterAll(async () => world?.stop());

function relayPlaybook(mta: 'postfix' | 'exim', h: VpsHost, dom: string, port: number): string {
  return `site: relay-${h.name}
hosts:
  - name: ${h.name}
    ssh:
      address: 127.0.0.1
      port: ${h.ports[22]}
      identity: ${world.vps.identity}
      host_key: "${h.hostKey}"
    hostname: mail.${dom}
    ipv4: ${h.ip}
stack:
  mta: ${mta}
  imap: true
  pop3: false
  tls: { mode: self-signed }
  relay:
    host: ${RELAY_HOSTNAME}
    port: ${port}
    username: ${RELAY_USER}
    password: { env: IT_RELAY_PASSWORD }
dns:
  ttl: 300
  nameservers:
    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }
  update:
    server: 127.0.0.1:${world.dns.port}
    key: { file: ${world.dns.keyFile} }
domains:
  - name: ${dom}
    dkim: { selector: mail }
    spf: { include: [${world.relay!.spfInclude}] }
    dmarc: { policy: reject }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
`;
}

interface VerifyJson {
  ok: boolean;
  checks: Array<{ host: string; name: string; ok: boolean; status: string; detail: string }>;
}

for (const [mta, name, port] of [
  ['postfix', 'pf', 465],
  ['exim', 'ex', 587],
] as const) {
  describe(`outbound smarthost with ${mta} (relay port ${port})`, () => {
    const dom = `${name}.test`;
    let host: VpsHost;
    let file: string;
    let ep: Ep;

    beforeAll(async () => {
      host = world.vps.hosts.find((h) => h.name === name)!;
      file = writePlaybook(relayPlaybook(mta, host, dom, port));
      ep = { host: '127.0.0.1', port: (p) => host.ports[p]! };
      await world.addZone(dom, { nameservers: [`ns1.${dom}`] });
    });

    it('apply converges; the SPF record includes the relay; the relay password is in no output', async () => {
      const r = await cli(['apply', '--yes', '--json', file], PW);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).hosts[0].ok).toBe(true);
      expect(r.stdout + r.stderr).not.toContain(PW.IT_RELAY_PASSWORD);
      expect(await world.resolve(dom, 'TXT')).toEqual([`"v=spf1 ip4:${host.ip} include:${world.relay!.spfInclude} -all"`]);
      const p = await cli(['plan', '--detailed-exitcode', file], PW);
      expect(p.code, p.stdout + p.stderr).toBe(0);
      expect(p.stdout + p.stderr).not.toContain(PW.IT_RELAY_PASSWORD);
    });

    it('verify: the relay accepts our login over TLS (AUTH PLAIN → 235); a wrong password is refused with the relay\'s exact 535', async () => {
      const args = ['verify', '--json', '--resolver', `127.0.0.1:${world.dns.port}`, file];
      const good = JSON.parse((await cli(args, PW)).stdout) as VerifyJson;
      const check = good.checks.find((c) => c.name === 'relay accepts our login')!;
      expect(check.host).toBe(`relay ${RELAY_HOSTNAME}:${port}`);
      expect(check.detail).toBe(`TLSv1.3, login as ${RELAY_USER}: "235 2.7.0 Authentication successful"`);
      expect(check.ok).toBe(true);
      const bad = await cli(args, { ...PW, IT_RELAY_PASSWORD: 'not-the-password' });
      const badCheck = (JSON.parse(bad.stdout) as VerifyJson).checks.find((c) => c.name === 'relay accepts our login')!;
      expect(badCheck.ok).toBe(false);
      expect(badCheck.detail).toBe(`login as ${RELAY_USER} refused over TLSv1.3: "535 5.7.8 Error: authentication failed: authentication failure"`);
      expect(bad.stdout + bad.stderr).not.toContain('not-the-password');
    });

    it('mail submitted by alice leaves through the relay (logged in as our user) and the peer judges it dkim=pass for our domain', async () => {
      const alice = { user: `alice@${dom}`, password: PW.IT_ALICE_PASSWORD };
      const subject = `via the smarthost ${mta} ${Date.now()}`;
      const s = await smtp(ep, { port: 587, auth: alice, from: alice.user, to: [`inbox@${world.peer!.domain}`], body: message(alice.user, `inbox@${world.peer!.domain}`, subject) });
      expect(s.stage, s.reply.text).toBe('done');
      const raw = await world.peer!.waitFor(subject, 60_000).catch(async (e: Error) => {
        const mta = await world.exec(host.container, 'journalctl --no-pager -n 25 -u postfix -u exim4 2>&1');
        throw new Error(`${e.message}\nthe host's MTA log:\n${mta.stdout}\nthe relay's log:\n${world.relay!.log().trim().split('\n').slice(-10).join('\n')}`);
      });
      // dkim=pass for our domain, spf=pass (the relay's address through our include), dmarc=pass; the
      // client the peer saw is the relay (HELO = PTR = smtp.relay.test), over TLS.
      const { problems, summary } = judge(verdictOf(raw, PEER_HOSTNAME), dom, RELAY_HOSTNAME);
      expect(problems, summary).toEqual([]);
      expect(summary).toMatch(/^dkim=pass \(rsa-sha256, s=mail\), spf=pass, dmarc=pass, HELO smtp\.relay\.test, PTR smtp\.relay\.test/);
      // The peer received it from the relay, which received it from our host, authenticated as our login.
      expect(raw).toMatch(new RegExp(`^Received: from ${RELAY_HOSTNAME.replace(/\./g, '\\.')} \\(${RELAY_HOSTNAME.replace(/\./g, '\\.')} \\[${world.relay!.ip.replace(/\./g, '\\.')}\\]\\)`, 'm'));
      expect(raw).toMatch(new RegExp(`\\(Authenticated sender: ${RELAY_USER}@relay\\.test\\)`));
      const relayLog = world.relay!.log();
      expect(relayLog).toMatch(new RegExp(`client=mail\\.${name}\\.test\\[${host.ip.replace(/\./g, '\\.')}\\], sasl_method=PLAIN, sasl_username=${RELAY_USER}@relay\\.test`));
      // Nothing went from our host to the peer directly: the peer's log shows only the relay as a client.
      expect(world.peer!.log()).not.toContain(`[${host.ip}]`);
    });

    it('the relay taken out of the playbook: its login is removed from the host, mail goes to the peer by MX again, judged spf=pass for our own address; 0 changes after', async () => {
      const secret = mta === 'postfix' ? '/etc/postfix/relay_password' : '/etc/exim4/relay_login';
      expect((await world.exec(host.container, `grep -c ${RELAY_USER} ${secret}`)).stdout.trim()).toBe('1');
      writeFileSync(file, relayPlaybook(mta, host, dom, port).replace(/^ {2}relay:\n( {4}.*\n)+/m, '').replace(/^ {4}spf: .*\n/m, ''));
      const r = await cli(['apply', '--yes', '--json', file], PW);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).hosts[0].plan.filter((c: { action: string }) => c.action === 'remove')).toEqual([{ kind: 'file', action: 'remove', path: secret, component: mta, reason: `retired by relay: false (${mta})` }]);
      expect((await world.exec(host.container, `ls ${secret} 2>&1`)).stdout).toMatch(/No such file or directory/);
      expect(await world.resolve(dom, 'TXT')).toEqual([`"v=spf1 ip4:${host.ip} -all"`]);
      const alice = { user: `alice@${dom}`, password: PW.IT_ALICE_PASSWORD };
      const subject = `by MX again ${mta} ${Date.now()}`;
      const s = await smtp(ep, { port: 587, auth: alice, from: alice.user, to: [`inbox@${world.peer!.domain}`], body: message(alice.user, `inbox@${world.peer!.domain}`, subject) });
      expect(s.stage, s.reply.text).toBe('done');
      const raw = await world.peer!.waitFor(subject, 60_000);
      const { problems, summary } = judge(verdictOf(raw, PEER_HOSTNAME), dom, `mail.${dom}`);
      expect(problems, summary).toEqual([]);
      expect(summary).toMatch(new RegExp(`^dkim=pass \\(rsa-sha256, s=mail\\), spf=pass, dmarc=pass, HELO mail\\.${name}\\.test, PTR mail\\.${name}\\.test`));
      expect(JSON.parse((await cli(['plan', '--json', file], PW)).stdout).changes).toBe(0);
    });
  });
}

/** What differs between the MTAs in the backup MX's story: service, replies, how its queue is read and flushed. */
const BACKUP = {
  postfix: {
    names: ['mb', 'bk'],
    dom: 'bx.test',
    service: 'postfix',
    replies: (dom: string) => ['250 2.1.0 Ok', `550 5.1.1 <nobody@${dom}>: Recipient address rejected: User unknown in relay recipient table`, '250 2.1.5 Ok', '221 2.0.0 Bye'],
    /** The queue as text; a queued message's delay reason names the mailbox host's refused connection. */
    queue: 'postqueue -j',
    // Deferred, not still active: the first attempt has failed.
    queuedFor: (q: string, dom: string) => q.includes(`"alice@${dom}"`) && /"queue_name": ?"deferred"/.test(q),
    refused: (q: string) => {
      expect(JSON.parse(q.trim().split('\n')[0]!)).toMatchObject({ queue_name: 'deferred', recipients: [{ delay_reason: expect.stringMatching(/connect to mx1\.bx\.test\[[0-9.]+\]:25: Connection refused/) }] });
    },
    flush: 'postqueue -f',
    empty: 'postqueue -j',
    /** Makes the backup accept any address of the domain, as a hand edit would (a catch-all line). */
    acceptAll: (dom: string) => `echo '@${dom} OK' >> /etc/postfix/relay_recipients && postfix reload`,
    accepted: '250 2.1.5 Ok',
    /** How the mailbox host records the hop from the backup MX. */
    received: (ip: string) => new RegExp(`^Received: from mx2\\.bx\\.test \\(mx2\\.bx\\.test \\[${ip.replace(/\./g, '\\.')}\\]\\)`, 'm'),
  },
  exim: {
    names: ['emb', 'ebk'],
    dom: 'bxe.test',
    service: 'exim4',
    replies: (dom: string) => ['250 OK', `550 5.1.1 <nobody@${dom}>: Recipient address rejected: User unknown in relay recipient table`, '250 Accepted', '221 mx2.bxe.test closing connection'],
    queue: 'exim -bp; grep -h "alice@bxe.test" /var/log/exim4/mainlog',
    queuedFor: (q: string, dom: string) => q.includes(`alice@${dom}`) && /Connection refused/.test(q),
    refused: (q: string) => expect(q).toMatch(/== alice@bxe\.test R=backup_mx T=remote_smtp defer \(111\): Connection refused/),
    flush: 'exim -qff',
    empty: 'exim -bp',
    acceptAll: (dom: string) => `echo '@${dom}:' >> /etc/exim4/relay_recipients`,
    accepted: '250 Accepted',
    // Exim names the client by its forward-confirmed name when it has one: "mx2.bxe.test ([ip])".
    received: (ip: string) => new RegExp(`^Received: from (mx2\\.bxe\\.test \\(\\[${ip.replace(/\./g, '\\.')}\\]\\)|\\[${ip.replace(/\./g, '\\.')}\\] \\(helo=mx2\\.bxe\\.test\\))\r?\n\tby mx1\\.bxe\\.test with esmtps`, 'm'),
  },
} as const;

for (const mta of ['postfix', 'exim'] as const) {
  describe(`backup MX (${mta})`, () => {
    const t = BACKUP[mta];
    const dom = t.dom;
    let mb: VpsHost;
    let bk: VpsHost;
    let file: string;
    let text: string;
    const hostYaml = (h: VpsHost, hostname: string, role: string) => `  - name: ${h.name}
    ssh: { address: 127.0.0.1, port: ${h.ports[22]}, identity: ${world.vps.identity}, host_key: "${h.hostKey}" }
    hostname: ${hostname}
    ipv4: ${h.ip}
    role: ${role}`;

    const loaded = () => {
      Object.assign(process.env, PW);
      return loadSite(file, { secrets: 'error' }).site;
    };
    const resolver = () => ({ resolver: resolverFor(`127.0.0.1:${world.dns.port}`), resolverName: `127.0.0.1:${world.dns.port}` });
    /** Where verify connects for a host of the playbook: 127.0.0.1 and the container's published port. */
    const endpoint = (h: Host) => {
      const v = h.name === mb.name ? mb : bk;
      return { address: '127.0.0.1', port: (p: number) => v.ports[p]! };
    };

    beforeAll(async () => {
      mb = world.vps.hosts.find((h) => h.name === t.names[0])!;
      bk = world.vps.hosts.find((h) => h.name === t.names[1])!;
      text = `site: backup-${mta}
hosts:
${hostYaml(mb, `mx1.${dom}`, 'mailbox')}
${hostYaml(bk, `mx2.${dom}`, 'backup-mx')}
stack: { mta: ${mta}, imap: true, pop3: false, tls: { mode: self-signed } }
dns:
  ttl: 300
  nameservers:
    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }
  update: { server: "127.0.0.1:${world.dns.port}", key: { file: ${world.dns.keyFile} } }
domains:
  - name: ${dom}
    dkim: { selector: mail }
    dmarc: { policy: reject }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
`;
      file = writePlaybook(text);
      await world.addZone(dom, { nameservers: [`ns1.${dom}`] });
    });

    it('apply converges both hosts; MX: the mailbox host at 10, the backup at 20', async () => {
      const r = await cli(['apply', '--yes', '--json', file], PW);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { hosts: Array<{ name: string; ok: boolean }> }).hosts.map((h) => [h.name, h.ok])).toEqual([
        [mb.name, true],
        [bk.name, true],
      ]);
      expect((await world.resolve(dom, 'MX')).sort()).toEqual([`10 mx1.${dom}.`, `20 mx2.${dom}.`]);
      // No Dovecot and no submission on the backup MX.
      const bkState = await world.exec(bk.container, 'systemctl is-active dovecot; ss -ltn | grep -cE ":(587|465|993) "');
      expect(bkState.stdout.trim().split('\n')).toEqual(['inactive', '0']);
      const again = await cli(['plan', '--detailed-exitcode', file], PW);
      expect(again.code, again.stdout + again.stderr).toBe(0);
    });

    it('verify: the backup MX gets the port-25 checks and its recipients, the mailbox host every other check and HTTPS; all pass, none skipped', async () => {
      const checks = await verifySite(loaded(), readState(file), loaded().hosts, endpoint, resolver());
      const bad = checks.filter((c) => c.status !== 'ok');
      expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
      expect(checks.filter((c) => c.host === bk.name).map((c) => c.name)).toEqual([
        'smtp banner and EHLO name',
        'STARTTLS on 25',
        'no open relay',
        'VRFY disabled',
        `backup MX accepts a recipient of ${dom} at RCPT`,
        `backup MX refuses an unknown recipient of ${dom} at RCPT`,
        `A of mx2.${dom}`,
        `PTR of ${bk.ip}`,
      ]);
      const detail = (name: string) => checks.find((c) => c.host === bk.name && c.name === name)?.detail;
      expect(detail(`backup MX accepts a recipient of ${dom} at RCPT`)).toBe(`RCPT TO:<alice@${dom}>: "${t.accepted}" (then RSET: nothing sent)`);
      expect(detail(`backup MX refuses an unknown recipient of ${dom} at RCPT`)).toBe(`550 5.1.1 <mailops-verify-unknown@${dom}>: Recipient address rejected: User unknown in relay recipient table`);
      const mbNames = checks.filter((c) => c.host === mb.name).map((c) => c.name);
      for (const n of ['STARTTLS on 587', 'authenticated submission (587)', `HTTPS certificate: mta-sts.${dom}`, `HTTPS Outlook autodiscover (POX): https://autodiscover.${dom}/autodiscover/autodiscover.xml`, `HTTPS MTA-STS policy: https://mta-sts.${dom}/.well-known/mta-sts.txt`]) expect(mbNames).toContain(n);
      expect(checks.find((c) => c.name === `MTA-STS policy lists the MX of ${dom}`)!.detail).toBe(`mx: mx1.${dom}, mx2.${dom} = MX mx1.${dom}, mx2.${dom}`);
    });

    it('verify fails, saying what is wrong, for a backup MX that accepts an unknown recipient and for an MX the MTA-STS policy does not list', async () => {
      expect((await world.exec(bk.container, t.acceptAll(dom))).code).toBe(0);
      const site = loaded();
      const host = site.hosts.find((h) => h.name === bk.name)!;
      const recipients = hostChecks(site, readState(file), host, endpoint(host)).filter((c) => c.name.startsWith('backup MX'));
      // `postfix reload` returns before every smtpd has read the table again: a connection right after it may
      // still meet one that has the old one. The broken list is in effect once an unknown recipient is accepted.
      for (const end = Date.now() + 15_000; Date.now() < end && (await recipients[1]!.run()).status !== 'failed'; ) await new Promise((r) => setTimeout(r, 250));
      const outcomes = await Promise.all(recipients.map(async (c) => ({ name: c.name, ...(await c.run()) })));
      expect(outcomes).toEqual([
        { name: `backup MX accepts a recipient of ${dom} at RCPT`, status: 'ok', detail: expect.any(String) },
        {
          name: `backup MX refuses an unknown recipient of ${dom} at RCPT`,
          status: 'failed',
          detail: `RCPT TO:<mailops-verify-unknown@${dom}> was ACCEPTED ("${t.accepted}"): the backup MX takes mail no mailbox host accepts and will bounce it later, often to a forged sender; run mailops apply (it writes the backup's recipient list)`,
        },
      ]);
      // apply puts the backup's recipient list back.
      const r = await cli(['apply', '--yes', '--json', file], PW);
      expect(r.code, r.stderr).toBe(0);
      expect((await recipients[1]!.run()).status).toBe('ok');

      await world.setRecords(dom, [`update add ${dom}. 300 MX 30 mx3.elsewhere.test.`]);
      try {
        const out: Array<{ name: string; status: string; detail: string }> = [];
        const { resolver: r2 } = resolver();
        await mtaStsChecks(site, endpoint(site.hosts.find((h) => h.name === mb.name)!), {}, r2, async (_s, name, f) => void out.push({ name, ...(await f()) }));
        expect(out.find((c) => c.name === `MTA-STS policy lists the MX of ${dom}`)).toEqual({
          name: `MTA-STS policy lists the MX of ${dom}`,
          status: 'failed',
          detail: expect.stringMatching(new RegExp(`^MX mx3\\.elsewhere\\.test is not in the policy: senders that enforce MTA-STS will not deliver to it \\(policy: mx1\\.${dom.replace('.', '\\.')}, mx2\\.${dom.replace('.', '\\.')}; MX: `)),
        });
        expect(out.find((c) => c.name === `MTA-STS id of ${dom} is the policy's`)!.status).toBe('ok');
      } finally {
        await world.setRecords(dom, [`update delete ${dom}. MX 30 mx3.elsewhere.test.`]);
      }
      expect((await world.resolve(dom, 'MX')).sort()).toEqual([`10 mx1.${dom}.`, `20 mx2.${dom}.`]);
    });

    it('the backup MX refuses an unknown recipient at RCPT with an exact 550; it accepts a known one', async () => {
      const ep: Ep = { host: '127.0.0.1', port: (p) => bk.ports[p]! };
      const d = await dialogue(ep, 25, ['EHLO client.peer.test', 'MAIL FROM:<someone@peer.test>', `RCPT TO:<nobody@${dom}>`, `RCPT TO:<alice@${dom}>`, 'QUIT']);
      expect(d.map((x) => x.text)).toEqual([`220 mx2.${dom} ESMTP`, expect.stringMatching(new RegExp(`^250 mx2\\.${dom.replace('.', '\\.')}`)), ...t.replies(dom)]);
    });

    it('mailbox host down: mail from the peer is queued on the backup MX; mailbox host back: delivered exactly once', async () => {
      expect((await world.exec(mb.container, `systemctl stop ${t.service}`)).code).toBe(0);
      const subject = `queued on the backup ${mta} ${Date.now()}`;
      await world.peer!.send({ from: 'someone@peer.test', to: `alice@${dom}`, subject });
      const queued = await eventually(async () => (await world.exec(bk.container, t.queue)).stdout, (q) => t.queuedFor(q, dom), 60);
      t.refused(queued);
      expect((await world.exec(mb.container, `systemctl start ${t.service}`)).code).toBe(0);
      // The backup retries every minute; flushing the queue is what an admin does to not wait.
      await world.exec(bk.container, t.flush);
      const ep: Ep = { host: '127.0.0.1', port: (p) => mb.ports[p]! };
      const msgs = await eventually(() => imapFetchAll(ep, `alice@${dom}`, PW.IT_ALICE_PASSWORD), (m) => m.some((x) => x.includes(subject)), 90);
      await new Promise((r) => setTimeout(r, 3000));
      const again = await imapFetchAll(ep, `alice@${dom}`, PW.IT_ALICE_PASSWORD);
      expect(again.filter((x) => x.includes(subject)).length).toBe(1);
      expect(msgs.find((x) => x.includes(subject))).toMatch(t.received(bk.ip));
      expect(msgs.find((x) => x.includes(subject))).not.toMatch(/^X-ACL-Warn:/m);
      expect((await world.exec(bk.container, t.empty)).stdout.trim()).toBe('');
    });

    it('a new mailbox: the mailbox host converges before the backup learns it; removed: the backup forgets it first', async () => {
      const step = (stderr: string, line: string) => stderr.split('\n').findIndex((l) => l.startsWith(line));
      writeFileSync(file, text.replace('    aliases:\n', '      - name: bob\n        password: { env: IT_ALICE_PASSWORD }\n    aliases:\n'));
      const add = await cli(['apply', '--yes', '--json', file], PW);
      expect(add.code, add.stderr).toBe(0);
      expect(add.stderr).toContain(`order: 1. ${mb.name} (${bk.name} will accept new recipients: the mailbox hosts accept them first); 2. ${bk.name} (after the mailbox hosts (${mb.name}))\n`);
      expect(step(add.stderr, `${mb.name}: `)).toBeGreaterThanOrEqual(0);
      expect(step(add.stderr, `${mb.name}: check services`)).toBeLessThan(step(add.stderr, `${bk.name}: lock ok`));
      expect(JSON.parse(add.stdout).order).toEqual([
        { hosts: [mb.name], why: `${bk.name} will accept new recipients: the mailbox hosts accept them first` },
        { hosts: [bk.name], why: `after the mailbox hosts (${mb.name})` },
      ]);
      writeFileSync(file, text);
      const remove = await cli(['apply', '--yes', '--json', file], PW);
      expect(remove.code, remove.stderr).toBe(0);
      expect(step(remove.stderr, `${bk.name}: check services`)).toBeLessThan(step(remove.stderr, `${mb.name}: lock ok`));
      expect(JSON.parse(remove.stdout).order.map((p: { hosts: string[] }) => p.hosts)).toEqual([[bk.name], [mb.name]]);
      // In step again: the backup refuses bob with the exact reply.
      const ep: Ep = { host: '127.0.0.1', port: (p) => bk.ports[p]! };
      const d = await dialogue(ep, 25, ['EHLO client.peer.test', 'MAIL FROM:<someone@peer.test>', `RCPT TO:<bob@${dom}>`, 'QUIT']);
      expect(d[3]!.text).toBe(`550 5.1.1 <bob@${dom}>: Recipient address rejected: User unknown in relay recipient table`);
    });

    it('a catch-all domain: verify proves over the wire that the backup MX accepts any of its addresses; mail to one reaches the catch-all\'s mailbox through the backup', async () => {
      const all = `all${dom}`;
      await world.addZone(all, { nameservers: [`ns1.${dom}`] });
      writeFileSync(file, `${text}  - name: ${all}\n    catch_all: alice@${dom}\n`);
      try {
        const r = await cli(['apply', '--yes', '--json', file], PW);
        expect(r.code, r.stderr).toBe(0);
        const checks = await verifySite(loaded(), readState(file), loaded().hosts, endpoint, resolver());
        const bad = checks.filter((c) => c.status !== 'ok');
        expect(bad, JSON.stringify(bad, null, 1)).toEqual([]);
        const mine = checks.filter((c) => c.host === bk.name && c.name.startsWith('backup MX') && c.name.includes(all));
        expect(mine.map((c) => [c.name, c.detail])).toEqual([[`backup MX accepts any address of ${all} at RCPT (its catch-all)`, `RCPT TO:<mailops-verify-unknown@${all}>: "${t.accepted}" (then RSET: nothing sent)`]]);
        // A message to an address no one has, handed to the backup MX: it relays it, the catch-all takes it.
        // (A bounce from a domain without DMARC: this test's address is not one peer.test's SPF allows.)
        const subject = `catch-all through the backup ${mta} ${Date.now()}`;
        const to = `whoever-${Date.now()}@${all}`;
        const sent = await smtp({ host: '127.0.0.1', port: (p) => bk.ports[p]! }, { port: 25, from: '', to: [to], body: message('mailer-daemon@mailops.test', to, subject) });
        expect(sent.stage, JSON.stringify(sent)).toBe('done');
        const ep: Ep = { host: '127.0.0.1', port: (p) => mb.ports[p]! };
        const msgs = await eventually(() => imapFetchAll(ep, `alice@${dom}`, PW.IT_ALICE_PASSWORD), (m) => m.some((x) => x.includes(subject)), 90);
        expect(msgs.find((x) => x.includes(subject))).toMatch(t.received(bk.ip));
      } finally {
        writeFileSync(file, text);
      }
      const back = await cli(['apply', '--yes', '--json', file], PW);
      expect(back.code, back.stderr).toBe(0);
    });
  });
}

