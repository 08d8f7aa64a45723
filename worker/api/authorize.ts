// Whether a request may do what it asks: the one hook both runtimes' routers call, once per
// request, before any route handler runs. It sees the route the router resolved the request to,
// not the raw URL, so every spelling of one resource (`/key/a`, `/key/%61`, `/members/p3/`)
// is judged as the same thing, and what it allowed is exactly what the handler then acts on.

import type { ApiRequest } from './exchange.ts';
import { ApiError } from './http.ts';

/** A request as the router resolved it. */
export interface ApiRoute {
  /** The request method; HEAD is answered as GET and judged as GET. */
  method: string;
  /** The route pattern that matched, as written in the route table (router.ts): '/key/:key+',
   *  '/members/:id', '/:key+' (a metcd-style key), '/raft/*' (a refused path)… */
  pattern: string;
  /** The pattern's parameters, percent-decoded: what the handler acts on. */
  params: Readonly<Record<string, string>>;
}

/** The request's headers (case-insensitive lookup). */
export type RequestHeaders = Pick<ApiRequest, 'header' | 'headerPairs'>;

/** null lets the request through; an ApiError (401 unauthorized, 403 forbidden) is answered
 *  instead of running the route. */
export type Authorize = (route: ApiRoute, headers: RequestHeaders) => ApiError | null | Promise<ApiError | null>;

/** Until the cluster has access control, every request is allowed. */
export const allowEverything: Authorize = () => null;

/** The routes that change who is in the cluster or who leads it, as "METHOD pattern". */
const CLUSTER_CHANGES: ReadonlySet<string> = new Set([
  'POST /join',
  'POST /transfer-leader',
  'DELETE /members/:id',
  'POST /members/:id/promote',
]);

/** Whether `route` changes membership or leadership. Judged on the resolved route, so no
 *  spelling of the path (`/join/`, `/join//`, `/x/../join`) gets past it. */
export function changesCluster(route: ApiRoute): boolean {
  return CLUSTER_CHANGES.has(`${route.method} ${route.pattern}`);
}

/**
 * Asks for the cluster token on the routes that change membership or leadership; everything else
 * is allowed. `tokenOk` is the host's constant-time check of the Authorization header.
 */
export function requireTokenForClusterChanges(tokenOk: (authorization: string | null) => boolean): Authorize {
  return (route, headers) =>
    changesCluster(route) && !tokenOk(headers.header('authorization'))
      ? new ApiError(401, 'unauthorized', 'missing or wrong cluster token (Authorization: Bearer <token>)', {
          'WWW-Authenticate': 'Bearer realm="metcd"',
        })
      : null;
}
