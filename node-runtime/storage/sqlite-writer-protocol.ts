// Messages between the sqlite engine (event loop) and its writer thread. A group travels as
// one transferred ArrayBuffer (encodeGroup), never as cloned objects.

export interface WriterData {
  file: string;
}

export type ToWriter = { kind: 'group'; id: number; buf: ArrayBuffer; bytes: number } | { kind: 'close' };

export type FromWriter =
  { kind: 'ready' } | { kind: 'done'; id: number } | { kind: 'failed'; id: number; message: string } | { kind: 'closed' };
