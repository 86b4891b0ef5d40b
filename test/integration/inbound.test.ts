/**
 * Inbound protection, one case table for Postfix and for Exim, over the wire in the mail world: rspamd
 * scores what strangers send on port 25 (GTUBE refused at DATA, spam filed in Junk by Sieve), the sender's
 * SPF, DKIM and DMARC are checked (by rspamd, through the world's BIND) and recorded in
 * Authentication-Results, a DMARC p=reject that fails is refused and a p=quarantine filed in Junk, forged
 * senders of our own domains are refused, our own users and the host itself are never scored, a DNS
 * blocklist (a zone in the world's BIND) refuses a listed client on port 25 but not on submission, and
 * `antispam: false` takes rspamd away again. Every SMTP session of a stranger comes from an outside client
 * container on the world's network; the replies asserted are the exact ones users and peers see.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorld, txtData } from '../../src/testbed/world.js';
import type { World, WorldClient } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { cli, hostYaml, writePlaybook } from './support/env.js';
import { swaksCommand, swaksOutcome } from './support/client.js';
import type { ClientSmtp } from './support/client.js';
import { eventually, imapFetchAll, imapList } from './support/mail.js';
import type { Ep, SmtpOutcome } from './support/mail.js';

const PW = { IT_ALICE_PASSWORD: 'alice-Secret-1', IT_BOB_PASSWORD: 'bob-Secret-2' };
const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
const BLOCKLIST = 'bl.blocklist.test';
const LISTED_TXT = 'Listed by bl.blocklist.test: test client';

let world: World;
let outside: WorldClient;
let listed: WorldClient;
/** What each MTA answered, for the record (printed at the end). */
const observed: string[] = [];

beforeAll(async () => {
  world = await startWorld({
    images: { vps: inject('vpsImage'), dns: inject('dnsImage'), peer: inject('peerImage'), client: inject('clientImage') },
    hosts: [
      { name: 'pf', hostname: 'mail.pf.test', image: inject('stackImage') },
      { name: 'ex', hostname: 'mail.ex.test', image: inject('stackEximImage') },
      // Debian 13: Dovecot 2.4 files Junk with its own Sieve settings.
      { name: 'pf13', hostname: 'mail.pf13.test', image: inject('stackTrixieImage') },
    ],
    clients: [
      { name: 'outside', hostname: 'mail.sender.test' },
      { name: 'listed', hostname: 'mail.listed.test' },
    ],
  });
  [outside, listed] = world.clients as [WorldClient, WorldClient];
  // Two strangers that look like real mail servers (FCrDNS, MX, SPF for their own address)...
  for (const [c, dom] of [
    [outside, 'sender.test'],
    [listed, 'listed.test'],
  ] as const) {
    await world.addZone(dom);
    await world.setRecords(dom, [`add ${c.hostname}. 60 A ${c.ip}`, `add ${dom}. 60 MX 10 ${c.hostname}.`, `add ${dom}. 60 TXT ${txtData(`v=spf1 ip4:${c.ip} -all`)}`]);
  }
  // ...two domains whose DMARC policy is reject and quarantine, and whose SPF names another server...
  for (const [dom, policy] of [
    ['reject.test', 'reject'],
    ['quarantine.test', 'quarantine'],
  ] as const) {
    await world.addZone(dom);
    await world.setRecords(dom, [`add ${dom}. 60 MX 10 mail.${dom}.`, `add mail.${dom}. 60 A 192.0.2.20`, `add ${dom}. 60 TXT ${txtData('v=spf1 ip4:192.0.2.20 -all')}`, `add _dmarc.${dom}. 60 TXT ${txtData(`v=DMARC1; p=${policy}`)}`]);
  }
  // ...and a DNS blocklist that lists one of the two strangers (A 127.0.0.2 and a TXT reason), not the other.
  const reversed = listed.ip.split('.').reverse().join('.');
  await world.addZone('blocklist.test');
  await world.setRecords('blocklist.test', [`add ${reversed}.${BLOCKLIST}. 60 A 127.0.0.2`, `add ${reversed}.${BLOCKLIST}. 60 TXT ${txtData(LISTED_TXT)}`]);
  expect(await world.resolve(`${reversed}.${BLOCKLIST}`)).toEqual(['127.0.0.2']);
  expect(await world.resolve(`${outside.ip.split('.').reverse().join('.')}.${BLOCKLIST}`)).toEqual([]);
});
afterAll(async () => {
  if (observed.length) process.stderr.write(`[inbound] what the MTAs answered:\n${observed.join('\n')}\n`);
  await world?.stop();
});

function playbook(mta: 'postfix' | 'exim', h: VpsHost, dom: string, stack = ''): string {
  return `site: inbound-${h.name}
hosts:
${hostYaml(world.vps, h, { hostname: `mail.${dom}`, ipv4: h.ip })}
stack:
  mta: ${mta}
  imap: true
  pop3: false
  tls: { mode: self-signed }
  dnsbl: [${BLOCKLIST}]
${stack}
dns:
  ttl: 60
  nameservers:
    - { name: ns1.${dom}, ipv4: ${world.dns.ip} }
  update:
    server: 127.0.0.1:${world.dns.port}
    key: { file: ${world.dns.keyFile} }
domains:
  - name: ${dom}
    dkim: { selector: mail, key: rsa-2048 }
    # p=none: forged senders of this domain are refused by the forgery rule, not by a published policy.
    dmarc: { policy: none }
    mailboxes:
      - name: alice
        password: { env: IT_ALICE_PASSWORD }
      - name: bob
        password: { env: IT_BOB_PASSWORD }
    aliases:
      postmaster: alice
`;
}

/** A message as a sender's mail program writes it (Date, Message-ID unless left out). */
function rfc822(o: { from: string; to: string; subject: string; body: string; html?: boolean; messageId?: boolean; extra?: string[] }): string {
  const head = [
    `From: ${o.from}`,
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Date: ${new Date().toUTCString().replace(/GMT$/, '+0000')}`,
    ...(o.messageId === false ? [] : [`Message-ID: <${Date.now()}.${Math.random().toString(36).slice(2)}@${/@([^>]+)>?$/.exec(o.from)?.[1] ?? 'mailops.test'}>`]),
    'MIME-Version: 1.0',
    `Content-Type: text/${o.html ? 'html' : 'plain'}; charset=utf-8`,
    ...(o.extra ?? []),
  ];
  return `${head.join('\n')}\n\n${o.body}\n`;
}

/** Header fields unfolded (Postfix's milter folds Authentication-Results over lines, Exim's ACL does not). */
const unfolded = (raw: string) => raw.split(/\r?\n\r?\n/)[0]!.replace(/\r?\n[ \t]+/g, ' ');
const header = (raw: string, name: string) => unfolded(raw).split(/\r?\n/).filter((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}: `));

/**
 * An Authentication-Results field: its authserv-id and its results, each "method=result ...", in any order
 * (rspamd lists SPF and DMARC in no fixed order). A RegExp matches a result whose text varies (header.b=).
 */
interface AuthResults {
  authserv: string;
  results: Array<string | RegExp>;
}

type Send = { client: 'outside' | 'listed'; port: 25 | 587; auth?: 'alice' | 'bob'; from: string; to: string; data: string } | { peer: { from: string; to: string; body: string } } | { host: { from: string; to: string; data: string } };
type Want =
  /** `stage` may differ by MTA (Postfix asks its milters from the start of a session, Exim at DATA). */
  | { refused: string; stage: SmtpOutcome['stage'] | Record<'postfix' | 'exim', SmtpOutcome['stage']> }
  | { folder: 'INBOX' | 'Junk'; mailbox: 'alice' | 'bob'; headers: Array<RegExp | string>; authResults?: AuthResults; absent?: string[] };
interface Case {
  name: string;
  send: (dom: string, subject: string) => Send;
  want: (dom: string) => Want;
  /** Shell run on the host around the case (e.g. stop rspamd, then start it again). */
  around?: { before: string; after: string };
}

const spfPass = (dom: string, from: string, ip: string) => `spf=pass (mail.${dom}: domain of ${from} designates ${ip} as permitted sender) smtp.mailfrom=${from}`;
const WAIT_RSPAMD = `bash -c 'for i in $(seq 120); do (exec 3<>/dev/tcp/127.0.0.1/11332 && exec 4<>/dev/tcp/127.0.0.1/11333) 2>/dev/null && exit 0; sleep 0.5; done; exit 1'`;

/** Xavier's mail (sender.test: SPF passes, no DKIM, no DMARC record), judged clean: INBOX, our verdicts only. */
const xavierInInbox = (dom: string): Want => ({
  folder: 'INBOX',
  mailbox: 'alice',
  headers: [/^X-Spam-Status: No, score=-?\d+\.\d\d$/],
  authResults: { authserv: `mail.${dom}`, results: ['dkim=none', spfPass(dom, 'xavier@sender.test', outside.ip), 'dmarc=none'] },
  absent: ['X-Spam'],
});

/** The table: what a stranger, a peer, one of our users or the host sends, and what must come of it. */
const CASES: Case[] = [
  {
    name: 'GTUBE from a stranger on 25: refused at DATA',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'news@sender.test', to: `alice@${dom}`, data: rfc822({ from: 'news@sender.test', to: `alice@${dom}`, subject, body: GTUBE }) }),
    want: () => ({ refused: '554 5.7.1 Gtube pattern', stage: 'data' }),
  },
  {
    name: 'phishing from a stranger whose SPF passes (spam, not bad enough to refuse): filed in Junk, X-Spam-Status: Yes',
    send: (dom, subject) => ({
      client: 'outside',
      port: 25,
      from: 'promo@sender.test',
      to: `alice@${dom}`,
      data: rfc822({
        from: '"PayPal Security" <promo@sender.test>',
        to: `alice@${dom}`,
        subject: `URGENT: YOUR ACCOUNT HAS BEEN SUSPENDED ${subject.toUpperCase()}`,
        html: true,
        messageId: false,
        body: '<html><body><p>Dear Customer,</p><p>We detected unusual activity. Your account has been <b>suspended</b>. Verify your identity within 24 hours or it will be closed:</p><p><a href="http://paypal-verify.sender.test/login">https://www.paypal.com/signin</a></p><p>Thank you,<br>The PayPal Team</p></body></html>',
      }),
    }),
    want: (dom) => ({
      folder: 'Junk',
      mailbox: 'alice',
      headers: [/^X-Spam-Status: Yes, score=([6-9]|1[0-4])\.\d\d$/, 'X-Spam: Yes'],
      authResults: { authserv: `mail.${dom}`, results: ['dkim=none', spfPass(dom, 'promo@sender.test', outside.ip), 'dmarc=none'] },
    }),
  },
  {
    name: 'DKIM-signed mail from the peer (SPF pass, DMARC p=reject passes): INBOX, dkim=pass spf=pass dmarc=pass',
    send: (dom, subject) => ({ peer: { from: 'someone@peer.test', to: `alice@${dom}`, body: `Hello Alice, the minutes of today's meeting are below.\n\n${subject}\n` } }),
    want: (dom) => ({
      folder: 'INBOX',
      mailbox: 'alice',
      headers: [/^X-Spam-Status: No, score=-?\d+\.\d\d$/],
      authResults: { authserv: `mail.${dom}`, results: [/^dkim=pass header\.d=peer\.test header\.s=peer header\.b=("[A-Za-z0-9+/]{8}"|[A-Za-z0-9+/]{8})$/, spfPass(dom, 'someone@peer.test', world.peer!.ip), 'dmarc=pass (policy=reject) header.from=peer.test'] },
      absent: ['X-Spam'],
    }),
  },
  {
    name: 'plain mail from a stranger that is not listed, with SPF and FCrDNS: INBOX, spf=pass, dkim=none, dmarc=none',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'xavier@sender.test', to: `alice@${dom}`, data: rfc822({ from: 'Xavier <xavier@sender.test>', to: `Alice <alice@${dom}>`, subject, body: 'Hi Alice,\n\nare we still on for lunch on Friday? The new place near the station opens at noon.\n\nCheers,\nXavier' }) }),
    want: xavierInInbox,
  },
  {
    name: 'verdict headers a stranger wrote itself (X-Spam: No, X-Spam-Status, an Authentication-Results claiming pass): replaced by ours',
    send: (dom, subject) => ({
      client: 'outside',
      port: 25,
      from: 'xavier@sender.test',
      to: `alice@${dom}`,
      data: rfc822({
        from: 'Xavier <xavier@sender.test>',
        to: `Alice <alice@${dom}>`,
        subject,
        extra: ['X-Spam: No', 'X-Spam-Status: No, score=-50.00', `Authentication-Results: mail.${dom}; dkim=pass header.d=paypal.com; spf=pass smtp.mailfrom=paypal.com; dmarc=pass header.from=paypal.com`],
        body: 'Hi Alice,\n\nthe photos of Saturday are in the shared album.\n\nXavier',
      }),
    }),
    want: xavierInInbox,
  },
  {
    name: 'a sender domain with DMARC p=reject, its SPF failing and no DKIM: refused at DATA',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'billing@reject.test', to: `alice@${dom}`, data: rfc822({ from: 'billing@reject.test', to: `alice@${dom}`, subject, body: 'Hello,\n\nthe invoice of this month is in the shared folder as usual.\n\nRegards' }) }),
    want: () => ({ refused: "554 5.7.1 Rejected by the DMARC policy of the sender's domain: no aligned SPF or DKIM pass", stage: 'data' }),
  },
  {
    name: 'a sender domain with DMARC p=quarantine, its SPF failing and no DKIM: filed in Junk, dmarc=fail',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'billing@quarantine.test', to: `alice@${dom}`, data: rfc822({ from: 'billing@quarantine.test', to: `alice@${dom}`, subject, body: 'Hello,\n\nthe invoice of this month is in the shared folder as usual.\n\nRegards' }) }),
    want: (dom) => ({
      folder: 'Junk',
      mailbox: 'alice',
      headers: [/^X-Spam-Status: Yes, score=\d+\.\d\d$/, 'X-Spam: Yes'],
      authResults: {
        authserv: `mail.${dom}`,
        results: [
          'dkim=none',
          `spf=fail (mail.${dom}: domain of billing@quarantine.test does not designate ${outside.ip} as permitted sender) smtp.mailfrom=billing@quarantine.test`,
          'dmarc=fail reason="No valid SPF, No valid DKIM" header.from=quarantine.test (policy=quarantine)',
        ],
      },
    }),
  },
  {
    name: 'a stranger forging one of our own domains (envelope and From, no AUTH, SPF fail, no DKIM): refused at DATA',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: `bob@${dom}`, to: `alice@${dom}`, data: rfc822({ from: `bob@${dom}`, to: `alice@${dom}`, subject, body: 'Alice, please pay the attached invoice today.\n\nBob' }) }),
    want: (dom) => ({ refused: `554 5.7.1 Forged sender: ${dom} is a domain of this server, and this message has neither its SPF pass nor its DKIM signature`, stage: 'data' }),
  },
  {
    name: 'a stranger forging one of our own domains in the From header only (its envelope sender passes SPF): refused at DATA',
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'bounce@sender.test', to: `alice@${dom}`, data: rfc822({ from: `"The CEO" <ceo@${dom}>`, to: `alice@${dom}`, subject, body: 'Alice, please wire the money to the new account today.\n\nThe CEO' }) }),
    want: (dom) => ({ refused: `554 5.7.1 Forged sender: ${dom} is a domain of this server, and this message has neither its SPF pass nor its DKIM signature`, stage: 'data' }),
  },
  {
    name: 'our own user, authenticated on 587, to a local mailbox: INBOX, signed, never scored (no verdict headers)',
    send: (dom, subject) => ({ client: 'outside', port: 587, auth: 'alice', from: `alice@${dom}`, to: `bob@${dom}`, data: rfc822({ from: `Alice <alice@${dom}>`, to: `Bob <bob@${dom}>`, subject, body: 'Bob, the slides for Monday are ready.\n\nAlice' }) }),
    want: (dom) => ({ folder: 'INBOX', mailbox: 'bob', headers: [new RegExp(`^DKIM-Signature: v=1; a=rsa-sha256; .*\\bd=${reEscape(dom)};`)], absent: ['X-Spam-Status', 'X-Spam', 'Authentication-Results'] }),
  },
  {
    name: "the host's own mail (sendmail, as cron sends it) in our domain: INBOX, never scored",
    send: (dom, subject) => ({ host: { from: `alice@${dom}`, to: `bob@${dom}`, data: `From: alice@${dom}\nTo: bob@${dom}\nSubject: ${subject}\n\nThe nightly backup finished.\n` } }),
    want: () => ({ folder: 'INBOX', mailbox: 'bob', headers: [], absent: ['X-Spam-Status', 'X-Spam', 'Authentication-Results'] }),
  },
  {
    name: 'a client on the DNS blocklist, on 25: refused at RCPT with a 554 naming the list',
    send: (dom, subject) => ({ client: 'listed', port: 25, from: 'someone@listed.test', to: `alice@${dom}`, data: rfc822({ from: 'someone@listed.test', to: `alice@${dom}`, subject, body: 'Hello Alice.' }) }),
    want: () => ({ refused: `554 5.7.1 Service unavailable; Client host [${listed.ip}] blocked using ${BLOCKLIST}; ${LISTED_TXT}`, stage: 'rcpt' }),
  },
  {
    name: 'the same listed client, authenticated on 587 as one of our users: accepted, INBOX',
    send: (dom, subject) => ({ client: 'listed', port: 587, auth: 'bob', from: `bob@${dom}`, to: `alice@${dom}`, data: rfc822({ from: `Bob <bob@${dom}>`, to: `Alice <alice@${dom}>`, subject, body: 'Alice, sent from the hotel.\n\nBob' }) }),
    want: () => ({ folder: 'INBOX', mailbox: 'alice', headers: [], absent: ['X-Spam-Status', 'X-Spam'] }),
  },
  {
    name: 'rspamd not answering: port-25 mail tempfailed (Postfix at MAIL, Exim at DATA), never taken unscored',
    around: { before: 'systemctl stop rspamd', after: `systemctl start rspamd && ${WAIT_RSPAMD}` },
    send: (dom, subject) => ({ client: 'outside', port: 25, from: 'xavier@sender.test', to: `alice@${dom}`, data: rfc822({ from: 'xavier@sender.test', to: `alice@${dom}`, subject, body: 'Hi Alice, one more thing about Friday.' }) }),
    want: () => ({ refused: '451 4.7.1 Service unavailable - try again later', stage: { postfix: 'mail', exim: 'data' } }),
  },
];

function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

for (const [mta, name] of [
  ['postfix', 'pf'],
  ['exim', 'ex'],
  ['postfix', 'pf13'],
] as const) {
  describe(`inbound protection on ${mta}${name === 'pf13' ? ', Debian 13' : ''}`, () => {
    const dom = `${name}.test`;
    let host: VpsHost;
    let file: string;
    let ep: Ep;
    const users = { alice: { user: `alice@${dom}`, password: PW.IT_ALICE_PASSWORD }, bob: { user: `bob@${dom}`, password: PW.IT_BOB_PASSWORD } };
    const onHost = async (cmd: string) => {
      const r = await world.vps.exec(host, cmd);
      expect(r.code, `${cmd}: ${r.stderr}`).toBe(0);
      return r.stdout;
    };
    const fromClient = async (c: WorldClient, o: Omit<ClientSmtp, 'server' | 'helo'>): Promise<SmtpOutcome> => {
      const r = await world.exec(c.container, swaksCommand({ ...o, server: host.ip, helo: c.hostname }), o.data);
      return swaksOutcome(r.stdout + r.stderr);
    };
    const folder = (who: 'alice' | 'bob', box: 'INBOX' | 'Junk') => imapFetchAll(ep, users[who].user, users[who].password, box);

    beforeAll(async () => {
      host = world.vps.hosts.find((h) => h.name === name)!;
      ep = { host: '127.0.0.1', port: (p) => host.ports[p]! };
      await world.addZone(dom, { nameservers: [`ns1.${dom}`] });
      file = writePlaybook(playbook(mta, host, dom));
      const r = await cli(['apply', '--yes', file], PW);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    });

    it('apply runs rspamd and Redis (loopback only) and points the MTA at them; a second plan has nothing to do', async () => {
      expect((await onHost('systemctl is-active rspamd redis-server; systemctl is-enabled rspamd redis-server')).split('\n').filter(Boolean)).toEqual(['active', 'active', 'enabled', 'enabled']);
      const listening = await onHost("ss -Hltn | awk '{print $4}' | sort");
      expect(listening).toMatch(/^127\.0\.0\.1:11332$/m);
      expect(listening).toMatch(/^127\.0\.0\.1:11333$/m);
      expect(listening).toMatch(/^127\.0\.0\.1:6379$/m);
      expect(listening).not.toMatch(/^(0\.0\.0\.0|\*|\[::\]):(11332|11333|11334|6379)$/m);
      if (mta === 'postfix') expect(await onHost('postconf -h smtpd_milters')).toBe('{ inet:127.0.0.1:11332, default_action=tempfail }, $mailops_signing_milters\n');
      else expect(await onHost('exim -bP spamd_address')).toBe('spamd_address = 127.0.0.1 11333 variant=rspamd\n');
      const p = await cli(['plan', '--detailed-exitcode', file], PW);
      expect(p.code, p.stdout + p.stderr).toBe(0);
    });

    for (const c of CASES) {
      it(c.name, async () => {
        const subject = `${c.name.slice(0, 24)} ${mta} ${Date.now()}`;
        const send = c.send(dom, subject);
        const want = c.want(dom);
        if (c.around) await onHost(c.around.before);
        let outcome: SmtpOutcome | undefined;
        try {
          if ('client' in send) {
            outcome = await fromClient(send.client === 'outside' ? outside : listed, { port: send.port, from: send.from, to: send.to, data: send.data, ...(send.auth ? { auth: users[send.auth] } : {}) });
          } else if ('peer' in send) {
            await world.peer!.send({ from: send.peer.from, to: send.peer.to, subject, body: send.peer.body });
          } else {
            await onHost(`/usr/sbin/sendmail -i -f ${send.host.from} ${send.host.to} <<'EOF'\n${send.host.data}EOF`);
          }
        } finally {
          if (c.around) await onHost(c.around.after);
        }
        if (outcome) observed.push(`${mta}\t${c.name}\t${outcome.stage} ${outcome.reply.text}`);
        if ('refused' in want) {
          expect(outcome, 'a refusal is a reply to a client session').toBeDefined();
          expect({ stage: outcome!.stage, reply: outcome!.reply.text }).toEqual({ stage: typeof want.stage === 'string' ? want.stage : want.stage[mta], reply: want.refused });
          return;
        }
        if (outcome) expect(outcome.stage, outcome.reply.text).toBe('done');
        const has = (m: string) => m.includes(subject) || m.includes(subject.toUpperCase());
        const found = await eventually(() => folder(want.mailbox, want.folder), (ms) => ms.some(has), 60);
        const raw = found.find(has);
        expect(raw, `not in ${want.mailbox}'s ${want.folder}`).toBeDefined();
        const other = await folder(want.mailbox, want.folder === 'INBOX' ? 'Junk' : 'INBOX');
        expect(other.some(has), `also in the other folder than ${want.folder}`).toBe(false);
        for (const h of want.headers) {
          const lines = unfolded(raw!).split(/\r?\n/);
          if (typeof h === 'string') expect(lines, h).toContain(h);
          else expect(lines.some((l) => h.test(l)), `${h} in\n${lines.join('\n')}`).toBe(true);
        }
        if (want.authResults) {
          const fields = header(raw!, 'Authentication-Results');
          expect(fields.length, fields.join('\n')).toBe(1);
          const [authserv, ...results] = fields[0]!.slice('Authentication-Results: '.length).split('; ');
          expect(authserv).toBe(want.authResults.authserv);
          const unmatched = [...results];
          for (const r of want.authResults.results) {
            const i = unmatched.findIndex((x) => (typeof r === 'string' ? x === r : r.test(x)));
            expect(i, `${String(r)} among the results ${JSON.stringify(results)}`).toBeGreaterThanOrEqual(0);
            unmatched.splice(i, 1);
          }
          expect(unmatched, 'results nobody expected').toEqual([]);
          expect(header(raw!, 'X-Spam-Status').length, 'X-Spam-Status fields').toBe(1);
        }
        for (const name of want.absent ?? []) expect(header(raw!, name), name).toEqual([]);
        observed.push(`${mta}\t${c.name}\t${want.folder}: ${['Authentication-Results', 'X-Spam-Status'].flatMap((n) => header(raw!, n)).join(' | ') || '(no verdict headers)'}`);
      });
    }

    it('Junk is a \\Junk special-use folder of every mailbox', async () => {
      for (const u of Object.values(users)) expect((await imapList(ep, u.user, u.password)).some((l) => /^\* LIST \([^)]*\\Junk[^)]*\) "\/" "?Junk"?$/.test(l))).toBe(true);
    });

    it('antispam: false: rspamd and Redis stopped and disabled, its files and the milter/ACL lines gone, GTUBE accepted, mail still flows', async () => {
      writeFileSync(file, readFileSync(file, 'utf8').replace(`  dnsbl: [${BLOCKLIST}]\n`, `  dnsbl: [${BLOCKLIST}]\n  antispam: false\n`));
      const plan = await cli(['plan', file], PW);
      expect(plan.stdout).toMatch(/service rspamd: stop-disable \(retired by antispam: false \(rspamd\)\)/);
      expect(plan.stdout).toMatch(/- file \/etc\/rspamd\/rspamd\.local\.lua \(retired by antispam: false \(rspamd\)\)/);
      const r = await cli(['apply', '--yes', file], PW);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((await world.vps.exec(host, 'systemctl is-active rspamd redis-server; systemctl is-enabled rspamd redis-server')).stdout.split('\n').filter(Boolean)).toEqual(['inactive', 'inactive', 'disabled', 'disabled']);
      // What mailops wrote is gone: no file there that no package owns (rspamd's own configuration stays, as
      // the package left it: Debian 13's ships a module.conf.example in each of the two directories).
      expect(await onHost('for f in /etc/rspamd/local.d/* /etc/rspamd/override.d/* /var/lib/dovecot/sieve/*; do [ -e "$f" ] && ! dpkg -S "$f" >/dev/null 2>&1 && echo "$f"; done; true')).toBe('');
      expect(await onHost('for f in /etc/rspamd/rspamd.local.lua /etc/systemd/system/redis-server.service.d/mailops.conf; do [ -e "$f" ] && echo "$f"; done; true')).toBe('');
      const conf = mta === 'postfix' ? '/etc/postfix/main.cf /etc/postfix/master.cf' : '/etc/exim4/exim4.conf';
      expect((await world.vps.exec(host, `grep -n -E '11332|11333|spamd_address|spam =|sieve' ${conf} /etc/dovecot/dovecot.conf`)).stdout).toBe('');
      const subject = `gtube with antispam off ${mta} ${Date.now()}`;
      const gtube = await fromClient(outside, { port: 25, from: 'news@sender.test', to: users.alice.user, data: rfc822({ from: 'news@sender.test', to: users.alice.user, subject, body: GTUBE }) });
      observed.push(`${mta}\tantispam: false, GTUBE\t${gtube.stage} ${gtube.reply.text}`);
      expect(gtube.stage, gtube.reply.text).toBe('done');
      const peerSubject = `from the peer with antispam off ${mta} ${Date.now()}`;
      await world.peer!.send({ from: 'someone@peer.test', to: users.alice.user, subject: peerSubject });
      const inbox = await eventually(() => folder('alice', 'INBOX'), (ms) => ms.some((m) => m.includes(subject)) && ms.some((m) => m.includes(peerSubject)), 60);
      for (const s of [subject, peerSubject]) expect(header(inbox.find((m) => m.includes(s))!, 'X-Spam-Status'), s).toEqual([]);
      const again = await cli(['plan', '--detailed-exitcode', file], PW);
      expect(again.code, again.stdout + again.stderr).toBe(0);
    });
  });
}
