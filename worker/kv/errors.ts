/** Bytes that are not a valid encoded command or state (garbage, truncation, wrong version). */
export class KvCodecError extends Error {
  constructor(message: string) {
    super(`kv codec: ${message}`);
    this.name = 'KvCodecError';
  }
}

/**
 * The bytes end before the encoding does, so more bytes could complete it: a stream decoder
 * waits for them where a whole-buffer decoder fails. `bytesNeeded`: the reader's bytes must
 * reach at least this length before the read can go further (a lower bound on the unit's end).
 */
export class KvCodecTruncatedError extends KvCodecError {
  readonly bytesNeeded: number;

  constructor(message: string, bytesNeeded: number) {
    super(message);
    this.name = 'KvCodecTruncatedError';
    this.bytesNeeded = bytesNeeded;
  }
}
