#!/usr/bin/env node
// Benchmark: the start-up of the CLI (`mailops --version`, `mailops validate`) against Node itself
// (`node -e 0`, and an empty ES module, which is what Node must do for any ES module entry), medians of N
// runs taken in turns, so that the machine's load falls on all alike. Prints figures; asserts nothing.
// Run after `npm run build`: node scripts/bench-cli.mjs [runs]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNS = Number(process.argv[2] ?? 40);
const empty = join(mkdtempSync(join(tmpdir(), 'mailops-bench-')), 'empty.mjs');
writeFileSync(empty, '');
const cases = {
  'node -e 0': ['-e', '0'],
  'node empty.mjs': [empty],
  'mailops --version': ['dist/cli.js', '--version'],
  'mailops validate contract.yaml': ['dist/cli.js', 'validate', 'playbooks/examples/contract.yaml'],
};
const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
for (let i = 0; i < RUNS; i++) {
  for (const [name, args] of Object.entries(cases)) {
    const t = performance.now();
    spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, MAILOPS_BOB_PASSWORD: 'x' } });
    times[name].push(performance.now() - t);
  }
}
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];
console.log(`mailops CLI start-up (${RUNS} runs each, in turns), node ${process.version}: median (10th–90th percentile)`);
for (const [name, xs] of Object.entries(times)) console.log(`${`${name}:`.padEnd(32)} ${pct(xs, 0.5).toFixed(0)} ms (${pct(xs, 0.1).toFixed(0)}–${pct(xs, 0.9).toFixed(0)})`);
