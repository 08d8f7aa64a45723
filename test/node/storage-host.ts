// The parent side of fixtures/storage-host.ts: a PeerStorage whose engine runs in a child
// process, so the storage contract can crash it for real (SIGKILL, with saves in flight).
// Host processes are reused after a clean close, and one spare is kept starting, so a crash
// and reopen does not wait for a process to load its modules.

import { fork, type ChildProcess } from 'node:child_process';
import type { LoadedState, PeerStorage, SaveBatch } from '../../worker/peer/ports.ts';
import type { EngineName } from '../../node-runtime/storage/engine.ts';

const HOST = new URL('./fixtures/storage-host.ts', import.meta.url).pathname;

interface Reply {
  id: number;
  ok: boolean;
  error?: string;
  state?: LoadedState;
}

type Request =
  | { op: 'open'; engine: EngineName; dataDir: string; memoryRewriteMinBytes: number }
  | { op: 'load' | 'close' }
  | { op: 'save'; batch: SaveBatch };

/** One host process and its outstanding requests. */
class Host {
  readonly ready: Promise<void>;
  readonly exited: Promise<void>;
  private readonly child: ChildProcess;
  private readonly waiting = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  constructor() {
    this.child = fork(HOST, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.ready = new Promise((resolve, reject) => {
      this.waiting.set(0, { resolve: () => resolve(), reject });
      this.child.once('exit', (code, signal) => reject(new Error(`storage host exited (${code ?? signal}) before it was ready`)));
    });
    this.ready.catch(() => {}); // a spare that is never taken must not fail the run
    this.child.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if (w === undefined) return;
      if (r.ok) w.resolve(r);
      else w.reject(new Error(r.error));
    });
  }

  call(request: Request): Promise<Reply> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, ...request });
    });
  }

  /** SIGKILL: requests in flight never answer (their promises stay pending, as in a dead process). */
  async kill(): Promise<void> {
    this.waiting.clear();
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

const idle: Host[] = [];
let spare: Host | null = null;

async function takeHost(): Promise<Host> {
  const host = idle.pop() ?? spare ?? new Host();
  if (host === spare) spare = null;
  spare ??= new Host();
  await host.ready;
  return host;
}

/** Kills every host process (call when the tests are done). */
export async function stopStorageHosts(): Promise<void> {
  const all = [...idle.splice(0), ...(spare === null ? [] : [spare])];
  spare = null;
  await Promise.all(all.map((h) => h.kill()));
}

export class ChildStorage implements PeerStorage {
  private readonly host: Host;

  private constructor(host: Host) {
    this.host = host;
  }

  static async open(engine: EngineName, dataDir: string, memoryRewriteMinBytes: number): Promise<ChildStorage> {
    const host = await takeHost();
    try {
      await host.call({ op: 'open', engine, dataDir, memoryRewriteMinBytes });
    } catch (err) {
      idle.push(host);
      throw err;
    }
    return new ChildStorage(host);
  }

  async load(): Promise<LoadedState> {
    return (await this.host.call({ op: 'load' })).state!;
  }

  async save(batch: SaveBatch): Promise<void> {
    await this.host.call({ op: 'save', batch });
  }

  async close(): Promise<void> {
    await this.host.call({ op: 'close' });
    idle.push(this.host);
  }

  /** The process dies now, with whatever it was writing. */
  kill(): Promise<void> {
    return this.host.kill();
  }
}
