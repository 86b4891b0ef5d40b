/**
 * What a person types into a mail client, per mailbox, from the same model as the daemons' configs (so
 * ports, TLS modes and the names always match what the host serves), and what to do about the errors
 * clients show most. Pure.
 */
import type { Domain, Mailbox, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import { certificateNames, clientHost } from '../render/names.js';

export type Security = 'SSL/TLS' | 'STARTTLS';

export interface Server {
  protocol: 'IMAP' | 'POP3' | 'SMTP';
  host: string;
  port: number;
  security: Security;
  /** The one to use; the other is for networks that block it. */
  recommended: boolean;
  authentication: 'normal password';
}

export interface MailboxSettings {
  address: string;
  /** The user name: always the full address. */
  username: string;
  incoming: Server[];
  outgoing: Server[];
  /** Other addresses it may send as. */
  sendAs: string[];
  /** What is special about this mailbox (cannot send, a limit, disabled). */
  notes: string[];
}

export interface ClientSettings {
  mailboxes: MailboxSettings[];
  certificate: { mode: string; names: string[]; sha256?: string };
  troubleshooting: Array<{ error: string; fix: string }>;
}

/** The name under a domain that the zones point at the client host for a service. */
const name = (label: string, d: Domain) => `${label}.${d.name}`;

const server = (protocol: Server['protocol'], host: string, port: number, security: Security, recommended: boolean): Server => ({ protocol, host, port, security, recommended, authentication: 'normal password' });

/** The settings of a mailbox of the domain (the first one's, or a placeholder address, when none is given). */
export function settingsFor(site: Site, d: Domain, m?: Mailbox): MailboxSettings {
  return settingsOf(site, d, m ?? { local: '%EMAILLOCALPART%', address: `%EMAILADDRESS%`, sendAs: [], send: true, enabled: true });
}

function settingsOf(site: Site, d: Domain, m: Mailbox): MailboxSettings {
  const s = site.stack;
  const incoming = [
    ...(s.imap ? [server('IMAP', name('imap', d), 993, 'SSL/TLS', true), server('IMAP', name('imap', d), 143, 'STARTTLS', false)] : []),
    ...(s.pop3 ? [server('POP3', name('pop', d), 995, 'SSL/TLS', !s.imap), server('POP3', name('pop', d), 110, 'STARTTLS', false)] : []),
  ];
  const outgoing = [server('SMTP', name('smtp', d), 465, 'SSL/TLS', true), server('SMTP', name('smtp', d), 587, 'STARTTLS', false)];
  const notes: string[] = [];
  if (!m.enabled) notes.push('disabled: logins are refused and mail to it is refused; the mail already there is kept');
  if (!m.send) notes.push('may read mail but not send: the server refuses its outgoing mail (5xx)');
  else if (m.sendLimit) notes.push(`may send at most ${m.sendLimit.count} messages per ${m.sendLimit.per}; above that the server answers with a temporary error (4xx) until the window passes`);
  if (m.quota) notes.push(`quota ${m.quota}: when it is full, new mail is refused with "Mailbox is full"`);
  return { address: m.address, username: m.address, incoming, outgoing, sendAs: m.sendAs, notes };
}

export function clientSettings(site: Site, state: SiteState): ClientSettings {
  const host = clientHost(site);
  const sha256 = state.tls[host.hostname];
  const mode = site.stack.tls.mode;
  const names = certificateNames(site, host);
  const certFix =
    mode === 'self-signed'
      ? `the server's certificate is self-signed (stack.tls.mode: self-signed), so every client warns once. Accept it only if its SHA-256 fingerprint is ${sha256 ? sha256.replace(/(..)(?!$)/g, '$1:').toUpperCase() : 'the one `mailops apply` records in the state file (none recorded yet)'}; for no warning at all, use tls.mode acme`
      : `use exactly one of the names the certificate covers (${names.join(', ')}); a warning with one of them means the client reached another server or the clock is wrong`;
  return {
    mailboxes: site.domains.flatMap((d) => d.mailboxes.map((m) => settingsOf(site, d, m))),
    certificate: { mode, names, ...(sha256 ? { sha256 } : {}) },
    troubleshooting: [
      {
        error: '530 5.7.0 Must issue a STARTTLS command first / 530 Authentication required / "relay access denied" on sending',
        fix: 'turn on authentication for the outgoing (SMTP) server with the same user name and password as for incoming mail, over SSL/TLS on 465 or STARTTLS on 587; port 25 is for servers, not for clients',
      },
      {
        error: '535 5.7.8 Authentication failed / "login failed"',
        fix: `the user name is the full address (alice@example.com), not "alice"; check the password${site.stack.authBan ? `; ${site.stack.authBan.attempts} failures within ${site.stack.authBan.within / 60} minutes ban the address for ${site.stack.authBan.ban / 60} minutes` : ''}`,
      },
      {
        error: '553 5.7.1 Sender address rejected: not owned by user',
        fix: 'the From address must be the address you log in with, or one it may send as (send_as in the playbook); change the identity in the client or ask for send_as',
      },
      { error: 'certificate warning ("cannot verify the identity of the server")', fix: certFix },
    ],
  };
}

/** For people: one block per mailbox, then the errors and what to do. */
export function formatClientSettings(c: ClientSettings): string {
  const line = (x: Server) => `    ${x.protocol.padEnd(4)} ${x.host}  port ${x.port}  ${x.security}${x.recommended ? '  (use this)' : ''}`;
  const blocks = c.mailboxes.map((m) =>
    [
      `${m.address}`,
      `  user name: ${m.username}  (password: the mailbox password; authentication: normal password)`,
      '  incoming:',
      ...(m.incoming.length ? m.incoming.map(line) : ['    none: this site offers neither IMAP nor POP3']),
      '  outgoing:',
      ...m.outgoing.map(line),
      ...(m.sendAs.length ? [`  may also send as: ${m.sendAs.join(', ')}`] : []),
      ...m.notes.map((n) => `  note: ${n}`),
    ].join('\n'),
  );
  const cert = `certificate (${c.certificate.mode}): covers ${c.certificate.names.join(', ')}${c.certificate.sha256 ? `; SHA-256 ${c.certificate.sha256}` : ''}`;
  const trouble = ['when the client says...', ...c.troubleshooting.map((t) => `  ${t.error}\n    → ${t.fix}`)].join('\n');
  return `${blocks.join('\n\n')}\n\n${cert}\n\n${trouble}\n`;
}
