/** Once per integration run: a Docker engine and the images (built from scratch the first time, reused after). */
import type { TestProject } from 'vitest/node';
import { removeLeftovers } from '../../src/testbed/containers.js';
import { ensureDockerEngine } from '../../src/testbed/engine.js';
import { clientImage, dnsImage, peerImage, relayImage, stackImage, vpsImage } from '../../src/testbed/images.js';

declare module 'vitest' {
  export interface ProvidedContext {
    vpsImage: string;
    /** A VPS of Debian 13 (trixie, Dovecot 2.4). */
    vpsTrixieImage: string;
    /**
     * VPS images with the mail stack installed and none of its daemons running (images/stack), for the tests
     * whose subject is not installing packages: Postfix's and Exim's on Debian 12, Postfix's on Debian 13.
     */
    stackImage: string;
    stackEximImage: string;
    stackTrixieImage: string;
    clientImage: string;
    /** The mail world's DNS server (BIND 9). */
    dnsImage: string;
    /** The mail world's strict receiving peer (Postfix, OpenDKIM, OpenDMARC, policyd-spf). */
    peerImage: string;
    /** The mail world's smarthost (Postfix + Cyrus SASL, AUTH required). */
    relayImage: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = (l: string) => process.stderr.write(`[testbed] ${l}\n`);
  process.env['TESTCONTAINERS_RYUK_DISABLED'] ??= 'true';
  const t0 = Date.now();
  await ensureDockerEngine(log);
  const gone = await removeLeftovers();
  if (gone.length) log(`removed leftovers of earlier runs: ${gone.join(' ')}`);
  // Three lanes at once: the making of each waits on the package mirror part of the time (debootstrap, .debs),
  // and on this machine's cores the rest (the stacks install theirs from the VPS images' apt caches).
  const [[vps, stack, stackEx], [vpsTrixie, stackTrixie], [client, dns, peer, relay]] = await Promise.all([
    (async () => [await vpsImage(log), await stackImage('postfix', log), await stackImage('exim', log)] as const)(),
    (async () => [await vpsImage(log, 'trixie'), await stackImage('postfix', log, 'trixie')] as const)(),
    (async () => [await clientImage(log), await dnsImage(log), await peerImage(log), await relayImage(log)] as const)(),
  ]);
  log(`images ready in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${vps}, ${vpsTrixie}, ${stack}, ${stackEx}, ${stackTrixie}, ${client}, ${dns}, ${peer}, ${relay}`);
  project.provide('vpsImage', vps);
  project.provide('vpsTrixieImage', vpsTrixie);
  project.provide('stackImage', stack);
  project.provide('stackEximImage', stackEx);
  project.provide('stackTrixieImage', stackTrixie);
  project.provide('clientImage', client);
  project.provide('dnsImage', dns);
  project.provide('peerImage', peer);
  project.provide('relayImage', relay);
  return async () => {
    // Leftovers of test files that crashed (the harness removes its own containers); never those of
    // another run that is still going (their process is alive) nor the persistent sandbox.
    const left = await removeLeftovers();
    if (left.length) log(`removed leftovers: ${left.join(' ')}`);
  };
}
