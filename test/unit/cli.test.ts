/** The CLI as users run it: the built `dist/cli.js` (scripts/test.sh builds it first). */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { passwordHashProblem } from '../../src/site/syntax.js';
import { textDigest, usePrebuilt } from '../../src/prebuilt.js';
import type { Prebuilt } from '../../src/prebuilt.js';
import Handlebars from 'handlebars';
import { COMPILE_OPTIONS, compile, hbs } from '../../src/render/handlebars.js';

const repo = new URL('../../', import.meta.url).pathname;
const cli = join(repo, 'dist', 'cli.js');
const contract = join(repo, 'playbooks', 'examples', 'contract.yaml');

function run(args: string[], opts: { input?: string; cwd?: string; env?: Record<string, string | undefined> } = {}) {
  if (!existsSync(cli)) throw new Error('dist/cli.js is missing: run `npm run build` (scripts/test.sh does)');
  const env: Record<string, string | undefined> = { ...process.env, NO_COLOR: '1', ...opts.env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  const r = spawnSync(process.execPath, [cli, ...args], { input: opts.input ?? '', cwd: opts.cwd ?? repo, env: env as NodeJS.ProcessEnv, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A copy of the contract playbook in a fresh directory (render/dns record serials beside it). */
function contractCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-cli-'));
  copyFileSync(contract, join(dir, 'site.yaml'));
  return join(dir, 'site.yaml');
}

describe('mailops CLI', () => {
  it('--help lists every command of the contract', () => {
    const r = run(['--help']);
    expect(r.code).toBe(0);
    for (const c of ['validate', 'render', 'dns', 'plan', 'apply', 'verify', 'init', 'hash-password', 'schema']) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
  });

  it('--version and -V print the package\'s version alone, as the full CLI does with other options after them', () => {
    const { version } = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['--version'], ['-V'], ['--version', '--no-color']]) {
      const r = run(args);
      expect([r.code, r.stdout, r.stderr], args.join(' ')).toEqual([0, `${version}\n`, '']);
    }
  });

  it('plan and apply: a bad MAILOPS_SSH_PERSIST is one line and exit 1, before any host is reached; ssh-broker is not listed', () => {
    for (const [cmd, value] of [[['plan'], 'soon'], [['apply', '--yes'], '-1']] as const) {
      const r = run([...cmd, join(repo, 'test', 'fixtures', 'minimal.yaml')], { env: { MAILOPS_SSH_PERSIST: value } });
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`error: MAILOPS_SSH_PERSIST=${value}: not a number of seconds (0 turns connection sharing off)\n`);
      expect(r.stdout).toBe('');
    }
    expect(run(['--help']).stdout).not.toContain('ssh-broker');
  });

  it('validate: the contract playbook is valid (exit 0), with a warning for the unset secret', () => {
    const r = run(['validate', contract], { env: { MAILOPS_BOB_PASSWORD: undefined } });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: domains\[0\]\.mailboxes\[1\]\.password: environment variable MAILOPS_BOB_PASSWORD is not set/);
    expect(r.stderr).toMatch(/valid/);
  });

  it('validate: errors name file:line:column and field, exit 1, no stack trace', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, readFileSync(contract, 'utf8').replace('  mta: postfix ', '  mta: qmail   ').replace('ipv4: 203.0.113.10', 'ipv4: 203.0.113.300'));
    const r = run(['validate', file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:15:8: error: stack\.mta: must be postfix or exim, not the string "qmail"/);
    expect(r.stderr).toMatch(/bad\.yaml:11:11: error: hosts\[0\]\.ipv4: "203\.0\.113\.300" is not an IPv4 address/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('the build prebuilt every template and component playbook as they are now, and the CLI uses the prebuilt ones', async () => {
    const { prebuilt } = (await import(join(repo, 'dist', 'prebuilt', 'data.mjs'))) as { prebuilt: Prebuilt };
    const texts = (dir: string, ext = '') => readdirSync(join(repo, dir), { recursive: true, withFileTypes: true }).filter((f) => f.isFile() && f.name.endsWith(ext)).map((f) => readFileSync(join(f.parentPath, f.name), 'utf8'));
    for (const t of texts('templates')) expect(prebuilt.templates[textDigest(t)], t.slice(0, 80)).toBeDefined();
    for (const t of readdirSync(join(repo, 'playbooks')).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(repo, 'playbooks', f), 'utf8'))) expect(prebuilt.components[textDigest(t)]).toBeDefined();
    expect(prebuilt.validate({})).toBe(false);
    // A template is taken from the build by the digest of its text: here one text mapped to another's spec.
    const spec = new Function(`return ${Handlebars.precompile('built {{x}}', COMPILE_OPTIONS)}`)();
    usePrebuilt({ ...prebuilt, templates: { [textDigest('source {{x}}')]: spec } });
    try {
      expect(compile('source {{x}}', 'prebuilt-test')({ x: 1 })).toBe('built 1');
      expect(compile('other {{x}}', 'prebuilt-test-2')({ x: 2 })).toBe('other 2');
      // A prebuilt template is set up once (setUpOnce): called again and again with helpers, blocks and
      // another context, and with options of its own, it renders as a template compiled at run time does.
      const text = '{{#each xs}}{{#if (eq this 1)}}one{{else}}{{upper this}}{{/if}}{{join ../ys "+"}};{{/each}}{{lookup m k}}';
      usePrebuilt({ ...prebuilt, templates: { [textDigest(text)]: new Function(`return ${Handlebars.precompile(text, COMPILE_OPTIONS)}`)() } });
      const built = compile(text, 'prebuilt-test-3');
      const runtime = Handlebars.create();
      for (const [k, v] of Object.entries(hbs.helpers)) runtime.registerHelper(k, v as Handlebars.HelperDelegate);
      const compiled = runtime.compile(text, COMPILE_OPTIONS);
      for (const ctx of [{ xs: [1, 'a'], ys: [1, 2], m: { a: 'b' }, k: 'a' }, { xs: ['x', 1, 1], ys: [], m: {}, k: 'z' }, { xs: [], ys: ['q'], m: { z: 3 }, k: 'z' }]) {
        expect(built(ctx)).toBe(compiled(ctx));
        expect(built(ctx, { helpers: { upper: (s: unknown) => `<${String(s)}>` } })).toBe(compiled(ctx, { helpers: { upper: (s: unknown) => `<${String(s)}>` } }));
        expect(built(ctx)).toBe(compiled(ctx));
      }
    } finally {
      usePrebuilt(undefined);
    }
  });

  it('the build\'s precompiled templates, playbooks and schema give exactly what compiling them at run time gives', () => {
    // MAILOPS_PREBUILT=0: the same bundle, everything compiled from the files as they are. The bundled CLI
    // is run with MAILOPS_PREBUILT=require: any template, playbook or validator it had to compile would fail it.
    const prebuilt = (on: boolean) => ({ MAILOPS_PREBUILT: on ? 'require' : '0', MAILOPS_BOB_PASSWORD: undefined });
    const dir = mkdtempSync(join(tmpdir(), 'mailops-cli-'));
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, readFileSync(contract, 'utf8').replace('  mta: postfix ', '  mta: qmail   ').replace('name: alice', 'name: Alice Smith').replace('imap: true', 'imap: yes please').replace('hosts:', 'hostz: 1\nhosts:'));
    const [a, b] = [true, false].map((on) => run(['validate', '--json', bad], { env: prebuilt(on) }));
    expect(a!.code).toBe(1);
    expect(JSON.parse(a!.stdout).diagnostics.length).toBeGreaterThanOrEqual(4);
    expect(a).toEqual(b);
    for (const site of [contract, join(repo, 'playbooks', 'examples', 'sandbox.yaml')]) {
      const out = (on: boolean) => {
        const o = join(mkdtempSync(join(tmpdir(), 'mailops-cli-')), 'out');
        const r = run(['render', '--out', o, site], { env: prebuilt(on) });
        expect(r.code, r.stderr).toBe(0);
        const files = readdirSync(o, { recursive: true, withFileTypes: true }).filter((f) => f.isFile()).map((f) => join(f.parentPath, f.name));
        return Object.fromEntries(files.map((f) => [f.slice(o.length), readFileSync(f, 'utf8')]));
      };
      const [x, y] = [out(true), out(false)];
      expect(Object.keys(x).length).toBeGreaterThan(30);
      expect(x).toEqual(y);
    }
  });

  it('MAILOPS_PREBUILT=require fails where the prebuilt work is not used (the unbundled entry), and passes without it', () => {
    // The same CLI from the unbundled modules (dist/cli/main.js), which carry no prebuilt work.
    const env = { ...process.env, MAILOPS_PREBUILT: 'require' };
    const unbundled = spawnSync(process.execPath, ['--input-type=module', '-e', `import { main } from ${JSON.stringify(join(repo, 'dist', 'cli', 'main.js'))}; await main(process.argv)`, 'mailops', 'validate', contract], { env, encoding: 'utf8' });
    expect(unbundled.status).not.toBe(0);
    expect(unbundled.stderr).toMatch(/MAILOPS_PREBUILT=require: the schema validator of the playbook was compiled at run time: this entry point carries no prebuilt work/);
    const plain = spawnSync(process.execPath, ['--input-type=module', '-e', `import { main } from ${JSON.stringify(join(repo, 'dist', 'cli', 'main.js'))}; await main(process.argv)`, 'mailops', 'validate', contract], { env: { ...env, MAILOPS_PREBUILT: undefined }, encoding: 'utf8' });
    expect(plain.status, plain.stderr).toBe(0);
  });

  it('validate --json', () => {
    const r = run(['validate', '--json', contract], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, diagnostics: [] });
  });

  it('validate: a missing file is a clear error', () => {
    const r = run(['validate', '/nonexistent/site.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\/nonexistent\/site\.yaml:1:1: error: cannot read the playbook: no such file/);
  });

  it('render and dns need no mailbox password: the mailbox is rendered locked, with a warning naming the variable; no state is written', () => {
    const site = contractCopy();
    const out = join(mkdtempSync(join(tmpdir(), 'mailops-out-')), 'tree');
    const r = run(['render', site, '--out', out], { env: { MAILOPS_BOB_PASSWORD: undefined } });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: mailbox bob@example.com: environment variable MAILOPS_BOB_PASSWORD is not set: rendered with a locked password/);
    expect(readFileSync(join(out, 'mx1', 'etc', 'dovecot', 'users'), 'utf8')).toMatch(/^bob@example\.com:\{CRYPT\}!:/m);
    const d = run(['dns', site], { env: { MAILOPS_BOB_PASSWORD: undefined } });
    expect(d.code, d.stderr).toBe(0);
    expect(d.stdout).toContain('$ORIGIN example.com.');
    expect(readdirSync(join(site, '..')).filter((f) => f.endsWith('.state.json'))).toEqual([]);
    const p = run(['plan', site], { env: { MAILOPS_BOB_PASSWORD: undefined } });
    expect(p.code).toBe(1);
    expect(p.stderr).toMatch(/environment variable MAILOPS_BOB_PASSWORD is not set/);
  });

  it('render: writes DIR/<host>/<path> and DIR/dns/<domain>.zone; never prints the secret', () => {
    const site = contractCopy();
    const out = mkdtempSync(join(tmpdir(), 'mailops-out-'));
    const secret = 'Sup3r-Secret-Passw0rd';
    const r = run(['render', site, '--out', out], { env: { MAILOPS_BOB_PASSWORD: secret } });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, 'dns', 'example.com.zone'))).toBe(true);
    expect(readdirSync(join(out, 'mx1'))).toContain('etc');
    expect(r.stdout + r.stderr).not.toContain(secret);
    const all = readdirSync(out, { recursive: true }) as string[];
    for (const f of all) {
      const p = join(out, f);
      try {
        expect(readFileSync(p, 'utf8')).not.toContain(secret);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EISDIR') throw e;
      }
    }
  });

  it('dns: prints every zone with a date-based serial (YYYYMMDDnn, nn the quarter hour), never from state it writes', () => {
    const site = contractCopy();
    // 2026-11-23 10:40 UTC: the 42nd quarter hour of the day.
    const at = { MAILOPS_BOB_PASSWORD: 'x', SOURCE_DATE_EPOCH: String(Date.UTC(2026, 10, 23, 10, 40) / 1000) };
    const a = run(['dns', site], { env: at });
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^\$ORIGIN example\.com\.$/m);
    expect(a.stdout).toMatch(/^\s+2026112342 ; serial/m);
    const b = run(['dns', site], { env: at });
    expect(b.stdout).toBe(a.stdout);
    const later = run(['dns', site], { env: { ...at, SOURCE_DATE_EPOCH: String(Date.UTC(2026, 10, 24, 0, 5) / 1000) } });
    expect(later.stdout).toMatch(/^\s+2026112400 ; serial/m);
    expect(readdirSync(join(site, '..')).filter((f) => f.endsWith('.state.json'))).toEqual([]);
    writeFileSync(site, readFileSync(site, 'utf8').replace('ttl: 3600', 'ttl: 7200'));
    const c = run(['dns', site], { env: at });
    const d = run(['dns', site, '--out', join(site, '..', 'zones')], { env: at });
    expect(d.code).toBe(0);
    expect(readFileSync(join(site, '..', 'zones', 'example.com.zone'), 'utf8')).toBe(c.stdout);
  });

  it('init: writes a commented starter playbook that validates as is', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-init-'));
    const r = run(['init', 'shop.example.net'], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(join(dir, 'site.yaml'), 'utf8');
    expect(text).toMatch(/^# /m);
    expect(text).toContain('name: shop.example.net');
    const v = run(['validate', join(dir, 'site.yaml')]);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).not.toMatch(/name server/);
    // Its zone loads in a real DNS server's checker as it is.
    const zone = run(['dns', '--out', join(dir, 'zones'), join(dir, 'site.yaml')]);
    expect(zone.code, zone.stderr).toBe(0);
    const check = spawnSync('named-checkzone', ['-k', 'fail', '-n', 'fail', '-m', 'fail', '-M', 'fail', '-S', 'fail', '-i', 'local', 'shop.example.net', join(dir, 'zones', 'shop.example.net.zone')], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    expect(run(['init', 'shop.example.net'], { cwd: dir }).code).toBe(1);
    expect(run(['init', 'not a domain'], { cwd: dir }).stderr).toMatch(/not a valid domain name|not a fully qualified/);
  });

  it('hash-password: the hash verifies with openssl passwd and never echoes the password', () => {
    const pw = 'correct horse battery staple';
    const r = run(['hash-password'], { input: `${pw}\n` });
    expect(r.code, r.stderr).toBe(0);
    const hash = r.stdout.trim();
    expect(hash).toMatch(/^\{SHA512-CRYPT\}\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$/);
    expect(r.stdout + r.stderr).not.toContain(pw);
    const salt = hash.split('$')[2]!;
    const o = spawnSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], { input: pw, encoding: 'utf8' });
    expect(o.stdout.trim()).toBe(hash.replace('{SHA512-CRYPT}', ''));
    // and the validator accepts it
    expect(passwordHashProblem(hash)).toBeNull();
    // an empty password is refused
    expect(run(['hash-password'], { input: '' }).code).toBe(1);
  });

  it('schema: prints the JSON Schema with every top-level field', () => {
    const r = run(['schema']);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['site', 'hosts', 'stack', 'dns', 'domains']));
    expect(s.required).toEqual(expect.arrayContaining(['site', 'hosts', 'dns', 'domains']));
  });

  it('apply without a terminal and without --yes refuses before touching any host', () => {
    const r = run(['apply', contract], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/pass --yes/);
    expect(r.stderr).not.toMatch(/connecting/);
  });

  it('plan and verify name the playbook error and exit 1 without connecting', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-cli-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, readFileSync(contract, 'utf8').replace('  mta: postfix ', '  mta: postfux '));
    for (const cmd of ['plan', 'verify', 'apply']) {
      const r = run([cmd, '--yes', file].filter((a) => cmd === 'apply' || a !== '--yes'));
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/bad\.yaml:15:8: error: stack\.mta/);
      expect(r.stderr).not.toMatch(/connecting/);
    }
  });

  it('a --resolver that is no server address, and a dkim rotate --domain the playbook lacks: one clear error, exit 1, no host contacted', () => {
    for (const cmd of [['plan'], ['apply', '--yes'], ['dkim', 'rotate', '--yes'], ['verify']]) {
      const r = run([...cmd, '--resolver', 'bad server', contract], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
      expect(r.code, cmd.join(' ')).toBe(1);
      expect(r.stderr.trim()).toBe('error: --resolver bad server is not a server address: use HOST or HOST:PORT (an IPv6 address as [ADDR]:PORT)');
    }
    const d = run(['dkim', 'rotate', '--yes', '--domain', 'nope.example', contract], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(d.code).toBe(1);
    expect(d.stderr.trim()).toBe('error: --domain nope.example: no such domain in the playbook (domains: example.com)');
  });

  it('unknown command: a suggestion, exit 1', () => {
    const r = run(['valdate', contract]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Did you mean validate\?/);
  });
});

describe('mailops test, before any container starts', () => {
  const dir = () => mkdtempSync(join(tmpdir(), 'mailops-cli-test-'));
  it('a bad playbook, or a bad --base, is refused with file:line:column (exit 1); a --base that is neither a file nor a revision says so', () => {
    const d = dir();
    const site = join(d, 'site.yaml');
    writeFileSync(site, readFileSync(contract, 'utf8').replace('mta: postfix', 'mta: sendmail'));
    const bad = run(['test', site], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(new RegExp(`^${site.replace(/[.]/g, '\\.')}:\\d+:\\d+: error: stack\\.mta: `, 'm'));
    expect(bad.stderr).not.toMatch(/starting throwaway containers/);

    writeFileSync(site, readFileSync(contract, 'utf8'));
    const noBase = run(['test', site, '--base', 'HEAD~1'], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(noBase.code).toBe(1);
    expect(noBase.stderr.trim()).toBe(`error: --base HEAD~1: no such file, and ${site} is not in a git repository to read a revision from`);

    spawnSync('git', ['init', '-q', d]);
    spawnSync('git', ['-C', d, '-c', 'user.email=a@b', '-c', 'user.name=a', 'commit', '-q', '--allow-empty', '-m', 'first']);
    const missing = run(['test', site, '--base', 'HEAD'], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^error: --base HEAD: neither a file nor a git revision holding site\.yaml \(git: fatal: path 'site\.yaml' exists on disk, but not in 'HEAD'\)$/m);

    // A revision is read from git, not from the working tree: its error names the file at that revision.
    mkdirSync(join(d, 'mail'));
    const nested = join(d, 'mail', 'site.yaml');
    writeFileSync(nested, readFileSync(contract, 'utf8').replace('mta: postfix', 'mta: qmail'));
    spawnSync('git', ['-C', d, 'add', 'mail/site.yaml']);
    spawnSync('git', ['-C', d, '-c', 'user.email=a@b', '-c', 'user.name=a', 'commit', '-q', '-m', 'second']);
    writeFileSync(nested, readFileSync(contract, 'utf8'));
    const atRevision = run(['test', nested, '--base', 'HEAD'], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(atRevision.code).toBe(1);
    expect(atRevision.stderr).toMatch(new RegExp(`^${nested.replace(/[.]/g, '\\.')}@HEAD:\\d+:\\d+: error: stack\\.mta: must be postfix or exim, not the string "qmail"$`, 'm'));
    expect(atRevision.stderr).not.toMatch(/starting throwaway containers/);

    writeFileSync(join(d, 'old.yaml'), readFileSync(contract, 'utf8').replace('mta: postfix', 'mta: qmail'));
    const badBase = run(['test', site, '--base', join(d, 'old.yaml')], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
    expect(badBase.code).toBe(1);
    expect(badBase.stderr).toMatch(new RegExp(`^${join(d, 'old.yaml').replace(/[.]/g, '\\.')}:\\d+:\\d+: error: stack\\.mta: `, 'm'));
  });

  it('--debian takes a release the VPS image can be made of; any other is refused before anything starts (test and sandbox up)', () => {
    for (const args of [['test', contract], ['sandbox', 'up', contract]]) {
      const r = run([...args, '--debian', 'sid'], { env: { MAILOPS_BOB_PASSWORD: 'x' } });
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe("error: option '--debian <release>' argument 'sid' is invalid. must be one of bookworm, trixie");
    }
  });
});
