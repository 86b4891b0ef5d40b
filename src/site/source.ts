/** Reading the playbook text into a YAML document whose nodes keep their positions. */
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { Diagnostic } from '../model/diagnostic.js';

export const MAX_PLAYBOOK_BYTES = 4 * 1024 * 1024;
/** Aliases a playbook may expand: far above any real playbook, far below a "billion laughs" bomb. */
export const MAX_ALIAS_COUNT = 1000;

export interface Source {
  file: string;
  text: string;
  doc: Document.Parsed;
  lines: LineCounter;
}

export type SourceResult = { ok: true; source: Source; data: unknown } | { ok: false; diagnostics: Diagnostic[] };

const at = (file: string, message: string, line = 1, column = 1): Diagnostic => ({
  severity: 'error',
  file,
  line,
  column,
  path: '',
  message,
});

export function readSource(file: string): SourceResult {
  let bytes: Buffer;
  try {
    const st = statSync(file);
    if (st.isDirectory()) return { ok: false, diagnostics: [at(file, 'is a directory, not a playbook file')] };
    if (st.size > MAX_PLAYBOOK_BYTES) {
      return { ok: false, diagnostics: [at(file, `is ${st.size} bytes; a playbook may be at most ${MAX_PLAYBOOK_BYTES} bytes`)] };
    }
    bytes = readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String((e as Error).message);
    return { ok: false, diagnostics: [at(file, `cannot read the playbook: ${why}`)] };
  }
  return parseSource(file, bytes);
}

export function parseSource(file: string, bytes: Buffer): SourceResult {
  if (bytes.includes(0)) return { ok: false, diagnostics: [at(file, 'is not a text file (it contains NUL bytes); a playbook is UTF-8 YAML')] };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return { ok: false, diagnostics: [at(file, 'is not valid UTF-8 text; a playbook is UTF-8 YAML')] };
  }
  if (text.trim() === '' || /^(\s*(#.*)?\n?)*$/.test(text)) {
    return { ok: false, diagnostics: [at(file, 'is empty; a playbook needs at least site, hosts, dns and domains (try `mailops init DOMAIN`)')] };
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const diagnostics: Diagnostic[] = [];
  for (const err of doc.errors) {
    const pos = lines.linePos(err.pos[0]);
    diagnostics.push(at(file, `not valid YAML: ${firstLine(err.message)}`, pos.line, pos.col));
  }
  if (diagnostics.length > 0) return { ok: false, diagnostics };
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (e) {
    const msg = String((e as Error).message);
    if (/alias/i.test(msg)) {
      return { ok: false, diagnostics: [at(file, `refused: the YAML aliases expand too much (${firstLine(msg)}); a playbook may not use anchors to build huge documents`)] };
    }
    return { ok: false, diagnostics: [at(file, `not valid YAML: ${firstLine(msg)}`)] };
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    const contents = doc.contents;
    const pos = contents?.range ? lines.linePos(contents.range[0]) : { line: 1, col: 1 };
    return { ok: false, diagnostics: [at(file, 'the playbook must be a YAML mapping with site, hosts, dns and domains', pos.line, pos.col)] };
  }
  return { ok: true, source: { file, text, doc, lines }, data };
}

function firstLine(s: string): string {
  return s.split('\n')[0]!.trim();
}
