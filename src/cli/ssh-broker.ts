import type { Command } from 'commander';
import { serveBroker } from '../ssh/broker.js';
import { brokerSocket, persistSeconds } from '../ssh/shared.js';

/** The connection broker's process (src/ssh/shared.ts): started by plan and apply, not by hand. */
export function registerSshBroker(p: Command): void {
  p.command('ssh-broker', { hidden: true })
    .description('hold SSH connections open between runs (started by plan and apply; MAILOPS_SSH_PERSIST seconds)')
    .action(async () => {
      const persist = persistSeconds();
      const path = brokerSocket();
      if (!path || persist === 0) return;
      try {
        await serveBroker({ path, persist });
      } catch {
        // another broker serves this socket already
      }
      process.exit(0);
    });
}
