/** `mailops clients`: what a person types into a mail client, from the same model as the configs. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { clientSettings, formatClientSettings } from '../../src/clients/settings.js';
import { checkSite } from '../../src/site/load.js';
import { emptyState } from '../../src/state/state.js';
import { certificateNames } from '../../src/render/names.js';

const minimal = readFileSync(new URL('../fixtures/minimal.yaml', import.meta.url), 'utf8');
const siteOf = (text: string) => {
  const r = checkSite('/tmp/site.yaml', { secrets: 'warning' }, text);
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  return r.site;
};

describe('client settings', () => {
  it('IMAP and submission by default, with the names the certificate covers, the full address as user name', () => {
    const site = siteOf(minimal);
    const c = clientSettings(site, emptyState());
    expect(c.mailboxes).toHaveLength(1);
    const m = c.mailboxes[0]!;
    expect(m.username).toBe('alice@example.org');
    expect(m.incoming.map((x) => `${x.protocol} ${x.host}:${x.port} ${x.security}${x.recommended ? ' *' : ''}`)).toEqual(['IMAP imap.example.org:993 SSL/TLS *', 'IMAP imap.example.org:143 STARTTLS']);
    expect(m.outgoing.map((x) => `${x.host}:${x.port} ${x.security}${x.recommended ? ' *' : ''}`)).toEqual(['smtp.example.org:465 SSL/TLS *', 'smtp.example.org:587 STARTTLS']);
    for (const s of [...m.incoming, ...m.outgoing]) expect(c.certificate.names).toContain(s.host);
    expect(c.certificate.names).toEqual(['mail.example.org', 'imap.example.org', 'smtp.example.org', 'autoconfig.example.org', 'autodiscover.example.org', 'mta-sts.example.org']);
    expect(c.troubleshooting.map((t) => t.error.slice(0, 3))).toEqual(['530', '535', '553', 'cer']);
  });

  it('POP3 only when it is on; limits and disabled mailboxes are said; a self-signed certificate comes with its fingerprint', () => {
    const site = siteOf(
      minimal
        .replace('dns:', 'stack:\n  pop3: true\n  imap: false\ndns:')
        .replace('        password_hash:', '        send: false\n        password_hash:'),
    );
    const state = { ...emptyState(), tls: { 'mail.example.org': 'ab'.repeat(32) } };
    const c = clientSettings(site, state);
    expect(c.mailboxes[0]!.incoming.map((x) => `${x.protocol} ${x.port}${x.recommended ? ' *' : ''}`)).toEqual(['POP3 995 *', 'POP3 110']);
    expect(c.mailboxes[0]!.notes).toEqual(['may read mail but not send: the server refuses its outgoing mail (5xx)']);
    expect(c.troubleshooting[3]!.fix).toContain(`SHA-256 fingerprint is ${'AB:'.repeat(31)}AB`);
    const text = formatClientSettings(c);
    expect(text).toContain('    POP3 pop.example.org  port 995  SSL/TLS  (use this)');
    expect(text).toContain('certificate (self-signed): covers mail.example.org, pop.example.org, smtp.example.org, autoconfig.example.org');
  });

  it('a backup MX serves no clients: its certificate names only itself', () => {
    const two = minimal.replace('    ipv4: 192.0.2.1\n', '    ipv4: 192.0.2.1\n  - name: mx2\n    role: backup-mx\n    ssh: { address: 192.0.2.2 }\n    hostname: mx2.example.org\n    ipv4: 192.0.2.2\n');
    const site = siteOf(two);
    expect(certificateNames(site, site.hosts[1]!)).toEqual(['mx2.example.org']);
    expect(certificateNames(site, site.hosts[0]!)).toEqual(['mail.example.org', 'imap.example.org', 'smtp.example.org', 'autoconfig.example.org', 'autodiscover.example.org', 'mta-sts.example.org']);
  });
});
