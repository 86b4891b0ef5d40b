/**
 * Which packages a host gets, with plain data: Debian's Dovecot protocol packages follow stack.imap and
 * stack.pop3, and Sieve (junk filing) follows stack.antispam.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkSite } from '../../src/site/load.js';
import { renderHosts } from '../../src/render/site.js';
import { factScript } from '../../src/facts/script.js';
import type { OsFamily } from '../../src/model/site.js';

const minimal = readFileSync(new URL('../fixtures/minimal.yaml', import.meta.url), 'utf8');

function packages(imap: boolean, pop3: boolean, family: OsFamily = 'debian', antispam = true) {
  const r = checkSite('/tmp/site.yaml', { secrets: 'warning' }, minimal.replace('dns:', `stack:\n  imap: ${imap}\n  pop3: ${pop3}\n  antispam: ${antispam}\ndns:`));
  if (!r.ok) throw new Error(JSON.stringify(r.diagnostics));
  const [d] = renderHosts(r.site, { detectedOs: new Map([[r.site.hosts[0]!.name, family]]) });
  return { list: d!.packages.filter((p) => p.startsWith('dovecot')), script: factScript({ [family]: d! }) };
}

describe('packages', () => {
  it('Debian: the Dovecot protocol packages of the enabled protocols only, whatever else is on', () => {
    expect(packages(true, true).list).toEqual(['dovecot-core', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd', 'dovecot-sieve']);
    expect(packages(true, false).list).toEqual(['dovecot-core', 'dovecot-imapd', 'dovecot-lmtpd', 'dovecot-sieve']);
    expect(packages(false, true).list).toEqual(['dovecot-core', 'dovecot-pop3d', 'dovecot-lmtpd', 'dovecot-sieve']);
    expect(packages(false, false).list).toEqual(['dovecot-core', 'dovecot-lmtpd', 'dovecot-sieve']);
    // The fact script asks the package database for those only.
    const { script } = packages(true, false);
    expect(script).toMatch(/dpkg-query .* dovecot-core dovecot-imapd dovecot-lmtpd dovecot-sieve /);
    expect(script).not.toContain('dovecot-pop3d');
  });

  it('RHEL: one Dovecot package holds every protocol', () => {
    expect(packages(false, true, 'rhel').list).toEqual(['dovecot', 'dovecot-pigeonhole']);
    expect(packages(true, false, 'rhel').list).toEqual(['dovecot', 'dovecot-pigeonhole']);
  });

  it('without antispam, no Sieve: nothing files junk (Debian dovecot-sieve, RHEL dovecot-pigeonhole)', () => {
    expect(packages(true, true, 'debian', false).list).toEqual(['dovecot-core', 'dovecot-imapd', 'dovecot-pop3d', 'dovecot-lmtpd']);
    expect(packages(true, true, 'rhel', false).list).toEqual(['dovecot']);
    expect(packages(true, true, 'debian', false).script).not.toContain('dovecot-sieve');
  });
});
