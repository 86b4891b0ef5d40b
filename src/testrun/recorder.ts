/**
 * The cases of a `mailops test` run, as they end: each one's result in its suite, in the order the cases
 * were given, and a progress line as each ends.
 */
import pLimit from 'p-limit';
import type { CaseResult, Suite } from './report.js';
import type { Log } from '../testbed/log.js';

/** Thrown by the next case once Ctrl-C was pressed: the run ends, its containers are being removed. */
export class Interrupted extends Error {}

export type CaseFn = () => Promise<string | { skip: string } | { fail: string }>;

export class Recorder {
  readonly suites: Suite[] = [];
  interrupted = false;
  constructor(private readonly log: Log) {}
  private readonly started = new WeakMap<Suite, number>();
  suite(name: string): Suite {
    const s: Suite = { name, cases: [], seconds: 0 };
    this.started.set(s, Date.now());
    this.suites.push(s);
    return s;
  }
  /** Runs one case: a thrown error fails it with its message; `f` returns the detail (or a skip). */
  async run(s: Suite, name: string, f: CaseFn): Promise<boolean> {
    const r = await this.exec(s, name, f);
    s.cases.push(r);
    return r.status !== 'failed';
  }

  /**
   * Runs cases `lanes` at a time (they wait on the network, not on this machine); the suite lists them in
   * their order, whatever order they end in. After Ctrl-C, none that has not started starts.
   */
  async runAll(s: Suite, cases: { name: string; f: CaseFn }[], lanes: number): Promise<void> {
    const limit = pLimit(lanes);
    const results: CaseResult[] = [];
    try {
      await Promise.all(
        cases.map((c, i) =>
          limit(async () => {
            results[i] = await this.exec(s, c.name, c.f);
          }),
        ),
      );
    } catch (e) {
      limit.clearQueue();
      throw e;
    } finally {
      s.cases.push(...results.filter(Boolean));
    }
  }

  private async exec(s: Suite, name: string, f: CaseFn): Promise<CaseResult> {
    if (this.interrupted) throw new Interrupted('interrupted');
    const t0 = Date.now();
    let r: CaseResult;
    try {
      const out = await f();
      const seconds = (Date.now() - t0) / 1000;
      if (typeof out === 'string') r = { name, status: 'passed', detail: out, seconds };
      else if ('skip' in out) r = { name, status: 'skipped', detail: out.skip, seconds };
      else r = { name, status: 'failed', detail: out.fail, seconds };
    } catch (e) {
      r = { name, status: 'failed', detail: (e as Error).message, seconds: (Date.now() - t0) / 1000 };
    }
    if (this.interrupted) throw new Interrupted('interrupted');
    s.seconds = (Date.now() - (this.started.get(s) ?? t0)) / 1000;
    const mark = r.status === 'passed' ? 'ok     ' : r.status === 'skipped' ? 'skipped' : 'FAILED ';
    this.log(`${mark} ${s.name}: ${name}${r.status === 'passed' ? '' : `: ${r.detail}`} (${r.seconds.toFixed(1)} s)`);
    return r;
  }
}

