/**
 * The site playbook schema (version 1): the single source of the validator's structural checks,
 * of the static types of the raw playbook and of the JSON Schema printed by `mailops schema`.
 * Formats that need a precise message (domain names, addresses, units...) are checked in semantic.ts;
 * here they are annotated with `format`/`pattern` for editors only.
 */
import { Type } from '@sinclair/typebox';
import type { Static, TSchema } from '@sinclair/typebox';

const str = (description: string, extra: Record<string, unknown> = {}) => Type.String({ description, ...extra });
const obj = <T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) =>
  Type.Object(props, { additionalProperties: false, description });

const Size = Type.Union([Type.String({ pattern: '^[0-9]+[KMGT]?$' }), Type.Integer({ minimum: 0 })], {
  description: 'A size in bytes, or with a unit: K, M, G or T (powers of 1024), e.g. 50M',
  'x-error': 'must be a size such as 50M, 2G or a number of bytes',
});

export const SshSchema = obj(
  {
    address: str('Where to connect: IP address or host name'),
    port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 22, description: 'SSH port (default 22)' })),
    user: Type.Optional(str('Login user (default root); a non-root user must have passwordless sudo', { default: 'root' })),
    identity: Type.Optional(str('Private key file; otherwise ssh-agent (SSH_AUTH_SOCK)')),
    host_key: Type.Optional(str('Pinned host key, e.g. "ssh-ed25519 AAAA..."; otherwise known_hosts')),
  },
  'How mailops reaches the host over SSH',
);

export const HostSchema = obj(
  {
    name: str('Our name for the host (used in output and render paths)', {
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      'x-error': 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
    }),
    ssh: SshSchema,
    hostname: str('Public FQDN: HELO/banner, TLS name, MX target, expected PTR', { format: 'hostname' }),
    ipv4: str('Public IPv4 address published in DNS', { format: 'ipv4' }),
    ipv6: Type.Optional(str('Public IPv6 address published in DNS', { format: 'ipv6' })),
    os: Type.Optional(
      Type.Union([Type.Literal('auto'), Type.Literal('debian'), Type.Literal('rhel')], {
        default: 'auto',
        description: 'OS family; auto detects it from /etc/os-release',
        'x-error': 'must be one of auto, debian, rhel',
      }),
    ),
    role: Type.Optional(
      Type.Union([Type.Literal('mailbox'), Type.Literal('backup-mx')], {
        default: 'mailbox',
        description:
          'mailbox (default): stores mailboxes (delivery, IMAP/POP3, submission) | backup-mx: accepts mail for the domains on port 25 for existing recipients only, queues it and forwards it to the mailbox hosts',
        'x-error': 'must be mailbox or backup-mx',
      }),
    ),
  },
  'A mail host',
);

export const TlsSchema = obj(
  {
    mode: Type.Union([Type.Literal('self-signed'), Type.Literal('files'), Type.Literal('acme')], {
      description: 'self-signed (generated on the host) | files (cert/key already on the host) | acme',
      'x-error': 'must be one of self-signed, files, acme',
    }),
    cert: Type.Optional(str('Certificate chain path on the host (mode files)')),
    key: Type.Optional(str('Private key path on the host (mode files)')),
    email: Type.Optional(str('ACME account contact address (mode acme)', { format: 'email' })),
    acme_server: Type.Optional(str("ACME directory URL (mode acme); default Let's Encrypt", { format: 'uri' })),
  },
  'TLS certificates for SMTP, submission, IMAP and POP3',
);

const Duration = Type.Union([Type.String({ pattern: '^[0-9]+[smhdw]?$' }), Type.Integer({ minimum: 0 })], {
  description: 'A duration in seconds, or with a unit: s, m, h, d or w, e.g. 10m, 1h, 7d',
  'x-error': 'must be a duration such as 30s, 10m, 1h or 7d',
});

export const AuthBanSchema = Type.Union(
  [
    Type.Boolean(),
    obj(
      {
        attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'Failed logins that ban the address (default 5)' })),
        within: Type.Optional(Duration),
        ban: Type.Optional(Duration),
      },
      'Ban settings: attempts within a window (default 5 within 10m), then a ban (default 1h)',
    ),
  ],
  {
    description: 'Repeated failed logins (SMTP AUTH, IMAP, POP3) ban the client address; default on (5 within 10m, ban 1h); false turns it off',
    'x-error': 'must be true, false or { attempts, within, ban }',
  },
);

export const RelaySchema = obj(
  {
    host: str('The smarthost: host name or IP address'),
    port: Type.Optional(
      Type.Union([Type.Literal(587), Type.Literal(465), Type.Literal(2525), Type.Literal(25)], {
        default: 587,
        description: '587 (STARTTLS) | 465 (TLS) | 2525 (STARTTLS) | 25 (STARTTLS)',
        'x-error': 'must be one of 587, 465, 2525, 25',
      }),
    ),
    username: str('SASL user name at the smarthost'),
    password: Type.Union(
      [
        obj({ env: str('Environment variable holding the relay password') }, 'Relay password from the environment'),
        obj({ file: str('File holding the relay password (first line)') }, 'Relay password from a file'),
      ],
      { description: 'The relay password: { env: NAME } or { file: PATH }; never printed', 'x-error': 'must be { env: NAME } or { file: PATH }' },
    ),
  },
  'Smarthost: all outbound mail leaves through it, with SASL over TLS',
);

export const StackSchema = obj(
  {
    mta: Type.Optional(
      Type.Union([Type.Literal('postfix'), Type.Literal('exim')], {
        default: 'postfix',
        description: 'The MTA: postfix or exim',
        'x-error': 'must be postfix or exim',
      }),
    ),
    imap: Type.Optional(Type.Boolean({ default: true, description: 'IMAP on 143 (STARTTLS) and 993 (TLS)' })),
    pop3: Type.Optional(Type.Boolean({ default: false, description: 'POP3 on 110 (STARTTLS) and 995 (TLS)' })),
    tls: Type.Optional(TlsSchema),
    message_size_limit: Type.Optional(Size),
    firewall: Type.Optional(
      Type.Boolean({ default: true, description: 'Manage an inbound firewall (nftables / firewalld) that opens only SSH and the enabled mail ports' }),
    ),
    antispam: Type.Optional(Type.Boolean({ default: true, description: 'Score inbound mail with rspamd (spam, and the SPF, DKIM and DMARC of the sender)' })),
    dnsbl: Type.Optional(Type.Array(str('A DNS blocklist zone, e.g. zen.spamhaus.org', { format: 'hostname' }), { default: [], description: 'DNS blocklists checked for clients connecting on port 25' })),
    auth_ban: Type.Optional(AuthBanSchema),
    replication: Type.Optional(Type.Boolean({ default: false, description: 'With two mailbox hosts: mailboxes replicated both ways (Dovecot dsync)' })),
    relay: Type.Optional(RelaySchema),
    autoconfig: Type.Optional(
      Type.Boolean({ default: true, description: 'Thunderbird autoconfig, Outlook autodiscover and an Apple profile over HTTPS at autoconfig.<domain> / autodiscover.<domain>' }),
    ),
    mta_sts: Type.Optional(
      Type.Union([Type.Literal('none'), Type.Literal('testing'), Type.Literal('enforce')], {
        default: 'testing',
        description: 'MTA-STS policy mode published at https://mta-sts.<domain>/.well-known/mta-sts.txt with a _mta-sts TXT record',
        'x-error': 'must be one of none, testing, enforce',
      }),
    ),
  },
  'The mail stack',
);

const Nameserver = Type.Union(
  [
    str('Authoritative name server host name', { format: 'hostname' }),
    obj(
      {
        name: str('Authoritative name server host name', { format: 'hostname' }),
        ipv4: Type.Optional(str('Its IPv4 address (glue: needed when the name lies inside one of the zones)', { format: 'ipv4' })),
        ipv6: Type.Optional(str('Its IPv6 address (glue)', { format: 'ipv6' })),
      },
      'A name server with its addresses, published as A/AAAA when its name lies inside a zone',
    ),
  ],
  { 'x-error': 'must be a host name, or { name, ipv4, ipv6 }' },
);

export const TsigKeySchema = Type.Union(
  [
    obj({ file: str('A BIND key file, as `tsig-keygen` writes it') }, 'TSIG key from a file'),
    obj({ env: str('Environment variable holding the text of a BIND key file') }, 'TSIG key from the environment'),
  ],
  { description: 'The TSIG key that signs the updates: { file: PATH } or { env: NAME }', 'x-error': 'must be { file: PATH } or { env: NAME }' },
);

export const DnsUpdateSchema = obj(
  {
    server: str('The primary server that takes RFC 2136 updates: IP or name, optional :port (default 53)'),
    key: TsigKeySchema,
  },
  'Push the zones with RFC 2136 DNS UPDATE, signed with TSIG, after the hosts have converged',
);

export const DnsSchema = obj(
  {
    ttl: Type.Optional(Type.Integer({ minimum: 60, maximum: 2147483647, default: 3600, description: 'Default TTL in seconds' })),
    nameservers: Type.Array(Nameserver, {
      minItems: 1,
      description: 'NS records of every zone',
    }),
    hostmaster: Type.Optional(str('Zone contact address (SOA RNAME); default hostmaster@<domain>', { format: 'email' })),
    update: Type.Optional(DnsUpdateSchema),
    tlsrpt: Type.Optional(str('Publish _smtp._tls TXT (TLS reporting, RFC 8460) with this report address', { format: 'email' })),
  },
  'DNS zone settings',
);

export const DkimSchema = obj(
  {
    selector: str('DKIM selector: <selector>._domainkey.<domain>', {
      pattern: '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$',
      'x-error': 'is not a valid DKIM selector: use 1 to 63 lowercase letters, digits and inner "-" (e.g. mail, s2024)',
    }),
    key: Type.Optional(
      Type.Union([Type.Literal('rsa-2048'), Type.Literal('rsa-4096'), Type.Literal('ed25519')], {
        default: 'rsa-2048',
        description: 'Key type, generated on the host',
        'x-error': 'must be one of rsa-2048, rsa-4096, ed25519',
      }),
    ),
    grace: Type.Optional(Duration),
  },
  'DKIM signing of outgoing mail',
);

export const SpfSchema = obj(
  {
    policy: Type.Optional(
      Type.Union([Type.Literal('-all'), Type.Literal('~all'), Type.Literal('?all')], {
        default: '-all',
        description: 'What receivers do with mail from other senders',
        'x-error': 'must be one of "-all", "~all", "?all"',
      }),
    ),
    include: Type.Optional(Type.Array(str('A domain whose SPF record is included'), { description: 'Third parties allowed to send as this domain' })),
  },
  'SPF record',
);

export const DmarcSchema = obj(
  {
    policy: Type.Union([Type.Literal('none'), Type.Literal('quarantine'), Type.Literal('reject')], {
      description: 'none | quarantine | reject',
      'x-error': 'must be one of none, quarantine, reject',
    }),
    rua: Type.Optional(str('Aggregate report address', { format: 'email' })),
    ruf: Type.Optional(str('Forensic report address', { format: 'email' })),
    pct: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'Percentage of mail the policy applies to' })),
  },
  'DMARC record',
);

export const SecretRefSchema = Type.Union(
  [
    obj({ env: str('Environment variable holding the plaintext password') }, 'Password from the environment'),
    obj({ file: str('File holding the plaintext password (first line)') }, 'Password from a file'),
  ],
  {
    description: 'Where mailops reads the plaintext password to hash it: { env: NAME } or { file: PATH }',
    'x-error': 'must be { env: NAME } or { file: PATH } (plaintext passwords are refused: use password_hash)',
  },
);

export const MailboxSchema = obj(
  {
    name: str('Local part: <name>@<domain>'),
    password_hash: Type.Optional(str('Dovecot password hash, e.g. {SHA512-CRYPT}$6$... (mailops hash-password)')),
    password: Type.Optional(SecretRefSchema),
    quota: Type.Optional(Size),
    send_as: Type.Optional(Type.Array(str('Local part or address this mailbox may also send as'))),
    send: Type.Optional(Type.Boolean({ default: true, description: 'May send (submission); false: may log in and receive, submission refused with a 5xx' })),
    send_limit: Type.Optional(
      str('At most N messages per hour or day, e.g. 200/day; over it, submission is refused with a 4xx until the window passes', {
        pattern: '^[1-9][0-9]*/(hour|day)$',
        'x-error': 'must be N/hour or N/day, e.g. 200/day',
      }),
    ),
    enabled: Type.Optional(Type.Boolean({ default: true, description: 'false: login refused, mail to it refused at RCPT; the mail stays on disk' })),
  },
  'A mailbox',
);

const AliasTargets = Type.Union([str('Target: local part or address'), Type.Array(str('Target: local part or address'), { minItems: 1 })], {
  'x-error': 'must be a local part or address, or a list of them',
});

export const DomainSchema = obj(
  {
    name: str('The mail domain', { format: 'hostname' }),
    dkim: Type.Optional(DkimSchema),
    spf: Type.Optional(SpfSchema),
    dmarc: Type.Optional(DmarcSchema),
    mailboxes: Type.Optional(Type.Array(MailboxSchema)),
    aliases: Type.Optional(Type.Record(Type.String(), AliasTargets, { description: 'alias local part: target(s)' })),
    catch_all: Type.Optional(str('Where unknown local parts go: local part or address')),
  },
  'A mail domain',
);

export const SiteSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    site: str('A name for this site', {
      pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*$',
      'x-error': 'must start with a letter or digit and hold only letters, digits, ".", "_" and "-"',
    }),
    hosts: Type.Array(HostSchema, { minItems: 1, description: 'The mail hosts; each serves every domain' }),
    stack: Type.Optional(StackSchema),
    dns: DnsSchema,
    domains: Type.Array(DomainSchema, { minItems: 1, description: 'The mail domains' }),
  },
  {
    additionalProperties: false,
    title: 'mailops site playbook (version 1)',
    description: 'A declarative mail server: hosts, stack, DNS and domains',
  },
);

export type RawSite = Static<typeof SiteSchema>;
export type RawDomain = Static<typeof DomainSchema>;
export type RawMailbox = Static<typeof MailboxSchema>;

/** The JSON Schema document (draft 2020-12 compatible) printed by `mailops schema`. */
export function jsonSchema(): Record<string, unknown> {
  return { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://mailops.dev/schema/site-v1.json', ...strip(SiteSchema) };
}

function strip(schema: TSchema): Record<string, unknown> {
  // TypeBox keeps its own markers in symbol keys: JSON.stringify drops them.
  return JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
}
