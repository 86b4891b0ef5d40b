/** Several hosts, with plain data: the smarthost's rendering (both MTAs), host roles in the zones and the DKIM slots. */
import { describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { zoneModel } from '../../src/dns/records.js';
import { emptyState } from '../../src/state/state.js';
import { wantedSlots } from '../../src/plan/dkim.js';
import { backupMxView } from '../../src/render/context.js';
import { RELAY_PASSWORD, fileOf, render, site } from './support/hosts-site.js';

describe('outbound smarthost', () => {
  it('Postfix on 465: every message leaves by the smarthost service, TLS from the first byte, SASL from a root-only secret map', () => {
    const [h] = render(site({ relayPort: 465 }));
    const main = fileOf(h!, '/etc/postfix/main.cf')!.content;
    const master = fileOf(h!, '/etc/postfix/master.cf')!.content;
    expect(main).toMatch(/^default_transport = smarthost:\[smtp\.relay\.example\]:465$/m);
    expect(master).toContain('smarthost  unix  -       -       n       -       -       smtp\n  -o syslog_name=postfix/smarthost\n  -o smtp_tls_security_level=encrypt\n  -o smtp_tls_wrappermode=yes\n  -o smtp_sasl_auth_enable=yes\n  -o smtp_sasl_password_maps=texthash:/etc/postfix/relay_password\n');
    const pw = fileOf(h!, '/etc/postfix/relay_password')!;
    expect(pw).toMatchObject({ secret: true, owner: 'root', mode: '0600', content: `[smtp.relay.example]:465 relay-user:${RELAY_PASSWORD}\n` });
    // The password is in that file only, and Cyrus SASL's client mechanisms are installed.
    expect(h!.files.filter((f) => f.content.includes(RELAY_PASSWORD)).map((f) => f.path)).toEqual(['/etc/postfix/relay_password']);
    expect(h!.packages).toContain('libsasl2-modules');
    // The sender-dependent transports (SRS) send the site's own mail and bounces by the smarthost too; forwarded
    // mail goes through the SRS loop first and then leaves as the site's own.
    const srs = fileOf(h!, '/etc/postfix/srs_senders')!.content;
    expect(srs).toContain('/^"?<>"?$/ smarthost:[smtp.relay.example]:465\n/@example\\.com$/ smarthost:[smtp.relay.example]:465\n');
    expect(srs).toMatch(/^\/\.\/ srsfwd:\[127\.0\.0\.1\]:10027$/m);
    expect(srs).not.toMatch(/ smtp:$/m);
  });

  it('Postfix on 587: STARTTLS required (encrypt), no wrapper mode', () => {
    const [h] = render(site({ relayPort: 587 }));
    const master = fileOf(h!, '/etc/postfix/master.cf')!.content;
    expect(master).toContain('-o smtp_tls_security_level=encrypt\n  -o smtp_sasl_auth_enable=yes');
    expect(master).not.toContain('smtp_tls_wrappermode');
    expect(fileOf(h!, '/etc/postfix/main.cf')!.content).toMatch(/^default_transport = smarthost:\[smtp\.relay\.example\]:587$/m);
  });

  it('Exim: a manualroute router before dnslookup, TLS and AUTH required, DKIM signed in the transport, the login in a secret file', () => {
    const [h] = render(site({ mta: 'exim', relayPort: 587 }));
    const conf = fileOf(h!, '/etc/exim4/exim4.conf')!.content;
    expect(conf.indexOf('smarthost:\n  driver = manualroute')).toBeGreaterThan(0);
    expect(conf.indexOf('smarthost:\n  driver = manualroute')).toBeLessThan(conf.indexOf('dnslookup:\n'));
    expect(conf).toContain('  route_list = * smtp.relay.example byname\n');
    expect(conf).toMatch(/smarthost_smtp:\n  driver = smtp\n  port = 587\n  hosts_require_tls = \*\n  hosts_require_auth = \*\n[\s\S]*?  dkim_domain = DKIM_DOMAIN\n/);
    expect(conf).toContain('client_condition = ${if eq{$host}{RELAY_HOST}}');
    const login = fileOf(h!, '/etc/exim4/relay_login')!;
    expect(login).toMatchObject({ secret: true, mode: '0640', content: `relay-user\n${RELAY_PASSWORD}\n` });
    expect(h!.files.filter((f) => f.content.includes(RELAY_PASSWORD)).map((f) => f.path)).toEqual(['/etc/exim4/relay_login']);
    expect(h!.packages).not.toContain('libsasl2-modules');
    const ex465 = fileOf(render(site({ mta: 'exim', relayPort: 465 }))[0]!, '/etc/exim4/exim4.conf')!.content;
    expect(ex465).toContain('  port = 465\n  protocol = smtps\n');
    // Forwarded mail leaves by the smarthost too, in SRS form.
    expect(conf).toContain('  transport = ${if eq{$local_part@$domain}{$original_local_part@$original_domain}{smarthost_smtp}{smarthost_forwarded_smtp}}\n  route_list = * smtp.relay.example byname\n');
    expect(conf).toMatch(/smarthost_forwarded_smtp:\n  driver = smtp\n  max_rcpt = 1\n  return_path = SRS_RETURN_PATH\n  port = 587\n  hosts_require_tls = \*\n  hosts_require_auth = \*\n/);
  });

  it('no relay: nothing of it is rendered', () => {
    const [h] = render(site());
    expect(fileOf(h!, '/etc/postfix/main.cf')!.content).not.toMatch(/^default_transport/m);
    expect(fileOf(h!, '/etc/postfix/srs_senders')!.content).not.toContain('smarthost');
    expect(fileOf(h!, '/etc/postfix/relay_password')).toBeUndefined();
  });
});

describe('host roles', () => {
  const zone = (file: string) => zoneModel(loadSite(file).site, loadSite(file).site.domains[0]!, emptyState());
  const data = (z: ReturnType<typeof zone>, type: string, name?: string) => z.records.filter((r) => r.type === type && (name === undefined || r.name === name)).map((r) => r.data);

  it('MX: the mailbox hosts first, the backup MX after them; clients (CNAME, SRV) go to the first mailbox host only', () => {
    const z = zone(site({ roles: ['backup-mx', 'mailbox', 'mailbox'] }));
    expect(data(z, 'MX')).toEqual(['10 mx2.example.com.', '20 mx3.example.com.', '30 mx1.example.com.']);
    expect(z.records.filter((r) => r.type === 'CNAME').map((r) => `${r.name} ${String(r.data)}`)).toEqual(['imap mx2.example.com.', 'smtp mx2.example.com.', 'autoconfig mx2.example.com.', 'autodiscover mx2.example.com.', 'mta-sts mx2.example.com.']);
    expect(data(z, 'SRV', '_submission._tcp')).toEqual(['0 1 587 mx2.example.com.']);
    expect(data(z, 'SRV', '_imaps._tcp')).toEqual(['0 1 993 mx2.example.com.']);
  });

  it('MX with replication: both mailbox hosts at the same preference, the backup MX after', () => {
    expect(data(zone(site({ roles: ['mailbox', 'mailbox', 'backup-mx'], replication: true })), 'MX')).toEqual(['10 mx1.example.com.', '10 mx2.example.com.', '20 mx3.example.com.']);
    expect(data(zone(site({ roles: ['mailbox', 'mailbox'] })), 'MX')).toEqual(['10 mx1.example.com.', '20 mx2.example.com.']);
  });

  it('a backup MX has no DKIM key (it sends no mail of its own); the mailbox host keeps its selector', () => {
    const { site: s } = loadSite(site({ roles: ['mailbox', 'backup-mx'] }));
    const d = s.domains[0]!;
    expect(wantedSlots(s, d, s.hosts[1]!)).toEqual([]);
    expect(wantedSlots(s, d, s.hosts[0]!)).toEqual([{ algorithm: 'rsa', bits: 2048, base: 'mail' }]);
  });

  it('recipients of a backup MX: every mailbox and alias, @domain for a catch-all; forwarded to the mailbox hosts by name', () => {
    const v = backupMxView(loadSite(site({ roles: ['mailbox', 'backup-mx', 'mailbox'] })).site);
    expect(v.recipients).toEqual(['@example.com', 'alice@example.com', 'bob@example.com', 'carol@other.example', 'partners@example.com', 'postmaster@example.com', 'sales@example.com']);
    expect(v.nexthops).toBe('[mx1.example.com]:25, [mx3.example.com]:25');
  });

  it('Postfix backup MX: relay_domains with a recipient map and a transport by name, days of queue, no mailboxes, no Dovecot, no submission, no DKIM', () => {
    const [, b] = render(site({ roles: ['mailbox', 'backup-mx'] }));
    const main = fileOf(b!, '/etc/postfix/main.cf')!.content;
    expect(main).toMatch(/^virtual_mailbox_domains = $/m);
    expect(main).toMatch(/^relay_domains = example\.com other\.example$/m);
    expect(main).toMatch(/^relay_recipient_maps = texthash:\/etc\/postfix\/relay_recipients$/m);
    expect(main).toMatch(/^maximal_queue_lifetime = 10d$/m);
    expect(main).toMatch(/^smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unlisted_recipient, permit$/m);
    // Every restriction class is defined (postfix check warns about an undefined one, and apply refuses warnings).
    const classes = /^smtpd_restriction_classes = (.*)$/m.exec(main)![1]!.split(/,\s*/);
    expect(classes).toEqual(['mailbox_quota', 'quota_status']);
    for (const c of classes) expect(main).toMatch(new RegExp(`^${c} = `, 'm'));
    // No DKIM signing (it sends no mail of its own); inbound mail is still scored (rspamd) before it is queued.
    expect(main).not.toContain('8891');
    expect(main).toContain('smtpd_milters = { inet:127.0.0.1:11332, default_action=tempfail }\n');
    expect(fileOf(b!, '/etc/postfix/transport')!.content).toBe('# Backup MX of hosts: mail for the domains goes to the mailbox hosts by name (no MX lookup).\nexample.com relay:[mx1.example.com]:25\nother.example relay:[mx1.example.com]:25\n');
    expect(fileOf(b!, '/etc/postfix/relay_recipients')!.content).toContain('\nalice@example.com OK\n');
    const master = fileOf(b!, '/etc/postfix/master.cf')!.content;
    expect(master).not.toMatch(/^submissions? /m);
    expect(b!.files.some((f) => f.path.startsWith('/etc/dovecot/'))).toBe(false);
    expect(b!.packages.some((p) => p.startsWith('dovecot'))).toBe(false);
    // The mailbox host is unchanged by having a backup.
    const [a] = render(site({ roles: ['mailbox', 'backup-mx'] }));
    expect(fileOf(a!, '/etc/postfix/main.cf')!.content).not.toMatch(/^relay_domains =/m);
    expect(fileOf(a!, '/etc/postfix/master.cf')!.content).toMatch(/^submission inet/m);
  });

  it('Exim backup MX: the domains are relay_to_domains with a recipient list, refused at RCPT as by Postfix, forwarded by name, kept 10 days; port 25 only, no logins, no Dovecot', () => {
    const [a, b, c] = render(site({ mta: 'exim', roles: ['mailbox', 'backup-mx', 'mailbox'] }));
    const conf = fileOf(b!, '/etc/exim4/exim4.conf')!.content;
    expect(conf).toMatch(/^domainlist local_domains =$/m);
    expect(conf).toMatch(/^domainlist relay_to_domains = <; example\.com ; other\.example$/m);
    expect(conf).toMatch(/^daemon_smtp_ports = 25$/m);
    expect(conf).not.toMatch(/^tls_on_connect_ports/m);
    expect(conf).toMatch(/^timeout_frozen_after = 10d$/m);
    expect(conf).toContain('  message = 550 5.1.1 <$local_part@$domain>: Recipient address rejected: User unknown in relay recipient table\n');
    expect(conf).toContain('backup_mx:\n  driver = manualroute\n  domains = +relay_to_domains\n  transport = remote_smtp\n  route_list = * mx1.example.com:mx3.example.com byname\n');
    // The backup router comes before any router that could send the domains' mail elsewhere.
    expect(conf.indexOf('backup_mx:')).toBeLessThan(conf.indexOf('dnslookup:'));
    expect(conf).toMatch(/^\*\s+\*\s+F,2h,1m; F,10d,15m$/m);
    expect(conf).not.toContain('driver = dovecot');
    expect(fileOf(b!, '/etc/systemd/system/exim4.service')!.content).toContain('ExecStart=/usr/sbin/exim4 -bdf -q1m\n');
    // Its Exim starts no Dovecot (one merely installed there would serve IMAP with its packaged configuration).
    expect(fileOf(b!, '/etc/systemd/system/exim4.service')!.content).not.toContain('dovecot');
    expect(fileOf(a!, '/etc/systemd/system/exim4.service')!.content).toMatch(/^Wants=dovecot\.service$/m);
    expect(fileOf(b!, '/etc/exim4/relay_recipients')!.content).toBe(
      '# Backup MX of hosts: every recipient the mailbox hosts accept (mailboxes, aliases; @domain: a catch-all).\n@example.com:\nalice@example.com:\nbob@example.com:\ncarol@other.example:\npartners@example.com:\npostmaster@example.com:\nsales@example.com:\n',
    );
    expect(b!.files.some((f) => f.path.startsWith('/etc/dovecot/'))).toBe(false);
    expect(b!.packages.some((p) => p.startsWith('dovecot'))).toBe(false);
    // A new certificate reloads what presents it: on the backup the MTA only (no Dovecot, no nginx); on the
    // first mailbox host nginx too (it serves HTTPS), on the other mailbox host the MTA and Dovecot.
    const certNotify = (h: DesiredHost) => h.commands.find((x) => x.name.startsWith('self-signed certificate'))!.notify;
    expect(certNotify(b!)).toEqual(['reload exim']);
    expect(certNotify(a!)).toEqual(['reload exim', 'reload dovecot', 'reload nginx']);
    expect(certNotify(c!)).toEqual(['reload exim', 'reload dovecot']);
    // The mailbox hosts are unchanged by having a backup.
    const mine = fileOf(a!, '/etc/exim4/exim4.conf')!.content;
    expect(mine).toMatch(/^domainlist local_domains = <; example\.com ; other\.example$/m);
    expect(mine).toMatch(/^daemon_smtp_ports = 25 : 465 : 587$/m);
    expect(mine).not.toContain('relay_to_domains');
    expect(fileOf(a!, '/etc/exim4/relay_recipients')).toBeUndefined();
  });
});
