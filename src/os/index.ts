import type { OsFamily } from '../model/site.js';
import { debian } from './debian.js';
import type { OsProfile } from './profile.js';
import { rhel } from './rhel.js';

export type { OsProfile } from './profile.js';

export const profiles: Record<OsFamily, OsProfile> = { debian, rhel };

/** The family of an /etc/os-release, or null when unsupported. */
export function familyFromOsRelease(osRelease: string): OsFamily | null {
  const field = (k: string) => new RegExp(`^${k}=("?)([^"\\n]*)\\1$`, 'm').exec(osRelease)?.[2] ?? '';
  const ids = [field('ID'), ...field('ID_LIKE').split(/\s+/)].map((s) => s.toLowerCase());
  if (ids.some((i) => i === 'debian' || i === 'ubuntu')) return 'debian';
  if (ids.some((i) => ['rhel', 'centos', 'fedora', 'rocky', 'almalinux'].includes(i))) return 'rhel';
  return null;
}
