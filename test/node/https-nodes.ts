// Starts a cluster of real nodes whose addresses are https URLs on loopback (the TLS tests): each
// node gets its arguments from `argsOf` and the --initial-cluster of them all.

import { NodeProcess } from '../support/node-process.ts';
import { freePort } from './proc-cluster.ts';

export async function startHttpsNodes(argsOf: (id: string, port: number) => string[], ids = ['n1', 'n2', 'n3']): Promise<NodeProcess[]> {
  const ports = await Promise.all(ids.map(() => freePort()));
  const initial = ids.map((id, k) => `${id}=https://127.0.0.1:${ports[k]}`).join(',');
  return ids.map((id, k) => {
    const n = new NodeProcess(id, ports[k]!, [...argsOf(id, ports[k]!), '--initial-cluster', initial]);
    n.start();
    return n;
  });
}
