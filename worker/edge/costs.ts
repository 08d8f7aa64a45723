// What a peer object costs on the platform, counted where it is spent: the RPC calls it makes
// and answers, the SQLite rows its statements read and write, the alarms it sets and that fire,
// the client requests it serves, and how long this instance has been awake. These are the
// quantities Durable Objects bill (worker/edge/README.md, "Costs to know"): every RPC method call
// and every client request is a billed request to the object that receives it, an alarm that
// fires is one too, duration is billed while the object is in memory and cannot hibernate, and
// SQLite is billed per row read and written.
//
// Counted in memory, per instance: an object that is evicted or hibernates starts again from
// zero (as a Prometheus counter after a restart); `instance` and `startedAtMs` tell a reader
// that this happened, so a difference is only taken between two readings of the same instance.
// What the counts leave out, on purpose: the operator's own `inspect` calls (reading the
// counters must not move them) and the test-only persist check's reads (CHECK_PERSIST).

import type { HostCosts } from '../api/host.ts';
import type { DurableStorageLike, SqlCursorLike, SqlLike, SqlValue } from './sql.ts';
import type { DeliverTarget } from './transport.ts';

/** The counters of one peer object instance (shown as `cost` in /status, and in /metrics). */
export type EdgeCosts = HostCosts;

/** Counts one object instance's costs (see the header). */
export class CostMeter {
  private readonly now: () => number;
  private readonly counts = {
    rpcCallsSent: 0,
    rpcCallsReceived: 0,
    clientRequests: 0,
    sqliteRowsRead: 0,
    sqliteRowsWritten: 0,
    alarmsSet: 0,
    alarmsFired: 0,
  };
  readonly instance: string;
  readonly startedAtMs: number;

  constructor(now: () => number = () => Date.now(), instance: string = randomInstanceId()) {
    this.now = now;
    this.instance = instance;
    this.startedAtMs = now();
  }

  callSent(): void {
    this.counts.rpcCallsSent++;
  }

  callReceived(): void {
    this.counts.rpcCallsReceived++;
  }

  clientRequest(): void {
    this.counts.clientRequests++;
  }

  alarmSet(): void {
    this.counts.alarmsSet++;
  }

  alarmFired(): void {
    this.counts.alarmsFired++;
  }

  rows(read: number, written: number): void {
    this.counts.sqliteRowsRead += read;
    this.counts.sqliteRowsWritten += written;
  }

  snapshot(): EdgeCosts {
    return { instance: this.instance, startedAtMs: this.startedAtMs, ...this.counts, awakeMs: Math.max(0, this.now() - this.startedAtMs) };
  }
}

/** The cursor's row counts (workerd's SqlStorageCursor has them; a probe's may not). */
interface CountingCursor extends SqlCursorLike {
  readonly rowsRead?: number;
  readonly rowsWritten?: number;
}

/**
 * `sql` with every statement's rows counted into `meter`. A cursor's counts grow as its rows
 * are consumed, so they are taken when exec returns (a write has run by then) and again after
 * toArray()/one() consumed the rest.
 */
export function countingSql(sql: SqlLike, meter: CostMeter): SqlLike {
  return {
    exec(query: string, ...bindings: SqlValue[]): SqlCursorLike {
      const cursor = sql.exec(query, ...bindings) as CountingCursor;
      let read = cursor.rowsRead ?? 0;
      let written = cursor.rowsWritten ?? 0;
      meter.rows(read, written);
      const settle = (): void => {
        const r = cursor.rowsRead ?? 0;
        const w = cursor.rowsWritten ?? 0;
        meter.rows(r - read, w - written);
        read = r;
        written = w;
      };
      return {
        toArray: () => {
          const rows = cursor.toArray();
          settle();
          return rows;
        },
        one: () => {
          const row = cursor.one();
          settle();
          return row;
        },
      };
    },
  };
}

/** The object's storage with its SQL counted (the transactions are the storage's own). */
export function countingStorage(storage: DurableStorageLike, meter: CostMeter): DurableStorageLike {
  const sql = countingSql(storage.sql, meter);
  return { sql, transactionSync: (fn) => storage.transactionSync(fn) };
}

/** A sibling's `deliver` with each call counted as sent. */
export function countingTarget(target: DeliverTarget, meter: CostMeter): DeliverTarget {
  return {
    deliver: (batch) => {
      meter.callSent();
      return target.deliver(batch);
    },
  };
}

function randomInstanceId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}
