/** Write a rendered site to a directory: DIR/<host>/<absolute path> and DIR/dns/<domain>.zone. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { RenderedSite } from './site.js';

export function writeTree(dir: string, rendered: RenderedSite): string[] {
  const written: string[] = [];
  const put = (path: string, content: string, mode: number) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content, { mode });
    written.push(path);
  };
  for (const h of rendered.hosts) {
    for (const f of h.files) put(join(dir, h.host.name, f.path), f.content, f.secret ? 0o600 : 0o644);
  }
  for (const z of rendered.zones) put(join(dir, 'dns', `${z.domain}.zone`), z.text, 0o644);
  return written;
}

export function writeZones(dir: string, rendered: Pick<RenderedSite, 'zones'>): string[] {
  return rendered.zones.map((z) => {
    const p = join(dir, `${z.domain}.zone`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(p, z.text);
    return p;
  });
}
