/** Commander wiring: one file per command, no logic here. */
import { Command, CommanderError } from 'commander';
import { PlaybookError, UserError } from '../errors.js';
import { printDiagnostics, red } from './output.js';
import { registerValidate } from './validate.js';
import { registerRender } from './render.js';
import { registerDns } from './dns.js';
import { registerInit } from './init.js';
import { registerHashPassword } from './hash-password.js';
import { registerSchema } from './schema.js';
import { registerVerify } from './verify.js';
import { registerSandbox } from './sandbox.js';
import { registerPlan } from './plan.js';
import { registerApply } from './apply.js';
import { registerDkim } from './dkim.js';
import { registerClients } from './clients.js';
import { registerTest } from './test.js';
import { VERSION } from '../version.js';

export function program(): Command {
  const p = new Command('mailops')
    .description('Declarative mail servers: one site playbook → Postfix or Exim, Dovecot, OpenDKIM and DNS, pushed over SSH and verified over the wire.')
    .version(VERSION)
    .showSuggestionAfterError(true)
    .exitOverride();
  registerValidate(p);
  registerRender(p);
  registerDns(p);
  registerPlan(p);
  registerApply(p);
  registerDkim(p);
  registerClients(p);
  registerVerify(p);
  registerSandbox(p);
  registerTest(p);
  registerInit(p);
  registerHashPassword(p);
  registerSchema(p);
  return p;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
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
