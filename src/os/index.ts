import type { OsFamily } from '../model/site.js';
import { debian } from './debian.js';
import type { DovecotGeneration, OsProfile } from './profile.js';
import { rhel } from './rhel.js';

export type { DovecotGeneration, OsProfile } from './profile.js';

/** Each family's profile, for its releases with Dovecot 2.3 (Debian 12, Ubuntu 22.04 and 24.04, RHEL 8 to 10). */
export const profiles: Record<OsFamily, OsProfile> = { debian, rhel };

/** What rendering needs to know of a host: its family, and the Dovecot its release brings. */
export interface Platform {
  family: OsFamily;
  dovecot: DovecotGeneration;
}

export function profileOf(p: Platform): OsProfile {
  return p.dovecot === profiles[p.family].dovecot ? profiles[p.family] : { ...profiles[p.family], dovecot: p.dovecot };
}

/** The family of an /etc/os-release, or null when unsupported. */
export function familyFromOsRelease(osRelease: string): OsFamily | null {
  const field = (k: string) => new RegExp(`^${k}=("?)([^"\\n]*)\\1$`, 'm').exec(osRelease)?.[2] ?? '';
  const ids = [field('ID'), ...field('ID_LIKE').split(/\s+/)].map((s) => s.toLowerCase());
  if (ids.some((i) => i === 'debian' || i === 'ubuntu')) return 'debian';
  if (ids.some((i) => ['rhel', 'centos', 'fedora', 'rocky', 'almalinux'].includes(i))) return 'rhel';
  return null;
}

/** The generation of a package version (Debian's `1:2.4.1+dfsg1-6`, RPM's `2.3.21-16.el10`), if it is a Dovecot one. */
export function dovecotOfVersion(version: string): DovecotGeneration | undefined {
  const m = /^(?:\d+:)?(\d+)\.(\d+)/.exec(version);
  if (!m) return undefined;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 2 || (major === 2 && minor >= 4) ? '2.4' : '2.3';
}

/**
 * The Dovecot a host has, or will have once mailops installs it: the installed package's version when
 * there is one (a host upgraded in place), else the one its package manager would install (apt's
 * candidate), else what its release ships: Dovecot 2.4 came with Debian 13 (trixie; testing and unstable,
 * which have no VERSION_ID, too), Ubuntu 25.04 and Fedora 42. A derivative that names neither Debian,
 * Ubuntu nor Fedora in ID, and has no apt lists, is taken to be of the older generation.
 */
export function dovecotOf(os: { id: string; versionId: string; installed?: string | undefined; candidate?: string | undefined }): DovecotGeneration {
  const fromPackage = (os.installed ? dovecotOfVersion(os.installed) : undefined) ?? (os.candidate ? dovecotOfVersion(os.candidate) : undefined);
  if (fromPackage) return fromPackage;
  const [major = NaN, minor = 0] = os.versionId.split('.').map(Number);
  switch (os.id.toLowerCase()) {
    case 'debian':
      return os.versionId === '' || major >= 13 ? '2.4' : '2.3';
    case 'ubuntu':
      return major > 25 || (major === 25 && minor >= 4) ? '2.4' : '2.3';
    case 'fedora':
      return major >= 42 ? '2.4' : '2.3';
    default:
      return '2.3';
  }
}
