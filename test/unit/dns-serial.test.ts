import { describe, expect, it } from 'vitest';
import { chooseSerial, dateSerial } from '../../src/dns/serial.js';

const at = (iso: string) => new Date(iso);

describe('dateSerial', () => {
  it('is YYYYMMDDnn with the 15-minute slot of the UTC day', () => {
    expect(dateSerial(at('2026-03-07T00:00:00Z'))).toBe(2026030700);
    expect(dateSerial(at('2026-03-07T00:14:59Z'))).toBe(2026030700);
    expect(dateSerial(at('2026-03-07T00:15:00Z'))).toBe(2026030701);
    expect(dateSerial(at('2026-03-07T12:30:00Z'))).toBe(2026030750);
    expect(dateSerial(at('2026-12-31T23:59:59Z'))).toBe(2026123195);
    expect(dateSerial(at('2026-03-07T01:00:00+02:00'))).toBe(2026030692); // 23:00 UTC the day before: slot 92
  });
});

describe('chooseSerial', () => {
  const now = at('2026-03-07T12:30:00Z');
  const today = 2026030750;

  it('keeps the recorded serial while the content is unchanged', () => {
    expect(chooseSerial({ digest: 'a', recorded: { serial: 2026010100, digest: 'a' }, now })).toBe(2026010100);
    expect(chooseSerial({ digest: 'a', recorded: { serial: 2026010100, digest: 'a' }, live: 2026010100, now })).toBe(2026010100);
    expect(chooseSerial({ digest: 'a', recorded: { serial: 2026010100, digest: 'a' }, live: 2026010099, now })).toBe(2026010100);
  });

  it('moves above the server when it is ahead of the recorded serial (a DNS UPDATE raised it)', () => {
    expect(chooseSerial({ digest: 'a', recorded: { serial: 2026010100, digest: 'a' }, live: 2026030790, now })).toBe(2026030791);
  });

  it('takes the first serial above everything known when the content changed', () => {
    expect(chooseSerial({ digest: 'b', recorded: { serial: 2026010100, digest: 'a' }, now })).toBe(today);
    expect(chooseSerial({ digest: 'b', recorded: { serial: 2026030750, digest: 'a' }, now })).toBe(2026030751);
    expect(chooseSerial({ digest: 'b', recorded: { serial: 5, digest: 'a' }, live: 2030010100, now })).toBe(2030010101);
    expect(chooseSerial({ digest: 'b', live: 7, now })).toBe(today);
    expect(chooseSerial({ digest: 'b', now })).toBe(today);
  });

  it('never goes back and never repeats for other content when anything is known', () => {
    let recorded = { serial: 1, digest: 'd0' };
    const seen = new Map<number, string>();
    for (let i = 1; i < 200; i++) {
      const digest = `d${i % 7}`; // contents come back: still a new serial each time they change
      const when = new Date(Date.UTC(2026, 2, 7, 12, 0) + Math.floor(i / 10) * 60_000);
      const serial = chooseSerial({ digest, recorded, now: when });
      expect(serial).toBeGreaterThanOrEqual(recorded.serial);
      if (digest !== recorded.digest) {
        expect(serial).toBeGreaterThan(recorded.serial);
        expect(seen.has(serial)).toBe(false);
      }
      seen.set(serial, digest);
      recorded = { serial, digest };
    }
  });

  it('refuses a serial past 2^32-1', () => {
    expect(() => chooseSerial({ digest: 'b', live: 0xffffffff, now })).toThrow(/2\^32-1/);
  });
});
