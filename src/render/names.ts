/**
 * The names a site publishes for its clients, in one place: the zones point them at a host, its
 * certificate covers them, and `mailops clients` tells people to type them. Pure.
 *
 * Clients (IMAP, POP3, submission, autoconfiguration, the MTA-STS policy) go to the first mailbox host;
 * a backup MX serves none of them, so its certificate names only itself.
 */
import type { Domain, Host, Site } from '../model/site.js';

/** The hosts that store mailboxes (every host but the backup MXs). */
export const mailboxHosts = (site: Site): Site['hosts'] => site.hosts.filter((h) => h.role !== 'backup-mx');

/** The host that serves mail clients: the first mailbox host (validation makes sure there is one). */
export function clientHost(site: Site): Host {
  return mailboxHosts(site)[0] ?? site.hosts[0]!;
}

/** The service labels of a domain that point at the client host, and whether each is published. */
export function serviceLabels(site: Site): Array<{ label: string; on: boolean }> {
  const s = site.stack;
  return [
    { label: 'imap', on: s.imap },
    { label: 'pop', on: s.pop3 },
    { label: 'smtp', on: true },
    // Served over HTTPS by the client host (playbooks/autoconfig.yaml).
    { label: 'autoconfig', on: s.autoconfig },
    { label: 'autodiscover', on: s.autoconfig },
    { label: 'mta-sts', on: s.mtaSts !== 'none' },
  ];
}

/** Whether the client host serves HTTPS (autoconfiguration, the MTA-STS policy). */
export const servesWeb = (site: Site): boolean => site.stack.autoconfig || site.stack.mtaSts !== 'none';

/** The names under a domain that point at the client host (`imap.example.com`...). */
export function serviceNames(site: Site, d: Domain): string[] {
  return serviceLabels(site).flatMap((x) => (x.on ? [`${x.label}.${d.name}`] : []));
}

/** Every name the certificate of a host covers: its host name first, then the names the zones point at it. */
export function certificateNames(site: Site, host: Host): string[] {
  const names = [host.hostname.toLowerCase().replace(/\.$/, '')];
  if (clientHost(site).name === host.name) for (const d of site.domains) names.push(...serviceNames(site, d));
  return [...new Set(names)];
}
