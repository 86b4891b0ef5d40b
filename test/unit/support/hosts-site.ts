/** A playbook of several hosts, written to a temporary file, and its rendering (the unit tests of hosts and replication). */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSite } from '../../../src/site/load.js';
import { renderHosts } from '../../../src/render/site.js';
import type { DesiredHost } from '../../../src/model/desired.js';

export const RELAY_PASSWORD = 'Relay^pass word$1';
process.env['UT_RELAY_PASSWORD'] = RELAY_PASSWORD;
const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';

export function site(o: { mta?: 'postfix' | 'exim'; relayPort?: number; roles?: string[]; replication?: boolean; acme?: boolean } = {}): string {
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
${o.acme ? '  tls: { mode: acme, email: hostmaster@example.com }\n' : ''}${o.replication ? '  replication: true\n' : ''}${o.relayPort ? `  relay: { host: smtp.relay.example, port: ${o.relayPort}, username: relay-user, password: { env: UT_RELAY_PASSWORD } }\n` : ''}dns: { nameservers: [ns1.example-dns.net] }
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
