#!/usr/bin/env node
// Benchmark: load + validate + render a site of 1,000 domains × 10 mailboxes (every file and zone).
// Prints figures; asserts nothing. Run after `npm run build`: node scripts/bench-render.mjs [domains] [mailboxes]
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { checkSite } from '../dist/site/load.js';
import { renderSite } from '../dist/render/site.js';
import { readState } from '../dist/state/state.js';
import { writeTree } from '../dist/render/write.js';

const DOMAINS = Number(process.argv[2] ?? 1000);
const MAILBOXES = Number(process.argv[3] ?? 10);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const HASH = '{SHA512-CRYPT}$6$0123456789abcdef$IRwkwpJLTGr5pPic8OsdjqEO70D/JDHDmYDsMG1vDQMYU0XdOnrFLcw/jNxm9S8CquVj080rxDoBjxJ1EB2NI0';

function site(mta) {
  return {
    site: 'bench',
    hosts: [{ name: 'mx1', ssh: { address: '192.0.2.1' }, hostname: 'mail.bench.test', ipv4: '192.0.2.1', ipv6: '2001:db8::1' }],
    stack: { mta, imap: true, pop3: true, tls: { mode: 'self-signed' }, message_size_limit: '50M' },
    dns: { nameservers: ['ns1.dns.test', 'ns2.dns.test'], hostmaster: 'hostmaster@bench.test' },
    domains: Array.from({ length: DOMAINS }, (_, d) => ({
      name: `domain${d}.test`,
      dkim: { selector: 'mail', key: 'rsa-2048' },
      spf: { policy: '-all', include: ['_spf.provider.test'] },
      dmarc: { policy: 'quarantine', rua: `postmaster@domain${d}.test` },
      mailboxes: Array.from({ length: MAILBOXES }, (_, m) => ({ name: `user${m}`, password_hash: HASH, quota: '2G', ...(m === 0 ? { send_as: ['sales'] } : {}) })),
      aliases: { postmaster: 'user0', abuse: 'user0', sales: ['user0', 'user1', 'someone@partner.test'] },
      catch_all: 'user0',
    })),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const dir = mkdtempSync(join(tmpdir(), 'mailops-bench-'));
console.log(`mailops render benchmark: ${DOMAINS} domains × ${MAILBOXES} mailboxes, ${RUNS} runs, node ${process.version}`);
for (const mta of ['postfix', 'exim']) {
  const file = join(dir, `site-${mta}.yaml`);
  writeFileSync(file, stringify(site(mta)));
  const load = [];
  const render = [];
  const write = [];
  let files = 0;
  let bytes = 0;
  for (let i = 0; i < RUNS; i++) {
    let t = performance.now();
    const r = checkSite(file, { secrets: 'error' });
    load.push(performance.now() - t);
    if (!r.ok) throw new Error(JSON.stringify(r.diagnostics.slice(0, 3)));
    t = performance.now();
    const out = renderSite(r.site, readState(file));
    render.push(performance.now() - t);
    t = performance.now();
    const written = writeTree(join(dir, `out-${mta}`), out);
    write.push(performance.now() - t);
    files = written.length;
    bytes = out.hosts.reduce((n, h) => n + h.files.reduce((m, f) => m + f.content.length, 0), 0) + out.zones.reduce((n, z) => n + z.text.length, 0);
  }
  const total = load.map((l, i) => l + render[i]);
  console.log(
    `${mta.padEnd(8)} load+validate ${median(load).toFixed(0)} ms | render ${median(render).toFixed(0)} ms | load+validate+render ${median(total).toFixed(0)} ms | write ${median(write).toFixed(0)} ms | ${files} files, ${(bytes / 1e6).toFixed(1)} MB (medians)`,
  );
}
rmSync(dir, { recursive: true, force: true });
