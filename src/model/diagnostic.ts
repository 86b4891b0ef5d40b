/** A finding about the playbook, located in its source. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  file: string;
  line: number;
  column: number;
  /** Field path such as `domains[0].mailboxes[1].name`; empty for the whole file. */
  path: string;
  message: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.column}`;
  const field = d.path ? ` ${d.path}:` : '';
  return `${where}: ${d.severity}:${field} ${d.message}`;
}
