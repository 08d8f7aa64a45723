// The slice of Durable Object SQLite storage (`ctx.storage`) the edge storage uses.
//
// Declared structurally instead of importing @cloudflare/workers-types so that storage.ts
// typechecks under both tsconfigs (the root one has Node's types) and the storage tests can
// host it in a small probe object. `ctx.storage` of a SQLite-backed Durable Object satisfies it.

export type SqlValue = ArrayBuffer | Uint8Array | string | number | null;

export interface SqlCursorLike {
  toArray(): Record<string, SqlValue>[];
  one(): Record<string, SqlValue>;
}

export interface SqlLike {
  exec(query: string, ...bindings: SqlValue[]): SqlCursorLike;
}

export interface DurableStorageLike {
  readonly sql: SqlLike;
  /** Runs `fn` in one SQLite transaction: all of its writes commit together or none do. */
  transactionSync<T>(fn: () => T): T;
}
