// The shared router over each peer of an in-process test cluster (test/peer/cluster.ts), as a
// host would make it: redirects to the leader's address, and a log that fails the test on an
// internal error. Host fields a test needs (authorize, a clock, proxy mode) are passed through.

import { createApiRouter } from '../../worker/api/router.ts';
import type { ApiHost, ApiRouter } from '../../worker/api/router.ts';
import type { NodeId } from '../../worker/raft/types.ts';
import type { TestCluster } from '../peer/cluster.ts';

export function routersFor(c: TestCluster, host: (id: NodeId) => Partial<ApiHost> = () => ({})): (id: NodeId) => ApiRouter {
  const routers = new Map<NodeId, ApiRouter>();
  return (id) => {
    let r = routers.get(id);
    if (r === undefined) {
      r = createApiRouter({
        peer: c.peer(id),
        mode: 'redirect',
        leaderUrl: (request, _leader, address) => {
          const url = new URL(request.url);
          return `${address}${url.pathname}${url.search}`;
        },
        log: (level, event, fields) => {
          if (level === 'error') throw new Error(`router logged ${event}: ${JSON.stringify(fields)}`);
        },
        ...host(id),
      });
      routers.set(id, r);
    }
    return r;
  };
}
