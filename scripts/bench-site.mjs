// The benchmarks' playbook and hosts: `count` local VPS containers, and a playbook that manages them all
// (Postfix, IMAP, POP3, one domain with DKIM, one mailbox). Shared by the bench-*.mjs scripts.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDockerEngine } from '../dist/testbed/engine.js';
import { stackImage, vpsImage } from '../dist/testbed/images.js';
import { startVps } from '../dist/testbed/harness.js';

export const log = (l) => process.stderr.write(`${l}\n`);
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/**
 * Starts the containers and writes the playbook; stop them with cluster.stop(). `stack`: hosts with the
 * mail stack's packages installed already (images/stack) instead of plain VPSs.
 */
export async function benchSite(count = 1, o = {}) {
  await ensureDockerEngine(log);
  const cluster = await startVps({ image: o.stack ? await stackImage('postfix', log) : await vpsImage(log), count, publish: [22] });
  const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-'));
  const file = join(dir, 'site.yaml');
  const name = (i) => `mx${i + 1}`;
  const hosts = cluster.hosts.map(
    (h, i) => `  - name: ${name(i)}
    ssh: { address: 127.0.0.1, port: ${h.ports[22]}, identity: ${cluster.identity}, host_key: "${h.hostKey}" }
    hostname: ${count === 1 ? 'mail' : name(i)}.example.test
    ipv4: 192.0.2.${25 + i}`,
  );
  writeFileSync(file, `site: bench
hosts:
${hosts.join('\n')}
stack: { mta: postfix, imap: true, pop3: true }
dns: { nameservers: [ns1.example.test] }
domains:
  - name: example.test
    dkim: { selector: mail }
    mailboxes:
      - { name: alice, password_hash: "{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0" }
    aliases: { postmaster: alice }
`);
  const target = (i) => ({ name: name(i), address: '127.0.0.1', port: cluster.hosts[i].ports[22], user: 'root', identity: cluster.identity, hostKey: cluster.hosts[i].hostKey, knownHostsFile: '/dev/null', acceptNew: false });
  return { cluster, file, target };
}
