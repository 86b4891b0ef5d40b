/** Unified diffs of managed files, with secrets kept out. */
import { createTwoFilesPatch } from 'diff';
import type { DesiredHost } from '../model/desired.js';
import type { HostPlan } from '../model/plan.js';
import { isPasswdFile, passwdFileDiff } from './secret-diff.js';

export function fileDiff(path: string, before: string | undefined, after: string, secret: boolean, beforeSha?: string): string {
  if (secret) {
    // A passwd-file (the Dovecot users file) is described per mailbox, without its hashes.
    const known = before !== undefined || beforeSha === undefined;
    const accounts = known ? passwdFileDiff(path, before, after) : null;
    if (accounts !== null) return accounts;
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

/**
 * The files whose current text on the host the plan's diffs use, when it has them (plan a second time
 * with it in the facts): every updated file that is not secret, and every updated secret file that is a
 * passwd-file, which the plan describes per mailbox without showing its hashes. The text of a secret
 * file only lives in memory for that comparison: it is never printed, logged or written.
 */
export function hostTextWanted(desired: DesiredHost, p: HostPlan): string[] {
  const byPath = new Map(desired.files.map((f) => [f.path, f]));
  return p.changes.flatMap((c) => {
    if (c.kind !== 'file' || c.action !== 'update') return [];
    if (!c.secret) return [c.path];
    const f = byPath.get(c.path);
    return f && isPasswdFile(f.content) ? [c.path] : [];
  });
}

function lineCount(s: string): number {
  return s === '' ? 0 : s.split('\n').length - (s.endsWith('\n') ? 1 : 0);
}
