#!/usr/bin/env node
// Benchmark: fresh apply, median no-op re-apply and its SSH round trips, against a bare SSH connection
// running one command, on a local VPS container. Prints figures; asserts nothing.
// Run after `npm run build`: node scripts/bench-apply.mjs [runs]
import { spawnSync } from 'node:child_process';
import { loadSite } from '../dist/site/load.js';
import { planSite, applyPlanned, closeAll, recordDkim } from '../dist/apply/site.js';
import { emptyState } from '../dist/state/state.js';
import { connect } from '../dist/ssh/ssh2.js';
import { benchSite, hostsCpu, median, settle } from './bench-site.mjs';

const RUNS = Number(process.argv[2] ?? 10);

const { cluster, file, target: targetOf, sshTo } = await benchSite(1);
try {
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
  const target = () => targetOf(0);
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
  // The runs measured start once the fresh apply's daemons are idle.
  const settled = await settle(hostsCpu(cluster), 1);
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
  // The user's view, in turns so that both see the same machine: `mailops apply` against `ssh host true`.
  const cliNoop = [];
  const sshCli = [];
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = spawnSync(process.execPath, ['dist/cli.js', 'apply', '--yes', file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    cliNoop.push(performance.now() - t);
    t = performance.now();
    spawnSync('ssh', ['-i', cluster.identity, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', ...sshTo(0), 'true']);
    sshCli.push(performance.now() - t);
  }
  console.log(`mailops apply benchmark (${RUNS} runs, medians), node ${process.version}`);
  console.log(`fresh apply (packages from the image's apt cache):   ${(fresh.ms / 1000).toFixed(1)} s, ${fresh.changes} changes, ${fresh.trips} SSH commands; the host idle ${settled.toFixed(0)} s after it`);
  console.log(`no-op re-apply, in process:                          ${median(noop).toFixed(0)} ms, ${noopTrips} SSH command(s) (round trips) after the handshake`);
  console.log(`bare SSH connection + one command (ssh2):            ${median(bare).toFixed(0)} ms  → no-op / bare = ${(median(noop) / median(bare)).toFixed(2)}×`);
  console.log(`no-op re-apply, \`mailops apply --yes\` (node included): ${median(cliNoop).toFixed(0)} ms`);
  console.log(`\`ssh host true\` (OpenSSH client):                     ${median(sshCli).toFixed(0)} ms  → mailops / ssh = ${(median(cliNoop) / median(sshCli)).toFixed(2)}×`);
} finally {
  await cluster.stop();
}
