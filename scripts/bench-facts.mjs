#!/usr/bin/env node
// Benchmark: where a no-op re-apply of one host spends its time, on a local VPS container: the SSH
// handshake, one command round trip, the fact script, and the whole planning step (handshake, render,
// facts, plan). Prints figures; asserts nothing. Run after `npm run build`: node scripts/bench-facts.mjs [runs]
// With HOLD=<seconds>, the container stays up that long afterwards (its port and key are printed).
import { writeFileSync } from 'node:fs';
import { loadSite } from '../dist/site/load.js';
import { planSite, applyPlanned, closeAll, recordDkim } from '../dist/apply/site.js';
import { emptyState } from '../dist/state/state.js';
import { connect } from '../dist/ssh/ssh2.js';
import { factScript } from '../dist/facts/script.js';
import { benchSite, median } from './bench-site.mjs';

const RUNS = Number(process.argv[2] ?? 15);
const { cluster, file, target } = await benchSite(1);
try {
  const { site } = loadSite(file);
  const plan = (state) => planSite(site, { target: () => target(0), connect, state, progress: () => undefined });
  let state = emptyState();
  // A fresh apply, then re-applies until the state (DKIM keys, OS family) has settled.
  for (let i = 0; i < 2; i++) {
    const planned = await plan(state);
    state = recordDkim(state, await applyPlanned(site, planned, { progress: () => undefined }), site);
    await closeAll(planned);
  }
  const planned = await plan(state);
  const p = planned[0].planned;
  if (p.plan.changes.length) throw new Error(`the re-apply would make ${p.plan.changes.length} changes`);
  const script = factScript({ [p.facts.family]: p.desired });
  const time = async (f, n = RUNS) => {
    const xs = [];
    for (let i = 0; i < n; i++) {
      const t = performance.now();
      await f();
      xs.push(performance.now() - t);
    }
    return median(xs);
  };
  const facts = await time(() => p.conn.exec(script));
  const trip = await time(() => p.conn.exec('true'));
  const handshake = await time(async () => (await connect(target(0))).close());
  const planning = await time(async () => closeAll(await plan(state)));
  await closeAll(planned);
  console.log(`no-op parts (${RUNS} runs, medians), node ${process.version}`);
  console.log(`SSH handshake and login (ssh2):          ${handshake.toFixed(1)} ms`);
  console.log(`one command round trip (\`true\`):         ${trip.toFixed(1)} ms`);
  console.log(`fact script (${script.length} bytes), one round trip: ${facts.toFixed(1)} ms`);
  console.log(`planning (handshake, render, facts, plan): ${planning.toFixed(1)} ms`);
  if (process.env.HOLD) {
    writeFileSync('/tmp/mailops-bench-facts.sh', script);
    console.log(`holding ${process.env.HOLD}s: ${file} (port ${cluster.hosts[0].ports[22]}); the fact script is in /tmp/mailops-bench-facts.sh`);
    await new Promise((r) => setTimeout(r, Number(process.env.HOLD) * 1000));
  }
} finally {
  await cluster.stop();
}
