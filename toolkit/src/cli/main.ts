#!/usr/bin/env node
/**
 * `causalfusion` command line: verify, bench, info. Every flag is validated; errors name the flag.
 */
import { parseArgs } from 'util';
import { BACKENDS, initBackend, parseBackendName } from '../backend';
import { loadReference } from '../io/reference';
import { formatVerifyTable, verifyReference } from '../verify';
import { BENCH_DEFAULTS, BenchOptions, benchTrainStep } from '../bench';
import { PRESETS, makeConfig, numPatches } from '../model/config';
import { countParameters } from '../model/params';

const HELP: Record<string, string> = {
  main: `causalfusion — Causal Diffusion Transformers (CausalFusion, arXiv 2412.12095) on TensorFlow.js

Usage: causalfusion <command> [options]

Commands:
  verify   compare this install with a reference fixture of the official PyTorch code
  bench    time one training step (forward, backward, clip, AdamW, EMA)
  info     backend, presets and their sizes

Every command takes --backend auto|${BACKENDS.join('|')} (default: auto, or $CAUSALFUSION_BACKEND)
and --help.`,
  verify: `Usage: causalfusion verify --reference FILE [--backend NAME] [--json]

Loads a fixture of the official code's outputs (masks, AR weights, step law, schedule, one training
forward/backward, KV-cache inference with CFG; any model config), recomputes everything here and prints max
abs / rel errors per item. Exits 1 when anything is outside tolerance:
masks and AR weights exact; step law, schedule, respacing 1e-12; attention, noise prediction, MSE, loss 1e-4
relative; gradients 1e-3 relative (gradients whose true value is ~0 are skipped and marked); inference 1e-4.`,
  bench: `Usage: causalfusion bench [--json] [options]

Times the training step on the active backend and prints the median step time, peak memory and backend.
Options (defaults in brackets):
  --hidden N [${BENCH_DEFAULTS.hidden}]  --depth N [${BENCH_DEFAULTS.depth}]  --heads N [${BENCH_DEFAULTS.heads}]
  --image-size N [${BENCH_DEFAULTS.imageSize}]  --patch-size N [${BENCH_DEFAULTS.patchSize}]  --channels N [${BENCH_DEFAULTS.channels}]
  --cond-tokens N [${BENCH_DEFAULTS.condTokens}]  --classes N [${BENCH_DEFAULTS.classes}]  --batch N [${BENCH_DEFAULTS.batch}]
  --steps N [${BENCH_DEFAULTS.steps}] timed steps  --warmup N [${BENCH_DEFAULTS.warmup}] untimed steps first
  --checkpoint  recompute blocks in the backward pass (bounded memory, for large batches)
  --decay G [${BENCH_DEFAULTS.arStepDecay}] AR-step decay  --seed N [${BENCH_DEFAULTS.seed}]
  --json  one JSON line (with the AR-step splits used, for a PyTorch twin to replay)`,
  info: `Usage: causalfusion info [--backend NAME]

Prints the chosen backend and the model presets with token counts and parameter counts.`,
};

class UsageError extends Error {}

function int(name: string, v: string | undefined, dflt: number, min = 1): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return n;
}

function num(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${v}"`);
  return n;
}

type Values = Record<string, string | boolean | undefined>;

function parse(argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): Values {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean' }, backend: { type: 'string' } }, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/^.*?: /, ''));
  }
}

function backendName(v: Values) {
  return typeof v.backend === 'string' ? parseBackendName(v.backend) : undefined;
}

async function backendFrom(v: Values, quiet = false) {
  return initBackend({ backend: backendName(v), quiet });
}

async function cmdVerify(argv: string[]): Promise<number> {
  const v = parse(argv, { reference: { type: 'string' }, json: { type: 'boolean' } });
  if (v.help) return console.log(HELP.verify), 0;
  backendName(v);
  if (typeof v.reference !== 'string') throw new UsageError('verify needs --reference FILE (a fixture of the official code, e.g. ../shared/reference/causalfusion-reference.json)');
  const ref = loadReference(v.reference);
  const report = await backendFrom(v, !!v.json);
  const rows = verifyReference(ref);
  const failed = rows.filter((r) => !r.pass).length;
  if (v.json) console.log(JSON.stringify({ backend: report.chosen, failed, rows }));
  else console.log(formatVerifyTable(rows));
  return failed ? 1 : 0;
}

async function cmdBench(argv: string[]): Promise<number> {
  const names = ['hidden', 'depth', 'heads', 'image-size', 'patch-size', 'channels', 'cond-tokens', 'classes', 'batch', 'steps', 'warmup', 'decay', 'seed'];
  const v = parse(argv, { ...Object.fromEntries(names.map((n) => [n, { type: 'string' as const }])), json: { type: 'boolean' }, checkpoint: { type: 'boolean' } });
  if (v.help) return console.log(HELP.bench), 0;
  const s = (k: string) => v[k] as string | undefined;
  const d = BENCH_DEFAULTS;
  const opts: BenchOptions = {
    hidden: int('hidden', s('hidden'), d.hidden),
    depth: int('depth', s('depth'), d.depth),
    heads: int('heads', s('heads'), d.heads),
    imageSize: int('image-size', s('image-size'), d.imageSize),
    patchSize: int('patch-size', s('patch-size'), d.patchSize),
    channels: int('channels', s('channels'), d.channels),
    condTokens: int('cond-tokens', s('cond-tokens'), d.condTokens, 0),
    classes: int('classes', s('classes'), d.classes),
    batch: int('batch', s('batch'), d.batch),
    steps: int('steps', s('steps'), d.steps),
    warmup: int('warmup', s('warmup'), d.warmup, 0),
    checkpoint: !!v.checkpoint,
    arStepDecay: num('decay', s('decay'), d.arStepDecay),
    seed: int('seed', s('seed'), d.seed, 0),
  };
  // validate the shape before starting a backend, so a bad config fails fast with one message
  makeConfig(null, { inputSize: opts.imageSize, patchSize: opts.patchSize, latentChannels: opts.channels, hiddenSize: opts.hidden, depth: opts.depth, numHeads: opts.heads, numCondTokens: opts.condTokens, numClasses: opts.classes });
  await backendFrom(v, !!v.json);
  const r = benchTrainStep(opts);
  if (v.json) {
    console.log(JSON.stringify({ backend: r.backend, medianMs: r.medianMs, minMs: r.minMs, maxMs: r.maxMs, peakRssMb: r.peakRssMb, params: r.params, batch: r.batch, checkpoint: r.checkpoint, tensorsLeakedPerStep: r.tensorsLeakedPerStep, stepsMs: r.stepsMs, splits: r.splits, config: r.config }));
  } else {
    console.log(`backend ${r.backend}: ${r.params.toLocaleString()} params, batch ${r.batch}${r.checkpoint ? ', checkpointed' : ''}`);
    console.log(`median step ${r.medianMs.toFixed(0)} ms (min ${r.minMs.toFixed(0)}, max ${r.maxMs.toFixed(0)}, ${r.stepsMs.length} steps), peak RSS ${r.peakRssMb.toFixed(0)} MB, leaked tensors/step ${r.tensorsLeakedPerStep}`);
  }
  return 0;
}

async function cmdInfo(argv: string[]): Promise<number> {
  const v = parse(argv, {});
  if (v.help) return console.log(HELP.info), 0;
  const rep = await backendFrom(v, true);
  console.log(rep.line);
  for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) {
    const c = makeConfig(name);
    console.log(`preset ${name.padEnd(16)} ${String(numPatches(c)).padStart(4)} tokens  ${(countParameters(c) / 1e6).toFixed(2).padStart(8)} M params  hidden ${c.hiddenSize} depth ${c.depth} heads ${c.numHeads}`);
  }
  return 0;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { verify: cmdVerify, bench: cmdBench, info: cmdInfo };

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(HELP.main);
    return cmd ? 0 : 2;
  }
  const run = COMMANDS[cmd];
  try {
    if (!run) throw new UsageError(`unknown command "${cmd}" (use ${Object.keys(COMMANDS).join(', ')})`);
    return await run(rest);
  } catch (e) {
    console.error(`causalfusion ${cmd}: ${(e as Error).message}`);
    if (e instanceof UsageError) console.error(`Run "causalfusion ${cmd in COMMANDS ? `${cmd} ` : ''}--help" for usage.`);
    return 2;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
