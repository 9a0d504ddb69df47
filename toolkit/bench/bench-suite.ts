/**
 * `npm run bench`: times the training step of this toolkit and of a PyTorch twin on the same machine, on the
 * same AR-step splits, and prints medians and ratios. Each measurement runs in a fresh process so peak
 * memory is its own. Results also go to runs/bench.json.
 *
 * Then the sampling speed and the cost of introspection hooks (bench/sampling.ts), the charts (bench/charts.ts)
 * and the explorer page in Chromium per backend against the Node sampler (bench/explorer.ts; `--explorer` alone).
 * Environment: BENCH_QUICK=1 runs only the main configuration; PYTHON picks the interpreter with torch.
 * `--soak [steps]` runs only the soak benchmark (bench/soak.ts: RSS and tensor count over 2000 training steps).
 * `--gpu` runs only the GPU table: the webgpu backend against the PyTorch twin on CUDA (fp32 eager, TF32, bf16
 * autocast), W384 D6 B64 on 8x8 tokens and W768 D12 B64 on 16x16 tokens (`runs/bench-gpu.json`);
 * BENCH_GPU_STEPS sets the timed steps (default 20), BENCH_GPU_ONLY picks cases by name; then GPU sampling, fused
 * kernels vs the twin's sampler on CUDA (bench/sampling.ts; BENCH_GPU_SAMPLING picks cases and skips training,
 * BENCH_GPU_REPEATS sets the repeats).
 */
import * as fs from 'fs';
import * as path from 'path';
import { findPython, runJson, TWIN } from './torch';
// the GPU and soak sections load only what they run (the chart bench needs a browser package, say)
type Sections = typeof import('./sampling') &
  typeof import('./charts') &
  typeof import('./soak') &
  typeof import('./explorer');
const section = <K extends keyof Sections>(file: string, name: K): Sections[K] => require(file)[name];

interface Case {
  name: string;
  args: string[];
  env?: Record<string, string>;
}

const CLI = path.resolve(__dirname, '..', 'src', 'cli', 'main.js');
const ROOT = path.resolve(__dirname, '..', '..', '..');

const base = ['--image-size', '8', '--patch-size', '1', '--channels', '48', '--cond-tokens', '4', '--classes', '10'];
const W256 = ['--hidden', '256', '--depth', '4', '--heads', '4', ...base];
const W384 = ['--hidden', '384', '--depth', '6', '--heads', '6', ...base];
const CASES: Case[] = [
  { name: 'W256 D4 B16 (target)', args: [...W256, '--batch', '16', '--steps', '20'] },
  {
    name: 'W256 D4 B16, XNNPACK only',
    args: [...W256, '--batch', '16', '--steps', '12'],
    env: { CAUSALFUSION_NATIVE_GEMM: '0' },
  },
  { name: 'W256 D4 B64 checkpointed', args: [...W256, '--batch', '64', '--steps', '6', '--checkpoint'] },
  { name: 'W384 D6 B16', args: [...W384, '--batch', '16', '--steps', '8'] },
  { name: 'W384 D6 B64 checkpointed', args: [...W384, '--batch', '64', '--steps', '4', '--checkpoint'] },
];

/** The explorer bench's page backends: $BENCH_EXPLORER_BACKENDS, else `dflt` (comma-separated). */
const explorerBackends = (dflt: string) => (process.env.BENCH_EXPLORER_BACKENDS ?? dflt).split(',');

function writeResults(name: string, results: Record<string, unknown>[]): void {
  const out = path.join(ROOT, 'runs');
  fs.mkdirSync(out, { recursive: true });
  fs.writeFileSync(path.join(out, name), JSON.stringify({ date: new Date().toISOString(), results }, null, 1));
  console.log(`written ${path.join(out, name)}`);
}

const GPU_CASES: Case[] = [
  {
    name: 'W384 D6 H6 B64, 8x8x48',
    args: [...W384, '--batch', '64', '--steps', process.env.BENCH_GPU_STEPS ?? '20', '--warmup', '3'],
  },
  {
    name: 'W768 D12 H12 B64, 16x16x4',
    args: [
      '--hidden',
      '768',
      '--depth',
      '12',
      '--heads',
      '12',
      '--image-size',
      '16',
      '--patch-size',
      '1',
      '--channels',
      '4',
      '--cond-tokens',
      '4',
      '--classes',
      '10',
      '--batch',
      '64',
      '--steps',
      process.env.BENCH_GPU_STEPS ?? '20',
      '--warmup',
      '3',
    ],
  },
];

/** The PyTorch twin replaying the AR splits of one of our bench runs (its untimed first steps included). */
function runTwin(
  python: string,
  ours: Record<string, unknown>,
  settings: Record<string, unknown>,
): Record<string, unknown> {
  const warmup = (ours.splits as unknown[]).length - (ours.stepsMs as unknown[]).length;
  return runJson(
    python,
    [TWIN],
    {},
    JSON.stringify({ config: ours.config, batch: ours.batch, splits: ours.splits, warmup, ...settings }),
  );
}

/** ours on webgpu vs the twin on CUDA in three precisions, same splits. */
function benchGpu(python: string | null): Record<string, unknown>[] {
  const results: Record<string, unknown>[] = [];
  console.log(
    'GPU case                      | ours webgpu median ms | torch fp32 | torch tf32 | torch bf16 | ratio to fp32 | ratio to tf32',
  );
  for (const c of GPU_CASES.filter((g) => g.name.includes(process.env.BENCH_GPU_ONLY ?? ''))) {
    const ours = runJson(process.execPath, [CLI, 'bench', '--json', ...c.args], { CAUSALFUSION_BACKEND: 'webgpu' });
    const twin: Record<string, number> = {};
    let gpu: unknown = null;
    if (python) {
      for (const precision of ['fp32', 'tf32', 'bf16']) {
        const r = runTwin(python, ours, { threads: 1, device: 'cuda', precision });
        twin[precision] = r.medianMs as number;
        gpu = r.gpu;
      }
    }
    const fmt = (v: number) => (Number.isFinite(v) ? v.toFixed(1) : 'n/a');
    const med = ours.medianMs as number;
    results.push({
      case: c.name,
      ours,
      torchMs: twin,
      gpu,
      ratioToFp32: med / twin.fp32,
      ratioToTf32: med / twin.tf32,
    });
    console.log(
      `${c.name.padEnd(30)}| ${fmt(med).padStart(21)} | ${fmt(twin.fp32).padStart(10)} | ${fmt(twin.tf32).padStart(10)} | ${fmt(twin.bf16).padStart(10)} | ${(med / twin.fp32).toFixed(1).padStart(12)}x | ${(med / twin.tf32).toFixed(1).padStart(12)}x`,
    );
  }
  return results;
}

async function main(): Promise<void> {
  if (process.argv.includes('--gpu')) {
    const python = findPython();
    const training = process.env.BENCH_GPU_SAMPLING ? [] : benchGpu(python);
    const sampling = await section('./sampling', 'benchGpuSampling')(
      python,
      Number(process.env.BENCH_GPU_REPEATS ?? 3),
    );
    return writeResults('bench-gpu.json', [...training, ...sampling]);
  }
  if (process.argv.includes('--explorer'))
    return writeResults(
      'bench-explorer.json',
      await section('./explorer', 'benchExplorer')(
        Number(process.env.BENCH_EXPLORER_REPEATS ?? 3),
        explorerBackends('wasm,webgl,webgpu'),
      ),
    );
  const soak = process.argv.indexOf('--soak');
  if (soak >= 0) {
    const steps = Number(process.argv[soak + 1] ?? 2000);
    if (!Number.isInteger(steps) || steps < 200)
      throw new Error(`--soak takes a step count >= 200, got "${process.argv[soak + 1]}"`);
    return writeResults('soak.json', [await section('./soak', 'benchSoak')(steps)]);
  }
  const cases = process.env.BENCH_QUICK ? CASES.slice(0, 1) : CASES;
  const python = findPython();
  if (!python) console.log('PyTorch not found (apt-get install python3-torch): ratios are skipped.');
  const results: Record<string, unknown>[] = [];
  console.log(
    'case                          | ours median (min-max) ms | peak RSS | torch 1 thr | torch 2 thr | ratio to best torch',
  );
  for (const c of cases) {
    const ours = runJson(process.execPath, [CLI, 'bench', '--json', ...c.args], {
      CAUSALFUSION_BACKEND: 'wasm',
      ...(c.env ?? {}),
    });
    const twin: Record<string, number> = {};
    if (python) {
      for (const threads of [1, 2]) {
        twin[`t${threads}`] = runTwin(python, ours, { threads }).medianMs as number;
      }
    }
    const best = python ? Math.min(twin.t1, twin.t2) : NaN;
    const ratio = (ours.medianMs as number) / best;
    results.push({ case: c.name, ours, torch1ThreadMs: twin.t1, torch2ThreadsMs: twin.t2, ratioToBestTorch: ratio });
    const fmt = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v.toFixed(0) : 'n/a');
    console.log(
      `${c.name.padEnd(30)}| ${fmt(ours.medianMs).padStart(6)} (${fmt(ours.minMs)}-${fmt(ours.maxMs)})`.padEnd(58) +
        `| ${fmt(ours.peakRssMb).padStart(5)} MB | ${fmt(twin.t1).padStart(8)} ms | ${fmt(twin.t2).padStart(8)} ms | ${Number.isFinite(ratio) ? ratio.toFixed(2) + 'x' : 'n/a'}`,
    );
  }
  results.push(...(await section('./sampling', 'benchSampling')(process.env.BENCH_QUICK ? 1 : 3, python)));
  results.push(...(await section('./charts', 'benchCharts')(process.env.BENCH_QUICK ? 1 : 3)));
  results.push(
    ...(await section('./explorer', 'benchExplorer')(process.env.BENCH_QUICK ? 1 : 3, explorerBackends('wasm'))),
  );
  writeResults('bench.json', results);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
