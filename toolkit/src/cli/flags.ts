/**
 * Flag values of the `causalfusion` command line: each parser returns a checked value or throws a
 * `UsageError` whose message starts with the flag's name.
 */
import { parseArgs } from 'util';
import { OrderKind } from '../factorization/orders';

/** A mistake in the command line (exit code 2, with a pointer to --help). */
export class UsageError extends Error {}

/** Runs a library check on a flag's value; its error becomes a usage error that names the flag. */
export function usage<T>(fn: () => T, flag: string): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

/** Decimal digits only: `Number()` would also take "", " ", "0x10" and "1e3". */
const INTEGER = /^\s*[+-]?\d+\s*$/;
/** A plain decimal number; `Number("")` is 0, which must not pass for a value. */
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

/** An integer flag >= `min`. */
export function int(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = INTEGER.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

/** A finite number flag. */
export function num(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = NUMBER.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

export type Values = Record<string, string | boolean | undefined>;

/** Parses argv against the declared flags (plus --help and --backend); unknown flags are usage errors. */
export function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): Values {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean' }, backend: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }).values as Values;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^.*?: /, ''));
  }
}

/** A flag that takes one of a fixed set of words. */
export function oneOf<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  if (v === undefined) return dflt;
  if (!(allowed as readonly string[]).includes(v))
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T;
}

/** A comma-separated list of integers >= 0. */
export function intList(name: string, v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(',');
  const xs = parts.map((x) => (INTEGER.test(x) ? Number(x) : NaN));
  if (xs.some((x) => !Number.isSafeInteger(x) || x < 0))
    throw new UsageError(`--${name} must be a comma-separated list of integers, got "${v}"`);
  return xs;
}

/** A number in [0, 1). */
export function probability(name: string, v: string | undefined, dflt: number): number {
  const p = num(name, v, dflt);
  if (p < 0 || p >= 1) throw new UsageError(`--${name} must be in [0, 1), got "${v}"`);
  return p;
}

/** --order: the token order of sampling. */
export function parseOrder(v: string | undefined): OrderKind {
  return oneOf('order', v, ['random', 'raster', 'block-raster', 'dilated'] as const, 'random');
}
