import { describe, expect, it } from 'vitest';
import { Interrupted, Recorder } from '../../src/testrun/recorder.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Recorder.runAll', () => {
  it('runs the cases a few at a time and lists them in their order, not the order they end in', async () => {
    const lines: string[] = [];
    const rec = new Recorder((l) => lines.push(l));
    const s = rec.suite('checks');
    let running = 0;
    let most = 0;
    const cases = [50, 10, 40, 0, 30, 20, 5].map((ms, i) => ({
      name: `case ${i}`,
      f: async () => {
        running++;
        most = Math.max(most, running);
        await sleep(ms);
        running--;
        if (i === 2) throw new Error('refused: 550 5.1.1');
        if (i === 4) return { fail: 'not delivered' };
        if (i === 5) return { skip: 'not here' };
        return `done ${i}`;
      },
    }));
    await rec.runAll(s, cases, 3);
    expect(most).toBe(3);
    expect(s.cases.map((c) => [c.name, c.status, c.detail])).toEqual([
      ['case 0', 'passed', 'done 0'],
      ['case 1', 'passed', 'done 1'],
      ['case 2', 'failed', 'refused: 550 5.1.1'],
      ['case 3', 'passed', 'done 3'],
      ['case 4', 'failed', 'not delivered'],
      ['case 5', 'skipped', 'not here'],
      ['case 6', 'passed', 'done 6'],
    ]);
    // Progress comes as the cases end: case 1 (10 ms) before case 0 (50 ms).
    expect(lines.findIndex((l) => l.includes('case 1'))).toBeLessThan(lines.findIndex((l) => l.includes('case 0')));
    expect(lines.find((l) => l.includes('case 2'))).toMatch(/^FAILED  checks: case 2: refused: 550 5\.1\.1 \(\d+\.\d s\)$/);
  });

  it('starts no case after an interruption, and keeps the results of those that ended', async () => {
    const rec = new Recorder(() => {});
    const s = rec.suite('checks');
    const started: number[] = [];
    const cases = [0, 1, 2, 3, 4, 5].map((i) => ({
      name: `case ${i}`,
      f: async () => {
        started.push(i);
        await sleep(i === 0 ? 5 : 30);
        if (i === 1) rec.interrupted = true;
        return 'ok';
      },
    }));
    await expect(rec.runAll(s, cases, 2)).rejects.toBeInstanceOf(Interrupted);
    await sleep(80);
    // Case 0 ended before Ctrl-C; case 2 took its lane; case 1 ended with the interruption; nothing after.
    expect(s.cases.map((c) => c.name)).toEqual(['case 0']);
    expect(started).toEqual([0, 1, 2]);
  });
});
