/** What a host should look like, as rendered from the site and the component playbooks. Pure data. */
import type { Host } from './site.js';
import type { OsProfile } from '../os/profile.js';

export interface DesiredFile {
  path: string;
  content: string;
  owner: string;
  group: string;
  mode: string;
  /** Holds secrets (password hashes, keys): never shown in a diff or log. */
  secret: boolean;
  component: string;
  /** Handlers to run when the file changes, e.g. "reload postfix". */
  notify: string[];
}

export interface DesiredDirectory {
  path: string;
  owner: string;
  group: string;
  mode: string;
  component: string;
}

export interface DesiredUser {
  name: string;
  group: string;
  uid?: number;
  home: string;
  system: boolean;
  component: string;
}

/** The certificate a command makes is there already: it names these, and is valid `days` days on. */
export interface CertGuard {
  names: string[];
  anyOrder: boolean;
  days: number;
}

/** The files a command gives to a group belong to it already (paths: absolute, a `*` in the last part a glob). */
export interface GroupGuard {
  paths: string[];
  group: string;
}

export interface DesiredCommand {
  name: string;
  run: string;
  /** Skip when this path exists on the host. */
  creates?: string;
  /** Skip when this shell test succeeds on the host. */
  unless?: string;
  /** Planned from the host's certificate (facts.tlsCert) rather than by running `unless` at plan time. */
  certGuard?: CertGuard;
  /** Planned from the owners the facts' stat read (facts.directories) rather than by running `unless` at plan time. */
  groupGuard?: GroupGuard;
  component: string;
  notify: string[];
  phase: 'prepare' | 'activate' | 'running';
  /** Its stderr, when it succeeds, is said as warnings (ComponentSpec commands' `warn`). */
  warn?: boolean;
}

export interface DesiredService {
  /** Logical name used by notify ("postfix"). */
  key: string;
  unit: string;
  component: string;
}

export interface DesiredValidation {
  name: string;
  /** Shell command run against the staged files; the shell variable $STAGE is the staging root (files at $STAGE/<absolute path>). */
  run: string;
  component: string;
}

export interface DesiredPort {
  port: number;
  proto: 'tcp' | 'udp';
  component: string;
  /** A daemon must be listening on it after apply. */
  listen: boolean;
}

export interface DesiredHost {
  host: Host;
  os: OsProfile;
  components: string[];
  packages: string[];
  users: DesiredUser[];
  directories: DesiredDirectory[];
  files: DesiredFile[];
  commands: DesiredCommand[];
  validations: DesiredValidation[];
  services: DesiredService[];
  ports: DesiredPort[];
  /** Services of components this host no longer runs (the other MTA), and the queue they may hold. */
  replaces: Array<{ unit: string; queue?: string; component: string }>;
  /**
   * What a feature that is off leaves behind (e.g. rspamd after `antispam: false`): units to stop and
   * disable, files to remove, each with the setting that retires it ("retired by antispam: false (rspamd)").
   */
  retired: { units: Array<{ unit: string; component: string; reason: string }>; files: Array<{ path: string; component: string; reason: string }> };
  /** Every inbound TCP port the host's firewall allows: SSH and the active components' ports. */
  inbound: number[];
  /** DKIM private keys the host holds (generated there); their public halves are gathered as facts. */
  dkimKeys: Array<{ domain: string; selector: string; algorithm: 'rsa' | 'ed25519'; bits: number; keyFile: string; status: 'signing' | 'pending' | 'retired'; since?: number }>;
  /** What the DKIM key lifecycle does in this run, in words. */
  dkimNotes: string[];
  /** The TLS certificate the mail services present (its fingerprint is gathered as a fact). */
  tlsCert?: string;
  tlsKey?: string;
}
