/** What trying one backend returns, and the helpers every attempt uses. */

/** The outcome of trying one backend. */
export type Attempt = { ok: true; detail: string } | { ok: false; why: string };

/** Optional packages are resolved at run time, so that a missing one is a skip, not a crash. */
export function tryRequire(id: string): unknown {
  return require(id);
}

/** The first line of an error, short enough for the one-line backend report. */
export function errMsg(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.split('\n')[0].slice(0, 160);
}
