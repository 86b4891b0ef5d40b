#!/usr/bin/env node
// Benchmark: `mailops test` on the example playbook (playbooks/examples/sandbox.yaml) through the CLI, the
// images cached (the first run builds them, outside the figures): the whole run, and each suite's time from
// its JSON report (setup, apply, verify, checks, re-apply: from a suite's start to its last case's end; the
// rest: the CLI's start, the images' check, the teardown). Prints figures; asserts nothing. Run after `npm run build`: node scripts/bench-test.mjs [runs]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDockerEngine } from '../dist/testbed/engine.js';
import { dnsImage, peerImage, vpsImage } from '../dist/testbed/images.js';

const RUNS = Number(process.argv[2] ?? 2);
const log = (l) => process.stderr.write(`${l}\n`);
await ensureDockerEngine(log);
await Promise.all([vpsImage(log), dnsImage(log), peerImage(log)]);
// A copy: the run writes the site state beside the playbook.
const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-test-'));
const file = join(dir, 'site.yaml');
copyFileSync(new URL('../playbooks/examples/sandbox.yaml', import.meta.url), file);
const env = { ...process.env, NO_COLOR: '1', MAILOPS_ALICE_PASSWORD: 'alice-Bench-1', MAILOPS_BOB_PASSWORD: 'bob-Bench-2' };
const runs = [];
for (let i = 0; i < RUNS; i++) {
  const t = performance.now();
  const r = spawnSync(process.execPath, [new URL('../dist/cli.js', import.meta.url).pathname, 'test', '--json', file], { encoding: 'utf8', env, cwd: dir });
  const ms = performance.now() - t;
  if (r.status !== 0) throw new Error(`mailops test failed:\n${r.stderr.split('\n').slice(-30).join('\n')}`);
  const report = JSON.parse(r.stdout);
  runs.push({ ms, suites: report.suites.map((s) => [s.name, s.seconds, s.cases.length]) });
}
console.log(`mailops test on playbooks/examples/sandbox.yaml (images cached), ${RUNS} runs, node ${process.version}`);
for (const [i, r] of runs.entries()) {
  console.log(`run ${i + 1}: ${(r.ms / 1000).toFixed(1)} s in all`);
  for (const [name, s, n] of r.suites) console.log(`  ${name.padEnd(10)} ${s.toFixed(1).padStart(6)} s  (${n} cases)`);
  // What no suite times: the start of the CLI, the images' check, the teardown.
  const timed = r.suites.reduce((n, [, s]) => n + s, 0);
  console.log(`  ${'the rest'.padEnd(10)} ${(r.ms / 1000 - timed).toFixed(1).padStart(6)} s  (start, images, teardown)`);
}
console.log(`fastest: ${(Math.min(...runs.map((r) => r.ms)) / 1000).toFixed(1)} s`);
