/** What a host looks like now, as gathered by the one fact script. Pure data. */
import type { OsFamily } from './site.js';

export interface FileFact {
  sha256: string;
  mode: string;
  owner: string;
  group: string;
  /** Present when fetched for a diff (non-secret files only). */
  content?: string;
}

export interface ServiceFact {
  /** systemd UnitFileState: enabled, disabled, static, masked, not-found... */
  enabled: string;
  /** systemd ActiveState: active, inactive, failed, activating... */
  active: string;
}

export interface UserFact {
  uid: number;
  gid: number;
  home: string;
}

export interface DirFact {
  mode: string;
  owner: string;
  group: string;
}

export interface HostFacts {
  /** null: an OS mailops does not support. */
  family: OsFamily | null;
  osName: string;
  osVersion: string;
  /** /etc/os-release's ID (debian, ubuntu, rocky...). */
  osId?: string;
  /** The version of dovecot-core apt would install, when none is installed (Debian/Ubuntu). */
  dovecotCandidate?: string;
  /** Installed package → version. */
  packages: Record<string, string>;
  /** Managed path → fact; absent paths are not listed. */
  files: Record<string, FileFact>;
  directories: Record<string, DirFact>;
  services: Record<string, ServiceFact>;
  users: Record<string, UserFact>;
  groups: Record<string, number>;
  /** DKIM record name (<selector>._domainkey.<domain>) → public key as published in p= (base64). */
  dkim: Record<string, { selector: string; algorithm: 'rsa' | 'ed25519'; publicKey: string; bits: number }>;
  /** The host's DKIM lifecycle file (record name → status), when it has one. */
  dkimLifecycle?: Record<string, { status: 'signing' | 'pending' | 'retired'; since?: number }>;
  /** SHA-256 of the TLS certificate the services present (hex, lower case), when it exists. */
  tlsFingerprint?: string;
  /** What that certificate names (subjectAltName entries, "DNS:name") and when it expires (epoch seconds). */
  tlsCert?: { names: string[]; notAfter: number; notBefore: number };
  /** When the facts were gathered (epoch seconds, this machine's clock): what time-bound guards are planned against. */
  gatheredAt?: number;
  /** Indexes (in DesiredHost.commands) of commands whose creates/unless guard says they are done. */
  commandsDone: number[];
  /** Another apply holds the host's lock. */
  locked: boolean;
  /** Earlier runs killed before they finished (no result), with the phase their journal reached. */
  interrupted?: Array<{ run: string; phase: string }>;
  /** Messages waiting in the queues of MTAs that are installed. */
  queues: Record<string, number>;
}
