/**
 * Inbound protection and per-mailbox limits, one case table for Postfix and for Exim, proven over the wire
 * from outside client boxes of the mail world (their own addresses on the test network, never the host):
 * brute-force bans on the mail ports only (SMTP AUTH, IMAP, POP3 failures), kept by a re-apply that
 * re-renders the firewall, lifted by themselves after the ban time, gone with auth_ban: false;
 * send: false, send_limit and enabled: false with exact replies; forwarding with SRS judged by the strict peer
 * (spf=pass for SRS0=...@our domain), bounces decoded back to the original sender, forged ones refused.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startWorld } from '../../src/testbed/world.js';
import type { World, WorldClient } from '../../src/testbed/world.js';
import type { VpsHost } from '../../src/testbed/harness.js';
import { cli, hostYaml, worldDnsYaml, writePlaybook } from './support/env.js';
import { writeFileSync } from 'node:fs';
import { mailLogin, smtpAuth, sshGreeting, swaks, tcpConnect, until } from './support/outside.js';
import { RcptProber } from '../../src/probe/mail.js';

const PASSWORD = 'limits-Secret-7';
const ENV = { IT_LIMITS_PASSWORD: PASSWORD };
type Mta = 'postfix' | 'exim';

/** The replies both MTAs give alike; where they differ (the text of a failed AUTH), one per MTA. */
const R = {
  authFailed: {
    postfix: '535 5.7.8 Error: authentication failed: (reason unavailable)',
    exim: '535 Incorrect authentication data',
  },
  /**
   * Dovecot delays each further failed login from one address (2, 4, 8, 15 s, plus 2 s); Postfix waits for
   * its SASL answer 10 s at most, so from the third quick failure on it may answer this instead.
   */
  authLost: '454 4.7.0 Temporary authentication failure: Connection lost to authentication server',
  sendDisabled: (login: string) => `550 5.7.1 <${login}>: SASL login name rejected: Sending is disabled for this mailbox`,
  sendLimit: (login: string) => `450 4.7.1 <${login}>: SASL login name rejected: Sending limit reached, try again later`,
  mailboxDisabled: (rcpt: string) => `550 5.2.1 <${rcpt}>: Recipient address rejected: Mailbox disabled`,
  unknownUser: (rcpt: string) => `550 5.1.1 <${rcpt}>: Recipient address rejected: User unknown in virtual mailbox table`,
  imapFailed: 'NO [AUTHENTICATIONFAILED] Authentication failed.',
  pop3Failed: '-ERR [AUTH] Authentication failed.',
} as const;

/** Mail ports a banned client must find refused (SSH must stay open). */
const BANNED_PORTS = [587, 465, 25, 993, 143, 110, 995];

interface Variant {
  pop3: boolean;
  ban: string;
  authBan: boolean;
  goneEnabled: boolean;
  firewall: boolean;
  /** limited@ has its send_limit. */
  limited: boolean;
}
const P1: Variant = { pop3: true, ban: '1h', authBan: true, goneEnabled: true, firewall: true, limited: true };

function playbook(mta: Mta, h: VpsHost, dom: string, v: Variant): string {
  return `site: limits-${h.name}
hosts:
${hostYaml(world.vps, h, { hostname: `mail.${dom}`, ipv4: h.ip })}
stack:
  mta: ${mta}
  imap: true
  pop3: ${v.pop3}
  tls: { mode: self-signed }
${v.authBan ? `  auth_ban: { attempts: 3, within: 10m, ban: ${v.ban} }` : '  auth_ban: false'}${v.firewall ? '' : '\n  firewall: false'}
${worldDnsYaml(world, dom)}
domains:
  - name: ${dom}
    dkim: { selector: mail, key: rsa-2048 }
    dmarc: { policy: reject }
    mailboxes:
      - name: alice
        password: { env: IT_LIMITS_PASSWORD }
      - name: nosend
        password: { env: IT_LIMITS_PASSWORD }
        send: false
      - name: limited
        password: { env: IT_LIMITS_PASSWORD }${v.limited ? '\n        send_limit: 2/hour' : ''}
      - name: gone
        password: { env: IT_LIMITS_PASSWORD }
        enabled: ${v.goneEnabled}
    aliases:
      postmaster: alice
      fwd: someone@peer.test
`;
}

interface ApplyJson {
  changes: number;
  hosts: Array<{ ok: boolean; changes: number; error?: string; plan?: Array<{ kind: string; action: string; path?: string; unit?: string }> }>;
}

/** What the servers answered, per MTA and case, printed at the end (for the release note). */
const observed: Record<Mta, Array<[what: string, reply: string]>> = { postfix: [], exim: [] };
function seen<T extends string | undefined>(t: Ctx, what: string, reply: T): T {
  observed[t.mta].push([what, String(reply)]);
  return reply;
}

let world: World;
/** a: brute-forces SMTP AUTH; b: an ordinary client, never banned; c: IMAP; d: POP3; e: the short ban. */
let clients: Record<'a' | 'b' | 'c' | 'd' | 'e', WorldClient>;

beforeAll(async () => {
  world = await startWorld({
    images: { vps: inject('vpsImage'), dns: inject('dnsImage'), peer: inject('peerImage'), client: inject('clientImage') },
    hosts: [
      { name: 'pf', hostname: 'mail.pf.test', image: inject('stackImage') },
      { name: 'ex', hostname: 'mail.ex.test', image: inject('stackEximImage') },
    ],
    clients: (['a', 'b', 'c', 'd', 'e'] as const).map((n) => ({ name: n, hostname: `client-${n}.outside.test` })),
  });
  const [a, b, c, d, e] = world.clients;
  clients = { a: a!, b: b!, c: c!, d: d!, e: e! };
});
afterAll(async () => {
  for (const mta of ['postfix', 'exim'] as const) {
    if (observed[mta].length) console.log(`replies observed with ${mta}:\n${observed[mta].map(([w, r]) => `  ${w}: ${r}`).join('\n')}`);
  }
  await world?.stop();
});

/** What each case sees of one MTA's host. */
interface Ctx {
  mta: Mta;
  dom: string;
  host: VpsHost;
  /** Apply a variant of the playbook (P1 with changes); the parsed JSON. */
  apply(v?: Partial<Variant>): Promise<ApplyJson>;
  sh(cmd: string): Promise<string>;
}

/** Fails the login `n` times from `client` (by protocol), expecting the exact failure reply each time. */
async function failLogins(t: Ctx, client: WorldClient, how: 'smtp' | 'imap' | 'pop3', n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const user = `alice@${t.dom}`;
    if (how === 'smtp') out.push(String(await smtpAuth(world, client, t.host.ip, 587, user, `wrong-${i}`)));
    else out.push(await mailLogin(world, client, t.host.ip, how, user, `wrong-${i}`));
  }
  seen(t, `${n} failed ${how === 'smtp' ? 'SMTP AUTH (587)' : how.toUpperCase()} logins from ${client.name}`, out.join(' | '));
  return out;
}

/** Every mail port refused to the client (polled: fail2ban bans a moment after the log line). */
async function expectBanned(client: WorldClient, t: Ctx, ports = BANNED_PORTS): Promise<void> {
  expect(await until(() => tcpConnect(world, client, t.host.ip, ports[0]!), (s) => s === 'refused', 30), `${client.name} → ${ports[0]}`).toBe('refused');
  const got = Object.fromEntries(await Promise.all(ports.map(async (p) => [p, await tcpConnect(world, client, t.host.ip, p)] as const)));
  seen(t, `banned ${client.name} connecting to ${ports.join(', ')}`, [...new Set(Object.values(got))].join(', '));
  expect(got).toEqual(Object.fromEntries(ports.map((p) => [p, 'refused'])));
}

async function expectOpen(client: WorldClient, t: Ctx, ports: number[]): Promise<void> {
  const seen = Object.fromEntries(await Promise.all(ports.map(async (p) => [p, await tcpConnect(world, client, t.host.ip, p)] as const)));
  expect(seen, `${client.name} → ${t.host.name}`).toEqual(Object.fromEntries(ports.map((p) => [p, 'open'])));
}

const subject = (what: string) => `${what} ${randomBytes(4).toString('hex')}`;

/** The case table: run in order against each MTA. */
const CASES: Array<[name: string, run: (t: Ctx) => Promise<void>]> = [
  [
    'apply converges with fail2ban (mailops jail only, no sshd jail); a second apply changes nothing',
    async (t) => {
      const first = await t.apply();
      expect(first.hosts[0]!.ok, first.hosts[0]!.error).toBe(true);
      const again = await t.apply();
      expect(again.changes).toBe(0);
      expect(await t.sh('fail2ban-client status | sed -n "s/.*Jail list:[[:space:]]*//p"')).toBe('mailops-auth');
      expect(await t.sh('fail2ban-client get mailops-auth maxretry; fail2ban-client get mailops-auth findtime; fail2ban-client get mailops-auth bantime')).toBe('3\n600\n3600');
    },
  ],
  [
    'send: false: the mailbox logs in over IMAP; submission is refused at RCPT with a 5xx',
    async (t) => {
      const login = `nosend@${t.dom}`;
      expect(seen(t, 'send: false, IMAP login', await mailLogin(world, clients.b, t.host.ip, 'imap', login, PASSWORD))).toMatch(/^OK (\[CAPABILITY [^\]]*\] )?Logged in$/);
      for (const port of [587, 465] as const) {
        const s = await swaks(world, clients.b, t.host.ip, port, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', login, '--auth-password', PASSWORD, '--from', login, '--to', `alice@${t.dom}`]);
        expect(s.replyTo('AUTH'), s.transcript).toMatch(/^235 /);
        expect(s.replyTo('MAIL FROM'), s.transcript).toMatch(/^250 /);
        expect(seen(t, `send: false, RCPT on ${port}`, s.replyTo('RCPT TO')), s.transcript).toBe(R.sendDisabled(login));
      }
    },
  ],
  [
    'send_limit 2/hour: two messages pass, the third is refused with a 4xx',
    async (t) => {
      const login = `limited@${t.dom}`;
      const send = () => swaks(world, clients.b, t.host.ip, 587, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', login, '--auth-password', PASSWORD, '--from', login, '--to', `alice@${t.dom}`]);
      for (let i = 1; i <= 2; i++) {
        const ok = await send();
        expect(ok.replyTo('.'), `message ${i}\n${ok.transcript}`).toMatch(/^250 /);
      }
      const third = await send();
      expect(seen(t, 'send_limit 2/hour, third message, RCPT', third.replyTo('RCPT TO')), third.transcript).toBe(R.sendLimit(login));
      // Other mailboxes are not limited.
      const alice = await swaks(world, clients.b, t.host.ip, 587, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', `alice@${t.dom}`, '--auth-password', PASSWORD, '--from', `alice@${t.dom}`, '--to', `limited@${t.dom}`]);
      expect(alice.replyTo('.'), alice.transcript).toMatch(/^250 /);
    },
  ],
  [
    'SRS: an alias forwards to peer.test with an SRS envelope sender of our domain and spf=pass there; a bounce to it reaches the original sender; a forged one is refused',
    async (t) => {
      const subj = subject(`forwarded by ${t.mta}`);
      await world.peer!.send({ from: 'sender@peer.test', to: `fwd@${t.dom}`, subject: subj });
      const raw = await world.peer!.waitFor((m) => m.includes(subj) && /^X-Original-To: someone@peer\.test$/m.test(m), 60_000);
      const srs = seen(t, 'forwarded, Return-Path at the peer', /^Return-Path: <(SRS0=[^>]+)>$/m.exec(raw)?.[1]);
      expect(srs, raw.split(/\r?\n\r?\n/)[0]).toMatch(new RegExp(`^SRS0=[^=@]+=[^=@]+=peer\\.test=sender@${t.dom.replace('.', '\\.')}$`));
      const spf = seen(t, 'forwarded, SPF at the peer', raw.split('\n').find((l) => /^Authentication-Results: mx\.peer\.test; spf=/.test(l)));
      expect(spf).toBe(`Authentication-Results: mx.peer.test; spf=pass (sender SPF authorized) smtp.mailfrom=${t.dom} (client-ip=${t.host.ip}; helo=mail.${t.dom}; envelope-from=${srs!.toLowerCase()}; receiver=peer.test)`);
      expect(raw).toMatch(/dmarc=pass \(p=reject dis=none\) header\.from=peer\.test/);

      // A bounce (null sender) to the SRS address is decoded and delivered to the original sender.
      const bounce = subject(`bounce via ${t.mta}`);
      const dsn = ['From: Mail Delivery System <MAILER-DAEMON@mailops.test>', 'To: sender@peer.test', `Subject: ${bounce}`, `Date: ${new Date().toUTCString()}`, `Message-ID: <${randomBytes(6).toString('hex')}@mailops.test>`, '', 'Your message could not be delivered.', ''].join('\r\n');
      await world.exec(clients.b.container, `cat > /tmp/dsn.eml`, dsn);
      const b = await swaks(world, clients.b, t.host.ip, 25, ['--ehlo', 'mx.outside.test', '--from', '<>', '--to', srs!, '--data', '@/tmp/dsn.eml']);
      expect(seen(t, 'bounce to the SRS address, RCPT', b.replyTo('RCPT TO')), b.transcript).toMatch(/^250 /);
      expect(b.replyTo('.'), b.transcript).toMatch(/^250 /);
      const back = await world.peer!.waitFor((m) => m.includes(bounce), 60_000);
      expect(back).toMatch(/^X-Original-To: sender@peer\.test$/m);
      expect(back).toMatch(/^Return-Path: <>$/m);

      // An SRS address that this host did not make (a wrong hash): refused at RCPT, nothing is relayed.
      const forged = srs!.replace(/^SRS0=[^=]+=/, 'SRS0=AAAA=').replace('=sender@', '=victim@');
      const f = await swaks(world, clients.b, t.host.ip, 25, ['--ehlo', 'mx.outside.test', '--from', '<>', '--to', forged, '--quit-after', 'RCPT']);
      expect(seen(t, 'forged SRS address, RCPT', f.replyTo('RCPT TO')), f.transcript).toBe(R.unknownUser(forged));
    },
  ],
  [
    'failed SMTP AUTH on 587 from client a bans a from every mail port (refused), SSH from a still answers, client b is unaffected',
    async (t) => {
      await expectOpen(clients.a, t, [587, 993, 110]);
      const replies = await failLogins(t, clients.a, 'smtp', 3);
      expect(replies.slice(0, 2)).toEqual([R.authFailed[t.mta], R.authFailed[t.mta]]);
      expect(t.mta === 'postfix' ? [R.authFailed.postfix, R.authLost] : [R.authFailed.exim]).toContain(replies[2]);
      await expectBanned(clients.a, t);
      expect(seen(t, 'banned a, SSH greeting', await sshGreeting(world, clients.a, t.host.ip))).toMatch(/^SSH-2\.0-OpenSSH_/);
      await expectOpen(clients.b, t, BANNED_PORTS);
      expect(await t.sh(`fail2ban-client get mailops-auth banned ${clients.a.ip}`)).toBe('1');
    },
  ],
  [
    'failed IMAP logins ban too',
    async (t) => {
      expect(await failLogins(t, clients.c, 'imap', 3)).toEqual(Array(3).fill(R.imapFailed));
      await expectBanned(clients.c, t);
      expect(await sshGreeting(world, clients.c, t.host.ip)).toMatch(/^SSH-2\.0-OpenSSH_/);
    },
  ],
  [
    'enabled: false on a re-apply that also re-renders the firewall (pop3 off): the bans stay; the mailbox cannot log in, mail to it is refused at RCPT, its mail stays on disk',
    async (t) => {
      // Mail for gone while it takes mail (from the peer: signed, SPF and DMARC pass, as rspamd wants).
      const subj = subject('before disabling');
      await world.peer!.send({ from: 'sender@peer.test', to: `gone@${t.dom}`, subject: subj });
      const stored = `find /var/vmail/${t.dom}/gone/Maildir -type f -path '*/new/*' | xargs -r grep -l ${JSON.stringify(subj)} | wc -l`;
      expect(await until(() => t.sh(stored), (n) => n === '1', 30)).toBe('1');

      const r = await t.apply({ pop3: false, goneEnabled: false });
      expect(r.hosts[0]!.ok, r.hosts[0]!.error).toBe(true);
      const changed = (r.hosts[0]!.plan ?? []).filter((c) => c.kind === 'file').map((c) => c.path);
      expect(changed).toEqual(expect.arrayContaining(['/etc/mailops/firewall.nft', '/etc/fail2ban/jail.d/mailops.local']));
      // The playbook's SSH port (here the port published for the test) is open as well as 22.
      const open = [...new Set([22, 25, 143, 443, 465, 587, 993, t.host.ports[22]!])].sort((x, y) => x - y);
      expect(await t.sh('nft list table inet mailops | grep "dport {"')).toBe(`tcp dport { ${open.join(', ')} } accept`);
      // a (SMTP AUTH) and c (IMAP) are still banned from what is open; b is not.
      for (const c of [clients.a, clients.c]) await expectBanned(c, t, [587, 465, 25, 993, 143]);
      await expectOpen(clients.b, t, [587, 465, 25, 993, 143]);

      const login = `gone@${t.dom}`;
      expect(seen(t, 'enabled: false, IMAP login (right password)', await mailLogin(world, clients.b, t.host.ip, 'imap', login, PASSWORD))).toBe(R.imapFailed);
      expect(seen(t, 'enabled: false, SMTP AUTH (right password)', await smtpAuth(world, clients.b, t.host.ip, 587, login, PASSWORD))).toBe(R.authFailed[t.mta]);
      for (const rcpt of [login, `gone+tag@${t.dom}`]) {
        const m = await swaks(world, clients.b, t.host.ip, 25, ['--ehlo', 'mx.outside.test', '--from', 'someone@peer.test', '--to', rcpt, '--quit-after', 'RCPT']);
        expect(seen(t, `enabled: false, RCPT on 25 to ${rcpt}`, m.replyTo('RCPT TO')), m.transcript).toBe(R.mailboxDisabled(rcpt));
      }
      // Authenticated users are refused too.
      const a = await swaks(world, clients.b, t.host.ip, 587, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', `alice@${t.dom}`, '--auth-password', PASSWORD, '--from', `alice@${t.dom}`, '--to', login, '--quit-after', 'RCPT']);
      expect(seen(t, 'enabled: false, RCPT on 587 from alice', a.replyTo('RCPT TO')), a.transcript).toBe(R.mailboxDisabled(login));
      expect(await t.sh(stored)).toBe('1');
      // Refused logins of a disabled mailbox are not counted as brute force: b is still not banned.
      expect(await t.sh(`fail2ban-client get mailops-auth banned ${clients.b.ip}`)).toBe('0');
    },
  ],
  [
    'failed POP3 logins ban too; with ban: 20s the ban lifts by itself',
    async (t) => {
      const r = await t.apply({ pop3: true, goneEnabled: false, ban: '20s' });
      expect(r.hosts[0]!.ok, r.hosts[0]!.error).toBe(true);
      expect(await t.sh('fail2ban-client get mailops-auth bantime')).toBe('20');
      expect(seen(t, 'enabled: false, POP3 login (right password)', await mailLogin(world, clients.b, t.host.ip, 'pop3', `gone@${t.dom}`, PASSWORD))).toBe(R.pop3Failed);
      // A short ban from SMTP AUTH on 465 (client e) lifts the same way: banned alongside, the two 20 s at once.
      // Each client's ban is looked at as soon as its own failures are in (it lasts 20 s only).
      const [t0] = await Promise.all([
        (async () => {
          expect(await failLogins(t, clients.d, 'pop3', 3)).toEqual(Array(3).fill(R.pop3Failed));
          await expectBanned(clients.d, t);
          return Date.now();
        })(),
        (async () => {
          for (let i = 0; i < 3; i++) await smtpAuth(world, clients.e, t.host.ip, 465, `alice@${t.dom}`, `wrong-${i}`);
          await expectBanned(clients.e, t, [587]);
        })(),
      ]);
      // The ban lifts by itself: 20 s after it began (fail2ban checks expiry every few seconds).
      expect(await until(() => tcpConnect(world, clients.d, t.host.ip, 110), (s) => s === 'open', 60)).toBe('open');
      seen(t, 'ban: 20s, port 110 open again after (s)', String(Math.round((Date.now() - t0) / 1000)));
      expect(Date.now() - t0).toBeLessThan(45_000);
      await expectOpen(clients.d, t, BANNED_PORTS);
      expect(await until(() => tcpConnect(world, clients.e, t.host.ip, 587), (s) => s === 'open', 60)).toBe('open');
    },
  ],
  [
    'auth_ban: false removes it cleanly: fail2ban stopped and disabled, its table and bans gone, mailops jail removed; a second apply changes nothing',
    async (t) => {
      const r = await t.apply({ pop3: true, goneEnabled: false, authBan: false });
      expect(r.hosts[0]!.ok, r.hosts[0]!.error).toBe(true);
      expect(await t.sh('systemctl is-active fail2ban; systemctl is-enabled fail2ban; ls /etc/fail2ban/jail.d/mailops.local 2>&1 | grep -c "No such file"')).toBe('inactive\ndisabled\n1');
      expect(await t.sh('nft list table inet f2b-table >/dev/null 2>&1 && echo present || echo gone')).toBe('gone');
      await expectOpen(clients.a, t, BANNED_PORTS);
      const again = await t.apply({ pop3: true, goneEnabled: false, authBan: false });
      expect(again.changes).toBe(0);
    },
  ],
  [
    'fifteen messages in one SMTP session on port 25 (a sender reusing its connection) are all delivered at once, not left queued after the tenth (Exim: smtp_accept_queue_per_connection)',
    async (t) => {
      const token = `session-${randomBytes(4).toString('hex')}`;
      // From the peer (its address passes peer.test's SPF), one session: EHLO, then 15 transactions, then QUIT.
      const script = [
        `exec 3<>/dev/tcp/${t.host.ip}/25 || exit 1`,
        // One reply (the last line of a multi-line one), CR removed.
        `reply() { while IFS= read -r -t 30 l <&3; do l=\${l%$'\\r'}; case "$l" in [0-9][0-9][0-9]-*) ;; *) printf '%s\\n' "$l"; return ;; esac; done; echo 'no reply'; }`,
        `say() { printf '%s\\r\\n' "$1" >&3; reply; }`,
        'reply >/dev/null',
        'say "EHLO mx.peer.test" >/dev/null',
        'for i in $(seq 15); do',
        '  say "MAIL FROM:<sender@peer.test>" >/dev/null',
        `  say "RCPT TO:<alice@${t.dom}>" >/dev/null`,
        '  say DATA >/dev/null',
        `  printf 'From: <sender@peer.test>\\r\\nTo: <alice@${t.dom}>\\r\\nSubject: ${token} %s\\r\\nMessage-ID: <${token}.%s@peer.test>\\r\\nDate: %s\\r\\n\\r\\nOne of fifteen in one session.\\r\\n.\\r\\n' "$i" "$i" "$(date -R)" >&3`,
        '  reply',
        'done',
        'say QUIT >/dev/null',
      ].join('\n');
      const r = await world.exec(world.peer!.container, 'bash -s', script);
      const replies = r.stdout.split('\n').filter((l) => l !== '');
      seen(t, '15 messages in one session, end of DATA', `${replies[0]} (and ${replies.length - 1} more)`);
      expect(replies, r.stderr).toHaveLength(15);
      expect(replies.filter((l) => !l.startsWith('250 '))).toEqual([]);
      const count = () => t.sh(`doveadm search -u alice@${t.dom} mailbox '*' subject ${token} | wc -l`);
      expect(await until(count, (n) => n === '15', 30)).toBe('15');
      expect(await t.sh(`${t.mta === 'exim' ? 'exim4 -bpc' : "postqueue -j | wc -l"}`)).toBe('0');
    },
  ],
  [
    'firewall: false and no send_limit left: mailops\' table and rules go (the host\'s own firewall decides alone), policyd-rate-limit stops (Postfix); a second apply changes nothing; turned on again, both come back',
    async (t) => {
      // A port no mail daemon holds: mailops' table drops it, the host alone (no firewall of its own) does not.
      await t.sh('setsid python3 -m http.server 8025 >/dev/null 2>&1 < /dev/null & sleep 1');
      expect(await tcpConnect(world, clients.b, t.host.ip, 8025)).toMatch(/timed out/);
      // auth_ban stays off, as the case before left it: turned on again, fail2ban would read the log of the
      // last ten minutes and ban client a anew, whom the next case needs.
      const off = await t.apply({ authBan: false, firewall: false, limited: false });
      expect(off.hosts[0]!.ok, off.hosts[0]!.error).toBe(true);
      expect((off.hosts[0]!.plan ?? []).filter((c) => c.action === 'stop-disable' || c.action === 'remove').map((c) => `${c.action} ${c.path ?? c.unit}`)).toEqual([
        'remove /etc/mailops/firewall.nft',
        'remove /etc/mailops/firewall.sh',
        ...(t.mta === 'postfix' ? ['stop-disable policyd-rate-limit'] : []),
        'stop-disable mailops-firewall',
      ]);
      expect(await t.sh('nft list table inet mailops >/dev/null 2>&1 && echo present || echo gone; systemctl is-active mailops-firewall; systemctl is-enabled mailops-firewall; ls /etc/mailops/firewall.nft /etc/mailops/firewall.sh 2>&1 | grep -c "No such file"')).toBe('gone\ninactive\ndisabled\n2');
      expect(await tcpConnect(world, clients.b, t.host.ip, 8025)).toBe('open');
      if (t.mta === 'postfix') expect(await t.sh('systemctl is-active policyd-rate-limit; systemctl is-enabled policyd-rate-limit')).toBe('inactive\ndisabled');
      // Without its limit, limited@ sends again within the hour it reached it in (the send_limit case).
      const login = `limited@${t.dom}`;
      const again = await swaks(world, clients.b, t.host.ip, 587, ['--ehlo', 'client.outside.test', '--auth', 'PLAIN', '--auth-user', login, '--auth-password', PASSWORD, '--from', login, '--to', `alice@${t.dom}`]);
      expect(again.replyTo('.'), again.transcript).toMatch(/^250 /);
      expect((await t.apply({ authBan: false, firewall: false, limited: false })).changes).toBe(0);
      const on = await t.apply({ authBan: false });
      expect(on.hosts[0]!.ok, on.hosts[0]!.error).toBe(true);
      expect(await t.sh('nft list table inet mailops >/dev/null 2>&1 && echo present || echo gone; systemctl is-active mailops-firewall; systemctl is-enabled mailops-firewall')).toBe('present\nactive\nenabled');
      expect(await tcpConnect(world, clients.b, t.host.ip, 8025)).toMatch(/timed out/);
      if (t.mta === 'postfix') expect(await t.sh('systemctl is-active policyd-rate-limit; systemctl is-enabled policyd-rate-limit')).toBe('active\nenabled');
      await t.sh('pkill -f "http.server 8025"; true');
    },
  ],
  [
    // Last for its host: client a stays over the port-25 limit for a minute after it.
    'port 25 takes 60 connections a minute from one address and answers the next with 421 (Postfix and Exim alike); submission has no such limit; a stranger reusing its session (mailops test) is not held by it',
    async (t) => {
      // Each connection (bash's /dev/tcp): the greeting, then QUIT (sent after it: Exim drops a client that talks first).
      const greetings = async (port: number, n: number) => {
        const r = await world.exec(clients.a.container, 'bash -s', `for i in $(seq ${n}); do exec 3<>/dev/tcp/${t.host.ip}/${port} || { echo 'no connection'; continue; }; l=; IFS= read -r -t 10 l <&3; printf '%s\\n' "\${l%$'\\r'}"; printf 'QUIT\\r\\n' >&3; exec 3<&-; done`);
        return r.stdout.split('\n').filter((l) => l !== '');
      };
      const submission = await greetings(587, 70);
      expect(submission).toHaveLength(70);
      expect(submission.filter((l) => !l.startsWith('220 '))).toEqual([]);
      const mx = await greetings(25, 70);
      expect(mx).toHaveLength(70);
      const accepted = mx.findIndex((l) => !l.startsWith('220 '));
      seen(t, '70 connections to port 25 in a row from one address', `${accepted} greeted, then: ${mx[accepted]}`);
      // 60 a minute, less the ones client a made in the minute before (nc -z in the case before).
      expect(accepted).toBeGreaterThanOrEqual(55);
      expect(accepted).toBeLessThanOrEqual(60);
      expect(new Set(mx.slice(accepted))).toEqual(new Set([`421 4.7.0 mail.${t.dom} Error: too many connections from ${clients.a.ip}`]));
      // mailops test's stranger: 70 RCPT probes in one session, all answered.
      const prober = new RcptProber({ host: '127.0.0.1', port: (p) => t.host.ports[p]! }, 'mx.peer.test');
      const replies: string[] = [];
      try {
        for (let i = 0; i < 70; i++) replies.push((await prober.probe('someone@peer.test', `alice@${t.dom}`)).reply.text);
      } finally {
        prober.close();
      }
      expect(replies.filter((r) => !r.startsWith('250 '))).toEqual([]);
    },
  ],
];

for (const [mta, name] of [
  ['postfix', 'pf'],
  ['exim', 'ex'],
] as const) {
  describe(`inbound protection and per-mailbox limits with ${mta}`, () => {
    const dom = `${name}.test`;
    let t: Ctx;
    beforeAll(async () => {
      const host = world.vps.hosts.find((h) => h.name === name)!;
      const file = writePlaybook(playbook(mta, host, dom, P1));
      await world.addZone(dom, { nameservers: [`ns1.${dom}`] });
      t = {
        mta,
        dom,
        host,
        apply: async (v = {}) => {
          writeFileSync(file, playbook(mta, host, dom, { ...P1, ...v }));
          const r = await cli(['apply', '--yes', '--json', file], ENV);
          expect(r.stdout, r.stderr).not.toBe('');
          const out = JSON.parse(r.stdout) as ApplyJson;
          expect(r.code, `${r.stderr}\n${out.hosts[0]?.error ?? ''}`).toBe(0);
          return out;
        },
        sh: async (cmd) => {
          const r = await world.vps.exec(host, cmd);
          return r.stdout.trim();
        },
      };
    });
    for (const [caseName, run] of CASES) it(caseName, () => run(t));
  });
}
