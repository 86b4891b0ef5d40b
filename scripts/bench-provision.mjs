#!/usr/bin/env node
// Benchmark: the fresh provision of one host through the CLI (`mailops apply --yes --timings`) on a local
// VPS container, and where its time goes, slowest steps first. Prints figures; asserts nothing.
// Run after `npm run build`: node scripts/bench-provision.mjs
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureDockerEngine } from '../dist/testbed/engine.js';
import { vpsImage } from '../dist/testbed/images.js';
import { startVps } from '../dist/testbed/harness.js';

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
  const t = performance.now();
  const r = spawnSync(process.execPath, ['dist/cli.js', 'apply', '--yes', '--timings', file], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  const total = performance.now() - t;
  if (r.status !== 0) throw new Error(r.stderr);
  const lines = r.stderr.split('\n');
  const from = lines.indexOf('timings (slowest first):');
  console.log(`mailops fresh provision of one host (CLI, packages from the image's apt cache): ${(total / 1000).toFixed(1)} s`);
  console.log('slowest steps:');
  for (const l of lines.slice(from + 1, from + 13)) console.log(l);
} finally {
  await cluster.stop();
}
