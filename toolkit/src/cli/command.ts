/**
 * One `causalfusion` command: its flag table, its --help text (generated from the table) and what it runs.
 */
import { BACKENDS, BackendReport, initBackend, parseBackendName } from '../backend';
import { FlagTable, FlagValues, flagHelp, parseFlags } from './flags';

export type { FlagTable };

/** What a running command may ask of the command line. */
export interface CommandContext {
  /** Starts the backend chosen by --backend (or $CAUSALFUSION_BACKEND, or the fastest that works). */
  startBackend(quiet?: boolean): Promise<BackendReport>;
}

export interface Command<F extends FlagTable> {
  name: string;
  /** One line for `causalfusion --help`. */
  summary: string;
  /** What follows the command name in the usage line (default `[options]`). */
  synopsis?: string;
  /** The paragraph of `causalfusion NAME --help` above the options. */
  about: string;
  flags: F;
  /** Runs with checked flag values; returns the exit code. */
  run(v: FlagValues<F>, ctx: CommandContext): Promise<number>;
}

/** Declares a command (the identity, for type inference of the flag values). */
export const defineCommand = <F extends FlagTable>(c: Command<F>): Command<F> => c;

/** Flags every command takes, for its help text (parseFlags declares them). */
const COMMON_HELP: FlagTable = {
  backend: {
    metavar: ['auto', ...BACKENDS].join('|'),
    shown: 'auto, or $CAUSALFUSION_BACKEND',
    help: 'tfjs backend',
    read: () => undefined,
  },
  help: { help: 'this text', read: () => undefined },
};

/** The full --help text of a command. */
export function commandHelp(c: Command<FlagTable>): string {
  return `Usage: causalfusion ${c.name} ${c.synopsis ?? '[options]'}\n\n${c.about}\n\nOptions (defaults in brackets):\n${flagHelp({ ...c.flags, ...COMMON_HELP })}`;
}

/** Parses argv for the command and runs it (or prints its help). */
export async function runCommand(c: Command<FlagTable>, argv: string[]): Promise<number> {
  const v = parseFlags(argv, c.flags);
  if (v.help) return (console.log(commandHelp(c)), 0);
  // checked before anything loads, so a misspelt backend fails first and alone
  const backend = v.backend === undefined ? undefined : parseBackendName(v.backend);
  return c.run(v, { startBackend: (quiet = false) => initBackend({ backend, quiet }) });
}
