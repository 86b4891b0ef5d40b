import type { Command } from 'commander';
import { UserError } from '../errors.js';

/** Commands of the contract whose implementation ships later: listed, documented, and refusing clearly. */
export function registerPending(p: Command): void {
  const common = (c: Command) =>
    c
      .argument('<site>', 'the site playbook (YAML)')
      .option('--json', 'machine-readable result on stdout')
      .option('--host <name>', 'limit to this host (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .option('--known-hosts <file>', 'known_hosts file', '~/.ssh/known_hosts')
      .option('--accept-new', 'record an unknown host key (a changed key is always refused)');
  const refuse = (name: string) => () => {
    throw new UserError(`\`mailops ${name}\` is not yet available in this version`);
  };
  common(p.command('plan').description('connect, gather facts, print what apply would change; changes nothing'))
    .option('--detailed-exitcode', '0 nothing to do, 2 changes pending, 1 error')
    .action(refuse('plan'));
  common(p.command('apply').description('converge every host to the playbook'))
    .option('--yes', 'do not ask for confirmation')
    .action(refuse('apply'));
  common(p.command('verify').description('protocol-level checks against the running hosts (SMTP, submission, IMAP, POP3, TLS, relay, auth, DKIM, DNS)')).action(
    refuse('verify'),
  );
}
