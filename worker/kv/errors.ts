/** Bytes that are not a valid encoded command or state (garbage, truncation, wrong version). */
export class KvCodecError extends Error {
  constructor(message: string) {
    super(`kv codec: ${message}`);
    this.name = 'KvCodecError';
  }
}
