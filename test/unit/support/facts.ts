/** Facts of a host that already holds everything of its desired state (the unit tests of plan and apply). */
import type { DesiredHost } from '../../../src/model/desired.js';
import type { HostFacts } from '../../../src/model/facts.js';
import { sha256 } from '../../../src/plan/plan.js';

export function convergedFacts(d: DesiredHost): HostFacts {
  return {
    family: 'debian',
    osName: 'Debian GNU/Linux 12 (bookworm)',
    osVersion: '12',
    packages: Object.fromEntries(d.packages.map((p) => [p, '1.0'])),
    files: Object.fromEntries(d.files.map((x) => [x.path, { sha256: sha256(x.content), mode: x.mode, owner: x.owner, group: x.group }])),
    directories: Object.fromEntries(d.directories.map((x) => [x.path, { mode: x.mode, owner: x.owner, group: x.group }])),
    services: Object.fromEntries(d.services.map((s) => [s.unit, { enabled: 'enabled', active: 'active' }])),
    users: Object.fromEntries(d.users.map((u) => [u.name, { uid: 999, gid: 999, home: u.home }])),
    groups: {},
    dkim: {},
    commandsDone: d.commands.map((_, i) => i),
    locked: false,
    queues: {},
  };
}
