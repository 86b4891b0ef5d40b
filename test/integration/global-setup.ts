/** Once per integration run: a Docker engine and the images (built from scratch the first time, reused after). */
import type { TestProject } from 'vitest/node';
import { ensureDockerEngine } from '../../src/testbed/engine.js';
import { clientImage, vpsImage } from '../../src/testbed/images.js';
import { run } from '../../src/testbed/docker.js';

declare module 'vitest' {
  export interface ProvidedContext {
    vpsImage: string;
    clientImage: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (l: string) => process.stderr.write(`[testbed] ${l}\n`);
  const t0 = Date.now();
  await ensureDockerEngine(log);
  const vps = await vpsImage(log);
  const client = await clientImage(log);
  log(`images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${vps}, ${client}`);
  project.provide('vpsImage', vps);
  project.provide('clientImage', client);
  return async () => {
    // Leftovers of crashed runs (the harness removes its own containers).
    const r = await run('docker', ['ps', '-aq', '--filter', 'label=mailops.testbed=1', '--filter', 'name=^mailops-t']);
    const ids = r.stdout.split('\n').filter(Boolean);
    if (ids.length) await run('docker', ['rm', '-f', '-v', ...ids]);
  };
}
