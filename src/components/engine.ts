/** Turn the component playbooks and a host's template context into the host's desired state. Pure but for reading templates. */
import type { DesiredHost } from '../model/desired.js';
import type { TemplateContext } from '../render/context.js';
import { compile, renderString } from '../render/handlebars.js';
import { groupGuardCommand } from '../facts/shell.js';
import { readTemplate } from './load.js';
import type { ComponentSpec, When } from './types.js';

export function matches(when: When | undefined, features: Record<string, string | boolean>): boolean {
  if (!when) return true;
  return Object.entries(when).every(([k, v]) => {
    const actual = features[k];
    return Array.isArray(v) ? v.includes(actual as string | boolean) : actual === v;
  });
}

function items(ctx: TemplateContext, foreach: string | undefined): Array<Record<string, unknown>> {
  if (!foreach) return [ctx as unknown as Record<string, unknown>];
  // A name of the context, or a dotted path into it ("web.domains").
  const list = foreach.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], ctx);
  if (!Array.isArray(list)) throw new Error(`internal: foreach "${foreach}" is not a list of the template context`);
  return list.map((item: unknown) => ({ ...ctx, item }));
}

/**
 * A command's group guard (unless_group): planned from the facts' stat (groupGuardHolds), and the same test
 * in the shell as the `unless` the activation runs, made from the one rendered list.
 */
function groupGuardOf(g: { paths: string; group: string } | undefined, c: object): Pick<DesiredHost['commands'][number], 'groupGuard' | 'unless'> {
  if (!g) return {};
  const paths = renderString(g.paths, c).split(/\s+/).filter(Boolean);
  const group = renderString(g.group, c);
  return { groupGuard: { paths, group }, unless: groupGuardCommand(paths, group) };
}

export function desiredHost(baseCtx: TemplateContext, specs: ComponentSpec[]): DesiredHost {
  let ctx = baseCtx;
  const f = ctx.features;
  const out: DesiredHost = {
    host: ctx.host,
    os: ctx.os,
    components: [],
    packages: [],
    users: [],
    directories: [],
    files: [],
    commands: [],
    validations: [],
    services: [],
    ports: [],
    dkimKeys: [],
    dkimNotes: [],
    tlsCert: ctx.tls.cert,
    tlsKey: ctx.tls.key,
    inbound: [],
    replaces: [],
    retired: { units: [], files: [] },
  };
  const active = specs.filter((spec) => matches(spec.when, f));
  // Ports first: templates (the firewall) see every port the active components open.
  const portSet = new Set<number>([22, ctx.host.ssh.port]);
  for (const spec of active) for (const p of spec.ports ?? []) if (matches(p.when, f) && !p.local) portSet.add(p.port);
  ctx = { ...ctx, ports: [...portSet].sort((a, b) => a - b) };
  out.inbound = ctx.ports;
  const r = (s: string, c: object = ctx) => renderString(s, c);
  for (const spec of active) {
    const component = spec.name;
    out.components.push(component);
    for (const p of spec.packages?.[ctx.os.family] ?? []) {
      const name = typeof p === 'string' ? p : matches(p.when, f) ? p.name : undefined;
      if (name !== undefined && !out.packages.includes(name)) out.packages.push(name);
    }
    for (const u of spec.users ?? []) {
      if (!matches(u.when, f)) continue;
      const uid = u.uid === undefined ? undefined : Number(r(String(u.uid)));
      out.users.push({
        name: r(u.name),
        group: r(u.group ?? u.name),
        ...(uid !== undefined ? { uid } : {}),
        home: r(u.home ?? '/nonexistent'),
        system: u.system ?? true,
        component,
      });
    }
    for (const d of spec.directories ?? []) {
      if (!matches(d.when, f)) continue;
      out.directories.push({ path: r(d.path), owner: r(d.owner ?? 'root'), group: r(d.group ?? 'root'), mode: d.mode ?? '0755', component });
    }
    for (const file of spec.files ?? []) {
      if (!matches(file.when, f)) continue;
      const template = compile(readTemplate(file.template), file.template);
      for (const c of items(ctx, file.foreach)) {
        out.files.push({
          path: r(file.dest, c),
          content: template(c),
          owner: r(file.owner ?? 'root', c),
          group: r(file.group ?? 'root', c),
          mode: file.mode ?? '0644',
          secret: file.secret ?? false,
          component,
          notify: (file.notify ?? []).map((n) => r(n, c)),
        });
      }
    }
    for (const cmd of spec.commands ?? []) {
      if (!matches(cmd.when, f)) continue;
      for (const c of items(ctx, cmd.foreach)) {
        out.commands.push({
          name: r(cmd.name, c),
          run: r(cmd.run, c),
          ...(cmd.creates !== undefined ? { creates: r(cmd.creates, c) } : {}),
          ...(cmd.unless !== undefined ? { unless: r(cmd.unless, c) } : {}),
          ...(cmd.unless_cert ? { certGuard: { names: r(cmd.unless_cert.names, c).split(',').filter(Boolean), anyOrder: cmd.unless_cert.any_order ?? false, days: cmd.unless_cert.days ?? 0 } } : {}),
          ...groupGuardOf(cmd.unless_group, c),
          component,
          notify: (cmd.notify ?? []).map((n) => r(n, c)),
          phase: cmd.phase ?? 'activate',
          ...(cmd.warn ? { warn: true } : {}),
        });
      }
    }
    for (const v of spec.validate ?? []) {
      if (!matches(v.when, f)) continue;
      out.validations.push({ name: r(v.name), run: r(v.run), component });
    }
    for (const s of spec.services ?? []) {
      if (!matches(s.when, f)) continue;
      const unit = r(s.unit);
      out.services.push({ key: s.key, unit, component });
    }
    for (const x of spec.replaces ?? []) {
      if (matches(x.when, f)) out.replaces.push({ unit: r(x.unit), ...(x.queue !== undefined ? { queue: x.queue } : {}), component });
    }
    for (const p of spec.ports ?? []) {
      if (!matches(p.when, f)) continue;
      out.ports.push({ port: p.port, proto: p.proto ?? 'tcp', component, listen: p.listen ?? true });
    }
  }
  // Retiring looks at every component, active or not: rspamd is off altogether, Dovecot's junk filter only.
  // What another active component still wants (a unit it runs, a file it writes) is never retired; a unit
  // the MTA replaces is stopped as such (first), not retired as well.
  const wantedUnits = new Set([...out.services.map((s) => s.unit), ...out.replaces.map((x) => x.unit)]);
  const wantedFiles = new Set(out.files.map((x) => x.path));
  for (const spec of specs) {
    for (const x of spec.retire ?? []) {
      if (!matches(x.when, f)) continue;
      const reason = `retired by ${Object.entries(x.when).map(([k, v]) => `${k}: ${String(v)}`).join(', ')} (${spec.name})`;
      const units = [...(x.all ? (spec.services ?? []).map((s) => s.unit) : []), ...(x.units ?? [])];
      const files = [...(x.all ? (spec.files ?? []).flatMap((file) => items(ctx, file.foreach).map((c) => r(file.dest, c))) : []), ...(x.files ?? []).map((p) => r(p))];
      // Named by more than one rule that holds (replication off on a Dovecot 2.3 host): retired once.
      for (const u of new Set(units.map((u) => r(u)))) if (!wantedUnits.has(u) && !out.retired.units.some((x) => x.unit === u)) out.retired.units.push({ unit: u, component: spec.name, reason });
      for (const p of new Set(files)) if (!wantedFiles.has(p) && !out.retired.files.some((x) => x.path === p)) out.retired.files.push({ path: p, component: spec.name, reason });
    }
  }
  // A notification for a service that does not run on this host has nothing to reload: it is dropped here,
  // whether its component is off (Dovecot on a backup MX, told to reload by a new certificate) or its own
  // `when` leaves it out (2.4's push service of replication, on Dovecot 2.3). A service no component declares
  // stays an error (the planner reports it).
  const declared = new Set(specs.flatMap((s) => (s.services ?? []).map((x) => x.key)));
  const on = new Set(out.services.map((s) => s.key));
  const runs = (n: string) => {
    const key = n.trim().split(/\s+/)[1] ?? '';
    return on.has(key) || !declared.has(key);
  };
  for (const x of [...out.files, ...out.commands]) x.notify = x.notify.filter(runs);
  if (out.components.includes('dkim-keys')) {
    out.dkimKeys = ctx.dkimKeys.map((k) => ({ domain: k.domain, selector: k.selector, algorithm: k.keyType, bits: k.bits, keyFile: k.keyFile, status: k.status, ...(k.since !== undefined ? { since: k.since } : {}) }));
  }
  out.dkimNotes = ctx.dkimNotes;
  out.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}
