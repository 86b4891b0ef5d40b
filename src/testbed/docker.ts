/** The docker CLI, as a promise. */
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: string[], opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let partial = '';
    const feed = (d: Buffer) => {
      if (!opts.onLine) return;
      partial += d.toString('utf8');
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        opts.onLine(partial.slice(0, i));
        partial = partial.slice(i + 1);
      }
    };
    p.stdout.on('data', (d: Buffer) => {
      out.push(d);
      feed(d);
    });
    p.stderr.on('data', (d: Buffer) => {
      err.push(d);
      feed(d);
    });
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    if (opts.input !== undefined) p.stdin.end(opts.input);
    else p.stdin.end();
  });
}

export async function docker(args: string[], opts: Parameters<typeof run>[2] = {}): Promise<string> {
  const r = await run('docker', args, opts);
  if (r.code !== 0) throw new Error(`docker ${args.slice(0, 3).join(' ')} failed (${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout.trim();
}
