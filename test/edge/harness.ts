// Shared helpers for the edge tests (run in Node; the Workers code runs in real workerd).

export const ROOT = new URL('../..', import.meta.url).pathname;
export const COMPATIBILITY_DATE = '2026-11-01';
