/**
 * Several hosts done right, in the mail world: the outbound smarthost (stack.relay) for Postfix (port 465,
 * TLS from the first byte) and Exim (587, STARTTLS): every outbound message leaves through the world's
 * relay, which requires AUTH, and the strict peer judges it dkim=pass for our domain; verify checks the
 * relay accepts our login and reports the exact refusal for a wrong password. A backup MX (Postfix and Exim)
 * refuses unknown recipients at RCPT, queues mail while the mailbox host is down and delivers it once when it
 * is back. Apply converges the mailbox host and the backup in the order that keeps their recipients in step.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PEER_HOSTNAME, RELAY_HOSTNAME, startWorld } from '../../src/testbed/world.js';
import type { World } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { judge, verdictOf } from '../../src/verify/verdict.js';
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
      { name: 'pf', hostname: 'mail.pf.test' },
      { name: 'ex', hostname: 'mail.ex.test' },
      { name: 'mb', hostname: 'mx1.bx.test' },
      { name: 'bk', hostname: 'mx2.bx.test' },
      { name: 'emb', hostname: 'mx1.bxe.test' },
      { name: 'ebk', hostname: 'mx2.bxe.test' },
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
  });
}

