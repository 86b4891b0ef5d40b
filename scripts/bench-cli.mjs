#!/usr/bin/env node
// Benchmark: the start-up of the CLI (`mailops --version`, `mailops validate`) against Node itself
// (`node -e 0`), medians of N runs. Prints figures; asserts nothing. Run after `npm run build`:
// node scripts/bench-cli.mjs [runs]
import { spawnSync } from 'node:child_process';

const RUNS = Number(process.argv[2] ?? 20);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (args) => {
  const xs = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    spawnSync(process.execPath, args, { encoding: 'utf8', env: { ...process.env, MAILOPS_BOB_PASSWORD: 'x' } });
    xs.push(performance.now() - t);
  }
  return median(xs);
};
const node = time(['-e', '0']);
const version = time(['dist/cli.js', '--version']);
const validate = time(['dist/cli.js', 'validate', 'playbooks/examples/contract.yaml']);
console.log(`mailops CLI start-up (${RUNS} runs, medians), node ${process.version}`);
console.log(`node -e 0:                     ${node.toFixed(0)} ms`);
console.log(`mailops --version:             ${version.toFixed(0)} ms`);
console.log(`mailops validate contract.yaml: ${validate.toFixed(0)} ms`);
