/**
 * The certificate commands' guards: planned from the certificate the facts read (certGuardHolds), while the
 * activation runs the command's shell `unless`. Both are asked about the same real certificates (made by
 * openssl here) and must agree.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { factScript } from '../../src/facts/script.js';
import { parseFacts, tlsFact } from '../../src/facts/parse.js';
import { firstCertificate } from '../../src/facts/shell.js';
import { certGuardHolds } from '../../src/plan/plan.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { HostFacts } from '../../src/model/facts.js';
import { render, site } from './support/hosts-site.js';

const work = mkdtempSync(join(tmpdir(), 'mailops-certguard-'));
let n = 0;
/** A self-signed certificate with these subjectAltNames, valid from now to `days` days from now. */
function cert(san: string, days: number): string {
  const file = join(work, `c${++n}.pem`);
  const r = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${file}.key`, '-out', file, '-subj', '/CN=x', '-addext', `subjectAltName=${san}`, '-days', String(days)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return file;
}
/** What the fact script's tls section makes of the file, and the moment it was gathered. */
function factsOf(file: string): HostFacts {
  const pem = spawnSync('sh', ['-c', firstCertificate(file)], { encoding: 'utf8' }).stdout;
  return { ...parseFacts('\n@@mailops end\n'), ...tlsFact(pem.split('\n')), gatheredAt: Math.floor(Date.now() / 1000) };
}

function certCommand(h: DesiredHost, prefix: string) {
  const c = h.commands.find((x) => x.name.startsWith(prefix));
  expect(c?.certGuard, prefix).toBeDefined();
  return { guard: c!.certGuard!, unless: c!.unless!, path: h.tlsCert! };
}

describe('certificate guards: planned from the facts, run by the activation, and the same', () => {
  const [selfSigned] = render(site());
  const [acme] = render(site({ acme: true }));

  const cases = (san: string, reversed: string) => [
    { what: 'the names, valid 397 days', file: () => cert(san, 397) },
    { what: 'the names, 10 days left', file: () => cert(san, 10) },
    { what: 'the names in another order', file: () => cert(reversed, 397) },
    { what: 'one name fewer', file: () => cert(san.split(',').slice(1).join(','), 397) },
    { what: 'no certificate', file: () => join(work, 'missing.pem') },
    {
      what: 'a file that is no certificate',
      file: () => {
        const f = join(work, `junk${++n}.pem`);
        writeFileSync(f, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n');
        return f;
      },
    },
  ];

  for (const [label, host, prefix, expected] of [
    ['self-signed (30 days ahead, in order)', selfSigned!, 'self-signed certificate for', [true, false, false, false, false, false]],
    ['ACME (any order, no time)', acme!, 'ACME certificate for', [true, true, true, false, false, false]],
  ] as const) {
    it(`${label}: both guards agree on every certificate`, () => {
      const { guard, unless, path } = certCommand(host, prefix);
      const san = guard.names.join(',');
      expect(san).toMatch(/^DNS:mx1\.example\.com,DNS:/);
      const reversed = [...guard.names].reverse().join(',');
      const got = cases(san, reversed).map(({ what, file }) => {
        const f = file();
        const shell = spawnSync('sh', ['-c', unless.replaceAll(path, f)]).status === 0;
        const planned = certGuardHolds(guard, factsOf(f));
        expect(planned, `${what}: planned ${planned}, the activation's guard ${shell}`).toBe(shell);
        return planned;
      });
      expect(got).toEqual(expected);
    });
  }

  it('the fact script runs no program for a certificate guard (the tls section reads the file once)', () => {
    const script = factScript({ debian: selfSigned! });
    expect(script).not.toContain('openssl verify');
    expect(script).not.toContain('storeutl');
    expect(script).toContain(firstCertificate(selfSigned!.tlsCert!));
  });

  it('facts without a certificate, or without the time they were gathered, hold no guard', () => {
    const { guard } = certCommand(selfSigned!, 'self-signed certificate for');
    const f = factsOf(cert(guard.names.join(','), 397));
    expect(certGuardHolds(guard, f)).toBe(true);
    const { gatheredAt: _, ...undated } = f;
    expect(certGuardHolds(guard, undated)).toBe(false);
    const { tlsCert: __, ...none } = f;
    expect(certGuardHolds(guard, none)).toBe(false);
  });
});
