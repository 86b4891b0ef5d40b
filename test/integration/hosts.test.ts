/**
 * Several hosts done right, in the mail world: the outbound smarthost (stack.relay) for Postfix (port 465,
 * TLS from the first byte) and Exim (587, STARTTLS): every outbound message leaves through the world's
 * relay, which requires AUTH, and the strict peer judges it dkim=pass for our domain; verify checks the
 * relay accepts our login and reports the exact refusal for a wrong password. A backup MX (Postfix and Exim)
 * refuses unknown recipients at RCPT, queues mail while the mailbox host is down and delivers it once when it
 * is back. With replication, two mailbox hosts hold the same mailboxes: a message or a flag on one shows on
 * the other within seconds, both ways.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PEER_HOSTNAME, RELAY_HOSTNAME, startWorld } from '../../src/testbed/world.js';
import type { World } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { judge, verdictOf } from '../../src/verify/verdict.js';
import { cli, writePlaybook } from './support/env.js';
import { dialogue, eventually, imapCommands, imapFetchAll, message, smtp } from './support/mail.js';
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
      { name: 'ra', hostname: 'mx1.rp.test' },
      { name: 'rb', hostname: 'mx2.rp.test' },
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

describe('replication (two mailbox hosts, Dovecot dsync over TLS)', () => {
  const dom = 'rp.test';
  let ra: VpsHost;
  let rb: VpsHost;
  let file: string;
  const alice = `alice@${dom}`;
  const ep = (h: VpsHost): Ep => ({ host: '127.0.0.1', port: (p) => h.ports[p]! });
  const host = (h: VpsHost, hostname: string) => `  - name: ${h.name}
    ssh: { address: 127.0.0.1, port: ${h.ports[22]}, identity: ${world.vps.identity}, host_key: "${h.hostKey}" }
    hostname: ${hostname}
    ipv4: ${h.ip}`;
  /** Deliver a message to alice on one host, over SMTP to its port 25. */
  const deliver = async (h: VpsHost, subject: string) => {
    const r = await smtp(ep(h), { port: 25, from: 'someone@peer.test', to: [alice], body: message('someone@peer.test', alice, subject) });
    expect(r.stage, r.reply.text).toBe('done');
  };
  /** The UID and flags of the message with this subject in alice's INBOX on a host (undefined: not there). */
  const find = async (h: VpsHost, subject: string): Promise<{ uid: number; flags: string } | undefined> => {
    const [, search] = await imapCommands(ep(h), alice, PW.IT_ALICE_PASSWORD, ['SELECT INBOX', `UID SEARCH SUBJECT "${subject}"`]);
    const uid = Number(/^\* SEARCH (\d+)/m.exec(search!.join('\n'))?.[1] ?? 0);
    if (!uid) return undefined;
    const [, fetch] = await imapCommands(ep(h), alice, PW.IT_ALICE_PASSWORD, ['SELECT INBOX', `UID FETCH ${uid} FLAGS`]);
    return { uid, flags: /FLAGS \(([^)]*)\)/.exec(fetch!.join('\n'))?.[1] ?? '' };
  };
  const flag = (h: VpsHost, uid: number, f: string) => imapCommands(ep(h), alice, PW.IT_ALICE_PASSWORD, ['SELECT INBOX', `UID STORE ${uid} +FLAGS (${f})`]);

  beforeAll(async () => {
    ra = world.vps.hosts.find((h) => h.name === 'ra')!;
    rb = world.vps.hosts.find((h) => h.name === 'rb')!;
    file = writePlaybook(`site: replicated
hosts:
${host(ra, `mx1.${dom}`)}
${host(rb, `mx2.${dom}`)}
stack: { mta: postfix, imap: true, pop3: false, replication: true, tls: { mode: self-signed } }
dns:
  ttl: 300
  nameservers:
    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }
  update: { server: "127.0.0.1:${world.dns.port}", key: { file: ${world.dns.keyFile} } }
domains:
  - name: ${dom}
    dmarc: { policy: reject }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
    aliases:
      postmaster: alice
`);
    await world.addZone(dom, { nameservers: [`ns1.${dom}`] });
  });

  it('apply converges both hosts (MX both at 10); they share a doveadm password that no output shows; the doveadm port lets in the other host only', async () => {
    const r = await cli(['apply', '--yes', '--json', file], PW);
    expect(r.code, r.stderr).toBe(0);
    expect((await world.resolve(dom, 'MX')).sort()).toEqual([`10 mx1.${dom}.`, `10 mx2.${dom}.`]);
    // The first apply recorded each host's certificate; the second makes each trust the other's for dsync.
    const pin = await cli(['apply', '--yes', '--json', file], PW);
    expect(pin.code, pin.stderr).toBe(0);
    expect(JSON.parse(pin.stdout).hosts.map((h: { name: string; changes: number }) => [h.name, h.changes])).toEqual([
      [ra.name, 1],
      [rb.name, 1],
    ]);
    expect(pin.stderr).toContain(`${ra.name}: command trust the certificate of mx2.${dom} for replication`);
    // ra trusts exactly the certificate rb serves.
    const fp = async (h: VpsHost, cert: string) => (await world.exec(h.container, `openssl x509 -in ${cert} -noout -subject -fingerprint -sha256`)).stdout.trim();
    expect(await fp(ra, '/etc/dovecot/replica-peer.pem')).toBe(await fp(rb, `/etc/mailops/tls/mx2.${dom}.crt`));
    expect(await fp(ra, '/etc/dovecot/replica-peer.pem')).toMatch(new RegExp(`^subject=CN = mx2\\.rp\\.test\\nsha256 Fingerprint=[0-9A-F:]{95}$`));
    const secret = async (h: VpsHost) => (await world.exec(h.container, "stat -c '%a %U' /etc/dovecot/replication.conf; sed -n 's/^doveadm_password = //p' /etc/dovecot/replication.conf")).stdout.trim().split('\n');
    const [a, b] = [await secret(ra), await secret(rb)];
    expect(a[0]).toBe('600 root');
    expect(a[1]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b).toEqual(a);
    const p = await cli(['plan', '--detailed-exitcode', file], PW);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    expect(r.stdout + r.stderr + pin.stdout + pin.stderr + p.stdout + p.stderr).not.toContain(a[1]);
    // Listening with TLS on 12345; the firewall accepts it from the other mailbox host's address only.
    expect((await world.exec(ra.container, 'ss -Hltn | grep -c ":12345 "')).stdout.trim()).toBe('1');
    expect((await world.exec(ra.container, 'nft list chain inet mailops input | grep 12345')).stdout.trim()).toBe(`ip saddr ${rb.ip} tcp dport 12345 accept`);
    const tls = await world.exec(rb.container, `echo | openssl s_client -connect mx1.${dom}:12345 -brief 2>&1 | grep -E "^(Protocol version|CONNECTION ESTABLISHED)"`);
    expect(tls.stdout.trim().split('\n')).toEqual(['CONNECTION ESTABLISHED', 'Protocol version: TLSv1.3']);
  });

  for (const [from, to, f] of [
    ['ra', 'rb', '\\Flagged'],
    ['rb', 'ra', '\\Seen'],
  ] as const) {
    it(`a message delivered on ${from} is readable over IMAP on ${to} within seconds; ${f} set on ${to} shows on ${from}`, async () => {
      const [a, b] = [from === 'ra' ? ra : rb, to === 'ra' ? ra : rb];
      const subject = `replicated from ${from} ${Date.now()}`;
      await deliver(a, subject);
      const started = Date.now();
      const there = await eventually(() => find(b, subject), (m) => m !== undefined, 30);
      const logs = async () => `${from}:\n${(await world.exec(a.container, 'journalctl --no-pager -u dovecot 2>&1 | grep -v imap | tail -n 25; doveadm replicator status "*" 2>&1; timeout 20 doveadm -D sync -u alice@rp.test -d 2>&1 | tail -n 25')).stdout}\n${to}:\n${(await world.exec(b.container, 'journalctl --no-pager -n 20 -u dovecot 2>&1')).stdout}`;
      expect(there, `not replicated to ${to} in 30 s\n${there ? '' : await logs()}`).toBeDefined();
      const seconds = (Date.now() - started) / 1000;
      expect(seconds).toBeLessThan(30);
      const here = (await find(a, subject))!;
      // dsync keeps the UID: the same message on both hosts.
      expect(there!.uid).toBe(here.uid);
      expect(here.flags).not.toContain(f);
      await flag(b, there!.uid, f);
      const back = await eventually(() => find(a, subject), (m) => m?.flags.includes(f) ?? false, 30);
      expect(back!.flags.split(' ')).toContain(f);
      // Delivered once on each host: no duplicate from replication.
      expect((await imapFetchAll(ep(a), alice, PW.IT_ALICE_PASSWORD)).filter((m) => m.includes(subject)).length).toBe(1);
      expect((await imapFetchAll(ep(b), alice, PW.IT_ALICE_PASSWORD)).filter((m) => m.includes(subject)).length).toBe(1);
    });
  }
});
