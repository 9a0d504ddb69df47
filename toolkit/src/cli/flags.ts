/**
 * The `causalfusion` flag table: each command declares its flags once ({kind, default, help, check}) and this
 * module derives the parser options, the checked values and the help text from that declaration, so a default
 * shown in --help is the default used.
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

/** One declared flag: how it reads, what --help says about it. */
export interface Flag<T> {
  /** The value's placeholder in --help (`N`, `FILE`, ...); absent for a switch. */
  metavar?: string;
  help: string;
  /** The default as --help shows it in brackets; absent when there is none. */
  shown?: string;
  /** The checked value of the raw argument (undefined: not given); throws a UsageError naming the flag. */
  read(name: string, raw: string | undefined): T;
}

export type FlagTable = Record<string, Flag<unknown>>;
/** The typed values of a flag table, keyed by flag name. */
export type FlagValues<F extends FlagTable> = { [K in keyof F]: F[K] extends Flag<infer T> ? T : never };

/** A condition on a number, with the words the error message uses (`> 0`, `in [0, 1)`). */
export interface Check {
  ok(x: number): boolean;
  says: string;
}
export const positive: Check = { ok: (x) => x > 0, says: '> 0' };
export const nonNegative: Check = { ok: (x) => x >= 0, says: '>= 0' };
export const atLeastOne: Check = { ok: (x) => x >= 1, says: '>= 1' };
export const unitInterval: Check = { ok: (x) => x >= 0 && x <= 1, says: 'in [0, 1]' };
export const probability: Check = { ok: (x) => x >= 0 && x < 1, says: 'in [0, 1)' };
export const decayRange: Check = { ok: (x) => x > 0 && x <= 1, says: 'in (0, 1]' };

/** Decimal digits only: `Number()` would also take "", " ", "0x10" and "1e3". */
const INTEGER = /^\s*[+-]?\d+\s*$/;
/** A plain decimal number; `Number("")` is 0, which must not pass for a value. */
const NUMBER = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;

function readInt(name: string, raw: string, min: number): number {
  const n = INTEGER.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${raw}"`);
  return n;
}

function readNum(name: string, raw: string, check?: Check): number {
  const n = NUMBER.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
  if (check && !check.ok(n)) throw new UsageError(`--${name} must be ${check.says}, got "${raw}"`);
  return n;
}

function readChoice<T extends string>(name: string, raw: string, choices: readonly T[]): T {
  if (!(choices as readonly string[]).includes(raw))
    throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got "${raw}"`);
  return raw as T;
}

/** The flag kinds. A default of `undefined` means "not given" reaches the command, which decides. */
export const flag = {
  /** An integer >= `min` (1 unless said). */
  int: <D extends number | undefined>(dflt: D, help: string, min = 1, metavar = 'N'): Flag<number | D> => ({
    metavar,
    help,
    shown: dflt === undefined ? undefined : String(dflt),
    read: (name, raw) => (raw === undefined ? dflt : readInt(name, raw, min)),
  }),
  /** A finite number, optionally checked. */
  num: <D extends number | undefined>(dflt: D, help: string, check?: Check, metavar = 'X'): Flag<number | D> => ({
    metavar,
    help,
    shown: dflt === undefined ? undefined : String(dflt),
    read: (name, raw) => (raw === undefined ? dflt : readNum(name, raw, check)),
  }),
  /** Free text (a path, a name the command checks). `shown` overrides how the default reads in --help. */
  text: <D extends string | undefined>(dflt: D, help: string, metavar = 'FILE', shown?: string): Flag<string | D> => ({
    metavar,
    help,
    shown: shown ?? dflt,
    read: (_name, raw) => raw ?? dflt,
  }),
  /** One of a fixed set of words. */
  oneOf: <T extends string, D extends T | undefined>(choices: readonly T[], dflt: D, help: string): Flag<T | D> => ({
    metavar: choices.length <= 4 ? choices.join('|') : 'NAME',
    help: choices.length <= 4 ? help : `${help}: ${choices.join(', ')}`,
    shown: dflt,
    read: (name, raw) => (raw === undefined ? dflt : readChoice(name, raw, choices)),
  }),
  /** A comma-separated list of integers >= 0. */
  intList: (help: string, shown?: string): Flag<number[] | undefined> => ({
    metavar: 'LIST',
    help,
    shown,
    read: (name, raw) => {
      if (raw === undefined) return undefined;
      const xs = raw.split(',').map((x) => (INTEGER.test(x) ? Number(x) : NaN));
      if (xs.some((x) => !Number.isSafeInteger(x) || x < 0))
        throw new UsageError(`--${name} must be a comma-separated list of integers, got "${raw}"`);
      return xs;
    },
  }),
  /** A switch: present or not. */
  switch: (help: string): Flag<boolean> => ({ help, read: (_name, raw) => raw !== undefined }),
};

/** --order: the token order of sampling. */
export const orderFlag = () =>
  flag.oneOf(['random', 'raster', 'block-raster', 'dilated'] as const, 'random' as OrderKind, 'token order');

/** Flags every command takes besides its own. */
const COMMON = ['help', 'backend'] as const;

/**
 * Parses argv against a flag table; unknown flags and bad values are usage errors that name the flag.
 * Returns the checked values plus `help` and the raw `backend` name (checked by the backend module).
 */
export function parseFlags<F extends FlagTable>(
  argv: string[],
  table: F,
): FlagValues<F> & { help: boolean; backend?: string } {
  const options: Record<string, { type: 'string' | 'boolean' }> = {
    help: { type: 'boolean' },
    backend: { type: 'string' },
  };
  for (const [name, f] of Object.entries(table)) {
    if ((COMMON as readonly string[]).includes(name)) throw new Error(`flag --${name} is declared by every command`);
    options[name] = { type: f.metavar === undefined ? 'boolean' : 'string' };
  }
  let raw: Record<string, string | boolean | undefined>;
  try {
    raw = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^.*?: /, ''));
  }
  const out: Record<string, unknown> = { help: !!raw.help, backend: raw.backend };
  if (raw.help) return out as FlagValues<F> & { help: boolean };
  for (const [name, f] of Object.entries(table)) {
    const r = raw[name];
    out[name] = f.read(name, r === undefined ? undefined : String(r));
  }
  return out as FlagValues<F> & { help: boolean; backend?: string };
}

/** The options block of --help, one flag per line, from the table. */
export function flagHelp(table: FlagTable): string {
  const heads = Object.entries(table).map(
    ([name, f]) => `  --${name}${f.metavar ? ` ${f.metavar}` : ''}${f.shown !== undefined ? ` [${f.shown}]` : ''}`,
  );
  const width = Math.min(40, Math.max(...heads.map((h) => h.length)) + 2);
  return Object.values(table)
    .map((f, i) => (heads[i].length < width ? heads[i].padEnd(width) : `${heads[i]}\n${' '.repeat(width)}`) + f.help)
    .join('\n');
}
