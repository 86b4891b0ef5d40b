/** Load a site playbook: read, parse, check structure and semantics (all findings at once), normalize. */
import { resolve } from 'node:path';
import type { Diagnostic } from '../model/diagnostic.js';
import type { Site } from '../model/site.js';
import { PlaybookError } from '../errors.js';
import type { RawSite } from './schema.js';
import { checkSemantics, controlFields } from './semantic.js';
import { formatPath } from './locate.js';
import type { SemanticOptions } from './semantic.js';
import { parseSource, readSource } from './source.js';
import type { SourceResult } from './source.js';
import { checkStructure } from './structure.js';
import { normalize } from './normalize.js';

export type LoadResult = { ok: true; site: Site; diagnostics: Diagnostic[] } | { ok: false; diagnostics: Diagnostic[] };

export function checkSite(file: string, opts: SemanticOptions = { secrets: 'warning' }, text?: string | Buffer): LoadResult {
  const abs = resolve(file);
  const parsed: SourceResult = text === undefined ? readSource(file) : parseSource(file, Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'));
  if (!parsed.ok) return { ok: false, diagnostics: parsed.diagnostics };
  const { source, data } = parsed;
  // A field refused for a control character is reported once, by the semantic check.
  const refused = new Set(controlFields(data).map((f) => formatPath(f.path)));
  const structural = checkStructure(source, data).filter((d) => !refused.has(d.path));
  const diagnostics = [...structural, ...checkSemantics(source, data, opts)].sort(
    (a, b) => a.line - b.line || a.column - b.column,
  );
  if (diagnostics.some((d) => d.severity === 'error')) return { ok: false, diagnostics };
  return { ok: true, site: normalize(data as RawSite, abs), diagnostics };
}

/** Load for commands that need the secrets (render, apply...): a missing secret is an error. */
export function loadSite(file: string, opts: SemanticOptions = { secrets: 'error' }): { site: Site; warnings: Diagnostic[] } {
  const r = checkSite(file, opts);
  if (!r.ok) throw new PlaybookError(r.diagnostics);
  return { site: r.site, warnings: r.diagnostics };
}
