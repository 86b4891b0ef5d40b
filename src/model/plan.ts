/** What apply would do to a host, computed by plan(desired, facts). Pure data; printed by plan, run by apply. */
export type Change =
  | { kind: 'package'; action: 'install'; name: string }
  | { kind: 'user'; action: 'create'; name: string; group: string; uid?: number; home: string }
  | { kind: 'directory'; action: 'create' | 'update'; path: string; owner: string; group: string; mode: string; detail: string }
  | {
      kind: 'file';
      action: 'create' | 'update' | 'metadata';
      path: string;
      owner: string;
      group: string;
      mode: string;
      secret: boolean;
      component: string;
      /** Unified diff, or a note when the file is secret. */
      diff: string;
    }
  /** A file of a feature that is off (the desired state's retired files): backed up, then removed. */
  | { kind: 'file'; action: 'remove'; path: string; component: string; reason: string }
  | { kind: 'command'; action: 'run'; name: string; index: number; component: string }
  | { kind: 'service'; action: 'enable' | 'start' | 'reload' | 'restart' | 'stop-disable'; unit: string; key: string; reason: string };

export interface HostPlan {
  host: string;
  family: string;
  /** The Dovecot generation the host's configuration is rendered for (its release's, or the installed one). */
  dovecot?: string;
  os: string;
  changes: Change[];
  warnings: string[];
  /** What the run does beyond its changes, in words (the DKIM key lifecycle). */
  notes?: string[];
  /** Inbound TCP ports the firewall allows after apply. */
  ports: number[];
}

export const changeCount = (p: HostPlan): number => p.changes.length;
