/** Commander wiring: one file per command, no logic here. */
import { Command, CommanderError } from 'commander';
import { PlaybookError, UserError } from '../errors.js';
import { printDiagnostics, red } from './output.js';
import { VERSION } from '../version.js';

type Register = (p: Command) => void;

/**
 * The commands, in the order `--help` lists them, each loaded only when it runs: `mailops --version` and
 * `mailops validate` do not load the SSH client, the test bed or the DNS code.
 */
const COMMANDS: Array<[string, () => Promise<Register>]> = [
  ['validate', async () => (await import('./validate.js')).registerValidate],
  ['render', async () => (await import('./render.js')).registerRender],
  ['dns', async () => (await import('./dns.js')).registerDns],
  ['plan', async () => (await import('./plan.js')).registerPlan],
  ['apply', async () => (await import('./apply.js')).registerApply],
  ['dkim', async () => (await import('./dkim.js')).registerDkim],
  ['clients', async () => (await import('./clients.js')).registerClients],
  ['verify', async () => (await import('./verify.js')).registerVerify],
  ['sandbox', async () => (await import('./sandbox.js')).registerSandbox],
  ['test', async () => (await import('./test.js')).registerTest],
  ['init', async () => (await import('./init.js')).registerInit],
  ['hash-password', async () => (await import('./hash-password.js')).registerHashPassword],
  ['schema', async () => (await import('./schema.js')).registerSchema],
  ['ssh-broker', async () => (await import('./ssh-broker.js')).registerSshBroker],
];

/**
 * The program for these arguments: the command named (when it is one), none for a bare --version, every
 * command otherwise (help, a usage error with suggestions).
 */
export async function program(argv: string[] = process.argv): Promise<Command> {
  const p = new Command('mailops')
    .description('Declarative mail servers: one site playbook → Postfix or Exim, Dovecot, OpenDKIM and DNS, pushed over SSH and verified over the wire.')
    .version(VERSION)
    .showSuggestionAfterError(true)
    .exitOverride();
  const args = argv.slice(2);
  const named = COMMANDS.find(([n]) => n === args.find((a) => !a.startsWith('-')));
  const versionOnly = !args.some((a) => !a.startsWith('-')) && args.some((a) => a === '--version' || a === '-V') && !args.some((a) => a === '--help' || a === '-h');
  const wanted = named ? [named] : versionOnly ? [] : COMMANDS;
  for (const r of await Promise.all(wanted.map(([, load]) => load()))) r(p);
  return p;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await (await program(argv)).parseAsync(argv);
  } catch (e) {
    process.exitCode = handleError(e);
  }
}

export function handleError(e: unknown): number {
  if (e instanceof CommanderError) {
    // Commander has printed its message (help, version, usage error) already.
    return e.exitCode === 0 ? 0 : 1;
  }
  if (e instanceof PlaybookError) {
    printDiagnostics(e.diagnostics);
    const n = e.diagnostics.filter((d) => d.severity === 'error').length;
    process.stderr.write(red(`${n} error${n === 1 ? '' : 's'}\n`));
    return 1;
  }
  if (e instanceof UserError) {
    process.stderr.write(`${red('error:')} ${e.message}\n`);
    return 1;
  }
  process.stderr.write(`mailops: internal error (a bug: please report it with the lines below)\n${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}
