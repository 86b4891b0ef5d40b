/**
 * Golden files: every case under test/golden/<case>/ is a site.yaml (+ optional site.state.json) and the
 * expected rendered tree in expected/. On a mismatch the actual tree is written to actual/ beside it;
 * `UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts` rewrites expected/.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import { renderSite } from '../../src/render/site.js';
import { writeTree } from '../../src/render/write.js';
import { inlineCheck } from '../../src/render/handlebars.js';

const root = new URL('../golden/', import.meta.url).pathname;
const cases = readdirSync(root).filter((c) => existsSync(join(root, c, 'site.yaml')));

function readTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

beforeAll(() => {
  // The env-referenced password of the example playbooks: a fixed value, so the stable hash is stable.
  process.env['MAILOPS_BOB_PASSWORD'] = 'golden-test-password';
  // Zone serials are date-based: a fixed clock (2026-01-01 00:00 UTC) keeps the trees stable.
  process.env['SOURCE_DATE_EPOCH'] = String(Date.UTC(2026, 0, 1) / 1000);
  // Every inline template that renders without Handlebars is rendered by Handlebars too, and must agree.
  inlineCheck.enabled = true;
  return () => {
    inlineCheck.enabled = false;
  };
});

describe('golden rendered trees', () => {
  it('finds its cases (an empty list would test nothing)', () => {
    expect(cases).toEqual(expect.arrayContaining(['contract', 'exim', 'multi-domain', 'rhel']));
  });

  for (const c of cases) {
    it(c, () => {
      const dir = join(root, c);
      const { site } = loadSite(join(dir, 'site.yaml'));
      const rendered = renderSite(site, readState(site.file));
      const actualDir = join(dir, 'actual');
      const expectedDir = join(dir, 'expected');
      rmSync(actualDir, { recursive: true, force: true });
      mkdirSync(actualDir, { recursive: true });
      writeTree(actualDir, rendered);
      const actual = readTree(actualDir);
      if (process.env['UPDATE_GOLDEN']) {
        rmSync(expectedDir, { recursive: true, force: true });
        writeTree(expectedDir, rendered);
      }
      const expected = readTree(expectedDir);
      expect(expected.size, `${c}: expected tree in ${expectedDir}`).toBeGreaterThan(0);
      expect([...actual.keys()].sort(), `file list of ${c} (actual tree in ${actualDir})`).toEqual([...expected.keys()].sort());
      for (const [path, text] of expected) expect(actual.get(path), `${c}/${path} (actual tree in ${actualDir})`).toBe(text);
      rmSync(actualDir, { recursive: true, force: true });
    });
  }

  it('renders deterministically', () => {
    const { site } = loadSite(join(root, 'contract', 'site.yaml'));
    const a = renderSite(site, readState(site.file));
    const b = renderSite(site, readState(site.file));
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
  });
});
