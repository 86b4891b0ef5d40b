import { describe, expect, it } from 'vitest';
import { timings } from '../../src/cli/progress.js';

describe('apply --timings', () => {
  it('each step of each host lasts until that host reports the next one (the last until the report); slowest first', () => {
    let t = 0;
    const c = timings(() => t);
    c.update('mx1', 'connecting');
    c.update('mx2', 'connecting');
    t = 100;
    c.update('mx1', 'gathering facts');
    t = 250;
    c.update('mx2', 'gathering facts');
    c.update('mx1', 'packages postfix dovecot-core');
    t = 42_250;
    c.update('mx1', 'service restart postfix.service');
    t = 43_000;
    expect(c.report()).toEqual([
      '   42.0 s  mx1  packages postfix dovecot-core',
      '   42.8 s  mx2  gathering facts',
      '    0.8 s  mx1  service restart postfix.service',
      '    0.3 s  mx2  connecting',
      '    0.1 s  mx1  gathering facts',
      '    0.1 s  mx1  connecting',
    ].sort((a, b) => parseFloat(b) - parseFloat(a)));
  });
});
