/**
 * `npm run bench`: times the training step of this toolkit and of a PyTorch twin on the same machine, on the
 * same AR-step splits, and prints medians and ratios. Each measurement runs in a fresh process so peak
 * memory is its own. Results also go to runs/bench.json.
 *
 * Then the sampling speed and the cost of introspection hooks (bench/sampling.ts), the charts (bench/charts.ts)
 * and the explorer page in Chromium per backend against the Node sampler (bench/explorer.ts; `--explorer` alone).
 * Environment: BENCH_QUICK=1 runs only the main configuration; PYTHON picks the interpreter with torch.
 * `--gpu-curve [steps]` trains on webgpu with tensor-core and with fp32 matmuls and compares the loss curves
 * (bench/gpu-curve.ts). `--soak [steps]` runs only the soak benchmark (bench/soak.ts: RSS and tensor count over 2000 training steps).
 * `--gpu` runs only the GPU tables (`runs/bench-gpu.json`), the sections BENCH_GPU_SECTIONS names (default
 * `training,matmul,sampling`; `attention` adds the two kernels of attention over the KV cache and training's flash
 * attention in fp32 and on tensor cores, bench/attention.ts;
 * `kernels` a training step of each case by kernel, its GPU time from timestamp queries):
 * training, the webgpu backend (tensor cores and fp32 matmuls) against the PyTorch twin on CUDA (fp32 eager, TF32,
 * bf16 autocast) at W384 D6 B64 on 8x8 tokens, W768 D12 B32 and B64 on 16x16 tokens and the paper's ablation model
 * (W1024 D24, 256 tokens) at B16 (BENCH_GPU_STEPS sets the timed steps, default 20, BENCH_GPU_ONLY picks cases by
 * name); the tensor-core matmul on a step's products per block shape against torch.matmul bf16 / fp32
 * (bench/matmul.ts); GPU sampling, fused kernels vs the twin's sampler on CUDA (bench/sampling.ts;
 * BENCH_GPU_SAMPLING picks cases). BENCH_GPU_REPEATS sets the repeats of the last three.
 */
import * as fs from 'fs';
import * as path from 'path';
import { findPython, runJson, TWIN } from './torch';
import { BenchResult, kernelTable, StepKernels } from '../src/train/step-timer';
// the GPU and soak sections load only what they run (the chart bench needs a browser package, say)
type Sections = typeof import('./sampling') &
  typeof import('./attention') &
  typeof import('./matmul') &
  typeof import('./gpu-curve') &
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
  { name: 'W256 D4 B64', args: [...W256, '--batch', '64', '--steps', '6'] },
  { name: 'W384 D6 B16', args: [...W384, '--batch', '16', '--steps', '8'] },
  { name: 'W384 D6 B64', args: [...W384, '--batch', '64', '--steps', '4'] },
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

const gpuSteps = ['--steps', process.env.BENCH_GPU_STEPS ?? '20', '--warmup', '3'];
const W768 = ['--hidden', '768', '--depth', '12', '--heads', '12', '--image-size', '16', '--patch-size', '1'];
const GPU_CASES: Case[] = [
  { name: 'W384 D6 H6 B64, 8x8x48', args: [...W384, '--batch', '64', ...gpuSteps] },
  { name: 'W768 D12 H12 B32, 16x16x4', args: [...W768, ...latent(4), '--batch', '32', ...gpuSteps] },
  { name: 'W768 D12 H12 B64, 16x16x4', args: [...W768, ...latent(4), '--batch', '64', ...gpuSteps] },
  {
    name: 'ablation W1024 D24 H16 B16, 256 tok',
    args: [
      ...['--hidden', '1024', '--depth', '24', '--heads', '16', '--image-size', '32', '--patch-size', '2'],
      ...latent(4),
      ...['--batch', '16', '--steps', process.env.BENCH_GPU_STEPS ?? '20', '--warmup', '3'],
    ],
  },
];

function latent(channels: number): string[] {
  return ['--channels', String(channels), '--cond-tokens', '4', '--classes', '10'];
}

/** Model FLOPs of one training step (forward + backward = 3x the forward's 2·params·tokens + attention). */
function stepFlops(ours: Record<string, unknown>): number {
  const c = ours.config as {
    hiddenSize: number;
    depth: number;
    numCondTokens: number;
    inputSize: number;
    patchSize: number;
  };
  const L = (c.inputSize / c.patchSize) ** 2;
  const splits = ours.splits as number[][];
  const seq = splits.reduce((s, sp) => s + c.numCondTokens + 2 * L - sp[sp.length - 1], 0) / splits.length;
  const D = c.hiddenSize;
  const perToken = c.depth * (12 * D * D + 2 * seq * D); // weights (qkv, proj, mlp) + q·kᵀ and p·v
  return 3 * 2 * perToken * seq * (ours.batch as number);
}

/** A bench run's buffer-pool misses a step, their MiB, and its trims ('n/a' off webgpu). */
function poolColumn(p: BenchResult['pool']): string {
  return p ? `${p.buffersCreatedPerStep.toFixed(1)} (${p.mbCreatedPerStep.toFixed(0)}), ${p.trims}` : 'n/a';
}

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

/**
 * ours on webgpu (tensor cores and fp32 matmuls) vs the twin on CUDA (fp32, TF32, bf16 autocast), same splits:
 * medians, same-precision ratios (tensor cores / bf16, fp32 / fp32), peak GPU memory and model TFLOP/s.
 */
function benchGpu(python: string | null): Record<string, unknown>[] {
  const results: Record<string, unknown>[] = [];
  console.log(
    'GPU case                            | ours TC ms | ours fp32 | torch fp32 | tf32  | bf16  | TC/bf16 | fp32/fp32 | GPU GB ours / torch | TFLOP/s ours TC / torch bf16 | ours TC: host ms / dispatches / pool misses (MiB) a step, trims',
  );
  for (const c of GPU_CASES.filter((g) => g.name.includes(process.env.BENCH_GPU_ONLY ?? ''))) {
    const run = (matmul: string) =>
      runJson(process.execPath, [CLI, 'bench', '--json', ...c.args], {
        CAUSALFUSION_BACKEND: 'webgpu',
        CAUSALFUSION_MATMUL: matmul,
      });
    const tc = run('f16');
    const f32 = run('f32');
    const twin: Record<string, Record<string, number>> = {};
    let gpu: unknown = null;
    if (python) {
      for (const precision of ['fp32', 'tf32', 'bf16']) {
        const r = runTwin(python, tc, { threads: 1, device: 'cuda', precision });
        twin[precision] = r as Record<string, number>;
        gpu = r.gpu;
      }
    }
    const ms = (r?: Record<string, unknown>) => (r?.medianMs as number) ?? NaN;
    const flops = stepFlops(tc);
    const row = {
      case: c.name,
      ours: tc,
      oursFp32: f32,
      torch: twin,
      gpu,
      ratioTensorCoresToBf16: ms(tc) / ms(twin.bf16),
      ratioFp32ToFp32: ms(f32) / ms(twin.fp32),
      peakGpuMb: {
        oursTensorCores: tc.peakGpuMb,
        oursFp32: f32.peakGpuMb,
        torchFp32: twin.fp32?.peakGpuMb,
        torchBf16: twin.bf16?.peakGpuMb,
      },
      tflops: {
        oursTensorCores: flops / ms(tc) / 1e9,
        oursFp32: flops / ms(f32) / 1e9,
        torchFp32: flops / ms(twin.fp32) / 1e9,
        torchBf16: flops / ms(twin.bf16) / 1e9,
      },
    };
    results.push(row);
    const f = (v: number, p = 1) => (Number.isFinite(v) ? v.toFixed(p) : 'n/a');
    const gb = (v: unknown) => f((v as number) / 1024);
    console.log(
      `${c.name.padEnd(36)}| ${f(ms(tc)).padStart(10)} | ${f(ms(f32)).padStart(9)} | ${f(ms(twin.fp32)).padStart(10)} | ${f(ms(twin.tf32)).padStart(5)} | ${f(ms(twin.bf16)).padStart(5)} | ${f(row.ratioTensorCoresToBf16, 2).padStart(6)}x | ${f(row.ratioFp32ToFp32, 2).padStart(8)}x | ${gb(tc.peakGpuMb)} / ${gb(twin.bf16?.peakGpuMb)} | ${f(row.tflops.oursTensorCores)} / ${f(row.tflops.torchBf16)} | ${f(tc.hostMsPerStep as number)} / ${tc.dispatchesPerStep ?? 'n/a'} / ${poolColumn(tc.pool as BenchResult['pool'])}`,
    );
  }
  return results;
}

/**
 * A training step of each GPU case on tensor cores, its GPU time by kernel (`causalfusion bench --kernels`: each
 * dispatch between timestamp queries, after 3 warm-up steps): where the step's GPU time goes.
 */
function benchGpuKernels(): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const c of GPU_CASES.filter((g) => g.name.includes(process.env.BENCH_GPU_ONLY ?? ''))) {
    const args = [...c.args, '--steps', '1', '--warmup', '3', '--kernels']; // later flags win
    const r = runJson(process.execPath, [CLI, 'bench', '--json', ...args], {
      CAUSALFUSION_BACKEND: 'webgpu',
      CAUSALFUSION_MATMUL: 'f16',
    }) as { kernels?: StepKernels };
    const k = r?.kernels;
    if (!k) continue;
    console.log(`\n${c.name}, tensor cores: GPU ${k.gpuMs.toFixed(1)} ms a step by kernel (each dispatch timed alone)`);
    for (const line of kernelTable(k, 15)) console.log(line);
    rows.push({ case: c.name, section: 'kernels', ...k });
  }
  return rows;
}

async function main(): Promise<void> {
  if (process.argv.includes('--gpu')) {
    const python = findPython(true);
    if (!python) console.log('no PyTorch with CUDA here: the GPU tables show ours alone');
    const sections = (process.env.BENCH_GPU_SECTIONS ?? 'training,matmul,sampling').split(',');
    const repeats = (fallback: number) => Number(process.env.BENCH_GPU_REPEATS || fallback);
    const rows = sections.includes('training') ? benchGpu(python) : [];
    if (sections.includes('matmul')) rows.push(...(await section('./matmul', 'benchGpuMatmul')(python, repeats(10))));
    if (sections.includes('sampling'))
      rows.push(...(await section('./sampling', 'benchGpuSampling')(python, repeats(3))));
    if (sections.includes('attention'))
      rows.push(
        ...(await section('./attention', 'benchGpuCachedAttention')(repeats(3))),
        ...(await section('./attention', 'benchGpuTrainingAttention')(repeats(3))),
      );
    if (sections.includes('kernels')) rows.push(...benchGpuKernels());
    return writeResults('bench-gpu.json', rows);
  }
  const curve = process.argv.indexOf('--gpu-curve');
  if (curve >= 0) {
    const steps = Number(process.argv[curve + 1] ?? 2000);
    return writeResults('gpu-curve.json', [section('./gpu-curve', 'benchGpuCurve')(steps)]);
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
