#!/usr/bin/env node
/**
 * `causalfusion` command line: one module per command in `commands/`, each with its declared flag table (flags.ts),
 * from which the parser, the checks and the help text are derived. Errors name the flag; usage errors exit 2.
 */
import '@tensorflow/tfjs'; // tfjs-core alone registers no gradient: the full package registers them all
import '../viz/node-host'; // the chart host of Node: static SVG, PNG and chart files
import { BACKENDS } from '../backend';
import { Command } from './command';
import { FlagTable } from './flags';
import { UsageError } from './flags';
import { train } from './commands/train';
import { sample } from './commands/sample';
import { edit } from './commands/edit';
import { evalCommand } from './commands/eval';
import { classifier } from './commands/classifier';
import { charts } from './commands/charts';
import { claims } from './commands/claims';
import { exportCommand } from './commands/export';
import { verify } from './commands/verify';
import { bench } from './commands/bench';
import { info } from './commands/info';
import { explorer } from './commands/explorer';
import { runCommand } from './command';

/** Every command, in the order `causalfusion --help` lists them. */
export const COMMANDS = [
  train,
  sample,
  edit,
  evalCommand,
  classifier,
  charts,
  claims,
  exportCommand,
  explorer,
  verify,
  bench,
  info,
].map((c) => c as unknown as Command<FlagTable>);

function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `causalfusion — Causal Diffusion Transformers (CausalFusion, arXiv 2412.12095) on TensorFlow.js

Usage: causalfusion <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)} ${c.summary}`).join('\n')}

Every command takes --backend auto|${BACKENDS.join('|')} (default: auto, or $CAUSALFUSION_BACKEND)
and --help.`;
}

/** The error's message, with what to do about it where the raw message says nothing useful. */
export function explainError(e: Error): string {
  // emscripten's out-of-memory abort in the wasm backend: the heap is capped at 4 GiB
  if (/^Aborted\(/.test(e.message))
    return `${e.message}: the wasm heap (4 GiB) ran out of memory; use a smaller --batch, or --checkpoint (bench) / --checkpoint-activations (train) to recompute activations`;
  if (/the GPU ran out of memory|GPUOutOfMemoryError|Out of memory/i.test(e.message))
    return `${e.message}: use a smaller --batch, or --checkpoint-activations (train) / --checkpoint (bench) to recompute activations instead of keeping them`;
  return e.message;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(mainHelp());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  try {
    if (!cmd) throw new UsageError(`unknown command "${name}" (use ${COMMANDS.map((c) => c.name).join(', ')})`);
    return await runCommand(cmd, rest);
  } catch (e) {
    console.error(`causalfusion ${name}: ${explainError(e as Error)}`);
    if (e instanceof UsageError) console.error(`Run "causalfusion ${cmd ? `${name} ` : ''}--help" for usage.`);
    return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
