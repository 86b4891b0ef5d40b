import type { Diagnostic } from './model/diagnostic.js';
import { formatDiagnostic } from './model/diagnostic.js';

/** A mistake of the user's (bad input, unreachable host...): one clear message, exit 1, no stack trace. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** The playbook is invalid: every finding, each with its position. */
export class PlaybookError extends UserError {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.filter((d) => d.severity === 'error').map(formatDiagnostic).join('\n'));
  }
}
