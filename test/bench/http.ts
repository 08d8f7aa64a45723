// Small HTTP helpers for the harness's own control traffic (status probes, preloading, the
// failover writer). The measured load comes from wrk, never from here.

export async function fetchJson<T>(url: string, init: RequestInit = {}, timeoutMs = 2000): Promise<T> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${init.method ?? 'GET'} ${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text) as T;
}

/** Runs `task(i)` for i in [0, count) with at most `parallel` in flight. */
export async function forEachParallel(count: number, parallel: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, count) }, worker));
}

/** Throws a clear error naming the first port on 127.0.0.1 that something already listens on. */
export async function assertPortsFree(ports: readonly number[], owner: string): Promise<void> {
  const { createServer } = await import('node:net');
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!free) throw new Error(`port ${port} (for ${owner}) is in use on 127.0.0.1; stop what holds it or pick another --base-port`);
  }
}
