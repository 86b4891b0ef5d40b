/**
 * verify, with plain data: which checks each host gets (by role, and only the client host serves HTTPS),
 * the backup MX's recipient probes, what the HTTPS endpoint must serve (the same bytes apply writes), and
 * the comparisons: bodies, Outlook's POX fields, the MTA-STS policy's mx: lines against DNS, its TXT id.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { autodiscoverXml, mtaStsId, mtaStsPolicy } from '../../src/clients/autoconfig.js';
import { mxRecords } from '../../src/dns/records.js';
import type { Site } from '../../src/model/site.js';
import { renderHosts } from '../../src/render/site.js';
import { loadSite } from '../../src/site/load.js';
import { emptyState } from '../../src/state/state.js';
import { recipientProbes, unknownRecipientReply } from '../../src/verify/backup.js';
import { senders } from '../../src/verify/checks.js';
import { hostChecks } from '../../src/verify/host.js';
import { autodiscoverDifference, bodyDifference, mxDifference, notFoundProbes, policyMx, stsRecordId, webResources } from '../../src/verify/web.js';

const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';

function load(o: { roles?: string[]; stack?: string; disabled?: boolean } = {}): Site {
  const roles = o.roles ?? ['mailbox'];
  const dir = mkdtempSync(join(tmpdir(), 'mailops-verify-web-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    `site: verify-web
hosts:
${roles.map((r, i) => `  - { name: mx${i + 1}, ssh: { address: 203.0.113.${10 + i} }, hostname: mx${i + 1}.example.com, ipv4: 203.0.113.${10 + i}, role: ${r} }`).join('\n')}
stack: { mta: postfix, pop3: false${o.stack ? `, ${o.stack}` : ''} }
dns: { nameservers: [ns1.example-dns.net] }
domains:
  - name: example.com
    mailboxes:
      - { name: alice, password_hash: "${HASH}"${o.disabled ? ', enabled: false' : ''} }
      - { name: carol, password_hash: "${HASH}", enabled: false }
${o.disabled ? '' : '    aliases: { postmaster: alice, sales: alice }\n'}
  - name: other.example
    mailboxes:
      - { name: dave, password_hash: "${HASH}" }
    catch_all: dave
`,
  );
  return loadSite(file).site;
}

const ep = { address: '127.0.0.1', port: (p: number) => p };
const names = (site: Site, host: string) => hostChecks(site, emptyState(), site.hosts.find((h) => h.name === host)!, ep).map((c) => c.name);

describe('which checks a host gets', () => {
  const site = load({ roles: ['mailbox', 'mailbox', 'backup-mx'] });

  it('a backup MX: port 25 only (banner, STARTTLS, relay, VRFY) and its recipients; no submission, IMAP, logins or HTTPS', () => {
    expect(names(site, 'mx3')).toEqual([
      'smtp banner and EHLO name',
      'STARTTLS on 25',
      'no open relay',
      'VRFY disabled',
      'backup MX accepts a recipient of example.com at RCPT',
      'backup MX refuses an unknown recipient of example.com at RCPT',
      'backup MX accepts a recipient of other.example at RCPT',
      'backup MX accepts any address of other.example at RCPT (its catch-all)',
    ]);
  });

  it('no authenticated sending checks where no mailbox may send (disabled, or send: false): nothing could pass them', () => {
    const some = load({ roles: ['mailbox'], disabled: true });
    expect(senders(some, 'example.com')).toEqual([]);
    expect(senders(some, 'other.example').map((m) => m.address)).toEqual(['dave@other.example']);
    expect(names(some, 'mx1')).toContain('authenticated submission (587)');
    const none: Site = { ...some, domains: some.domains.map((d) => ({ ...d, mailboxes: d.mailboxes.map((m) => ({ ...m, send: false })) })) };
    expect(senders(none)).toEqual([]);
    expect(names(none, 'mx1').filter((n) => n.startsWith('authenticated'))).toEqual([]);
  });

  it('the first mailbox host: every mail check, then the HTTPS endpoint of every domain', () => {
    const n = names(site, 'mx1');
    expect(n.slice(0, 9)).toEqual(['smtp banner and EHLO name', 'STARTTLS on 25', 'STARTTLS on 587', 'implicit TLS on 465 (SMTP submission)', 'implicit TLS on 993 (IMAP)', 'AUTH only after TLS on 587', 'no open relay', 'VRFY disabled', 'IMAP login refused before TLS (143)']);
    expect(n).not.toContain('implicit TLS on 995 (POP3)');
    expect(n.filter((x) => x.startsWith('HTTPS') && x.includes('example.com'))).toEqual([
      'HTTPS certificate: autoconfig.example.com',
      'HTTPS certificate: autodiscover.example.com',
      'HTTPS certificate: mta-sts.example.com',
      'HTTPS Thunderbird autoconfig: https://autoconfig.example.com/mail/config-v1.1.xml',
      'HTTPS Thunderbird autoconfig: https://autoconfig.example.com/.well-known/autoconfig/mail/config-v1.1.xml',
      'HTTPS Outlook autodiscover (POX): https://autodiscover.example.com/autodiscover/autodiscover.xml',
      'HTTPS Outlook autodiscover (JSON): https://autodiscover.example.com/autodiscover/autodiscover.json',
      'HTTPS Apple profile: https://autoconfig.example.com/apple/alice.mobileconfig',
      'HTTPS Apple profile: https://autoconfig.example.com/apple/carol.mobileconfig',
      'HTTPS MTA-STS policy: https://mta-sts.example.com/.well-known/mta-sts.txt',
      'HTTPS answers nothing else: example.com',
      'HTTPS answers nothing else: mx1.example.com',
    ]);
    expect(n.filter((x) => x.startsWith('backup MX'))).toEqual([]);
  });

  it('another mailbox host: the mail checks, no HTTPS (the zones point the web names at the first)', () => {
    const n = names(site, 'mx2');
    expect(n).toContain('authenticated submission (587)');
    expect(n.filter((x) => x.startsWith('HTTPS'))).toEqual([]);
  });

  it('no autoconfig and no MTA-STS: no HTTPS check; MTA-STS alone: its name, policy and 404s only', () => {
    expect(names(load({ stack: 'autoconfig: false, mta_sts: none' }), 'mx1').filter((x) => x.startsWith('HTTPS'))).toEqual([]);
    const sts = names(load({ stack: 'autoconfig: false, mta_sts: enforce' }), 'mx1').filter((x) => x.startsWith('HTTPS'));
    expect(sts).toEqual([
      'HTTPS certificate: mta-sts.example.com',
      'HTTPS MTA-STS policy: https://mta-sts.example.com/.well-known/mta-sts.txt',
      'HTTPS answers nothing else: example.com',
      'HTTPS certificate: mta-sts.other.example',
      'HTTPS MTA-STS policy: https://mta-sts.other.example/.well-known/mta-sts.txt',
      'HTTPS answers nothing else: other.example',
      'HTTPS answers nothing else: mx1.example.com',
    ]);
  });
});

describe('the recipients a backup MX is asked about', () => {
  it('a known one (an enabled mailbox or alias, never a disabled one) and an unknown one; a catch-all domain accepts any address; a domain with no recipient only refuses', () => {
    const probes = recipientProbes(load({ roles: ['mailbox', 'backup-mx'] }));
    expect(probes).toEqual([
      { domain: 'example.com', address: 'alice@example.com', accept: true, name: 'backup MX accepts a recipient of example.com at RCPT' },
      { domain: 'example.com', address: 'mailops-verify-unknown@example.com', accept: false, name: 'backup MX refuses an unknown recipient of example.com at RCPT' },
      { domain: 'other.example', address: 'dave@other.example', accept: true, name: 'backup MX accepts a recipient of other.example at RCPT' },
      { domain: 'other.example', address: 'mailops-verify-unknown@other.example', accept: true, name: 'backup MX accepts any address of other.example at RCPT (its catch-all)' },
    ]);
    const none = recipientProbes(load({ roles: ['mailbox', 'backup-mx'], disabled: true }));
    expect(none.filter((p) => p.domain === 'example.com')).toEqual([{ domain: 'example.com', address: 'mailops-verify-unknown@example.com', accept: false, name: 'backup MX refuses an unknown recipient of example.com at RCPT' }]);
    expect(unknownRecipientReply('x@example.com')).toBe('550 5.1.1 <x@example.com>: Recipient address rejected: User unknown in relay recipient table');
  });
});

describe('what the HTTPS endpoint serves', () => {
  const site = load();

  it('the static bodies verify expects are exactly the files apply writes', () => {
    const files = new Map(renderHosts(site)[0]!.files.map((f) => [f.path, f.content]));
    for (const d of site.domains) {
      const exact = webResources(site, d).filter((r) => r.expect.kind === 'exact' && r.type !== 'application/json');
      expect(exact.length).toBe(2 + d.mailboxes.length + 1);
      for (const r of exact) {
        const path = r.path.startsWith('/apple/') ? `/var/www/mailops/apple/${r.path.slice(7, -13)}@${d.name}.mobileconfig` : r.type === 'text/plain' ? `/var/www/mailops/${d.name}.mta-sts.txt` : `/var/www/mailops/${d.name}.config-v1.1.xml`;
        expect(String(files.get(path)), `${r.check} vs ${path}`).toBe(r.expect.body);
      }
    }
  });

  it('the JSON autodiscover is asked as Outlook asks, under a mailbox address; the POX one is POSTed', () => {
    const [d] = site.domains;
    const rs = webResources(site, d!);
    expect(rs.find((r) => r.type === 'application/json')).toMatchObject({ name: 'autodiscover.example.com', path: '/autodiscover/autodiscover.json/v1.0/alice@example.com?Protocol=AutodiscoverV1', expect: { body: '{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/autodiscover/autodiscover.xml"}' } });
    const pox = rs.find((r) => r.expect.kind === 'autodiscover')!;
    expect(pox.method).toBe('POST');
    expect(pox.body).toContain('<EMailAddress>alice@example.com</EMailAddress>');
  });

  it('404 elsewhere: an unknown path on every name, a profile of no mailbox, the policy outside mta-sts.', () => {
    expect(notFoundProbes(site, site.domains[0]!)).toEqual([
      { name: 'autoconfig.example.com', path: '/mailops-verify/no-such-path' },
      { name: 'autodiscover.example.com', path: '/mailops-verify/no-such-path' },
      { name: 'mta-sts.example.com', path: '/mailops-verify/no-such-path' },
      { name: 'autoconfig.example.com', path: '/apple/mailops-verify-no-such-mailbox.mobileconfig' },
      { name: 'autoconfig.example.com', path: '/.well-known/mta-sts.txt' },
      { name: 'autodiscover.example.com', path: '/.well-known/mta-sts.txt' },
    ]);
  });
});

describe('comparing what is served', () => {
  it('bodies: equal, a changed line, cut short, longer', () => {
    const want = 'version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmax_age: 604800\r\n';
    expect(bodyDifference(want, want)).toBeUndefined();
    expect(bodyDifference(want, want.replace('enforce', 'testing'))).toBe('line 2 differs: served "mode: testing", the playbook gives "mode: enforce"');
    expect(bodyDifference(want, want.slice(0, 20))).toBe(`the body served ends early, at line 2 (20 of ${want.length} characters); missing from there: ": enforce\\r\\nmx: mx1.example.com\\r\\nmax_age: 604800\\r\\n"`);
    expect(bodyDifference(want, `${want}# edited\n`)).toBe('the body served goes on after the expected end, at line 5: "# edited\\n" (9 characters more)');
  });

  it("Outlook's POX answer: the fields, whatever the formatting; a wrong port or a missing protocol is named", () => {
    const site = load();
    const want = autodiscoverXml(site, site.domains[0]!);
    expect(autodiscoverDifference(want, want.replace(/></g, '>\n  <'))).toEqual([]);
    expect(autodiscoverDifference(want, want.replace('<Port>993</Port>', '<Port>143</Port>'))).toEqual(['Protocol IMAP: Port is "143", the playbook gives "993"']);
    const noSmtp = want.replace(/<Protocol><Type>SMTP<\/Type>.*?<\/Protocol>/, '');
    expect(autodiscoverDifference(want, noSmtp)).toEqual(['no Protocol SMTP (served: IMAP)']);
    expect(() => autodiscoverDifference(want, '<html>404</html>')).toThrow(/no Autodiscover\/Response\/Account/);
  });

  it('the MTA-STS policy against DNS: every MX in the policy, every mx: line an MX; wildcards as certificates match', () => {
    const site = load({ roles: ['mailbox', 'backup-mx'] });
    const policy = mtaStsPolicy(site)!.text;
    const patterns = policyMx(policy);
    expect(patterns).toEqual(mxRecords(site).map((m) => m.host));
    expect(mxDifference(patterns, ['mx1.example.com.', 'mx2.example.com.'])).toEqual([]);
    expect(mxDifference(['*.example.com'], ['mx1.example.com', 'mx2.example.com'])).toEqual([]);
    expect(mxDifference(['*.example.com'], ['a.b.example.com'])).toEqual(['MX a.b.example.com is not in the policy: senders that enforce MTA-STS will not deliver to it', 'the policy lists mx: *.example.com, which is no MX of the domain']);
    expect(mxDifference(patterns, ['mx1.example.com', 'mx.provider.example'])).toEqual(['MX mx.provider.example is not in the policy: senders that enforce MTA-STS will not deliver to it', 'the policy lists mx: mx2.example.com, which is no MX of the domain']);
    expect(mxDifference(patterns, [])).toContain('DNS serves no MX record');
  });

  it('the _mta-sts id: read from the record, the digest of the policy', () => {
    const site = load();
    const sts = mtaStsPolicy(site)!;
    expect(sts.id).toBe(mtaStsId(sts.text));
    expect(stsRecordId(`v=STSv1; id=${sts.id}`)).toBe(sts.id);
    expect(stsRecordId('v=STSv1;id=abc123;')).toBe('abc123');
    expect(stsRecordId('v=STSv1')).toBeUndefined();
  });
});
