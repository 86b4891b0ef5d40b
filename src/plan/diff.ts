/** Unified diffs of managed files, with secrets kept out. */
import { createTwoFilesPatch } from 'diff';

export function fileDiff(path: string, before: string | undefined, after: string, secret: boolean, beforeSha?: string): string {
  if (secret) {
    return before === undefined && beforeSha === undefined
      ? `--- ${path} (new, secret: content not shown, ${lineCount(after)} lines)`
      : `--- ${path} (secret: content changed, not shown; now ${lineCount(after)} lines)`;
  }
  if (before === undefined && beforeSha !== undefined) {
    return `--- ${path} (content on the host differs, sha256 ${beforeSha.slice(0, 12)}...; its text was not fetched)`;
  }
  const patch = createTwoFilesPatch(`host:${path}`, `playbook:${path}`, before ?? '', after, undefined, undefined, { context: 3 });
  // Drop jsdiff's "Index"/separator header lines, keep ---/+++ and hunks.
  return patch
    .split('\n')
    .filter((l) => !l.startsWith('Index: ') && !/^=+$/.test(l))
    .join('\n')
    .trimEnd();
}

function lineCount(s: string): number {
  return s === '' ? 0 : s.split('\n').length - (s.endsWith('\n') ? 1 : 0);
}
