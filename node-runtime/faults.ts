// Fault injection for real-process tests (their traffic cut by a fault-injecting transport:
// see "Testing" in worker/README.md). Off unless the node starts with --enable-fault-injection; then
// POST /_metcd/faults {"dropFrom":["n2"],"dropTo":["n3"]} (cluster token required) makes this
// node silently lose Raft messages from / to those peers, as a network partition would.

export class Faults {
  dropFrom = new Set<string>();
  dropTo = new Set<string>();

  /** Replaces the fault set from a JSON body; returns an error message or null. */
  set(body: unknown): string | null {
    if (typeof body !== 'object' || body === null) return 'expected {"dropFrom":[ids],"dropTo":[ids]}';
    const { dropFrom = [], dropTo = [] } = body as { dropFrom?: unknown; dropTo?: unknown };
    const ids = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');
    if (!ids(dropFrom) || !ids(dropTo)) return 'dropFrom and dropTo must be arrays of node ids';
    this.dropFrom = new Set(dropFrom as string[]);
    this.dropTo = new Set(dropTo as string[]);
    return null;
  }

  toJSON(): { dropFrom: string[]; dropTo: string[] } {
    return { dropFrom: [...this.dropFrom], dropTo: [...this.dropTo] };
  }
}
