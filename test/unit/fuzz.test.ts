/** Property test: random mutations of valid playbooks never crash the validator. */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { checkSite } from '../../src/site/load.js';

const seeds = ['../../playbooks/examples/contract.yaml', '../golden/multi-domain/site.yaml', '../fixtures/minimal.yaml'].map((p) =>
  readFileSync(new URL(p, import.meta.url), 'utf8'),
);

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const anyValue: fc.Arbitrary<Json> = fc.letrec<{ v: Json }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: false }),
    fc.string(),
    fc.constantFrom('', '-all', 'postfix', 'exim', 'alice', 'a@b.c', '50M', '{SHA512-CRYPT}$6$x$y', '::1', '256.1.1.1', 'Exa.mple', 'x'.repeat(300)),
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 3 }),
  ),
})).v;

/** Paths into a JSON value. */
function paths(v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

function mutateAt(root: Json, path: Array<string | number>, op: 'set' | 'delete' | 'add' | 'dup', value: Json, key: string): Json {
  const copy = structuredClone(root);
  if (path.length === 0) return op === 'set' ? value : copy;
  let parent: Json = copy;
  for (const seg of path.slice(0, -1)) parent = (parent as Record<string, Json>)[seg as string] as Json;
  const last = path[path.length - 1]!;
  const container = parent as Record<string | number, Json>;
  if (op === 'set') container[last] = value;
  else if (op === 'delete') {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete container[last];
  } else if (op === 'add') {
    const target = container[last];
    if (Array.isArray(target)) target.push(value);
    else if (target && typeof target === 'object') (target as Record<string, Json>)[key] = value;
    else container[last] = value;
  } else if (Array.isArray(parent)) parent.push(structuredClone(parent[last as number]!));
  return copy;
}

function assertClean(text: string | Buffer): void {
  const r = checkSite('fuzz.yaml', { secrets: 'warning' }, text);
  if (!r.ok) {
    expect(r.diagnostics.length).toBeGreaterThan(0);
    for (const d of r.diagnostics) {
      expect(d.line).toBeGreaterThanOrEqual(1);
      expect(d.column).toBeGreaterThanOrEqual(1);
      expect(typeof d.message).toBe('string');
      expect(d.message.length).toBeGreaterThan(0);
    }
  }
}

describe('validator fuzzing', () => {
  const parsed = seeds.map((s) => checkSite('seed.yaml', { secrets: 'ignore' }, s));
  it('seeds are valid', () => {
    for (const p of parsed) expect(p.ok).toBe(true);
  });

  it('structural mutations (thousands) never crash it', () => {
    const objects = seeds.map((s) => parse(s) as Json);
    fc.assert(
      fc.property(
        fc.nat(objects.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('set', 'delete', 'add', 'dup') as fc.Arbitrary<'set' | 'delete' | 'add' | 'dup'>, anyValue, fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 4 }),
        (which, ops) => {
          let doc = objects[which]!;
          for (const [n, op, value, key] of ops) {
            const ps = paths(doc);
            doc = mutateAt(doc, ps[n % ps.length]!, op, value, key);
          }
          assertClean(stringify(doc));
        },
      ),
      { numRuns: 3000, seed: 20261123 },
    );
  });

  it('text mutations (thousands) never crash it', () => {
    fc.assert(
      fc.property(
        fc.nat(seeds.length - 1),
        fc.array(fc.tuple(fc.nat(), fc.nat({ max: 40 }), fc.string({ maxLength: 6, unit: 'binary' })), { minLength: 1, maxLength: 5 }),
        (which, edits) => {
          let t = seeds[which]!;
          for (const [at, del, ins] of edits) {
            const i = at % (t.length + 1);
            t = t.slice(0, i) + ins + t.slice(i + del);
          }
          assertClean(t);
        },
      ),
      { numRuns: 3000, seed: 7 },
    );
  });
});
