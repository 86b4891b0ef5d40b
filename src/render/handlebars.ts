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
    t = spec ? setUpOnce(hbs.template(spec as Parameters<typeof hbs.template>[0])) : hbs.compile(source, COMPILE_OPTIONS);
    cache.set(name, t);
  }
  return t;
}

/**
 * A precompiled template that is set up once, not at every call. Handlebars' runtime sets a template up at
 * each top-level call (its `_setup`): it merges the registered helpers with the call's own and wraps every
 * one of them anew, and makes its access rules, which costs a host's render more than 0.5 ms, at some fifty
 * calls. mailops calls a template with no options of its own, and registers its helpers once, as this
 * module loads: every such setup is the same, so the first one is kept. A call with options, or as a
 * partial (which hands its caller's setup down), is set up as Handlebars does it, and the next plain call
 * sets up anew. The golden renders check the output.
 */
function setUpOnce(t: Handlebars.TemplateDelegate): Handlebars.TemplateDelegate {
  const r = t as Handlebars.TemplateDelegate & { _setup?: (this: unknown, options: Record<string, unknown>) => void };
  const setup = r._setup;
  if (typeof setup !== 'function') return t;
  let ready = false;
  r._setup = function (options) {
    const plain = !options.partial && Object.keys(options).length === 0;
    if (plain && ready) return;
    setup.call(this, options);
    ready = plain;
  };
  return t;
}

/**
 * An inline template that is only text and `{{a.b.c}}` paths (no helper, block, whitespace control or
 * escape): its text and the paths' segments, in turn. Most inline templates are so (a file's owner, a
 * directory's path); Handlebars sets every call up anew (its helpers wrapped, its access rules made), which
 * costs more than the lookup itself. Null for any other template.
 */
type Parts = Array<string | string[]>;
const simple = new Map<string, Parts | null>();
const PATH = /^[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*$/;

function partsOf(template: string): Parts | null {
  let parts = simple.get(template);
  if (parts !== undefined) return parts;
  parts = [];
  let at = 0;
  if (/\\|\{\{\{|\}\}\}/.test(template)) parts = null;
  for (const m of parts ? template.matchAll(/\{\{([^{}]*)\}\}/g) : []) {
    const text = template.slice(at, m.index);
    const segs = m[1]!.split('.');
    // A lone name may be a helper's (Handlebars calls it), and `this`, `else` are the language's.
    if (text.includes('{{') || !PATH.test(m[1]!) || ['this', 'else'].includes(segs[0]!) || (segs.length === 1 && segs[0]! in hbs.helpers)) {
      parts = null;
      break;
    }
    parts!.push(text, segs);
    at = m.index + m[0].length;
  }
  if (parts && template.slice(at).includes('{{')) parts = null;
  if (parts) parts.push(template.slice(at));
  simple.set(template, parts);
  return parts;
}

const own = Object.prototype.hasOwnProperty;

/** The parts rendered as Handlebars renders them (noEscape: a missing value is empty); undefined when a value is a function (Handlebars calls it). */
function renderParts(parts: Parts, ctx: object): string | undefined {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'string') {
      out += p;
      continue;
    }
    let v: unknown = ctx;
    // Handlebars' lookupProperty: own properties only (a string's length is its own).
    for (const k of p) v = v == null ? v : own.call(v, k) ? (v as Record<string, unknown>)[k] : undefined;
    if (typeof v === 'function') return undefined;
    out += v == null ? '' : String(v);
  }
  return out;
}

/** For tests: render every simple inline template both ways, and throw where they differ. */
export const inlineCheck = { enabled: false };

/** Render a short inline template string (paths, commands). */
export function renderString(template: string, ctx: object): string {
  if (!template.includes('{{')) return template;
  const parts = partsOf(template);
  const fast = parts ? renderParts(parts, ctx) : undefined;
  if (fast === undefined) return compile(template, `inline:${template}`)(ctx);
  if (inlineCheck.enabled) {
    const slow = compile(template, `inline:${template}`)(ctx);
    if (slow !== fast) throw new Error(`inline template ${JSON.stringify(template)}: ${JSON.stringify(fast)}, but Handlebars renders ${JSON.stringify(slow)}`);
  }
  return fast;
}
