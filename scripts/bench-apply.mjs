#!/usr/bin/env node
// Benchmark: fresh apply, median no-op re-apply and its SSH round trips, against a bare SSH connection
// running one command, on a local VPS container. Prints figures; asserts nothing.
// Run after `npm run build`: node scripts/bench-apply.mjs [runs]
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureDockerEngine } from '../dist/testbed/engine.js';
import { vpsImage } from '../dist/testbed/images.js';
import { startVps } from '../dist/testbed/harness.js';
import { loadSite } from '../dist/site/load.js';
import { planSite, applyPlanned, closeAll, recordDkim } from '../dist/apply/site.js';
import { emptyState } from '../dist/state/state.js';
import { connect } from '../dist/ssh/ssh2.js';

const RUNS = Number(process.argv[2] ?? 10);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const log = (l) => process.stderr.write(`${l}\n`);

await ensureDockerEngine(log);
const cluster = await startVps({ image: await vpsImage(log), count: 1, publish: [22] });
const h = cluster.hosts[0];
try {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-'));
  const file = join(dir, 'site.yaml');
  writeFileSync(file, `site: bench
hosts:
  - name: mx1
    ssh: { address: 127.0.0.1, port: ${h.ports[22]}, identity: ${cluster.identity}, host_key: "${h.hostKey}" }
    hostname: mail.example.test
    ipv4: 192.0.2.25
stack: { mta: postfix, imap: true, pop3: true }
dns: { nameservers: [ns1.example.test] }
domains:
  - name: example.test
    dkim: { selector: mail }
    mailboxes:
      - { name: alice, password_hash: "{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0" }
    aliases: { postmaster: alice }
`);
  const { site } = loadSite(file);
  let trips = 0;
  const counting = async (o) => {
    const c = await connect(o);
    const exec = c.exec.bind(c);
    c.exec = (...a) => {
      trips++;
      return exec(...a);
    };
    return c;
  };
  const target = () => ({ name: 'mx1', address: '127.0.0.1', port: h.ports[22], user: 'root', identity: cluster.identity, hostKey: h.hostKey, knownHostsFile: '/dev/null', acceptNew: false });
  // The state apply records (DKIM keys, the hosts' OS family) carries from run to run, as the CLI's does.
  let state = emptyState();
  const applyOnce = async () => {
    trips = 0;
    const t = performance.now();
    const planned = await planSite(site, { target, connect: counting, state, progress: () => undefined });
    const out = await applyPlanned(site, planned, { progress: () => undefined });
    await closeAll(planned);
    if (!out[0].ok) throw new Error(out[0].error);
    state = recordDkim(state, out, site);
    return { ms: performance.now() - t, changes: out[0].changes, trips };
  };
  const fresh = await applyOnce();
  const noop = [];
  let noopTrips = 0;
  for (let i = 0; i < RUNS; i++) {
    const r = await applyOnce();
    if (r.changes !== 0) throw new Error(`re-apply made ${r.changes} changes`);
    noop.push(r.ms);
    noopTrips = r.trips;
  }
  const bare = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    const c = await connect(target());
    await c.exec('true');
    await c.close();
    bare.push(performance.now() - t);
  }
  const cliNoop = [];
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    const t = performance.now();
    const r = spawnSync(process.execPath, ['dist/cli.js', 'apply', '--yes', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    cliNoop.push(performance.now() - t);
  }
  const sshCli = [];
  for (let i = 0; i < Math.min(RUNS, 5); i++) {
    const t = performance.now();
    spawnSync('ssh', ['-i', cluster.identity, '-p', String(h.ports[22]), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'true']);
    sshCli.push(performance.now() - t);
  }
  console.log(`mailops apply benchmark (${RUNS} runs, medians), node ${process.version}`);
  console.log(`fresh apply (packages from the image's apt cache):   ${(fresh.ms / 1000).toFixed(1)} s, ${fresh.changes} changes, ${fresh.trips} SSH commands`);
  console.log(`no-op re-apply, in process:                          ${median(noop).toFixed(0)} ms, ${noopTrips} SSH command(s) (round trips) after the handshake`);
  console.log(`bare SSH connection + one command (ssh2):            ${median(bare).toFixed(0)} ms  → no-op / bare = ${(median(noop) / median(bare)).toFixed(2)}×`);
  console.log(`no-op re-apply, whole CLI (node start-up included):  ${median(cliNoop).toFixed(0)} ms`);
  console.log(`bare OpenSSH client running one command:             ${median(sshCli).toFixed(0)} ms`);
} finally {
  await cluster.stop();
}
