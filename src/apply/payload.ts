/**
 * The upload: one tar archive holding the activation script and the staged files (stage/<absolute path>).
 * tar-stream is loaded when there is something to upload: a run that changes nothing never needs it.
 */
export async function payload(script: string, files: Array<{ path: string; content: string }>): Promise<Buffer> {
  // `default`: module.exports of this CommonJS package, in Node and in the bundle alike.
  const { pack } = (await import('tar-stream')).default;
  const p = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    p.on('data', (c: unknown) => chunks.push(c as Buffer));
    p.on('end', () => resolve(Buffer.concat(chunks)));
    p.on('error', reject);
  });
  const mtime = new Date(0);
  p.entry({ name: 'activate.sh', mode: 0o700, mtime }, script);
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) {
      const d = `stage/${parts.slice(0, i).join('/')}/`;
      if (!dirs.has(d)) {
        dirs.add(d);
        p.entry({ name: d, type: 'directory', mode: 0o700, mtime });
      }
    }
    p.entry({ name: `stage${f.path}`, mode: 0o600, mtime }, Buffer.from(f.content, 'utf8'));
  }
  p.finalize();
  return done;
}
