#!/usr/bin/env node
// Benchmark: the no-op re-apply of N hosts (default 10) against that of one of them, both through the CLI
// (`mailops apply --yes`, with and without --host), after a fresh apply of all N in parallel. Prints
// figures; asserts nothing. Run after `npm run build`: node scripts/bench-hosts.mjs [hosts] [runs]
// With HOLD=<seconds>, the hosts stay up that long afterwards.
import { spawn, spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { connect } from '../dist/ssh/ssh2.js';
import { benchSite, log, median } from './bench-site.mjs';

const N = Number(process.argv[2] ?? 10);
const RUNS = Number(process.argv[3] ?? 5);
const { cluster, file, target } = await benchSite(N);
// The CLI's own CPU time (user + system), printed by it at exit: what mailops itself spends, apart from
// the hosts, which here share this machine's cores with it.
const CPU = `data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('@@cpu '+(u.user+u.system)/1000+'\\n')})`;
const apply = (...extra) => {
  const t = performance.now();
  const r = spawnSync(process.execPath, ['--import', CPU, 'dist/cli.js', 'apply', '--yes', '--json', ...extra, file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { ms: performance.now() - t, changes: JSON.parse(r.stdout).changes, cpu: Number(/@@cpu (\S+)/.exec(r.stderr)?.[1]) };
};
try {
  log(`fresh apply of ${N} hosts...`);
  const fresh = apply();
  const one = [];
  const all = [];
  const oneCpu = [];
  const allCpu = [];
  for (let i = 0; i < RUNS; i++) {
    const a = apply('--host', 'mx1');
    const b = apply();
    if (a.changes || b.changes) throw new Error(`a re-apply made changes (${a.changes}, ${b.changes})`);
    one.push(a.ms);
    all.push(b.ms);
    oneCpu.push(a.cpu);
    allCpu.push(b.cpu);
  }
  // The floor this machine sets: the same N hosts answering \`ssh host true\` at once, against one of them.
  const ssh = (i) =>
    new Promise((resolve) => {
      const c = spawn('ssh', ['-i', cluster.identity, '-p', String(cluster.hosts[i].ports[22]), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'root@127.0.0.1', 'true'], { stdio: 'ignore' });
      c.on('exit', resolve);
    });
  // Medians of one host against all N at once, measured in turns.
  const oneAgainstAll = async (f) => {
    const single = [];
    const every = [];
    for (let i = 0; i < RUNS; i++) {
      let t = performance.now();
      await f(0);
      single.push(performance.now() - t);
      t = performance.now();
      await Promise.all(cluster.hosts.map((_, k) => f(k)));
      every.push(performance.now() - t);
    }
    return [median(single), median(every)];
  };
  const [sshOne, sshAll] = await oneAgainstAll(ssh);
  // The same in one process (ssh2), without N OpenSSH clients starting: what the hosts' sshd alone costs.
  const bare = async (i) => {
    const c = await connect(target(i));
    await c.exec('true');
    await c.close();
  };
  const [bareOne, bareAll] = await oneAgainstAll(bare);
  console.log(`mailops apply over ${N} hosts (${RUNS} runs, medians, whole CLI), node ${process.version}`);
  console.log(`fresh apply of ${N} hosts in parallel:  ${(fresh.ms / 1000).toFixed(1)} s, ${fresh.changes} changes`);
  console.log(`no-op re-apply, one host (--host mx1): ${median(one).toFixed(0)} ms`);
  console.log(`no-op re-apply, all ${N} hosts:          ${median(all).toFixed(0)} ms  → ${N} hosts / one host = ${(median(all) / median(one)).toFixed(2)}×`);
  console.log(`mailops's own CPU time, one host:      ${median(oneCpu).toFixed(0)} ms; all ${N} hosts: ${median(allCpu).toFixed(0)} ms  → ${(median(allCpu) / median(oneCpu)).toFixed(2)}×`);
  console.log(`\`ssh host true\`, one host:               ${sshOne.toFixed(0)} ms`);
  console.log(`\`ssh host true\` to all ${N} at once:        ${sshAll.toFixed(0)} ms  → ${N} hosts / one host = ${(sshAll / sshOne).toFixed(2)}× (the hosts share this machine's ${cpus().length} cores)`);
  console.log(`bare SSH connection + \`true\` (ssh2), one: ${bareOne.toFixed(0)} ms`);
  console.log(`the same to all ${N} at once, one process: ${bareAll.toFixed(0)} ms  → ${N} hosts / one host = ${(bareAll / bareOne).toFixed(2)}×`);
  if (process.env.HOLD) {
    console.log(`holding ${process.env.HOLD}s: ${file}`);
    await new Promise((r) => setTimeout(r, Number(process.env.HOLD) * 1000));
  }
} finally {
  await cluster.stop();
}
