#!/usr/bin/env node
// Benchmark: the fresh provision of one host through the CLI (`mailops apply --yes --timings`) on a local
// VPS container, and where its time goes, slowest steps first; then the same on a host whose mail stack's
// packages are installed already (images/stack), which is the first apply without its package step.
// Prints figures; asserts nothing. Run after `npm run build`: node scripts/bench-provision.mjs
import { spawnSync } from 'node:child_process';
import { benchSite } from './bench-site.mjs';

for (const [stack, what] of [
  [false, "a plain VPS, packages from the image's apt cache"],
  [true, 'the packages installed already (images/stack)'],
]) {
  const { cluster, file } = await benchSite(1, { stack });
  try {
    const t = performance.now();
    const r = spawnSync(process.execPath, ['dist/cli.js', 'apply', '--yes', '--timings', file], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
    const total = performance.now() - t;
    if (r.status !== 0) throw new Error(r.stderr);
    const lines = r.stderr.split('\n');
    const from = lines.indexOf('timings (slowest first):');
    console.log(`mailops fresh provision of one host (CLI; ${what}): ${(total / 1000).toFixed(1)} s`);
    console.log('slowest steps:');
    for (const l of lines.slice(from + 1, from + 11)) console.log(l);
  } finally {
    await cluster.stop();
  }
}
