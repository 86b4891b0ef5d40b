/**
 * Per-mailbox switches and forwarding as the configs see them (mailPolicy), the ban settings as fail2ban
 * takes them, and what the rendered files of both MTAs and of fail2ban say about them. Plain data in, plain
 * data out.
 */
import { describe, expect, it } from 'vitest';
import type { Domain, Mailbox, Site } from '../../src/model/site.js';
import { authBanView, mailPolicy } from '../../src/render/limits.js';
import { renderHosts } from '../../src/render/site.js';
import { credentialFor, verifySubmissions } from '../../src/verify/checks.js';

const mb = (address: string, o: Partial<Mailbox> = {}): Mailbox => ({ local: address.split('@')[0]!, address, passwordHash: '{CRYPT}!', sendAs: [], send: true, enabled: true, ...o });
const dom = (name: string, o: Partial<Domain> = {}): Domain => ({ name, spf: { policy: '-all', include: [] }, mailboxes: [], aliases: [], ...o });
const alias = (address: string, targets: string[]) => ({ local: address.split('@')[0]!, address, targets });
/** A password verify can read (password: { env }). */
const secret = { kind: 'env' as const, name: 'IT_UNIT_LIMITS_PW' };
process.env['IT_UNIT_LIMITS_PW'] = 'pw-1';

describe('mailPolicy', () => {
  it('send: false and send_limit per login; a disabled mailbox is neither (its login is refused anyway)', () => {
    const p = mailPolicy([
      dom('a.test', {
        mailboxes: [
          mb('zed@a.test', { send: false }),
          mb('amy@a.test', { sendLimit: { count: 200, per: 'day' } }),
          mb('bo@a.test', { sendLimit: { count: 2, per: 'hour' } }),
          mb('cy@a.test', { enabled: false, send: false, sendLimit: { count: 1, per: 'hour' } }),
          mb('di@a.test', { send: false, sendLimit: { count: 5, per: 'hour' } }),
        ],
      }),
    ]);
    expect(p.sendBlocked).toEqual(['di@a.test', 'zed@a.test']);
    expect(p.sendLimits).toEqual([
      { login: 'amy@a.test', count: 200, per: 'day', seconds: 86400 },
      { login: 'bo@a.test', count: 2, per: 'hour', seconds: 3600 },
    ]);
    expect(p.disabledLogins).toEqual(['cy@a.test']);
    expect(p.refused).toEqual(['cy@a.test']);
  });

  it('aliases lose their disabled targets; an alias left with none (also through other aliases) is refused like the mailbox; so is a catch-all to it', () => {
    const p = mailPolicy([
      dom('a.test', {
        mailboxes: [mb('ann@a.test'), mb('old@a.test', { enabled: false }), mb('gone@a.test', { enabled: false })],
        aliases: [
          alias('team@a.test', ['ann@a.test', 'old@a.test']),
          alias('former@a.test', ['old@a.test', 'gone@a.test']),
          alias('chain@a.test', ['former@a.test']),
          alias('mixed@a.test', ['former@a.test', 'x@elsewhere.example']),
        ],
        catchAll: 'old@a.test',
      }),
      dom('b.test', { mailboxes: [mb('bea@b.test')], catchAll: 'bea@b.test' }),
    ]);
    expect([...p.aliasTargets]).toEqual([
      ['team@a.test', ['ann@a.test']],
      ['mixed@a.test', ['x@elsewhere.example']],
    ]);
    expect(p.refused).toEqual(['chain@a.test', 'former@a.test', 'gone@a.test', 'old@a.test']);
    expect(p.catchAlls).toEqual([{ domain: 'b.test', target: 'bea@b.test' }]);
  });
});

describe('authBanView', () => {
  it('keeps bans in the database at least a day, and at least as long as they last', () => {
    expect(authBanView({ attempts: 5, within: 600, ban: 3600 })).toEqual({ attempts: 5, within: 600, ban: 3600, dbPurgeAge: 86400 });
    expect(authBanView({ attempts: 3, within: 60, ban: 7 * 86400 }).dbPurgeAge).toBe(7 * 86400);
  });
});

const site = (mta: 'postfix' | 'exim', authBan: Site['stack']['authBan'], os: 'debian' | 'rhel' = 'debian'): Site => ({
  site: 'limits',
  file: '/nonexistent/site.yaml',
  hosts: [{ name: 'mx1', ssh: { address: '192.0.2.1', port: 2222, user: 'root' }, hostname: 'mail.a.test', ipv4: '192.0.2.1', os, role: 'mailbox' }],
  stack: { mta, imap: true, pop3: false, tls: { mode: 'self-signed' }, messageSizeLimit: 1 << 20, firewall: true, antispam: true, dnsbl: [], ...(authBan ? { authBan } : {}), replication: false, autoconfig: true, mtaSts: 'testing' },
  dns: { ttl: 300, nameservers: ['ns1.a.test'], nameserverAddresses: {}, hostmaster: 'h@a.test' },
  domains: [
    dom('a.test', {
      mailboxes: [mb('ann@a.test'), mb('nos@a.test', { send: false }), mb('lim@a.test', { sendLimit: { count: 3, per: 'day' } }), mb('old@a.test', { enabled: false })],
      aliases: [alias('fwd@a.test', ['x@other.example']), alias('ex@a.test', ['old@a.test'])],
    }),
  ],
});
const files = (s: Site) => new Map(renderHosts(s)[0]!.files.map((f) => [f.path, f.content]));
const lines = (text: string | undefined) => (text ?? '').split('\n').filter((l) => l && !l.startsWith('#'));

describe('rendered limits', () => {
  it('Postfix: submission_access, disabled_mailboxes, the rate limiter only for the limited login, SRS only for foreign senders', () => {
    const f = files(site('postfix', { attempts: 4, within: 300, ban: 900 }));
    expect(lines(f.get('/etc/postfix/submission_access'))).toEqual(['nos@a.test 550 5.7.1 Sending is disabled for this mailbox', 'lim@a.test send_limit']);
    expect(lines(f.get('/etc/postfix/disabled_mailboxes'))).toEqual(['ex@a.test 550 5.2.1 Mailbox disabled', 'old@a.test 550 5.2.1 Mailbox disabled']);
    expect(lines(f.get('/etc/postfix/virtual_aliases'))).not.toContain('ex@a.test old@a.test');
    expect(f.get('/etc/policyd-rate-limit.yaml')).toContain('  "lim@a.test": [[3, 86400]]   # 3/day\n');
    expect(lines(f.get('/etc/postfix/srs_senders'))).toEqual(['/^"?<>"?$/ smtp:', '/@a\\.test$/ smtp:', '/@mail\\.a\\.test$/ smtp:', '/./ srsfwd:[127.0.0.1]:10027']);
    expect(lines(f.get('/etc/postfix/srs_recipients'))).toEqual(['/^(SRS[01][=+-].*@a\\.test)$/ ${1}']);
    expect(f.get('/etc/default/postsrsd')).toContain('SRS_DOMAIN=a.test\nSRS_EXCLUDE_DOMAINS=a.test,mail.a.test\n');
    expect(lines(f.get('/etc/dovecot/disabled'))).toEqual(['old@a.test']);
  });

  it('Exim: the same lists in its own files; no policy service and no postsrsd', () => {
    const f = files(site('exim', { attempts: 4, within: 300, ban: 900 }));
    expect(lines(f.get('/etc/exim4/submission_access'))).toEqual(['nos@a.test: blocked', 'lim@a.test: 3 / 1d']);
    expect(lines(f.get('/etc/exim4/disabled_mailboxes'))).toEqual(['ex@a.test:', 'old@a.test:']);
    expect(f.has('/etc/policyd-rate-limit.yaml')).toBe(false);
    expect(f.has('/etc/default/postsrsd')).toBe(false);
    expect(f.get('/etc/exim4/exim4.conf')).toContain('SRS_DOMAIN = a.test\n');
  });

  it('fail2ban: one jail on the mail ports only (never SSH, not even a custom SSH port), sshd jail off, the firewall backend of the OS', () => {
    const deb = files(site('postfix', { attempts: 4, within: 300, ban: 900 }));
    const jail = deb.get('/etc/fail2ban/jail.d/mailops.local')!;
    expect(jail).toContain('[sshd]\nenabled = false\n');
    expect(jail).toMatch(/^port = 25,465,587,143,993$/m);
    expect(jail).toMatch(/^banaction = nftables-multiport$/m);
    expect(jail).toMatch(/^maxretry = 4\nfindtime = 300\nbantime = 900$/m);
    expect(deb.get('/etc/fail2ban/fail2ban.d/mailops.local')).toMatch(/^dbpurgeage = 86400$/m);
    const rhel = files(site('exim', { attempts: 5, within: 600, ban: 3600 }, 'rhel'));
    expect(rhel.get('/etc/fail2ban/jail.d/mailops.local')).toMatch(/^banaction = firewallcmd-rich-rules$/m);
    expect(files(site('postfix', undefined)).has('/etc/fail2ban/jail.d/mailops.local')).toBe(false);
  });

  it('auth_ban: false retires fail2ban (stopped, disabled, mailops\' files removed); true never does', () => {
    const off = renderHosts(site('postfix', undefined))[0]!;
    expect(off.components).not.toContain('fail2ban');
    expect(off.services.map((s) => s.unit)).not.toContain('fail2ban');
    const fail2ban = <T extends { component: string }>(xs: T[]) => xs.filter((x) => x.component === 'fail2ban');
    expect(fail2ban(off.retired.units)).toEqual([{ unit: 'fail2ban', component: 'fail2ban', reason: 'retired by auth_ban: false (fail2ban)' }]);
    expect(fail2ban(off.retired.files).map((f) => f.path).sort()).toEqual(['/etc/fail2ban/fail2ban.d/mailops.local', '/etc/fail2ban/filter.d/mailops-auth.conf', '/etc/fail2ban/jail.d/mailops.local']);
    const on = renderHosts(site('postfix', { attempts: 5, within: 600, ban: 3600 }))[0]!;
    expect(on.components).toContain('fail2ban');
    expect(on.services.map((s) => s.unit)).toContain('fail2ban');
    expect(fail2ban(on.retired.units)).toEqual([]);
  });
});

describe('credentialFor (the mailbox verify logs in with)', () => {
  it('never a disabled mailbox or one that may not send; one without a send_limit first', () => {
    const s = site('postfix', undefined);
    s.domains = [
      dom('a.test', {
        mailboxes: [
          mb('off@a.test', { passwordSecret: secret, enabled: false }),
          mb('mute@a.test', { passwordSecret: secret, send: false }),
          mb('capped@a.test', { passwordSecret: secret, sendLimit: { count: 2, per: 'hour' } }),
          mb('free@a.test', { passwordSecret: secret }),
        ],
      }),
    ];
    expect(credentialFor(s)?.user).toBe('free@a.test');
    s.domains[0]!.mailboxes.pop();
    expect(credentialFor(s)?.user).toBe('capped@a.test');
    s.domains[0]!.mailboxes.pop();
    expect(credentialFor(s)).toBeUndefined();
  });
});

/** The hash of the contract's example (of 'correct horse battery staple'). */
const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';

describe('validation of the per-mailbox switches', () => {
  it('warns where an alias or catch-all points at a disabled mailbox', async () => {
    const { checkSite } = await import('../../src/site/load.js');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const file = join(mkdtempSync(join(tmpdir(), 'mailops-limits-')), 'site.yaml');
    writeFileSync(
      file,
      [
        'site: s',
        'hosts: [{ name: mx1, ssh: { address: 192.0.2.1 }, hostname: mail.a.test, ipv4: 192.0.2.1 }]',
        'dns: { nameservers: [ns1.dns.test] }',
        'domains:',
        '  - name: a.test',
        '    mailboxes:',
        `      - { name: ann, password_hash: "${HASH}" }`,
        `      - { name: old, password_hash: "${HASH}", enabled: false }`,
        '    aliases:',
        '      team: [ann, old]',
        '    catch_all: old',
        '',
      ].join('\n'),
    );
    const r = checkSite(file, { secrets: 'ignore' });
    expect(r.ok).toBe(true);
    const warnings = r.diagnostics.filter((d) => d.severity === 'warning').map((d) => `${d.path} ${d.message}`);
    expect(warnings).toEqual([
      'domains[0].aliases.team[1] old@a.test is disabled (enabled: false): this alias does not deliver to it, and mail to the alias is refused when no other target takes it',
      'domains[0].catch_all old@a.test is disabled (enabled: false): unknown local parts of a.test are refused as unknown',
    ]);
  });
});

describe('verifySubmissions (what verify sends as each login, which a send_limit counts)', () => {
  it('one message per domain from its sender, one RCPT from the submission check; a domain nobody may send from, none', () => {
    const s = site('exim', undefined);
    s.domains = [
      dom('a.test', { mailboxes: [mb('maria@a.test', { passwordSecret: secret }), mb('kiosk@a.test', { passwordSecret: secret, send: false })] }),
      dom('shop.test', { mailboxes: [mb('sales@shop.test', { passwordSecret: secret, sendLimit: { count: 2, per: 'hour' } })] }),
      dom('quiet.test', { mailboxes: [mb('info@quiet.test', { passwordSecret: secret, send: false })] }),
      dom('alias.test', { aliases: [alias('hello@alias.test', ['maria@a.test'])] }),
    ];
    expect(verifySubmissions(s)).toEqual(new Map([['maria@a.test', 2], ['sales@shop.test', 1]]));
    // Every sender limited: the submission check logs in as one of them too.
    s.domains = [s.domains[1]!];
    expect(verifySubmissions(s)).toEqual(new Map([['sales@shop.test', 2]]));
  });
});
