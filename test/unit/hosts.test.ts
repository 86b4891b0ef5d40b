/** Several hosts, with plain data: the smarthost's rendering (both MTAs), host roles in the zones and the DKIM slots. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import type { DesiredHost } from '../../src/model/desired.js';

const RELAY_PASSWORD = 'Relay^pass word$1';
process.env['UT_RELAY_PASSWORD'] = RELAY_PASSWORD;
const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';

export function site(o: { mta?: 'postfix' | 'exim'; relayPort?: number; roles?: string[]; replication?: boolean } = {}): string {
  const roles = o.roles ?? ['mailbox'];
  const dir = mkdtempSync(join(tmpdir(), 'mailops-hosts-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(
    file,
    `site: hosts
hosts:
${roles.map((r, i) => `  - { name: mx${i + 1}, ssh: { address: 203.0.113.${10 + i} }, hostname: mx${i + 1}.example.com, ipv4: 203.0.113.${10 + i}, role: ${r} }`).join('\n')}
stack:
  mta: ${o.mta ?? 'postfix'}
${o.replication ? '  replication: true\n' : ''}${o.relayPort ? `  relay: { host: smtp.relay.example, port: ${o.relayPort}, username: relay-user, password: { env: UT_RELAY_PASSWORD } }\n` : ''}dns: { nameservers: [ns1.example-dns.net] }
domains:
  - name: example.com
    dkim: { selector: mail }
    mailboxes:
      - { name: alice, password_hash: "${HASH}" }
      - { name: bob, password_hash: "${HASH}" }
    aliases: { postmaster: alice, sales: [alice, bob], partners: [alice, someone@partner.example] }
    catch_all: bob
  - name: other.example
    mailboxes:
      - { name: carol, password_hash: "${HASH}" }
`,
  );
  return file;
}

export const render = (file: string): DesiredHost[] => renderHosts(loadSite(file).site);
export const fileOf = (h: DesiredHost, path: string) => h.files.find((f) => f.path === path);

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
  });

  it('no relay: nothing of it is rendered', () => {
    const [h] = render(site());
    expect(fileOf(h!, '/etc/postfix/main.cf')!.content).not.toContain('default_transport');
    expect(fileOf(h!, '/etc/postfix/relay_password')).toBeUndefined();
  });
});
