/** The shape of a component playbook (playbooks/<name>.yaml). Strings may hold Handlebars expressions. */
import type { OsFamily } from '../model/site.js';

/** Every key must equal the render context's feature of that name (`os`, `mta`, `imap`, `pop3`, `dkim`, `tls`, `antispam`...). */
export type When = Record<string, string | boolean | Array<string | boolean>>;

export interface ComponentSpec {
  name: string;
  description?: string;
  when?: When;
  /** Install order among components: lower first (default 50). */
  order?: number;
  /** Per OS family; an entry with `when` only where the features match (dovecot-pop3d with `pop3: true`). */
  packages?: Partial<Record<OsFamily, Array<string | { name: string; when: When }>>>;
  users?: Array<{ name: string; group?: string; uid?: string | number; home?: string; system?: boolean; when?: When }>;
  directories?: Array<{ path: string; owner?: string; group?: string; mode?: string; when?: When }>;
  files?: Array<{
    template: string;
    dest: string;
    owner?: string;
    group?: string;
    mode?: string;
    secret?: boolean;
    notify?: string[];
    when?: When;
    /** Render once per item of this context list (e.g. "domains"); the item is `item` in dest and template. */
    foreach?: string;
  }>;
  commands?: Array<{
    name: string;
    run: string;
    creates?: string;
    unless?: string;
    /**
     * The `unless` of a certificate command, planned from the certificate the facts read (tls.cert) instead
     * of running it in the fact script: done when the certificate names exactly `names` (comma-separated
     * `DNS:` entries, as tls.san; in any order with `any_order`) and is still valid `days` days from now.
     * `unless` stays the guard the activation runs, and must test the same.
     */
    unless_cert?: { names: string; days?: number; any_order?: boolean };
    /**
     * The `unless` of a command that gives files to a group, planned from their owners as the facts' stat
     * reads them instead of running it in the fact script: done when every file `paths` names (space-separated
     * paths; a `*` in the last part matches as the shell's glob does, and one that matches nothing asks for
     * nothing) belongs to `group`; a named path that is missing is not done. The `unless` the activation
     * runs is made from it (groupGuardCommand): a command with this has no `unless` of its own.
     */
    unless_group?: { paths: string; group: string };
    notify?: string[];
    when?: When;
    foreach?: string;
    /**
     * What the command writes to stderr when it succeeds is said as warnings of the run (something the user
     * should know that does not fail the apply: a host that did not answer, a retry left for later). Else a
     * command's output is shown only when it fails.
     */
    warn?: boolean;
    /**
     * prepare: before the new files are validated (generators of keys and certificates the configs refer to);
     * activate (default): after they are in place, before the services are restarted; running: once every
     * service runs with them and listens (what talks to the daemons, or to another host's).
     */
    phase?: 'prepare' | 'activate' | 'running';
  }>;
  validate?: Array<{ name: string; run: string; when?: When }>;
  services?: Array<{ key: string; unit: string; when?: When }>;
  /**
   * Inbound ports to open; `listen: false` for ports no daemon holds open (the ACME challenge's);
   * `local: true` for loopback services (the firewall leaves them closed; apply checks that they listen).
   */
  ports?: Array<{ port: number; proto?: 'tcp' | 'udp'; when?: When; listen?: boolean; local?: boolean }>;
  /**
   * Services this component takes over from or makes unneeded (the other MTA and its helpers): stopped and
   * disabled when found running; `queue` names the mail queue such a service may leave behind.
   */
  replaces?: Array<{ unit: string; queue?: string; when?: When }>;
  /**
   * What goes when a feature is turned off in the playbook (whether or not the component itself is still
   * active): when `when` holds, these units are stopped and disabled and these files removed, if the host
   * has them; `all: true` names every service and file of the component. `when` is required: retiring is
   * never implied.
   */
  retire?: Array<{ when: When; all?: boolean; units?: string[]; files?: string[] }>;
}
