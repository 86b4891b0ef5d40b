/**
 * Work done once at build time (scripts/build.mjs) instead of at every run: the component playbooks
 * parsed, the templates compiled by Handlebars, the playbook schema compiled by Ajv. The bundled CLI
 * hands it over at start-up (usePrebuilt); without it (tests, the unbundled dist/) the same work is done
 * at run time. Playbooks and templates are found by the SHA-256 of their text, so an edited file is
 * compiled from what it says now, never taken from the build.
 *
 * MAILOPS_PREBUILT=0 compiles everything at run time; MAILOPS_PREBUILT=require makes any such compiling
 * an error, to prove that a build (a package, an image) carries its prebuilt work and uses it.
 */
import { createHash } from 'node:crypto';
import type { ValidateFunction } from 'ajv';
import type { ComponentSpec } from './components/types.js';

export interface Prebuilt {
  /** Parsed component playbooks by the SHA-256 of their YAML text. */
  components: Record<string, ComponentSpec>;
  /** Handlebars precompiled template specs by the SHA-256 of the template's text. */
  templates: Record<string, object>;
  /** The Ajv validator of the playbook schema (src/site/schema.ts), as Ajv's standalone code. */
  validate: ValidateFunction;
}

let prebuilt: Prebuilt | undefined;

/** Hand over the build's work (the bundled CLI's entry does, before anything runs). */
export function usePrebuilt(p: Prebuilt | undefined): void {
  prebuilt = process.env['MAILOPS_PREBUILT'] === '0' ? undefined : p;
}

export const textDigest = (text: string): string => createHash('sha256').update(text).digest('hex');

export const prebuiltComponent = (text: string): ComponentSpec | undefined => prebuilt?.components[textDigest(text)];
export const prebuiltTemplate = (source: string): object | undefined => prebuilt?.templates[textDigest(source)];
export const prebuiltValidator = (): ValidateFunction | undefined => prebuilt?.validate;

/** Called where something the build should have prepared is compiled at run time instead. */
export function compiledAtRunTime(kind: 'template' | 'component playbook' | 'schema validator', name: string): void {
  if (process.env['MAILOPS_PREBUILT'] === 'require') {
    throw new Error(`MAILOPS_PREBUILT=require: the ${kind} ${name} was compiled at run time: ${prebuilt ? 'the build has no prebuilt work for its text (edited since the build?)' : 'this entry point carries no prebuilt work (run the bundled dist/cli.js after npm run build)'}`);
  }
}
