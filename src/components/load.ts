/** Read the component playbooks (playbooks/*.yaml) shipped with mailops. */
import { readdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { packageRoot } from '../paths.js';
import { compiledAtRunTime, prebuiltComponent } from '../prebuilt.js';
import type { ComponentSpec } from './types.js';

export { packageRoot };
export const playbooksDir = `${packageRoot}playbooks`;
export const templatesDir = `${packageRoot}templates`;

let cached: ComponentSpec[] | undefined;

export function loadComponents(dir = playbooksDir): ComponentSpec[] {
  if (dir === playbooksDir && cached) return cached;
  const specs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const text = readFileSync(`${dir}/${f}`, 'utf8');
      const spec = prebuiltComponent(text) ?? (compiledAtRunTime('component playbook', `${dir}/${f}`), parse(text) as ComponentSpec);
      if (!spec || typeof spec.name !== 'string') throw new Error(`component playbook ${dir}/${f} has no name`);
      return spec;
    })
    .sort((a, b) => (a.order ?? 50) - (b.order ?? 50) || a.name.localeCompare(b.name));
  if (dir === playbooksDir) cached = specs;
  return specs;
}

const templateCache = new Map<string, string>();

export function readTemplate(name: string): string {
  let t = templateCache.get(name);
  if (t === undefined) {
    t = readFileSync(`${templatesDir}/${name}`, 'utf8');
    templateCache.set(name, t);
  }
  return t;
}
