/** The one way mailops talks to a host. The ssh2 implementation is in ssh2.ts; tests may use a local fake. */

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes written to the command's stdin, then EOF. */
  stdin?: Buffer | string;
  /** Run as root (through `sudo -n` when the login user is not root). Default true. */
  root?: boolean;
  /** Called with stdout as it arrives (live progress). */
  onStdout?: (chunk: string) => void;
}

export interface Connection {
  /** Our name for the host (from the playbook). */
  readonly host: string;
  /** Run one shell command (interpreted by `sh -c` on the host). */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Number of commands run over this connection (each is one round trip). */
  readonly roundTrips: number;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Our name for the host, for messages. */
  name: string;
  address: string;
  port: number;
  user: string;
  /** Private key file; otherwise the ssh-agent at SSH_AUTH_SOCK. */
  identity?: string;
  /** Pinned host key line ("ssh-ed25519 AAAA..."): when set, known_hosts is not consulted. */
  hostKey?: string;
  knownHostsFile: string;
  /** Trust on first use: record an unknown host key in knownHostsFile. A changed key is always refused. */
  acceptNew: boolean;
  /** Seconds to wait for the TCP connection and the SSH handshake. Default 15. */
  timeout?: number;
}
