/**
 * The integration files, longest first (their durations on a 2-core machine, in seconds), so that two
 * workers finish at about the same time; a file not listed goes last.
 */
import { BaseSequencer } from 'vitest/node';
import type { TestSpecification } from 'vitest/node';

const SECONDS: Record<string, number> = {
  'limits.test.ts': 330,
  'faults.test.ts': 310,
  'hosts.test.ts': 310,
  'mailops-test.test.ts': 260,
  'scenario.test.ts': 145,
  'deliverability.test.ts': 140,
  'apply.test.ts': 130,
  'inbound.test.ts': 115,
  'multihost.test.ts': 70,
  'switch.test.ts': 65,
  'sandbox.test.ts': 60,
  'acme.test.ts': 55,
  'checkers.test.ts': 50,
  'world.test.ts': 30,
  'testbed.test.ts': 20,
  'ssh.test.ts': 10,
};

const weight = (s: TestSpecification) => SECONDS[s.moduleId.split('/').pop() ?? ''] ?? 0;

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    return [...files].sort((a, b) => weight(b) - weight(a));
  }
}
