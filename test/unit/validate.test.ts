import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSite } from '../../src/site/load.js';
import { formatDiagnostic } from '../../src/model/diagnostic.js';

const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';
const minimal = readFileSync(new URL('../fixtures/minimal.yaml', import.meta.url), 'utf8');

const check = (text: string | Buffer, secrets: 'warning' | 'error' = 'warning') => checkSite('site.yaml', { secrets }, text);
const errors = (text: string | Buffer) => {
  const r = check(text);
  return r.diagnostics.filter((d) => d.severity === 'error');
};

/** The minimal playbook with `from` replaced by `to` (must occur once). */
function mutate(from: string, to: string): string {
  expect(minimal.split(from).length, `fixture holds ${JSON.stringify(from)} once`).toBe(2);
  return minimal.replace(from, to);
}

describe('validate: valid playbooks', () => {
  it('accepts dns.update, dns.tlsrpt and name servers with glue; an in-zone name server without an address is a warning', () => {
    const r = check(mutate('  nameservers: [ns1.example.net]', '  nameservers: [{ name: ns1.example.org, ipv4: 192.0.2.53 }, ns2.example.org]\n  update: { server: "[2001:db8::53]:5353", key: { env: TSIG_KEY } }\n  tlsrpt: tls@example.org'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.site.dns).toMatchObject({ nameservers: ['ns1.example.org', 'ns2.example.org'], nameserverAddresses: { 'ns1.example.org': { ipv4: '192.0.2.53' } }, update: { server: '[2001:db8::53]:5353', key: { kind: 'env', name: 'TSIG_KEY' } }, tlsrpt: 'tls@example.org' });
    expect(r.diagnostics.map((d) => `${d.severity} ${d.path} ${d.line}`)).toEqual(['warning dns.nameservers[1] 9']);
    expect(r.diagnostics[0]!.message).toMatch(/name server ns2.example.org lies inside the zone example.org but has no address/);
  });

  it('accepts the CONTRACT.md playbook (secret missing is a warning)', () => {
    const file = new URL('../../playbooks/examples/contract.yaml', import.meta.url).pathname;
    const r = checkSite(file, { secrets: 'warning' });
    expect(r.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const d = r.site.domains[0]!;
    expect(d.aliases.find((a) => a.local === 'partners')?.targets).toEqual(['alice@example.com', 'someone@partner.example']);
    expect(d.mailboxes[1]!.sendAs).toEqual(['sales@example.com']);
    expect(d.catchAll).toBe('alice@example.com');
    expect(r.site.stack.messageSizeLimit).toBe(50 * 1024 * 1024);
  });

  it('accepts the minimal playbook and applies defaults', () => {
    const r = check(minimal);
    expect(r.diagnostics).toEqual([]);
    if (!r.ok) throw new Error('invalid');
    expect(r.site.stack).toMatchObject({ mta: 'postfix', imap: true, pop3: false, tls: { mode: 'self-signed' } });
    expect(r.site.hosts[0]!.ssh).toEqual({ address: '192.0.2.1', port: 22, user: 'root' });
    expect(r.site.dns.ttl).toBe(3600);
  });

  it('accepts the 1.1 fields of inbound protection, several hosts and client set-up, and applies their defaults', () => {
    const plain = check(minimal);
    if (!plain.ok) throw new Error('invalid');
    expect(plain.site.hosts[0]!.role).toBe('mailbox');
    expect(plain.site.stack).toMatchObject({ antispam: true, dnsbl: [], authBan: { attempts: 5, within: 600, ban: 3600 }, replication: false, autoconfig: true, mtaSts: 'testing' });
    expect(plain.site.stack.relay).toBeUndefined();
    expect(plain.site.domains[0]!.mailboxes[0]).toMatchObject({ send: true, enabled: true });
    const text = mutate('    ipv4: 192.0.2.1\n', '    ipv4: 192.0.2.1\n  - name: mx2\n    role: backup-mx\n    ssh: { address: 192.0.2.2 }\n    hostname: mx2.example.org\n    ipv4: 192.0.2.2\n')
      .replace('dns:', 'stack:\n  antispam: false\n  dnsbl: [zen.spamhaus.org, bl.example.net.]\n  auth_ban: { attempts: 3, ban: 2h }\n  relay: { host: smtp.relay.example, port: 2525, username: relay-user, password: { env: MAILOPS_RELAY_PASSWORD } }\n  autoconfig: false\n  mta_sts: enforce\ndns:')
      .replace(`        password_hash: "${HASH}"`, `        password_hash: "${HASH}"\n        send: false\n        enabled: false\n      - name: bob\n        password_hash: "${HASH}"\n        send_limit: 200/day`)
      .replace('  - name: example.org', '  - name: example.org\n    dkim: { selector: mail, key: ed25519, grace: 2d }');
    process.env['MAILOPS_RELAY_PASSWORD'] = 'x';
    const r = check(text);
    expect(r.diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic)).toEqual([]);
    if (!r.ok) throw new Error('invalid');
    expect(r.site.hosts.map((h) => h.role)).toEqual(['mailbox', 'backup-mx']);
    expect(r.site.stack).toMatchObject({
      antispam: false,
      dnsbl: ['zen.spamhaus.org', 'bl.example.net'],
      authBan: { attempts: 3, within: 600, ban: 7200 },
      relay: { host: 'smtp.relay.example', port: 2525, username: 'relay-user', password: { kind: 'env', name: 'MAILOPS_RELAY_PASSWORD' } },
      autoconfig: false,
      mtaSts: 'enforce',
    });
    expect(r.site.domains[0]!.dkim).toEqual({ selector: 'mail', key: 'ed25519', grace: 2 * 86400 });
    expect(r.site.domains[0]!.mailboxes.map((m) => [m.send, m.enabled, m.sendLimit])).toEqual([
      [false, false, undefined],
      [true, true, { count: 200, per: 'day' }],
    ]);
    const off = check(mutate('dns:', 'stack:\n  auth_ban: false\ndns:'));
    if (!off.ok) throw new Error('invalid');
    expect(off.site.stack.authBan).toBeUndefined();
  });

  it('turns a missing secret into an error where the secret is needed', () => {
    const text = mutate(`password_hash: "${HASH}"`, 'password: { env: MAILOPS_TEST_UNSET_VARIABLE }');
    delete process.env['MAILOPS_TEST_UNSET_VARIABLE'];
    expect(check(text, 'warning').ok).toBe(true);
    const r = check(text, 'error');
    expect(r.ok).toBe(false);
    expect(r.diagnostics[0]!.message).toMatch(/MAILOPS_TEST_UNSET_VARIABLE is not set/);
  });
});

interface Case {
  name: string;
  text: () => string | Buffer;
  message: RegExp;
  path?: string;
  line?: number;
  column?: number;
}

const cases: Case[] = [
  { name: 'empty file', text: () => '', message: /is empty/ },
  { name: 'only comments', text: () => '# nothing here\n\n', message: /is empty/ },
  { name: 'not YAML', text: () => 'site: [unclosed\nhosts: {', message: /not valid YAML/ },
  { name: 'binary file', text: () => Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01, 0x02]), message: /not a text file/ },
  { name: 'invalid UTF-8', text: () => Buffer.from([0x73, 0x69, 0x74, 0x65, 0x3a, 0x20, 0xff, 0xfe]), message: /not valid UTF-8/ },
  { name: 'a list instead of a mapping', text: () => '- a\n- b\n', message: /must be a YAML mapping/ },
  { name: 'duplicate key', text: () => mutate('site: demo', 'site: demo\nsite: again'), message: /not valid YAML: Map keys must be unique/, line: 2 },
  { name: 'unknown top-level key', text: () => mutate('site: demo', 'site: demo\ndomain: x'), message: /unknown field "domain" \(did you mean "domains"\?\)/, path: 'domain', line: 2, column: 1 },
  { name: 'unknown nested key with suggestion', text: () => mutate('        password_hash:', '        pasword_hash:'), message: /unknown field "pasword_hash" \(did you mean "password_hash"\?\)/, path: 'domains[0].mailboxes[0].pasword_hash', line: 14, column: 9 },
  { name: 'wrong type', text: () => mutate('      address: 192.0.2.1', '      address: 192.0.2.1\n      port: "twenty-two"'), message: /must be a whole number, not the string "twenty-two"/, path: 'hosts[0].ssh.port', line: 6, column: 13 },
  { name: 'port out of range', text: () => mutate('      address: 192.0.2.1', '      address: 192.0.2.1\n      port: 70000'), message: /must be <= 65535/, path: 'hosts[0].ssh.port' },
  { name: 'missing required field', text: () => mutate('    ipv4: 192.0.2.1\n', ''), message: /missing required field "ipv4"/, path: 'hosts[0]', line: 3, column: 5 },
  { name: 'no hosts', text: () => minimal.replace(/hosts:\n(?: {2,}.*\n)+/, 'hosts: []\n'), message: /hosts: must list at least 1 item|must list at least 1 item/, path: 'hosts', line: 2, column: 8 },
  { name: 'invalid domain name', text: () => mutate('  - name: example.org', '  - name: exa_mple..org'), message: /is not a valid domain name/, path: 'domains[0].name', line: 11, column: 11 },
  { name: 'uppercase domain', text: () => mutate('  - name: example.org', '  - name: Example.org'), message: /must be written in lowercase/, path: 'domains[0].name' },
  { name: 'hostname not fully qualified', text: () => mutate('hostname: mail.example.org', 'hostname: mail'), message: /not a fully qualified name/, path: 'hosts[0].hostname', line: 6, column: 15 },
  { name: 'invalid IPv4', text: () => mutate('    ipv4: 192.0.2.1', '    ipv4: 192.0.2.300'), message: /"192.0.2.300" is not an IPv4 address/, path: 'hosts[0].ipv4', line: 7, column: 11 },
  { name: 'invalid IPv6', text: () => mutate('    ipv4: 192.0.2.1', '    ipv4: 192.0.2.1\n    ipv6: 2001:db8:::1'), message: /is not an IPv6 address/, path: 'hosts[0].ipv6', line: 8 },
  { name: 'duplicate domain', text: () => `${minimal}  - name: example.org\n`, message: /duplicate domain "example.org" \(also domains\[0\]\)/, path: 'domains[1].name', line: 17, column: 11 },
  { name: 'duplicate mailbox', text: () => mutate('    aliases:', `      - name: alice\n        password_hash: "${HASH}"\n    aliases:`), message: /duplicate mailbox "alice"/, path: 'domains[0].mailboxes[1].name', line: 15 },
  { name: 'duplicate alias key', text: () => mutate('      postmaster: alice', '      postmaster: alice\n      postmaster: alice'), message: /Map keys must be unique/ },
  { name: 'alias to a missing local address', text: () => mutate('      postmaster: alice', '      postmaster: alicia'), message: /alias target "alicia" points at alicia@example.org, which is neither a mailbox nor an alias/, path: 'domains[0].aliases.postmaster', line: 16, column: 19 },
  { name: 'send_as to a missing address', text: () => mutate(`        password_hash: "${HASH}"`, `        password_hash: "${HASH}"\n        send_as: [sales]`), message: /send_as "sales" points at sales@example.org/, path: 'domains[0].mailboxes[0].send_as[0]', line: 15, column: 19 },
  { name: 'send_as to another domain', text: () => mutate(`        password_hash: "${HASH}"`, `        password_hash: "${HASH}"\n        send_as: [ceo@gmail.com]`), message: /is not an address of this site's domains/, path: 'domains[0].mailboxes[0].send_as[0]' },
  { name: 'catch_all to a missing address', text: () => `${minimal}    catch_all: nobody\n`, message: /catch_all "nobody" points at nobody@example.org/, path: 'domains[0].catch_all', line: 17, column: 16 },
  { name: 'alias loop', text: () => mutate('      postmaster: alice', '      postmaster: [alice, abuse]\n      abuse: webmaster\n      webmaster: postmaster'), message: /alias loop: postmaster@example.org -> abuse@example.org -> webmaster@example.org -> postmaster@example.org/, path: 'domains[0].aliases.webmaster', line: 18 },
  { name: 'self alias loop', text: () => mutate('      postmaster: alice', '      postmaster: alice\n      info: info'), message: /alias loop: info@example.org -> info@example.org/ },
  { name: 'both mailbox and alias', text: () => mutate('      postmaster: alice', '      postmaster: alice\n      alice: postmaster'), message: /"alice" is both a mailbox and an alias/, path: 'domains[0].aliases.alice', line: 17, column: 7 },
  { name: 'plaintext password', text: () => mutate(`password_hash: "${HASH}"`, 'password: "hunter2"'), message: /plaintext passwords are refused: use password_hash/, path: 'domains[0].mailboxes[0].password', line: 14, column: 19 },
  { name: 'malformed password_hash', text: () => mutate(HASH, '{SHA512-CRYPT}$6$abc$tooshort'), message: /is not a well-formed \{SHA512-CRYPT\} hash/, path: 'domains[0].mailboxes[0].password_hash' },
  { name: 'weak hash scheme', text: () => mutate(HASH, '{PLAIN}hunter2'), message: /scheme \{PLAIN\}, which is not accepted/ },
  { name: 'hash without scheme', text: () => mutate(HASH, '$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0'), message: /must start with its scheme/ },
  { name: 'no password at all', text: () => mutate(`        password_hash: "${HASH}"\n`, ''), message: /needs password_hash or password/ },
  { name: 'bad DKIM selector', text: () => mutate('  - name: example.org', '  - name: example.org\n    dkim: { selector: "Mail_2024" }'), message: /is not a valid DKIM selector/, path: 'domains[0].dkim.selector', line: 12 },
  { name: 'bad DKIM key type', text: () => mutate('  - name: example.org', '  - name: example.org\n    dkim: { selector: mail, key: rsa-1024 }'), message: /must be one of rsa-2048, rsa-4096, ed25519/, path: 'domains[0].dkim.key' },
  { name: 'dns.update with an unknown key', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  update: { server: 192.0.2.53, key: { file: /k }, zone: x }'), message: /unknown field "zone"/, path: 'dns.update.zone', line: 10 },
  { name: 'dns.update server that is no address', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  update: { server: "192.0.2.53:99999", key: { file: /k } }'), message: /"192.0.2.53:99999" has port 99999: use 1 to 65535/, path: 'dns.update.server', line: 10 },
  { name: 'dns.update key given as a string', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  update: { server: 192.0.2.53, key: "hmac-sha256:k:c2VjcmV0" }'), message: /must be \{ file: PATH \} or \{ env: NAME \}/, path: 'dns.update.key', line: 10 },
  { name: 'dns.tlsrpt not an address', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  tlsrpt: reports'), message: /"reports" is not an email address/, path: 'dns.tlsrpt', line: 10 },
  { name: 'name server glue not an address', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [{ name: ns1.example.org, ipv4: 192.0.2.999 }]'), message: /"192.0.2.999" is not an IPv4 address/, path: 'dns.nameservers[0].ipv4', line: 9 },
  { name: 'bad size unit', text: () => mutate('dns:', 'stack:\n  message_size_limit: 50MB\ndns:'), message: /must be a size such as 50M/, path: 'stack.message_size_limit', line: 9, column: 23 },
  { name: 'bad quota unit', text: () => mutate(`        password_hash: "${HASH}"`, `        password_hash: "${HASH}"\n        quota: 2 gigs`), message: /must be a size such as 50M/, path: 'domains[0].mailboxes[0].quota' },
  { name: 'unknown mta', text: () => mutate('dns:', 'stack:\n  mta: sendmail\ndns:'), message: /must be postfix or exim, not the string "sendmail"/, path: 'stack.mta', line: 9, column: 8 },
  { name: 'uppercase mailbox', text: () => mutate('      - name: alice', '      - name: Alice'), message: /mailbox "Alice" must be written in lowercase/ },
  { name: 'plus in alias', text: () => mutate('      postmaster: alice', '      post+master: alice'), message: /may not contain "\+"/ },
  { name: 'tls files without paths', text: () => mutate('dns:', 'stack:\n  tls: { mode: files }\ndns:'), message: /mode "files" needs "cert"/ },
  { name: 'acme settings without acme mode', text: () => mutate('dns:', 'stack:\n  tls: { mode: self-signed, acme_server: "https://acme.example/dir" }\ndns:'), message: /is only used with mode "acme"/, path: 'stack.tls.acme_server' },
  { name: 'acme server not a URL', text: () => mutate('dns:', 'stack:\n  tls: { mode: acme, acme_server: "acme.example" }\ndns:'), message: /is not an http\(s\) URL/, path: 'stack.tls.acme_server' },
  { name: 'invalid hostmaster', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  hostmaster: nobody'), message: /"nobody" is not an email address/ },
  // Control characters: a value is copied into configs, zones and commands, where a line break starts a new setting.
  { name: 'a line break in tls.cert (would add a relay to main.cf)', text: () => mutate('dns:', 'stack:\n  tls: { mode: files, cert: "/etc/ssl/cert.pem\\nrelayhost = [evil.example]", key: /etc/ssl/key.pem }\ndns:'), message: /^"\/etc\/ssl\/cert\.pem\\nrelayhost = \[evil\.example\]" holds a line break \(U\+000A\) at character 18: playbook values are copied into configuration files/, path: 'stack.tls.cert', line: 9, column: 29 },
  { name: 'a block scalar keeps its final line break (tls.key)', text: () => mutate('dns:', 'stack:\n  tls:\n    mode: files\n    cert: /etc/ssl/cert.pem\n    key: |\n      /etc/ssl/key.pem\ndns:'), message: /^"\/etc\/ssl\/key\.pem\\n" holds a line break \(U\+000A\) at its end \(a YAML block scalar "\|" keeps the final line break: use "\|-" or a plain value\)/, path: 'stack.tls.key', line: 12, column: 10 },
  { name: 'a carriage return in an alias target', text: () => mutate('      postmaster: alice', '      postmaster: "alice\\r"'), message: /^"alice\\r" holds a carriage return \(U\+000D\) at its end/, path: 'domains[0].aliases.postmaster', line: 16, column: 19 },
  { name: 'a line break in an alias name (a mapping key)', text: () => mutate('      postmaster: alice', '      "post\\nmaster": alice'), message: /^the key "post\\nmaster" holds a line break \(U\+000A\) at character 5/, path: 'domains[0].aliases["post\\nmaster"]', line: 16, column: 7 },
  { name: 'a NUL in the hostname', text: () => mutate('hostname: mail.example.org', 'hostname: "mail.example.org\\0"'), message: /^"mail\.example\.org\\0" holds a NUL byte \(U\+0000\) at its end/, path: 'hosts[0].hostname', line: 6, column: 15 },
  { name: 'a DEL in the hostmaster', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  hostmaster: "host\x7fmaster@example.org"'), message: /^"host\\u007fmaster@example\.org" holds a DEL character \(U\+007F\) at character 5/, path: 'dns.hostmaster', line: 10 },
  { name: 'an escape character in dns.update.server', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: [ns1.example.net]\n  update: { server: "192.0.2.53\\e[2J", key: { file: /k } }'), message: /^"192\.0\.2\.53\\u001b\[2J" holds an escape character \(U\+001B\) at character 11/, path: 'dns.update.server', line: 10 },
  { name: 'a tab in the pinned host key comment', text: () => mutate('      address: 192.0.2.1', '      address: 192.0.2.1\n      host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJdD7y3aLq454yWBdwLWbieU1ebz9/cu7/QEXn9OIeZJ root@mx1\\tx"'), message: /holds a tab \(U\+0009\) at character 90/, path: 'hosts[0].ssh.host_key', line: 6 },
  { name: 'a line separator in the ACME server', text: () => mutate('dns:', 'stack:\n  tls: { mode: acme, acme_server: "https://acme.example/dir\\Lrelay" }\ndns:'), message: /^"https:\/\/acme\.example\/dir\\u2028relay" holds a line separator \(U\+2028\) at character 25/, path: 'stack.tls.acme_server', line: 9 },
  { name: 'a line break in a DKIM selector, SPF include and name server', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: ["ns1.example.net\\n"]'), message: /holds a line break \(U\+000A\) at its end/, path: 'dns.nameservers[0]', line: 9 },
  // 1.1: roles, replication, relay, limits, durations.
  { name: 'no mailbox host', text: () => mutate('    ipv4: 192.0.2.1\n', '    ipv4: 192.0.2.1\n    role: backup-mx\n'), message: /no host has role mailbox: a backup MX forwards mail to a mailbox host/, path: 'hosts', line: 2, column: 1 },
  { name: 'unknown role', text: () => mutate('    ipv4: 192.0.2.1\n', '    ipv4: 192.0.2.1\n    role: relay\n'), message: /must be mailbox or backup-mx/, path: 'hosts[0].role', line: 8 },
  { name: 'replication with one mailbox host', text: () => mutate('dns:', 'stack:\n  replication: true\ndns:'), message: /replication needs exactly two mailbox hosts \(this playbook has 1\)/, path: 'stack.replication', line: 9 },
  { name: 'relay port not offered', text: () => mutate('dns:', 'stack:\n  relay: { host: smtp.relay.example, port: 2526, username: u, password: { env: X } }\ndns:'), message: /must be one of 587, 465, 2525, 25/, path: 'stack.relay.port' },
  { name: 'relay password in plaintext', text: () => mutate('dns:', 'stack:\n  relay: { host: smtp.relay.example, username: u, password: hunter2 }\ndns:'), message: /must be \{ env: NAME \} or \{ file: PATH \}/, path: 'stack.relay.password' },
  { name: 'relay host not a name', text: () => mutate('dns:', 'stack:\n  relay: { host: "smtp relay", username: u, password: { env: X } }\ndns:'), message: /relay host/, path: 'stack.relay.host' },
  { name: 'dnsbl zone not a name', text: () => mutate('dns:', 'stack:\n  dnsbl: ["zen spamhaus"]\ndns:'), message: /blocklist zone/, path: 'stack.dnsbl[0]', line: 9 },
  { name: 'auth_ban duration without a unit we know', text: () => mutate('dns:', 'stack:\n  auth_ban: { ban: 1 hour }\ndns:'), message: /must be a duration such as 30s, 10m, 1h or 7d/, path: 'stack.auth_ban.ban' },
  { name: 'send_limit per week', text: () => mutate(`        password_hash: "${HASH}"`, `        password_hash: "${HASH}"\n        send_limit: 100/week`), message: /must be N\/hour or N\/day, e.g. 200\/day/, path: 'domains[0].mailboxes[0].send_limit', line: 15 },
  { name: 'mta_sts mode unknown', text: () => mutate('dns:', 'stack:\n  mta_sts: strict\ndns:'), message: /must be one of none, testing, enforce/, path: 'stack.mta_sts' },
  { name: 'DKIM grace not a duration', text: () => mutate('  - name: example.org', '  - name: example.org\n    dkim: { selector: mail, grace: soon }'), message: /must be a duration such as 30s, 10m, 1h or 7d/, path: 'domains[0].dkim.grace' },
  { name: 'no nameservers', text: () => mutate('  nameservers: [ns1.example.net]', '  nameservers: []'), message: /must list at least 1 item/, path: 'dns.nameservers' },
];

describe('validate: bad playbooks', () => {
  for (const c of cases) {
    it(c.name, () => {
      const errs = errors(c.text());
      expect(errs.length, 'at least one error').toBeGreaterThan(0);
      const hit = errs.find((e) => c.message.test(e.message));
      expect(hit, `an error matching ${c.message}; got:\n${errs.map(formatDiagnostic).join('\n')}`).toBeDefined();
      if (c.path !== undefined) expect(hit!.path).toBe(c.path);
      if (c.line !== undefined) expect(hit!.line).toBe(c.line);
      if (c.column !== undefined) expect(hit!.column).toBe(c.column);
      expect(hit!.file).toBe('site.yaml');
    });
  }

  it('a field with a control character is reported once, and every such field is reported', () => {
    const text = mutate('hostname: mail.example.org', 'hostname: "mail\\n.example.org"').replace('site: demo', 'site: "demo\\u0001"').replace('postmaster: alice', 'postmaster: "alice\\u0085"');
    const errs = errors(text);
    expect(errs.map((e) => `${e.line}:${e.column} ${e.path}`)).toEqual(['1:7 site', '6:15 hosts[0].hostname', '16:19 domains[0].aliases.postmaster']);
    expect(errs.map((e) => e.message.split(' holds ')[1]!.split(' at ')[0])).toEqual(['a control character (U+0001)', 'a line break (U+000A)', 'a next-line character (U+0085)']);
    for (const e of errs) expect(e.message).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
  });

  it('reports every error at once', () => {
    const text = minimal.replace('ipv4: 192.0.2.1', 'ipv4: 999.1.1.1').replace('postmaster: alice', 'postmaster: nobody').replace('site: demo', 'site: demo\nsitee: x');
    const errs = errors(text);
    expect(errs.map((e) => e.path).sort()).toEqual(['domains[0].aliases.postmaster', 'hosts[0].ipv4', 'sitee']);
  });

  it('rejects a "billion laughs" alias bomb quickly', () => {
    const lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 12; i++) {
      const prev = String.fromCharCode(96 + i);
      const cur = String.fromCharCode(97 + i);
      lines.push(`${cur}: &${cur} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    const before = process.memoryUsage().heapUsed;
    const t0 = performance.now();
    const errs = errors(`${lines.join('\n')}\nsite: x\n`);
    const ms = performance.now() - t0;
    expect(errs[0]!.message).toMatch(/aliases expand too much/);
    // Generous bounds: the point is "no hang, no blow-up", not speed.
    expect(ms).toBeLessThan(5000);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(200 * 1024 * 1024);
  });
});
