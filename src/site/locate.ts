/** Map a field path of the playbook data back to a line and column of its YAML source. */
import { isAlias, isMap, isPair, isScalar, isSeq } from 'yaml';
import type { Node } from 'yaml';
import type { Source } from './source.js';
import { escapeControls } from './syntax.js';

export type FieldPath = ReadonlyArray<string | number>;

export interface Position {
  line: number;
  column: number;
}

/**
 * Position of the value at `path` (or of its key when `key` is set). When the path does not exist in the
 * source (a missing field), the position of the deepest existing ancestor.
 */
export function locate(src: Source, path: FieldPath, key = false): Position {
  let node: unknown = src.doc.contents;
  let best: Node | null = (node as Node | null) ?? null;
  for (let i = 0; i < path.length; i++) {
    node = resolve(src, node);
    const seg = path[i]!;
    let next: unknown = undefined;
    let keyNode: unknown = undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair) {
        next = pair.value;
        keyNode = pair.key;
      }
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
    }
    if (next === undefined || next === null) {
      if (keyNode && isNodeWithRange(keyNode)) best = keyNode;
      break;
    }
    if (key && i === path.length - 1 && isNodeWithRange(keyNode)) {
      best = keyNode;
      break;
    }
    if (isNodeWithRange(next)) best = next;
    node = next;
  }
  const offset = best?.range?.[0] ?? 0;
  const pos = src.lines.linePos(offset);
  return { line: pos.line, column: pos.col };
}

function resolve(src: Source, node: unknown): unknown {
  let n = node;
  for (let guard = 0; isAlias(n) && guard < 16; guard++) n = n.resolve(src.doc);
  return n;
}

function isNodeWithRange(n: unknown): n is Node {
  return typeof n === 'object' && n !== null && 'range' in n && Array.isArray((n as Node).range);
}

/** `domains[0].mailboxes[1].name` */
export function formatPath(path: FieldPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${escapeControls(seg, Infinity)}]`;
  }
  return out;
}
