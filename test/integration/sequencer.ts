/**
 * The integration files, longest first (their durations on a 2-core machine, in seconds), so that two
 * workers finish at about the same time; a file not listed goes last.
 */
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'mailops-test.test.ts': 475,
  'limits.test.ts': 383,
  'scenario.test.ts': 299,
  'hosts.test.ts': 298,
  'replication.test.ts': 345,
  'faults.test.ts': 225,
  'inbound.test.ts': 183,
  'deliverability.test.ts': 135,
  'checkers.test.ts': 96,
  'apply.test.ts': 82,
  'acme.test.ts': 70,
  'switch.test.ts': 67,
  'multihost.test.ts': 61,
  'sandbox.test.ts': 57,
  'ssh-shared.test.ts': 25,
  'world.test.ts': 23,
  'ssh.test.ts': 8,
  'testbed.test.ts': 6,
};

const weight = (s: TestSpecification) => SECONDS[s.moduleId.split('/').pop() ?? ''] ?? 0;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
