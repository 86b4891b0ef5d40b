/** The Handlebars environment: strict, no HTML escaping (configs are not HTML), a few pure helpers. */
import Handlebars from 'handlebars';
import { compiledAtRunTime, prebuiltTemplate } from '../prebuilt.js';
import { tlsFingerprintCommand } from '../facts/shell.js';

export const hbs = Handlebars.create();

hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
hbs.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
hbs.registerHelper('and', (...args: unknown[]) => args.slice(0, -1).every(Boolean));
hbs.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
hbs.registerHelper('not', (a: unknown) => !a);
hbs.registerHelper('join', (xs: unknown, sep: unknown) => (Array.isArray(xs) ? xs.join(typeof sep === 'string' ? sep : ', ') : ''));
hbs.registerHelper('includes', (xs: unknown, x: unknown) => Array.isArray(xs) && xs.includes(x));
hbs.registerHelper('lower', (s: unknown) => String(s).toLowerCase());
hbs.registerHelper('upper', (s: unknown) => String(s).toUpperCase());
hbs.registerHelper('concat', (...args: unknown[]) => args.slice(0, -1).map(String).join(''));
hbs.registerHelper('json', (v: unknown) => JSON.stringify(v));
hbs.registerHelper('pad', (s: unknown, n: unknown) => String(s).padEnd(Number(n)));
/** A literal for a POSIX extended regular expression (Postfix regexp: tables). */
hbs.registerHelper('regex', (s: unknown) => String(s).replace(/[.[\]{}()*+?^$|\\/]/g, '\\$&'));
/** Quote a value for a POSIX shell. */
hbs.registerHelper('shq', (s: unknown) => `'${String(s).replace(/'/g, `'\\''`)}'`);
/** A shell command printing the SHA-256 fingerprint of a certificate file (lower-case hex), nothing without one. */
hbs.registerHelper('certFingerprint', (file: unknown) => tlsFingerprintCommand(String(file)));

/** How every template is compiled (scripts/build.mjs precompiles them with the same options). */
export const COMPILE_OPTIONS = { noEscape: true, preventIndent: false } as const;

const cache = new Map<string, Handlebars.TemplateDelegate>();

export function compile(source: string, name: string): Handlebars.TemplateDelegate {
  let t = cache.get(name);
  if (!t) {
    const spec = prebuiltTemplate(source);
    if (!spec) compiledAtRunTime('template', name);
    t = spec ? hbs.template(spec as Parameters<typeof hbs.template>[0]) : hbs.compile(source, COMPILE_OPTIONS);
    cache.set(name, t);
  }
  return t;
}

/** Render a short inline template string (paths, commands). */
export function renderString(template: string, ctx: object): string {
  if (!template.includes('{{')) return template;
  return compile(template, `inline:${template}`)(ctx);
}
