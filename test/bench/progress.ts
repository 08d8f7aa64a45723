// Progress lines on stderr: which phase runs and roughly how long the whole run has left. The
// plan is an estimate (setup and failover times vary); it is corrected as phases finish.

export class Progress {
  private readonly startedAtMs = Date.now();
  private plannedMsLeft: number;
  private readonly write: (line: string) => void;

  constructor(plannedMs: number, write: (line: string) => void = (l) => process.stderr.write(l + '\n')) {
    this.plannedMsLeft = plannedMs;
    this.write = write;
  }

  /** Announce a phase expected to take `expectedMs`; call the returned function when it ends. */
  phase(name: string, expectedMs: number): () => void {
    this.line(`${name} (~${seconds(expectedMs)})`);
    const began = Date.now();
    return () => {
      this.plannedMsLeft = Math.max(0, this.plannedMsLeft - expectedMs);
      this.note(`${name}: done in ${seconds(Date.now() - began)}`);
    };
  }

  /** A line inside a phase (a countdown, a result). */
  note(text: string): void {
    this.line(`  ${text}`);
  }

  private line(text: string): void {
    const elapsed = seconds(Date.now() - this.startedAtMs);
    this.write(`[bench ${elapsed.padStart(5)} | ~${seconds(this.plannedMsLeft)} left] ${text}`);
  }
}

export function seconds(ms: number): string {
  if (ms >= 120_000) return `${Math.round(ms / 60_000)}m`;
  return `${Math.round(ms / 1000)}s`;
}
