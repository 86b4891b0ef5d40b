/** The results of `mailops test`: suites of cases, as a person reads them, as JSON, and as JUnit XML. */
import { create } from 'xmlbuilder2';

export type CaseStatus = 'passed' | 'failed' | 'skipped';

export interface CaseResult {
  name: string;
  status: CaseStatus;
  /** What was seen: the server's reply, the count found, the reason of a skip. */
  detail: string;
  seconds: number;
}

export interface Suite {
  /** e.g. "apply", "verify", "checks", "re-apply", "base: apply OLD". */
  name: string;
  cases: CaseResult[];
  /** From the suite's start to the end of its last case (its cases may run at once: not their sum). */
  seconds: number;
}

export interface TestReport {
  ok: boolean;
  /** Ctrl-C ended the run (its containers were removed). */
  interrupted?: boolean;
  playbook: string;
  base?: string;
  seconds: number;
  /** What the throwaway copy changed from the playbook, in words. */
  notes: string[];
  suites: Suite[];
}

export const counts = (cases: CaseResult[]) => ({
  tests: cases.length,
  failures: cases.filter((c) => c.status === 'failed').length,
  skipped: cases.filter((c) => c.status === 'skipped').length,
});

/** JUnit XML as GitHub's and GitLab's test report views read it (testsuites > testsuite > testcase). */
export function junitXml(r: TestReport): string {
  const all = r.suites.flatMap((s) => s.cases);
  const total = counts(all);
  const root = create({ version: '1.0', encoding: 'UTF-8' }).ele('testsuites', {
    name: `mailops test ${r.playbook}`,
    tests: total.tests,
    failures: total.failures,
    errors: 0,
    skipped: total.skipped,
    time: r.seconds.toFixed(3),
  });
  for (const s of r.suites) {
    const c = counts(s.cases);
    const suite = root.ele('testsuite', { name: s.name, tests: c.tests, failures: c.failures, errors: 0, skipped: c.skipped, time: s.seconds.toFixed(3) });
    for (const x of s.cases) {
      const tc = suite.ele('testcase', { classname: `mailops.${s.name.replace(/[^A-Za-z0-9_-]+/g, '_')}`, name: x.name, time: x.seconds.toFixed(3) });
      if (x.status === 'failed') tc.ele('failure', { message: x.detail.split('\n')[0]!.slice(0, 500), type: 'failure' }).txt(x.detail);
      else if (x.status === 'skipped') tc.ele('skipped', { message: x.detail });
      else if (x.detail) tc.ele('system-out').txt(x.detail);
    }
  }
  if (r.notes.length) root.first().ele('system-out').txt(r.notes.join('\n'));
  return root.end({ prettyPrint: true });
}

export function summaryText(r: TestReport): string {
  const lines: string[] = [];
  for (const s of r.suites) {
    const c = counts(s.cases);
    lines.push(`${s.name}: ${c.tests - c.failures - c.skipped} passed${c.failures ? `, ${c.failures} failed` : ''}${c.skipped ? `, ${c.skipped} skipped` : ''} in ${s.seconds.toFixed(1)} s`);
    for (const x of s.cases.filter((y) => y.status === 'failed')) lines.push(`  FAILED ${x.name}: ${x.detail}`);
  }
  const all = counts(r.suites.flatMap((s) => s.cases));
  if (r.interrupted) lines.push('interrupted: the run was stopped and its containers removed');
  lines.push(`mailops test: ${r.ok ? 'PASSED' : r.interrupted ? 'INTERRUPTED' : 'FAILED'}: ${all.tests - all.failures - all.skipped} passed, ${all.failures} failed, ${all.skipped} skipped in ${r.seconds.toFixed(1)} s`);
  return lines.join('\n');
}
