/**
 * Dovecot replication between the two mailbox hosts (stack.replication): each host's replicator pushes
 * every change to the other over doveadm's TCP port with TLS, logged in with doveadm_password. Pure.
 *
 * Mailbox GUIDs: dsync matches mailboxes by GUID. When both hosts made a mailbox of the same name by
 * themselves (an INBOX at the first delivery or login on each, a Sent made by a client on each), dsync
 * 2.3.19 (Debian 12) cannot merge them: both sides take the other's GUID at once (maildir's create applies
 * the GUID to a mailbox that exists, fixed upstream in 2.3.20), so the GUIDs swap at every sync and no
 * message crosses. So: a host gives the mailboxes of a user who has none yet GUIDs derived from the site,
 * the user and the mailbox name (both hosts derive the same), and the second mailbox host takes the first
 * host's GUID for any mailbox both made apart (when replication is turned on over hosts that already hold
 * mail, and whenever a sync fails). dsync then merges their messages: nothing is lost.
 */
import { createHmac } from 'node:crypto';
import type { Host, Site } from '../model/site.js';
import type { Credentials } from './context.js';

/** doveadm's TCP port for dsync between the mailbox hosts (TLS from the first byte). */
export const DOVEADM_PORT = 12345;

/** The replication script on a mailbox host (templates/replication/replica.sh.hbs). */
export const REPLICA_SCRIPT = '/etc/mailops/replica.sh';

export interface ReplicationView {
  /** The other mailbox host: where this one's replicator connects (by name) and the only address let in. */
  peer: string;
  peerIpv4: string;
  peerIpv6?: string;
  port: number;
  /** doveadm_password: the same on both hosts; rendered only into a secret file. */
  password: string;
  /**
   * Self-signed certificates: the SHA-256 fingerprint (lowercase hex) of the other host's certificate as
   * mailops recorded it over SSH (the site state); its certificate is trusted for dsync only when it matches.
   * Absent until the first apply has recorded it.
   */
  peerFingerprint?: string;
  /** The CA file dsync checks the other host's certificate against. */
  caFile: string;
  /**
   * Self-signed certificates on Dovecot 2.4: a directory holding that same certificate under its OpenSSL hash name, which
   * Dovecot 2.4 is given instead of the file. 2.4 reads ssl_client_ca_file as it starts and does not start
   * without it, and the file comes from the other host only once both run (replica.sh pin); a directory is
   * read only when dsync connects.
   */
  caDir?: string;
  /**
   * The second mailbox host of the playbook: where both hosts made a mailbox of the same name apart, it
   * takes the first host's GUID (the first host never changes one).
   */
  follower: boolean;
  /**
   * Whether mailops pushes the changes (replica.sh watch, mailops-replica-push) instead of Dovecot's replicator:
   * on Dovecot 2.4, which has none, and on a 2.3 host whose peer has 2.4 (its replicator asks the other host
   * for `dsync-server -U`, an option 2.4 refuses), as the site state recorded the peer.
   */
  push: boolean;
  /** Whether dsync can reach the other host now: its certificate is known (self-signed) or a CA vouches for it. */
  ready: boolean;
  /** Used in the GUIDs a host gives the mailboxes of a new user (the same on both hosts). */
  guidSeed: string;
  /** The folders Dovecot makes for every user (INBOX and the special-use ones), made with those GUIDs. */
  folders: string[];
  /** The script that does the above on the host. */
  script: string;
}

/**
 * The password both hosts share, derived so that neither mailops nor the hosts need to store or exchange
 * it: an HMAC keyed with every credential of the site (mailbox password hashes, the relay's password),
 * over the site and the two host names. It changes when a credential changes (both hosts get the new one
 * in the same apply). Never printed: it is written only into a file marked secret.
 */
export function replicationPassword(site: Site, credentials: Credentials): string {
  const key = [...credentials.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k}\0${v}`).join('\0');
  const hosts = site.hosts.filter((h) => h.role === 'mailbox').map((h) => h.hostname.toLowerCase()).sort();
  return createHmac('sha256', key).update(`mailops dovecot replication\0${site.site}\0${hosts.join('\0')}`).digest('base64url');
}

/** What a mailbox host of a replicated site needs; undefined when the site does not replicate or the host is a backup MX. */
export function replicationView(
  site: Site,
  host: Host,
  credentials: Credentials,
  os: { paths: { dovecot: string; caBundle: string }; dovecot: '2.3' | '2.4' },
  folders: readonly string[],
  recorded: Readonly<Record<string, string>> = {},
  recordedDovecot: Readonly<Record<string, string>> = {},
): ReplicationView | undefined {
  const paths = os.paths;
  if (!site.stack.replication || host.role !== 'mailbox') return undefined;
  const peer = site.hosts.find((h) => h.role === 'mailbox' && h.name !== host.name);
  if (!peer) return undefined;
  const selfSigned = site.stack.tls.mode === 'self-signed';
  const fp = selfSigned ? recorded[peer.hostname] : undefined;
  return {
    peer: peer.hostname,
    peerIpv4: peer.ipv4,
    ...(peer.ipv6 ? { peerIpv6: peer.ipv6 } : {}),
    port: DOVEADM_PORT,
    password: replicationPassword(site, credentials),
    ...(fp ? { peerFingerprint: fp } : {}),
    caFile: selfSigned ? `${paths.dovecot}/replica-peer.pem` : paths.caBundle,
    ...(selfSigned && os.dovecot === '2.4' ? { caDir: `${paths.dovecot}/replica-peer.d` } : {}),
    push: os.dovecot === '2.4' || recordedDovecot[peer.name] === '2.4',
    follower: site.hosts.find((h) => h.role === 'mailbox')?.name !== host.name,
    ready: !selfSigned || fp !== undefined,
    guidSeed: `mailops ${site.site}`,
    folders: ['INBOX', ...folders],
    script: REPLICA_SCRIPT,
  };
}
