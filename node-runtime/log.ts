// One line per event, logfmt: `time=… level=info node=n1 term=3 msg="…" key=value`.
// The term is read when the line is written, so every line says which term it happened in.

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

export interface LoggerOptions {
  level: LogLevel;
  node: string;
  /** Current Raft term, or undefined before the peer exists. */
  term?: () => number | undefined;
  write?: (line: string) => void;
  /** Wall clock for the time field (the node runtime is allowed to read it). */
  nowMs?: () => number;
}

function quote(v: string): string {
  return /^[A-Za-z0-9_.:/@+-]+$/.test(v) ? v : JSON.stringify(v);
}

export function formatLine(
  level: LogLevel,
  node: string,
  term: number | undefined,
  msg: string,
  fields: LogFields | undefined,
  nowMs: number,
): string {
  let line = `time=${new Date(nowMs).toISOString()} level=${level} node=${quote(node)}`;
  if (term !== undefined) line += ` term=${term}`;
  line += ` msg=${JSON.stringify(msg)}`;
  if (fields) {
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined) line += ` ${k}=${quote(String(v))}`;
    }
  }
  return line;
}

export function createLogger(opts: LoggerOptions): Logger {
  const min = LOG_LEVELS.indexOf(opts.level);
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const nowMs = opts.nowMs ?? (() => Date.now());
  const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(level) < min) return;
    // An event that names its own term (the peer's events do) is logged with that one.
    const own = fields?.['term'];
    const term = typeof own === 'number' ? own : opts.term?.();
    const rest = fields && 'term' in fields ? { ...fields, term: undefined } : fields;
    write(formatLine(level, opts.node, term, msg, rest, nowMs()));
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** A logger that drops everything (tests of components that log). */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
