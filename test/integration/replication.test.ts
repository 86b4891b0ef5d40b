/**
 * Replication (stack.replication) in the mail world, with Postfix and with Exim, judged over IMAP and SMTP:
 * two mailbox hosts that already hold mail of their own (replication off) are turned into a replicated pair
 * by one apply, and then hold the same mail, folders and flags; a message delivered on one is readable on the
 * other within seconds and a flag set on one shows on the other, both ways, for a user who had mail before
 * and for one added with replication; a folder both hosts made while they could not reach each other ends up
 * with the messages of both. The doveadm password is in no output; only the other host may connect to the
 * doveadm port.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { statePath } from '../../src/state/state.js';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { World } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { SENDER_DOMAIN, cli, hostYaml, startVpsWorld, worldDnsYaml, writePlaybook } from './support/env.js';
import { eventually, imapCommands, message, pop3Count, smtp } from './support/mail.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import type { Endpoint } from '../../src/verify/checks.js';
import { replicationChecks } from '../../src/verify/replication.js';
import type { Ep } from './support/mail.js';

const PW = { IT_ALICE_PASSWORD: 'alice-Secret-1', IT_CAROL_PASSWORD: 'carol-Secret-2' };
const DOM = 'rp.test';
const alice = `alice@${DOM}`;
const carol = `carol@${DOM}`;
const passwords: Record<string, string> = { [alice]: PW.IT_ALICE_PASSWORD, [carol]: PW.IT_CAROL_PASSWORD };

// The world of the MTA under test (one after the other: Dovecot is the same under both).
let world: World;
let ra: VpsHost;
let rb: VpsHost;
let file: string;
let mta: 'postfix' | 'exim';

/** The playbook: two mailbox hosts, replicated or not; carol only with replication. */
function playbook(replication: boolean, pop3 = false): string {
  const mailboxes = replication ? ['alice', 'carol'] : ['alice'];
  return `site: replicated
hosts:
${hostYaml(world.vps, ra, { hostname: `mx1.${DOM}`, ipv4: ra.ip })}
${hostYaml(world.vps, rb, { hostname: `mx2.${DOM}`, ipv4: rb.ip })}
stack: { mta: ${mta}, imap: true, pop3: ${pop3}, replication: ${replication}, tls: { mode: self-signed } }
${worldDnsYaml(world, DOM)}
domains:
  - name: ${DOM}
    mailboxes:
${mailboxes.map((m) => `      - { name: ${m}, password: { env: IT_${m.toUpperCase()}_PASSWORD } }`).join('\n')}
    aliases:
      postmaster: alice
`;
}


const ep = (h: VpsHost): Ep => ({ host: '127.0.0.1', port: (p) => h.ports[p]! });
const imap = (h: VpsHost, user: string, commands: string[]) => imapCommands(ep(h), user, passwords[user]!, commands);

/** Deliver a message over SMTP to the host's port 25. */
async function deliver(h: VpsHost, user: string, subject: string): Promise<void> {
  const from = `someone@${SENDER_DOMAIN}`;
  const r = await smtp(ep(h), { port: 25, from, to: [user], body: message(from, user, subject) });
  expect(r.stage, r.reply.text).toBe('done');
}

/** Save a message into a folder over IMAP (APPEND, with a non-synchronizing literal). */
async function append(h: VpsHost, user: string, mailbox: string, subject: string): Promise<void> {
  const m = message(user, user, subject);
  await imap(h, user, [`APPEND "${mailbox}" {${Buffer.byteLength(m)}+}\r\n${m}`]);
}

/** "subject [flags]" of every message of a folder, in UID order, as IMAP shows them. */
async function listing(h: VpsHost, user: string, mailbox = 'INBOX'): Promise<string[]> {
  const [, fetch] = await imap(h, user, [`SELECT "${mailbox}"`, 'UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])']);
  const out: string[] = [];
  let flags = '';
  for (const l of fetch!) {
    const f = /FLAGS \(([^)]*)\)/.exec(l);
    if (f) flags = f[1]!.split(' ').filter((x) => x && x !== '\\Recent').sort().join(' ');
    const s = /^Subject: (.*)$/.exec(l);
    if (s) out.push(`${s[1]} [${flags}]`);
  }
  return out;
}

/** The UID and flags of the message with this subject in a user's INBOX on a host (undefined: not there). */
async function find(h: VpsHost, user: string, subject: string): Promise<{ uid: number; flags: string } | undefined> {
  const [, search] = await imap(h, user, ['SELECT INBOX', `UID SEARCH SUBJECT "${subject}"`]);
  const uid = Number(/^\* SEARCH (\d+)/m.exec(search!.join('\n'))?.[1] ?? 0);
  if (!uid) return undefined;
  const [, fetch] = await imap(h, user, ['SELECT INBOX', `UID FETCH ${uid} FLAGS`]);
  return { uid, flags: /FLAGS \(([^)]*)\)/.exec(fetch!.join('\n'))?.[1] ?? '' };
}

/** How many index logs (of every user) each host wrote in the last `seconds` seconds: syncs under way write them. */
async function written(seconds: number): Promise<number[]> {
  const count = `v=$(sed -n "s/^VMAIL='\\(.*\\)'$/\\1/p" /etc/mailops/replica.sh); find "$v" -name dovecot.index.log -newermt '-${seconds} seconds' | wc -l`;
  return Promise.all([ra, rb].map(async (h) => Number((await world.exec(h.container, count)).stdout.trim())));
}

/** Dovecot's journal and replication state on a host, for a failure message. */
async function logs(h: VpsHost): Promise<string> {
  const r = await world.exec(h.container, 'journalctl --no-pager -u dovecot -u mailops-replica -u mailops-replica-push 2>&1 | grep -v "imap-login\\|: imap(" | tail -n 30; doveadm replicator status "*" 2>&1; cat /run/mailops-replica/failed 2>&1');
  return `${h.name}:\n${r.stdout}`;
}

// Exim on Debian 12 (Dovecot 2.3: its replicator pushes the changes), Postfix on Debian 13 (Dovecot 2.4, which has
// none: mailops-replica-push does), and Postfix on a pair upgraded one host at a time (ra on Debian 12, rb on 13:
// 2.4 refuses what 2.3's replicator asks, so both push).
for (const [which, release] of [
  ['exim', 'bookworm'],
  ['postfix', 'trixie'],
  ['postfix', 'mixed'],
] as const) describe(`replication of two mailbox hosts with ${which} on ${release} (Dovecot dsync over TLS)`, () => {
  beforeAll(async () => {
    mta = which;
    // Mail comes from this test process, a sender with FCrDNS and SPF in the world's DNS.
    // The mail stack installed already (images/stack): this file's subject is replication, not packages.
    const stack = inject(release === 'trixie' ? 'stackTrixieImage' : which === 'exim' ? 'stackEximImage' : 'stackImage');
    world = await startVpsWorld({ vps: stack, dns: inject('dnsImage') }, [
      { name: 'ra', hostname: `mx1.${DOM}` },
      { name: 'rb', hostname: `mx2.${DOM}`, ...(release === 'mixed' ? { image: inject('stackTrixieImage') } : {}) },
    ]);
    ra = world.vps.hosts.find((h) => h.name === 'ra')!;
    rb = world.vps.hosts.find((h) => h.name === 'rb')!;
    await world.addZone(DOM, { nameservers: [`ns1.${DOM}`] });
  });
  afterAll(async () => world?.stop());

  it('without replication, each mailbox host keeps its own mail (MX 10 and 20)', async () => {
    file = writePlaybook(playbook(false));
    const r = await cli(['apply', '--yes', '--json', file], PW);
    expect(r.code, r.stderr).toBe(0);
    expect((await world.resolve(DOM, 'MX')).sort()).toEqual([`10 mx1.${DOM}.`, `20 mx2.${DOM}.`]);
    await deliver(ra, alice, 'held on ra');
    await deliver(rb, alice, 'held on rb');
    for (const [h, subject] of [
      [ra, 'held on ra'],
      [rb, 'held on rb'],
    ] as const) {
      expect(await eventually(() => listing(h, alice), (l) => l.length > 0)).toEqual([`${subject} []`]);
      // A folder of the same name made on each host, with a message of its own.
      await imap(h, alice, ['CREATE Projects']);
      await append(h, alice, 'Projects', `project note from ${h.name}`);
    }
    await imap(rb, alice, ['SELECT INBOX', 'UID STORE 1 +FLAGS (\\Flagged)']);
    expect(await listing(rb, alice)).toEqual(['held on rb [\\Flagged]']);
    expect(await listing(ra, alice, 'Projects')).toEqual(['project note from ra []']);
  });

  it('one apply turns replication on: MX both at 10, the mail, folders and flags each host held are on both; the doveadm password is in no output', async () => {
    // The same file: the certificates of both hosts that the earlier apply recorded beside it (the site state)
    // are what each host now trusts the other's by.
    writeFileSync(file, playbook(true));
    if (release === 'mixed') {
      // rb as the state knew it before its upgrade to Debian 13: with Dovecot 2.3. Its facts of this run say 2.4,
      // and ra, still on 2.3, must push from this very apply (2.4 refuses what 2.3's replicator asks).
      const st = JSON.parse(readFileSync(statePath(file), 'utf8')) as { dovecot: Record<string, string> };
      expect(st.dovecot).toEqual({ ra: '2.3', rb: '2.4' });
      writeFileSync(statePath(file), JSON.stringify({ ...st, dovecot: { ra: '2.3', rb: '2.3' } }, null, 2));
    }
    const r = await cli(['apply', '--yes', '--json', file], PW);
    expect(r.code, r.stderr).toBe(0);
    // Dovecot 2.4 on either host: the push syncs; 2.3 on both: the replicator does, handed the users who expunged mail by the same service.
    expect((await world.exec(ra.container, 'sed -n "s/^MODE=//p" /etc/mailops/replica.sh; systemctl is-active mailops-replica-push')).stdout.trim().split('\n')).toEqual([release === 'bookworm' ? 'replicator' : 'push', 'active']);
    expect(r.stderr).toContain(`${ra.name}: command trust the certificate of mx2.${DOM} for replication`);
    expect(r.stderr).toContain(`${rb.name}: command mailboxes made apart here and on mx1.${DOM} take its GUIDs`);
    expect((await world.resolve(DOM, 'MX')).sort()).toEqual([`10 mx1.${DOM}.`, `10 mx2.${DOM}.`]);
    const everything = ['held on ra []', 'held on rb [\\Flagged]'];
    for (const h of [ra, rb]) {
      const inbox = await eventually(() => listing(h, alice), (l) => l.length >= 2, 30);
      expect(inbox.slice().sort(), `${h.name}\n${await logs(ra)}\n${await logs(rb)}`).toEqual(everything);
      expect((await listing(h, alice, 'Projects')).sort()).toEqual(['project note from ra []', 'project note from rb []']);
    }
    const secret = async (h: VpsHost) => (await world.exec(h.container, "stat -c '%a %U' /etc/dovecot/replication.conf; sed -n 's/^doveadm_password = //p' /etc/dovecot/replication.conf")).stdout.trim().split('\n');
    const [a, b] = [await secret(ra), await secret(rb)];
    expect(a[0]).toBe('600 root');
    expect(a[1]).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b).toEqual(a);
    const p = await cli(['plan', '--detailed-exitcode', file], PW);
    expect(p.code, p.stdout + p.stderr).toBe(0);
    expect(r.stdout + r.stderr + p.stdout + p.stderr).not.toContain(a[1]);
  });

  it('only the other mailbox host may connect to the doveadm port, over TLS 1.3 with the certificate it recorded', async () => {
    expect((await world.exec(ra.container, 'ss -Hltn | grep -c ":12345 "')).stdout.trim()).toBe('1');
    expect((await world.exec(ra.container, 'nft list chain inet mailops input | grep 12345')).stdout.trim()).toBe(`ip saddr ${rb.ip} tcp dport 12345 accept`);
    const fp = async (h: VpsHost, cert: string) => (await world.exec(h.container, `openssl x509 -in ${cert} -noout -fingerprint -sha256`)).stdout.trim();
    expect(await fp(ra, '/etc/dovecot/replica-peer.pem')).toBe(await fp(rb, `/etc/mailops/tls/mx2.${DOM}.crt`));
    expect(await fp(rb, '/etc/dovecot/replica-peer.pem')).toBe(await fp(ra, `/etc/mailops/tls/mx1.${DOM}.crt`));
    const tls = await world.exec(rb.container, `echo | openssl s_client -connect mx1.${DOM}:12345 -brief 2>&1 | grep -E "^(Protocol version|CONNECTION ESTABLISHED)"`);
    expect(tls.stdout.trim().split('\n')).toEqual(['CONNECTION ESTABLISHED', 'Protocol version: TLSv1.3']);
  });

  for (const [from, to, user, f] of [
    ['ra', 'rb', alice, '\\Flagged'],
    ['rb', 'ra', alice, '\\Seen'],
    ['rb', 'ra', carol, '\\Flagged'],
    ['ra', 'rb', carol, '\\Seen'],
  ] as const) {
    it(`${user.split('@')[0]}: a message delivered on ${from} is readable over IMAP on ${to} within seconds; ${f} set on ${to} shows on ${from}`, async () => {
      const [a, b] = from === 'ra' ? [ra, rb] : [rb, ra];
      const subject = `replicated from ${from} ${Date.now()}`;
      await deliver(a, user, subject);
      const here = await eventually(() => find(a, user, subject), (m) => m !== undefined, 30);
      expect(here, 'not delivered').toBeDefined();
      const started = Date.now();
      const there = await eventually(() => find(b, user, subject), (m) => m !== undefined, 30);
      expect(there, `not replicated to ${to} in 30 s\n${there ? '' : `${await logs(a)}\n${await logs(b)}`}`).toBeDefined();
      expect((Date.now() - started) / 1000).toBeLessThan(30);
      // dsync keeps the UID: the same message on both hosts.
      expect(there!.uid).toBe(here!.uid);
      expect(here!.flags).not.toContain(f);
      await imap(b, user, ['SELECT INBOX', `UID STORE ${there!.uid} +FLAGS (${f})`]);
      const back = await eventually(() => find(a, user, subject), (m) => m?.flags.split(' ').includes(f) ?? false, 30);
      expect(back!.flags.split(' '), `${await logs(a)}`).toContain(f);
      // Delivered once: no copy made by replication.
      for (const h of [a, b]) expect((await listing(h, user)).filter((l) => l.startsWith(`${subject} [`))).toHaveLength(1);
    });
  }

  it('a message flagged deleted in one IMAP session and expunged in a later one (a mail client emptying the trash) is gone from the other host within seconds', async () => {
    // Dovecot 2.3's replicator is not told of an expunge alone (the replication plugin counts only the changes
    // users see): mailops-replica-push hands it the users whose expunges Dovecot logged.
    const subject = `expunged later ${Date.now()}`;
    await deliver(rb, alice, subject);
    const here = await eventually(() => find(rb, alice, subject), (m) => m !== undefined, 30);
    expect(here, 'not delivered').toBeDefined();
    const there = await eventually(() => find(ra, alice, subject), (m) => m !== undefined, 30);
    expect(there, `not replicated\n${await logs(ra)}\n${await logs(rb)}`).toBeDefined();
    await imap(rb, alice, ['SELECT INBOX', `UID STORE ${here!.uid} +FLAGS (\\Deleted)`]);
    const flagged = await eventually(() => find(ra, alice, subject), (m) => m?.flags.split(' ').includes('\\Deleted') ?? false, 30);
    expect(flagged!.flags.split(' '), 'the flag did not cross').toContain('\\Deleted');
    await imap(rb, alice, ['SELECT INBOX', 'EXPUNGE']);
    expect(await find(rb, alice, subject)).toBeUndefined();
    // 2.3: Dovecot logs the user's expunge (mail_log), where mailops-replica-push finds it.
    if (release === 'bookworm') {
      const line = new RegExp(`^imap\\(${alice.replace(/\./g, '\\.')}\\)<\\d+><[^>]+>: expunge: box=INBOX, uid=${here!.uid}$`, 'm');
      const j = await eventually(async () => (await world.exec(rb.container, 'journalctl --no-pager -o cat -u dovecot')).stdout, (x) => line.test(x), 10);
      expect(j).toMatch(line);
    }
    const gone = await eventually(() => find(ra, alice, subject), (m) => m === undefined, 30);
    expect(gone, `still on ra, flagged ${gone?.flags}\n${await logs(ra)}\n${await logs(rb)}`).toBeUndefined();
    // Then quiet: the syncs it asked for, of changes the other host already had, wrote no index log that would be
    // handed over again (no sync back and forth for ever). Nothing else changes mail meanwhile.
    await new Promise((r) => setTimeout(r, 8000));
    expect(await written(6), 'index logs written in the last 6 of 8 s of quiet, on ra and rb').toEqual([0, 0]);
  });

  it('one message delivered to a user on each host before either pushed (both took the same UID): both end up on both hosts', async () => {
    const t = Date.now();
    const subjects = { ra: `meanwhile on ra ${t}`, rb: `meanwhile on rb ${t}` };
    // The push (Dovecot 2.4, and both hosts of the mixed pair) is held between two rounds, so that both messages
    // are in before either host syncs; Dovecot 2.3's replicator cannot be held: the messages come at once.
    const held = release !== 'bookworm';
    if (held) for (const h of [ra, rb]) expect((await world.exec(h.container, 'systemctl kill -s STOP mailops-replica-push')).code).toBe(0);
    try {
      await Promise.all([deliver(ra, carol, subjects.ra), deliver(rb, carol, subjects.rb)]);
      const own = await Promise.all(([ra, rb] as const).map((h) => eventually(() => find(h, carol, subjects[h.name as 'ra' | 'rb']), (m) => m !== undefined, 30)));
      expect(own.every(Boolean), 'not delivered').toBe(true);
      if (held) expect(own[0]!.uid, 'the same UID on both hosts').toBe(own[1]!.uid);
    } finally {
      if (held) for (const h of [ra, rb]) await world.exec(h.container, 'systemctl kill -s CONT mailops-replica-push');
    }
    const both = [`${subjects.ra} []`, `${subjects.rb} []`].sort();
    for (const h of [ra, rb]) {
      const l = await eventually(async () => (await listing(h, carol)).filter((x) => x.startsWith('meanwhile on ') && x.includes(String(t))).map((x) => x.replace(/\[.*\]$/, '[]')).sort(), (x) => x.length === 2, 30);
      expect(l, `${h.name}\n${await logs(ra)}\n${await logs(rb)}`).toEqual(both);
    }
    // The push said why it synced in full.
    if (held) {
      const said = await Promise.all([ra, rb].map((h) => world.exec(h.container, 'journalctl --no-pager -u mailops-replica-push')));
      expect(said.map((r) => r.stdout).join('\n')).toMatch(new RegExp(`replication: ${carol.replace(/\./g, '\\.')}: a message here and another one on mx[12]\\.${DOM.replace(/\./g, '\\.')} took the same UID: synced in full`));
    }
  });

  // The push's own dsync (Dovecot 2.4): one pair is enough.
  if (release === 'trixie') it('a sync the other host stops answering is killed after a minute (doveadm, deaf to SIGTERM then, would wait until TCP gives up): said, tried again in full, and the message crosses once the host answers', async () => {
    // rb lets ra's connections to its doveadm port open, then drops everything ra sends on them: ra's doveadm
    // waits in the TLS handshake, where dsync's own stall timeout (-T) does not reach.
    const stall = `table inet stall {
  chain in { type filter hook input priority -10; ip saddr ${ra.ip} tcp dport 12345 ct state established drop; }
}
`;
    const since = (await world.exec(ra.container, 'date +%s')).stdout.trim();
    const r = await world.exec(rb.container, 'nft -f -', stall);
    expect(r.code, r.stderr).toBe(0);
    const subject = `stalled ${Date.now()}`;
    const failed = `replication: ${alice}: the sync with mx2.${DOM} failed, tried again in seconds:`;
    try {
      await deliver(ra, alice, subject);
      const said = await eventually(async () => (await world.exec(ra.container, `journalctl --no-pager -u mailops-replica-push --since @${since}`)).stdout, (x) => x.includes(failed), 180);
      expect(said, await logs(ra)).toContain(failed);
      expect(await find(rb, alice, subject)).toBeUndefined();
    } finally {
      await world.exec(rb.container, 'nft delete table inet stall');
    }
    const there = await eventually(() => find(rb, alice, subject), (m) => m !== undefined, 150);
    expect(there, `${await logs(ra)}\n${await logs(rb)}`).toBeDefined();
  });

  if (release === 'trixie') it('a full sync waits for no host that stopped answering: its TLS handshake first, 15 s at most (not the 10 minutes a full sync may take), said, and synced once the host answers', async () => {
    const stall = `table inet stall {
  chain in { type filter hook input priority -10; ip saddr ${ra.ip} tcp dport 12345 ct state established drop; }
}
`;
    const since = (await world.exec(ra.container, 'date +%s')).stdout.trim();
    const journal = async () => (await world.exec(ra.container, `journalctl --no-pager -o cat -u mailops-replica-push --since @${since}`)).stdout;
    const r = await world.exec(rb.container, 'nft -f -', stall);
    expect(r.code, r.stderr).toBe(0);
    try {
      // Every user in full at the next round (what `adopt` and `pin` ask).
      await world.exec(ra.container, ': > /run/mailops-replica/full');
      const said = await eventually(journal, (x) => x.includes(`did not complete a TLS handshake`), 120);
      expect(said, await logs(ra)).toMatch(new RegExp(`^replication: (alice|carol)@rp\\.test: the sync with mx2\\.${DOM.replace('.', '\\.')} failed, tried again in seconds: mx2\\.rp\\.test did not complete a TLS handshake on port 12345 within 15 s$`, 'm'));
    } finally {
      await world.exec(rb.container, 'nft delete table inet stall');
    }
    const back = await eventually(journal, (x) => /: synced with mx2\.rp\.test again$/m.test(x), 90);
    expect(back, await logs(ra)).toMatch(/^replication: (alice|carol)@rp\.test: synced with mx2\.rp\.test again$/m);
  });

  it('a change of Dovecot\'s settings alone (POP3 on): doveconf checks the staged dovecot.conf with the unchanged replication.conf it includes; both hosts converge and still replicate', async () => {
    writeFileSync(file, playbook(true, true));
    const r = await cli(['apply', '--yes', '--json', file], PW);
    expect(r.code, r.stderr).toBe(0);
    for (const h of [ra, rb]) expect(r.stderr).toContain(`${h.name}: validate doveconf -n\n`);
    for (const h of [ra, rb]) expect(await pop3Count(ep(h), alice, PW.IT_ALICE_PASSWORD)).toBeGreaterThan(0);
    const subject = `after the change ${which} ${Date.now()}`;
    await deliver(rb, alice, subject);
    expect(await eventually(() => find(ra, alice, subject), (m) => m !== undefined, 30), await logs(ra)).toBeDefined();
    const p = await cli(['plan', '--detailed-exitcode', file], PW);
    expect(p.code, p.stdout + p.stderr).toBe(0);
  });

  // The GUID repair is Dovecot's alone: proven on each of its generations.
  it('a folder both hosts made while they could not reach each other ends up with the messages of both, on both', async () => {
    const block = 'nft insert rule inet mailops input tcp dport 12345 drop';
    const unblock = "for h in $(nft -a list chain inet mailops input | sed -n 's/.*dport 12345 drop # handle //p'); do nft delete rule inet mailops input handle $h; done";
    // No sync under way as the port closes: the side of a dsync cut in the middle waits 10 minutes for the
    // other one (dsync's stream timeout) and holds the user's lock meanwhile.
    const settled = await eventually(() => written(4), (n) => n.every((x) => x === 0), 60);
    expect(settled, 'index logs still written after a minute').toEqual([0, 0]);
    for (const h of [ra, rb]) expect((await world.exec(h.container, block)).code).toBe(0);
    try {
      for (const h of [ra, rb]) {
        await imap(h, alice, ['CREATE Travel']);
        await append(h, alice, 'Travel', `itinerary from ${h.name}`);
      }
      for (const h of [ra, rb]) expect(await listing(h, alice, 'Travel')).toEqual([`itinerary from ${h.name} []`]);
    } finally {
      for (const h of [ra, rb]) await world.exec(h.container, unblock);
    }
    expect((await world.exec(ra.container, 'nft list chain inet mailops input | grep -c "dport 12345 drop"')).stdout.trim()).toBe('0');
    // 2.3: the second host's timer (every minute) finds the failed syncs, takes the first host's GUID and merges.
    const both = ['itinerary from ra []', 'itinerary from rb []'];
    for (const h of [rb, ra]) {
      // Dovecot ends an IMAP session whose folder the merge changed under it (a client logs in again): tried again.
      const l = await eventually(async () => (await listing(h, alice, 'Travel').catch((e: Error) => [`(IMAP: ${e.message})`])).sort(), (x) => x.length >= 2, 240);
      expect(l, `${await logs(ra)}\n${await logs(rb)}`).toEqual(both);
    }
    // Dovecot 2.3.19 cannot merge them: the second host takes the first host's GUID (replica.sh heal). 2.4's dsync
    // gives both one GUID itself, and the push syncs a user whose folders changed in full, which merges them.
    if (release === 'bookworm') expect((await world.exec(rb.container, 'journalctl --no-pager -u mailops-replica')).stdout).toContain(`replication: ${alice}: Travel takes the GUID it has on mx1.${DOM}`);
    // The merge is done; the replicator may still count alice's last sync as failed until its next try
    // succeeds (minutes under load), and plan shows the repair step until then: it converges, with no apply.
    let p = await cli(['plan', '--detailed-exitcode', file], PW);
    for (let i = 0; i < 60 && p.code === 2; i++) {
      await new Promise((r) => setTimeout(r, 5000));
      p = await cli(['plan', '--detailed-exitcode', file], PW);
    }
    expect(p.code, p.stdout + p.stderr).toBe(0);
  });

  it('verify proves the replication both ways over IMAP (a message appended on one host is on the other, then expunged); with the doveadm ports closed between the hosts, both directions fail and say so', async () => {
    Object.assign(process.env, PW);
    const site = loadSite(file).site;
    const state = readState(file);
    const endpoint = (h: { name: string }): Endpoint => ({ address: '127.0.0.1', port: (p) => (h.name === 'ra' ? ra : rb).ports[p]! });
    const detail = (from: string, to: string) => new RegExp(`^a message appended over IMAP as ${alice.replace('.', '\\.')} on ${from} was on ${to} after [\\d.]+ s \\(then expunged\\)$`);
    const good = await replicationChecks(site, state, site.hosts, endpoint);
    expect(good.map((c) => [c.host, c.name, c.status]), JSON.stringify(good)).toEqual([
      ['ra', 'replication ra → rb', 'ok'],
      ['rb', 'replication rb → ra', 'ok'],
    ]);
    expect(good[0]!.detail).toMatch(detail('ra', 'rb'));
    expect(good[1]!.detail).toMatch(detail('rb', 'ra'));
    // verify's message is gone again, on both hosts.
    for (const h of [ra, rb]) {
      const left = await eventually(async () => (await listing(h, alice)).filter((l) => l.startsWith('mailops-verify-')), (x) => x.length === 0, 60);
      expect(left, `${h.name}\n${await logs(ra)}\n${await logs(rb)}`).toEqual([]);
    }

    // rb neither accepts ra's syncs nor reaches ra's doveadm port: no change crosses, either way.
    const shut = `table inet shut {
  chain in { type filter hook input priority -10; ip saddr ${ra.ip} tcp dport 12345 reject with tcp reset; }
  chain out { type filter hook output priority -10; ip daddr ${ra.ip} tcp dport 12345 reject with tcp reset; }
}
`;
    const r = await world.exec(rb.container, 'nft -f -', shut);
    expect(r.code, r.stderr).toBe(0);
    try {
      const bad = await replicationChecks(site, state, site.hosts, endpoint, {}, 10_000);
      expect(bad.map((c) => [c.name, c.status, c.detail.replace(/after [\d.]+ s/, 'after N s')])).toEqual([
        ['replication ra → rb', 'failed', `a message appended over IMAP as ${alice} on ra was not on rb after N s: the replication from ra to rb does not work`],
        ['replication rb → ra', 'failed', `a message appended over IMAP as ${alice} on rb was not on ra after N s: the replication from rb to ra does not work`],
      ]);
    } finally {
      await world.exec(rb.container, 'nft delete table inet shut');
    }
  });
});
