/**
 * Work done once at build time (scripts/build.mjs) instead of at every run: the component playbooks
 * parsed, the templates compiled by Handlebars, the playbook schema compiled by Ajv. The bundled CLI
 * hands it over at start-up (usePrebuilt); without it (tests, the unbundled dist/) the same work is done
 * at run time. Playbooks and templates are found by the SHA-256 of their text, so an edited file is
 * compiled from what it says now, never taken from the build.
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
