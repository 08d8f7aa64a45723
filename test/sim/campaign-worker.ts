// A campaign worker thread: runs the seed ranges the main thread hands it and reports each
// range's aggregate and failures back.

import { parentPort, workerData } from 'node:worker_threads';
import type { SimOptions } from './options.ts';
import { addRun, emptyAggregate, type Aggregate } from './report.ts';
import { runSim, type SimResult } from './run.ts';

export interface RangeRequest {
  from: number;
  to: number;
}

export interface RangeReport {
  aggregate: Aggregate;
  failures: SimResult[];
}

const options = (workerData as { options: Partial<SimOptions> }).options;
const port = parentPort;
if (port === null) throw new Error('campaign-worker must run as a worker thread');

port.on('message', async (req: RangeRequest | null) => {
  if (req === null) {
    port.close();
    return;
  }
  const aggregate = emptyAggregate();
  const failures: SimResult[] = [];
  for (let seed = req.from; seed < req.to; seed++) {
    const r = await runSim(seed, options);
    addRun(aggregate, r);
    if (!r.ok) failures.push({ ...r, trace: [] });
  }
  const report: RangeReport = { aggregate, failures };
  port.postMessage(report);
});
