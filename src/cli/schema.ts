import type { Command } from 'commander';
import { jsonSchema } from '../site/schema.js';
import { json } from './output.js';

export function registerSchema(p: Command): void {
  p.command('schema')
    .description('print the JSON Schema of the site playbook (for editor completion and CI checks)')
    .action(() => json(jsonSchema()));
}
