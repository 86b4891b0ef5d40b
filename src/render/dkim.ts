/**
 * Which DKIM keys exist, as data. Each host signs with keys of its own (its private keys never leave
 * it): the first host uses the playbook's selector, the others `<selector>-2`, `<selector>-3`...
 * A domain with an Ed25519 key is signed twice (RFC 8463 dual signing): with the Ed25519 key and with
 * an RSA-2048 companion under `<selector>-rsa`, because many receivers verify RSA signatures only.
 * Pure.
 */
import type { Domain, Host, Site } from '../model/site.js';

export interface DkimKey {
  domain: string;
  host: Host;
  hostIndex: number;
  selector: string;
  keyType: 'rsa' | 'ed25519';
  bits: number;
  /** DNS name without the trailing dot: <selector>._domainkey.<domain> */
  record: string;
}

/** The selector a host signs with (the playbook's on the first host). */
export function hostSelector(selector: string, hostIndex: number): string {
  return hostIndex === 0 ? selector : `${selector.slice(0, 60)}-${hostIndex + 1}`;
}

/** The selector of the RSA companion of an Ed25519 key. */
export function rsaCompanion(selector: string): string {
  return `${selector.slice(0, 59)}-rsa`;
}

/** Every key of one domain: per host, the playbook's key and, for Ed25519, its RSA companion. */
export function domainKeys(site: Site, d: Domain): DkimKey[] {
  if (!d.dkim) return [];
  const k = d.dkim;
  return site.hosts.flatMap((host, hostIndex) => {
    const own = (selector: string, keyType: 'rsa' | 'ed25519', bits: number): DkimKey => ({
      domain: d.name,
      host,
      hostIndex,
      selector,
      keyType,
      bits,
      record: `${selector}._domainkey.${d.name}`,
    });
    if (k.key === 'ed25519') return [own(hostSelector(k.selector, hostIndex), 'ed25519', 256), own(hostSelector(rsaCompanion(k.selector), hostIndex), 'rsa', 2048)];
    return [own(hostSelector(k.selector, hostIndex), 'rsa', k.key === 'rsa-4096' ? 4096 : 2048)];
  });
}

/** The keys one host holds, over every domain. */
export function hostKeys(site: Site, host: Host): DkimKey[] {
  return site.domains.flatMap((d) => domainKeys(site, d)).filter((k) => k.host.name === host.name);
}
