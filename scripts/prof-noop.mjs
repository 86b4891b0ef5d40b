import { loadSite } from '../dist/site/load.js';
import { planSite, applyPlanned, closeAll, recordDkim } from '../dist/apply/site.js';
import { emptyState } from '../dist/state/state.js';
import { connect } from '../dist/ssh/ssh2.js';
import { factScript } from '../dist/facts/script.js';
import { benchSite, median } from './bench-site.mjs';
const { cluster, file, target } = await benchSite(1);
try {
  const { site } = loadSite(file);
  let state = emptyState();
  let planned;
  for (let i = 0; i < 3; i++) {
    planned = await planSite(site, { target: () => target(0), connect, state, progress: () => undefined });
    const out = await applyPlanned(site, planned, { progress: () => undefined });
    state = recordDkim(state, out, site);
    if (i < 2) await closeAll(planned);
  }
  const p = planned[0].planned;
  const script = factScript({ debian: p.desired });
  console.log('script bytes', script.length);
  require: {
    const fs = await import('node:fs'); fs.writeFileSync('/tmp/prof/facts.sh', script);
  }
  const t = [];
  for (let i = 0; i < 15; i++) { const s = performance.now(); await p.conn.exec(script); t.push(performance.now() - s); }
  const tt = [];
  for (let i = 0; i < 15; i++) { const s = performance.now(); await p.conn.exec('true'); tt.push(performance.now() - s); }
  console.log('fact script exec median', median(t).toFixed(1), 'ms; exec true', median(tt).toFixed(1));
  const hs = [];
  for (let i = 0; i < 10; i++) { const s = performance.now(); const c = await connect(target(0)); hs.push(performance.now() - s); await c.close(); }
  console.log('handshake median', median(hs).toFixed(1));
  const pl = [];
  for (let i = 0; i < 10; i++) { const s = performance.now(); const x = await planSite(site, { target: () => target(0), connect, state, progress: () => undefined }); pl.push(performance.now() - s); await closeAll(x); }
  console.log('planSite median', median(pl).toFixed(1));
  await closeAll(planned);
  if (process.env.HOLD) { console.log('holding; port', cluster.hosts[0].ports[22], 'identity', cluster.identity); await new Promise((r) => setTimeout(r, Number(process.env.HOLD) * 1000)); }
} finally { await cluster.stop(); }
