// Errors a storage engine raises when it must stop the node rather than serve wrong data.

/** Data on disk failed a checksum or format check somewhere other than a torn tail. */
export class StorageCorruptError extends Error {
  override name = 'StorageCorruptError';
  readonly file: string;
  /** Byte offset in `file`, or -1 when the engine only knows a key (sqlite rows, leveldb keys). */
  readonly offset: number;

  constructor(file: string, offset: number, detail: string) {
    const where = offset >= 0 ? `${file} at offset ${offset}` : file;
    super(
      `storage corrupt: ${where}: ${detail}; refusing to start (restore this node from a peer: remove it, wipe its data dir, join again)`,
    );
    this.file = file;
    this.offset = offset;
  }
}

/** The data directory belongs to another engine, node or cluster, or is in use. */
export class DataDirError extends Error {
  override name = 'DataDirError';
}

/** A save was refused before touching disk (it breaks the log's shape or a limit). */
export class SaveRejectedError extends Error {
  override name = 'SaveRejectedError';
}

/** The engine failed a write earlier; its on-disk state is unknown, so it accepts nothing more. */
export class StorageFailedError extends Error {
  override name = 'StorageFailedError';
}
