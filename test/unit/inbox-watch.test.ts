import { describe, expect, it } from 'vitest';
import { inboxWatch } from '../../src/verify/peer.js';

describe('inboxWatch (verify\'s deliverability checks and mailops test\'s forwarding wait on one inbox)', () => {
  it('serves every waiter from one read of the inbox a second, and gives up at the deadline', async () => {
    const inbox: string[] = [];
    let reads = 0;
    const arrived = inboxWatch({ domain: 'peer.test', hostname: 'mx.peer.test', inbox: async () => (reads++, [...inbox]) });
    const t0 = Date.now();
    setTimeout(() => inbox.push('Message-ID: <a@x.test>'), 300);
    setTimeout(() => inbox.push('Message-ID: <b@x.test>'), 1300);
    const [a, b, c, d, none] = await Promise.all([
      arrived('<a@x.test>', t0 + 5000),
      arrived('<b@x.test>', t0 + 5000),
      arrived('<a@x.test>', t0 + 5000),
      // Or what a predicate accepts (mailops test: a token and the forwarding address, in any case).
      arrived((m) => m.includes('<b@') && m.toLowerCase().includes('x.test'), t0 + 5000),
      arrived('<never@x.test>', t0 + 2500),
    ]);
    expect([a, b, c, d, none]).toEqual(['Message-ID: <a@x.test>', 'Message-ID: <b@x.test>', 'Message-ID: <a@x.test>', 'Message-ID: <b@x.test>', undefined]);
    // Five waiters over about 3 s: a read at 0, 1, 2 and 3 s at most (one each, without sharing, would be ~15).
    expect(reads).toBeGreaterThanOrEqual(3);
    expect(reads).toBeLessThanOrEqual(4);
  });
});
