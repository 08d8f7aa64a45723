// The dashboard's static files (worker/ui/, built into worker/ui/dist/ by `npm run build:ui`):
//   GET /ui, GET /ui/     the page (index.html)
//   GET /ui/<asset>       one of UI_ASSETS, nothing else
// Open to anyone (route need `open`): the files hold no secret; the page asks its user for a
// token and sends it with every API call it makes. The host hands over a file's bytes by its
// name in UI_ASSETS (edge: the Worker's assets binding; Node: a read of the built directory),
// so no path built from the request ever reaches a file system. Every answer carries a strict
// Content-Security-Policy (no inline script, nothing from another origin) and the headers that
// keep the page out of frames and its URL out of Referer.

import type { ApiReply } from './exchange.ts';
import { ApiError } from './http.ts';
import type { ApiContext } from './host.ts';
import { queryParams } from './params.ts';

/** Every file the dashboard is made of, and its content type. */
export const UI_ASSETS = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
} as const;

export type UiAssetName = keyof typeof UI_ASSETS;

export function isUiAsset(name: string): name is UiAssetName {
  return Object.hasOwn(UI_ASSETS, name);
}

/** The page may load its own script and style and call its own origin's API; nothing else. */
export const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy': UI_CSP,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'X-Frame-Options': 'DENY',
  // A new build is picked up on the next load (the files are small).
  'Cache-Control': 'no-cache',
};

/** `name` of the dashboard: index.html for /ui and /ui/. */
export async function uiRoute(ctx: ApiContext, name: string): Promise<ApiReply> {
  queryParams(ctx.url, []);
  if (!isUiAsset(name)) throw new ApiError(404, 'not_found', `the dashboard has no file ${JSON.stringify(name)}`);
  const bytes = ctx.host.uiAsset === undefined ? null : await ctx.host.uiAsset(name);
  if (bytes === null) throw new ApiError(404, 'not_found', 'the dashboard is not built on this host (npm run build:ui)');
  return { status: 200, headers: { 'Content-Type': UI_ASSETS[name], ...SECURITY_HEADERS }, body: bytes };
}
