/** The one way mailops talks to a host. The ssh2 implementation is in ssh2.ts; tests may use a local fake. */

export interface ExecResult {
  /** Exit status; 128+n when killed by signal n (-1 when the host reported none). */
  code: number;
  stdout: string;
  stderr: string;
  /** The signal that killed the command ("SIGTERM"), when one did. */
  signal?: string;
}

/** {@link ExecResult} with the raw bytes (binary-safe). */
export interface ExecBufferResult {
  code: number;
  stdout: Buffer;
  stderr: Buffer;
  signal?: string;
}

export interface ExecOptions {
  /** Bytes written to the command's stdin, then EOF. */
  stdin?: Buffer | string;
  /** Run as root (through `sudo -n` when the login user is not root). Default true. */
  root?: boolean;
  /** Called with stdout as it arrives (live progress; UTF-8 characters are never split). */
  onStdout?: (chunk: string) => void;
  /** Called with stderr as it arrives. */
  onStderr?: (chunk: string) => void;
  /** Called with stdout's raw bytes as they arrive (what a relay passes on). */
  onStdoutBytes?: (chunk: Buffer) => void;
  /** Called with stderr's raw bytes as they arrive. */
  onStderrBytes?: (chunk: Buffer) => void;
  /** Seconds the command may run; past that it is killed and exec fails. Default: no limit. */
  timeout?: number;
  /** What the command does, for messages ("gather facts"); default: its first words. */
  step?: string;
  /** Aborting gives the command up: its channel is closed, as when the connection drops. */
  signal?: AbortSignal;
  /** Milliseconds the host may take to open the command's channel (ChannelOpenError past that). Default: no limit. */
  openTimeout?: number;
  /**
   * The command only reads, and gives the same answer whenever it runs: over a shared connection it may run
   * ahead, as soon as the next run connects, and that run gets its answer when it asks for the same command
   * (the fact script).
   */
  prefetch?: boolean;
}

export interface Connection {
  /** Our name for the host (from the playbook). */
  readonly host: string;
  /** Run one shell command (interpreted by `sh -c` on the host). */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec, with stdout and stderr as bytes. Implemented over SSH; fakes may leave it out. */
  execBuffer?(command: string, opts?: ExecOptions): Promise<ExecBufferResult>;
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
  /** Seconds to wait for the TCP connection, and again for the SSH handshake and login. Default 15. */
  timeout?: number;
  /** Seconds between keepalives on an idle connection; 4 unanswered ones drop it. Default 15; 0 turns them off. */
  keepalive?: number;
}
