/** Structural checks of the raw playbook against the schema, as located diagnostics. */
import { createRequire } from 'node:module';
import type { ErrorObject, ValidateFunction } from 'ajv';
import { closest, distance } from 'fastest-levenshtein';
import type { Diagnostic } from '../model/diagnostic.js';
import { SiteSchema } from './schema.js';
import { compiledAtRunTime, prebuiltValidator } from '../prebuilt.js';
import { formatPath, locate } from './locate.js';
import type { FieldPath } from './locate.js';
import type { Source } from './source.js';

/** How the schema is compiled (scripts/build.mjs compiles it with the same options, as standalone code). */
export const AJV_OPTIONS = { allErrors: true, verbose: true, strict: false, validateFormats: false, useDefaults: false } as const;

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  // Ajv itself only when the build's validator is not there (tests, the unbundled dist/).
  compiled ??= prebuiltValidator() ?? (compiledAtRunTime('schema validator', 'of the playbook'), new (createRequire(import.meta.url)('ajv') as typeof import('ajv')).Ajv(AJV_OPTIONS).compile(SiteSchema));
  return compiled;
}

export function checkStructure(src: Source, data: unknown): Diagnostic[] {
  const validate = validator();
  if (validate(data)) return [];
  const errors = validate.errors ?? [];
  // A union ("anyOf") with its own message replaces everything its branches said.
  const unions = errors.filter((e) => e.keyword === 'anyOf' && typeof xError(e) === 'string').map((e) => e.instancePath);
  const covered = (e: ErrorObject) =>
    e.keyword !== 'anyOf' && unions.some((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`));
  const out: Diagnostic[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (covered(e)) continue;
    const d = toDiagnostic(src, e);
    if (!d) continue;
    const k = `${d.line}:${d.column}:${d.path}:${d.message}`;
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(d);
  }
  return out;
}

function xError(e: ErrorObject): unknown {
  return (e.parentSchema as Record<string, unknown> | undefined)?.['x-error'];
}

function pathOf(pointer: string): FieldPath {
  if (pointer === '') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v)}`;
  return `${typeof v} ${String(v)}`;
}

const typeNames: Record<string, string> = {
  string: 'a string',
  integer: 'a whole number',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function toDiagnostic(src: Source, e: ErrorObject): Diagnostic | null {
  const path = pathOf(e.instancePath);
  const mk = (p: FieldPath, message: string, key = false): Diagnostic => {
    const pos = locate(src, p, key);
    return { severity: 'error', file: src.file, line: pos.line, column: pos.column, path: formatPath(p), message };
  };
  const custom = xError(e);
  switch (e.keyword) {
    case 'additionalProperties': {
      const field = String((e.params as { additionalProperty: string }).additionalProperty);
      const known = Object.keys(((e.parentSchema as { properties?: object }).properties ?? {}) as object).filter((k) => k !== '$schema');
      const guess = known.length ? closest(field, known) : undefined;
      const hint = guess && distance(field, guess) <= Math.max(2, Math.floor(field.length / 3)) ? ` (did you mean "${guess}"?)` : '';
      const list = known.length ? ` Known fields here: ${known.join(', ')}.` : '';
      return mk([...path, field], `unknown field "${field}"${hint}.${list}`, true);
    }
    case 'required': {
      const field = String((e.params as { missingProperty: string }).missingProperty);
      return mk(path, `missing required field "${field}"`);
    }
    case 'type': {
      const want = String((e.params as { type: string }).type)
        .split(',')
        .map((t) => typeNames[t] ?? t)
        .join(' or ');
      return mk(path, `must be ${want}, not ${describe(e.data)}`);
    }
    case 'anyOf':
      return typeof custom === 'string' ? mk(path, `${custom}, not ${describe(e.data)}`) : null;
    case 'const':
    case 'enum':
      // Reported by the enclosing union's message; a bare const/enum without one:
      return typeof custom === 'string' ? mk(path, custom) : mk(path, `must be one of ${JSON.stringify((e.params as { allowedValues?: unknown }).allowedValues ?? (e.params as { allowedValue?: unknown }).allowedValue)}`);
    case 'pattern':
      return mk(path, typeof custom === 'string' ? custom : `${describe(e.data)} is not allowed here (expected ${String((e.parentSchema as { description?: string }).description ?? 'another form')})`);
    case 'minItems': {
      const n = Number((e.params as { limit: number }).limit);
      return mk(path, `must list at least ${n} item${n === 1 ? '' : 's'}`);
    }
    case 'minimum':
    case 'maximum': {
      const p = e.params as { comparison: string; limit: number };
      return mk(path, `must be ${p.comparison} ${p.limit}, not ${describe(e.data)}`);
    }
    default:
      return mk(path, e.message ?? `is invalid (${e.keyword})`);
  }
}
