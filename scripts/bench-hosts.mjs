#!/usr/bin/env node
// Benchmark: the no-op re-apply of N hosts (default 10) against that of one of them, both through the CLI
// (`mailops apply --yes`, with and without --host), after a fresh apply of all N in parallel. Prints
// figures; asserts nothing. Run after `npm run build`: node scripts/bench-hosts.mjs [hosts] [runs]
// The hosts are containers on this machine: they share its cores with mailops, which remote hosts do not.
// So the same no-op is measured once more with the hosts on a CPU of their own (when there are two or more).
// With HOLD=<seconds>, the hosts stay up that long afterwards.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { connect } from '../dist/ssh/ssh2.js';
import { benchSite, cpuRate, hostsCpu, log, median, settle } from './bench-site.mjs';

const N = Number(process.argv[2] ?? 10);
const RUNS = Number(process.argv[3] ?? 5);
const { cluster, file, target, sshTo } = await benchSite(N);
// The CLI's own CPU time (user + system), printed by it at exit: what mailops itself spends, apart from
// the hosts, which here share this machine's cores with it.
const CPU = `data:text/javascript,process.on('exit',()=>{const u=process.cpuUsage();process.stderr.write('@@cpu '+(u.user+u.system)/1000+'\\n')})`;
const hostsMs = hostsCpu(cluster);
const OUR_CLI = new URL('../dist/cli.js', import.meta.url).pathname;
/** The connection brokers of this build that run now (their process ids). */
const brokerPids = () =>
  readdirSync('/proc').filter((p) => {
    try {
      const cmd = /^\d+$/.test(p) ? readFileSync(`/proc/${p}/cmdline`, 'utf8') : '';
      return cmd.includes('ssh-broker') && cmd.includes(OUR_CLI);
    } catch {
      return false; // gone
    }
  });
// The connection brokers' CPU time (ms; clock ticks of 10 ms, so averaged over the runs): part of mailops's.
const brokersMs = () => {
  let ms = 0;
  for (const p of brokerPids()) {
    try {
      const f = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ms += (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // gone
    }
  }
  return ms;
};
// What the idle hosts spend anyway (their daemons), per ms, to be taken off: measured again once the
// fresh apply's daemons have settled.
const idleRate = (ms) => cpuRate(hostsMs, ms);
let idle = await idleRate();
// With \`pinned\`, mailops runs on every CPU but the last (taskset) and the hosts on the last one (their cpuset).
let pinned = null;
const apply = (env, ...extra) => {
  const h = hostsMs();
  const b = brokersMs();
  const t = performance.now();
  const argv = [process.execPath, '--import', CPU, 'dist/cli.js', 'apply', '--yes', '--json', ...extra, file];
  const r = pinned ? spawnSync('taskset', ['-c', pinned, ...argv], { encoding: 'utf8', env: { ...process.env, ...env } }) : spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...env } });
  if (r.status !== 0) throw new Error(r.stderr);
  const ms = performance.now() - t;
  return { ms, changes: JSON.parse(r.stdout).changes, cpu: Number(/@@cpu (\S+)/.exec(r.stderr)?.[1]), broker: brokersMs() - b, host: hostsMs() - h - idle * ms };
};
try {
  log(`fresh apply of ${N} hosts...`);
  const fresh = apply({});
  const settled = await settle(hostsMs, N);
  idle = await idleRate();
  /** Medians of RUNS no-op re-applies of one host and of all, in turns; `env` for the CLI. */
  const noop = (env) => {
    const runs = { one: [], all: [], oneCpu: [], allCpu: [], oneHost: [], allHost: [] };
    let oneBroker = 0;
    let allBroker = 0;
    for (let i = 0; i < RUNS; i++) {
      const a = apply(env, '--host', 'mx1');
      const b = apply(env);
      if (a.changes || b.changes) throw new Error(`a re-apply made changes (${a.changes}, ${b.changes})`);
      runs.one.push(a.ms);
      runs.all.push(b.ms);
      runs.oneCpu.push(a.cpu);
      runs.allCpu.push(b.cpu);
      runs.oneHost.push(a.host);
      runs.allHost.push(b.host);
      oneBroker += a.broker;
      allBroker += b.broker;
    }
    return { ...Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, median(v)])), oneBroker: oneBroker / RUNS, allBroker: allBroker / RUNS };
  };
  // Each connection made once, outside the figures: the broker holds them (MAILOPS_SSH_PERSIST).
  apply({});
  apply({});
  const shared = noop({});
  // The same without this machine's no-op memo (src/apply/memo.ts): every host rendered and planned.
  apply({ MAILOPS_PLAN_MEMO: '0' });
  const unmemo = noop({ MAILOPS_PLAN_MEMO: '0' });
  const direct = noop({ MAILOPS_SSH_PERSIST: '0' });
  // The hosts' work off mailops's CPU, as when they are other machines: here they share this machine's
  // cores with it, and the ten hosts' fact scripts, run while the CLI starts, slow its start. The hosts
  // get the last CPU (their containers' cpuset), mailops the others (taskset; the broker, started anew by
  // the CLI, inherits them).
  const n = cpus().length;
  let apart = null;
  if (n >= 2 && spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0) {
    const names = cluster.hosts.map((h) => h.container);
    const killBrokers = () => {
      for (const p of brokerPids()) {
        try {
          process.kill(Number(p));
        } catch {
          // gone
        }
      }
    };
    try {
      execFileSync('docker', ['update', '--cpuset-cpus', String(n - 1), ...names], { stdio: 'ignore' });
      pinned = n === 2 ? '0' : `0-${n - 2}`;
      killBrokers();
      apply({});
      apply({});
      apart = noop({});
    } finally {
      pinned = null;
      killBrokers();
      execFileSync('docker', ['update', '--cpuset-cpus', `0-${n - 1}`, ...names], { stdio: 'ignore' });
    }
  }
  // The floor this machine sets: the same N hosts answering \`ssh host true\` at once, against one of them.
  const ssh = (i) =>
    new Promise((resolve) => {
      const c = spawn('ssh', ['-i', cluster.identity, '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', ...sshTo(i), 'true'], { stdio: 'ignore' });
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
  console.log(`fresh apply of ${N} hosts in parallel:  ${(fresh.ms / 1000).toFixed(1)} s, ${fresh.changes} changes; the hosts idle ${settled.toFixed(0)} s after it`);
  const sections = [['shared connections (the default)', shared], ['shared connections, MAILOPS_PLAN_MEMO=0 (every host rendered and planned)', unmemo], ['MAILOPS_SSH_PERSIST=0 (a connection a run)', direct]];
  if (apart) sections.push([`shared connections, the hosts on CPU ${cpus().length - 1} and mailops on the others (as when the hosts are other machines)`, apart]);
  for (const [what, r] of sections) {
    console.log(`no-op re-apply, ${what}:`);
    console.log(`  one host (--host mx1): ${r.one.toFixed(0)} ms; all ${N} hosts: ${r.all.toFixed(0)} ms  → ${N} hosts / one host = ${(r.all / r.one).toFixed(2)}×`);
    console.log(`  mailops's own CPU time (the CLI + the broker): one host ${r.oneCpu.toFixed(0)} + ${r.oneBroker.toFixed(0)} ms; all ${N} hosts ${r.allCpu.toFixed(0)} + ${r.allBroker.toFixed(0)} ms  → ${((r.allCpu + r.allBroker) / (r.oneCpu + r.oneBroker)).toFixed(2)}×`);
    console.log(`  the hosts' CPU time (cgroups, idle taken off): one host ${r.oneHost.toFixed(0)} ms; all ${N} hosts ${r.allHost.toFixed(0)} ms (${(r.allHost / N).toFixed(0)} ms a host)`);
    // Shared out perfectly over the cores, which the hosts share with mailops here: the least the N hosts' no-op
    // can take on this machine, and so the least ratio it allows.
    const floor = (r.allHost + r.allCpu + r.allBroker) / cpus().length;
    console.log(`  all the CPU the ${N} hosts' no-op needs here (mailops's and the hosts'), on ${cpus().length} cores: at least ${floor.toFixed(0)} ms (${(floor / r.one).toFixed(2)}× the one-host no-op)`);
  }
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
