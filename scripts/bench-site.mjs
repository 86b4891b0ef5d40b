// The benchmarks' playbook and hosts: `count` local VPS containers, and a playbook that manages them all
// (Postfix, IMAP, POP3, one domain with DKIM, one mailbox). Shared by the bench-*.mjs scripts.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect as tcp } from 'node:net';
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
  // Each host at its own address on the containers' network, as a VPS is on its network, when this machine
  // reaches it (a Linux Docker engine): not through Docker's userland proxy of a published port, whose own
  // CPU (some 2 ms a host and command) no real host costs. Else at the published port.
  const reachable = (ip) =>
    new Promise((ok) => {
      const s = tcp({ host: ip, port: 22, timeout: 1000 });
      s.on('connect', () => (s.destroy(), ok(true)));
      s.on('error', () => ok(false));
      s.on('timeout', () => (s.destroy(), ok(false)));
    });
  const direct = process.env.BENCH_PUBLISHED !== '1' && (await Promise.all(cluster.hosts.map((h) => reachable(h.ip)))).every(Boolean);
  const addr = (i) => (direct ? { address: cluster.hosts[i].ip, port: 22 } : { address: '127.0.0.1', port: cluster.hosts[i].ports[22] });
  log(direct ? 'the hosts are reached at their own addresses (BENCH_PUBLISHED=1: at published ports)' : 'the hosts are reached at their published ports');
  const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-'));
  const file = join(dir, 'site.yaml');
  const name = (i) => `mx${i + 1}`;
  const hosts = cluster.hosts.map(
    (h, i) => `  - name: ${name(i)}
    ssh: { address: ${addr(i).address}, port: ${addr(i).port}, identity: ${cluster.identity}, host_key: "${h.hostKey}" }
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
  const target = (i) => ({ name: name(i), ...addr(i), user: 'root', identity: cluster.identity, hostKey: cluster.hosts[i].hostKey, knownHostsFile: '/dev/null', acceptNew: false });
  /** `ssh` arguments that reach host i as root (after the options). */
  const sshTo = (i) => ['-p', String(addr(i).port), `root@${addr(i).address}`];
  return { cluster, file, target, sshTo };
}

/** The hosts' CPU time (ms), all containers together, from their cgroups (v1 or v2); NaN where unreadable. */
export function hostsCpu(cluster) {
  const ids = cluster.hosts.map((h) => execFileSync('docker', ['inspect', '-f', '{{.Id}}', h.container], { encoding: 'utf8' }).trim());
  const cgroupMs = (id) => {
    try {
      return Number(readFileSync(`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, 'utf8')) / 1e6;
    } catch {
      try {
        return Number(/usage_usec (\d+)/.exec(readFileSync(`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, 'utf8'))[1]) / 1000;
      } catch {
        return NaN;
      }
    }
  };
  return () => ids.reduce((a, id) => a + cgroupMs(id), 0);
}

/** The share of a core the hosts take, over `ms`. */
export async function cpuRate(hostsMs, ms = 3000) {
  const a = hostsMs();
  const t = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  return (hostsMs() - a) / (performance.now() - t);
}

/**
 * Waits until `n` hosts are idle (under 0.6% of a core a host, twice in a row; 3 minutes at most; the
 * daemons of ten idle hosts take some 4% of a core together): the daemons a fresh apply started do their
 * start-up work (rspamd compiles its rules) for a minute or more, on the cores the runs measured share.
 * Returns the seconds waited.
 */
export async function settle(hostsMs, n) {
  const t = performance.now();
  let quiet = 0;
  while (quiet < 2 && performance.now() - t < 180_000) quiet = (await cpuRate(hostsMs, 2000)) < 0.006 * n ? quiet + 1 : 0;
  return (performance.now() - t) / 1000;
}
