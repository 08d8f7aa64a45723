// Starting an engine's worker thread: the thread reports on its parentPort that it opened its
// database ({kind: 'ready'}) or could not ({kind: 'failed', message}). What the sqlite writer,
// the sqlite reader and the leveldb reader threads share.

import { Worker, type WorkerOptions } from 'node:worker_threads';

/** Starts the thread at `file`; resolves once it reports ready. An error, a failure or an exit
 *  before then rejects, naming `what` (e.g. "sqlite writer thread for /data/metcd.db"). */
export function startThread(file: URL, options: WorkerOptions, what: string): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(file, options);
    const settle = (err: Error | null): void => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (err === null) return resolve(worker);
      void worker.terminate();
      reject(err);
    };
    const onMessage = (m: { kind?: string; message?: string }): void => {
      if (m.kind === 'ready') settle(null);
      else if (m.kind === 'failed') settle(new Error(`${what} could not open it: ${m.message}`));
    };
    const onError = (err: Error): void => settle(err);
    const onExit = (code: number): void => settle(new Error(`${what} exited (code ${code}) before opening it`));
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
