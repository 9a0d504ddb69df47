/**
 * Sampling speed of the shipped MNIST model: wall time per grid for S = 1, 2, 4, 8, L AR steps in raster and
 * random order, against the PyTorch twin's KV-cache sampler (same shapes, best of 1 and 2 threads) when torch is
 * installed, and the cost of introspection (no observer vs an empty observer vs a recorder taking one
 * layer's attention at one diffusion step per AR step plus all trajectories of one sample).
 * Prints a table and returns the rows (bench-suite writes them to runs/bench.json).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '../src/backend';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { makeConfig } from '../src/model/config';
import { MatmulPrecision, tensorCoresAvailable, withMatmulPrecision } from '../src/backend/wgsl/matmul';
import { loadModel } from '../src/io/checkpoint';
import { sampleImages, SampleOptions, samplingRun } from '../src/sample/sampler';
import { kernelTimes, webgpuPeakMb, wgslDispatches } from '../src/backend/wgsl/runner';
import { SamplingRecorder } from '../src/introspect/recorders';
import { SHIPPED_MODEL } from '../src/data/assets';
import { numPatches } from '../src/model/config';
import { median } from '../src/util/median';
import { runJson, TWIN } from './torch';

export async function benchSampling(repeats = 3, python: string | null = null): Promise<Record<string, unknown>[]> {
  await initBackend({ backend: 'wasm', quiet: true });
  const model = loadModel(SHIPPED_MODEL);
  const L = numPatches(model.config);
  const labels = Array.from({ length: 10 }, (_, i) => i);
  const steps = 50;
  const time = (o: Omit<SampleOptions, 'labels'>) => {
    const ms: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = process.hrtime.bigint();
      sampleImages(model, { labels, diffusionSteps: String(steps), clipDenoised: true, seed: r, ...o });
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return median(ms);
  };
  const torch = (arSteps: number) =>
    python
      ? Math.min(
          ...[1, 2].map(
            (threads) =>
              runJson(
                python,
                [TWIN],
                {},
                JSON.stringify({
                  mode: 'sample',
                  config: model.config,
                  batch: labels.length,
                  arSteps,
                  diffusionSteps: steps,
                  repeats,
                  threads,
                }),
              ).medianMs as number,
          ),
        )
      : NaN;
  const rows: Record<string, unknown>[] = [];
  console.log(`\nsampling 10 digits, ${steps} DDPM steps per AR step (shipped model, L = ${L}), median of ${repeats}`);
  console.log('AR steps | raster ms | random ms | torch ms (best of 1, 2 threads) | ratio (random / torch)');
  for (const S of [1, 2, 4, 8, L]) {
    const raster = time({ arSteps: S, order: 'raster' });
    const random = time({ arSteps: S, order: 'random' });
    const torchMs = torch(S);
    rows.push({ kind: 'sampling', arSteps: S, rasterMs: raster, randomMs: random, torchMs, ratio: random / torchMs });
    const ratio = Number.isFinite(torchMs) ? `${(random / torchMs).toFixed(2)}x` : 'n/a';
    console.log(
      `${String(S).padStart(8)} | ${raster.toFixed(0).padStart(9)} | ${random.toFixed(0).padStart(9)} | ${torchMs.toFixed(0).padStart(32)} | ${ratio}`,
    );
  }
  const plain = time({ arSteps: 4 });
  const empty = time({ arSteps: 4, observer: {} });
  const recorded = time({
    arSteps: 4,
    observer: new SamplingRecorder({
      attention: { layers: [0], diffusionSteps: [25] },
      trajectories: { samples: [0] },
    }),
  });
  rows.push({ kind: 'hook-cost', arSteps: 4, noObserverMs: plain, emptyObserverMs: empty, recorderMs: recorded });
  console.log(
    `hook cost (S = 4): no observer ${plain.toFixed(0)} ms, empty observer ${empty.toFixed(0)} ms (${((empty / plain - 1) * 100).toFixed(1)}%), recorder ${recorded.toFixed(0)} ms (${((recorded / plain - 1) * 100).toFixed(1)}%)`,
  );
  model.dispose();
  return rows;
}

/**
 * The GPU's own time per denoising step of the fused fp32 path (timestamp queries around each dispatch, over
 * steps 5-9 of the first chain), in all and by kernel; NaN where the adapter has no timestamps.
 */
async function gpuKernelMs(
  model: CausalDiffusionModel,
  opts: SampleOptions,
): Promise<{ msPerStep: number; byKernel: Record<string, number> }> {
  const run = samplingRun(model, { ...opts, seed: 0, fused: true });
  const profiled = 5;
  let steps = 0;
  let total = 0;
  const byKernel: Record<string, number> = {};
  for (let seen = 0; steps < profiled;) {
    let kind = '';
    const info = await tf.time(() => {
      const p = run.next();
      kind = p.done ? 'done' : p.value.kind;
    });
    if (kind === 'done') break;
    if (kind !== 'step' || ++seen <= profiled) continue;
    steps++;
    total += info.kernelMs as number;
    for (const k of kernelTimes(info)) byKernel[k.name] = (byKernel[k.name] ?? 0) + k.ms / profiled;
  }
  run.return(undefined as never); // ends the run early: its engine frees the GPU tensors
  return total > 0 ? { msPerStep: total / steps, byKernel } : { msPerStep: NaN, byKernel };
}

/** One GPU sampling case: a preset (random weights), images, DDPM steps, AR steps, guidance. */
interface GpuSamplingCase {
  preset: 'mnist-base' | 'ablation';
  images: number;
  steps: number;
  arSteps: number;
  cfgScale: number;
}

const GPU_SAMPLING: GpuSamplingCase[] = [
  ...[1, 7, 49].flatMap((arSteps) =>
    [1, 4].map((cfgScale) => ({ preset: 'mnist-base' as const, images: 80, steps: 50, arSteps, cfgScale })),
  ),
  ...[1, 16].map((arSteps) => ({ preset: 'ablation' as const, images: 8, steps: 25, arSteps, cfgScale: 1 })),
];

/**
 * Sampling on the GPU (`--gpu`): the fused WebGPU path with fp32 matmuls and on tensor cores (fp16 inputs, where
 * available), and the op-by-op path for the 49-token model at S = 1, against the twin's KV-cache sampler on CUDA
 * (eager fp32, and bf16 autocast), same batch, steps, AR steps and guidance, random weights; medians of `repeats`
 * runs after a warm-up. BENCH_GPU_SAMPLING picks cases by name. Per case also the host's ms and the GPU's own ms
 * per denoising step (by kernel).
 */
export async function benchGpuSampling(python: string | null, repeats = 3): Promise<Record<string, unknown>[]> {
  await initBackend({ backend: 'webgpu', quiet: true });
  const rows: Record<string, unknown>[] = [];
  console.log(`\nGPU sampling (random weights, DDPM, clipped x0), median of ${repeats} after a warm-up`);
  console.log(
    'case                                   | ours fused fp32 ms | fused TC | op-by-op | torch fp32 | torch bf16 | fp32 / fp32 | TC / bf16 | per step: host ms / GPU ms / dispatches | set-up / after the last step ms',
  );
  const only = process.env.BENCH_GPU_SAMPLING ?? '';
  // BENCH_GPU_SAMPLING_SIZE=images,steps scales every case down (a software adapter's smoke run)
  const size = process.env.BENCH_GPU_SAMPLING_SIZE?.split(',').map(Number);
  for (const base of GPU_SAMPLING) {
    const c = size ? { ...base, images: size[0], steps: size[1] } : base;
    const name = `${c.preset} ${c.images} img, ${c.steps} steps, S=${c.arSteps}${c.cfgScale > 1 ? `, CFG ${c.cfgScale}` : ''}`;
    if (!name.includes(only)) continue;
    const config = makeConfig(c.preset);
    const model = new CausalDiffusionModel(config, { seed: 1 });
    const labels = Array.from({ length: c.images }, (_, i) => i % config.numClasses);
    const opts: SampleOptions = {
      labels,
      arSteps: c.arSteps,
      diffusionSteps: String(c.steps),
      cfgScale: c.cfgScale,
      clipDenoised: true,
    };
    const chainSteps = c.arSteps * c.steps;
    let host = { msPerStep: NaN, dispatchesPerStep: NaN, setupMs: NaN, drainMs: NaN };
    // the median wall time; with it, for the fused fp32 path, the host's time per denoising step (the run's
    // synchronous work between two step pauses, not counting a step that follows a chain's read-back, which
    // waits for the GPU), the WGSL dispatches per step, the time before the first step (set-up) and after the
    // last one (the GPU catching up, the read-back and the images)
    const time = (fused: boolean, precision: MatmulPrecision) =>
      withMatmulPrecision(precision, () => {
        const ms: number[] = [];
        for (let r = 0; r <= repeats; r++) {
          const t0 = process.hrtime.bigint();
          const d0 = wgslDispatches();
          let stepNs = 0n;
          let hostSteps = 0;
          let last = '';
          let firstStep = 0n;
          let lastStep = 0n;
          const run = samplingRun(model, { ...opts, seed: r, fused });
          for (;;) {
            const s0 = process.hrtime.bigint();
            const p = run.next();
            if (p.done) break;
            if (p.value.kind === 'step') {
              lastStep = process.hrtime.bigint();
              if (!firstStep) firstStep = lastStep;
            }
            if (p.value.kind === 'step' && last === 'step') {
              stepNs += process.hrtime.bigint() - s0;
              hostSteps++;
            }
            last = p.value.kind;
          }
          const end = process.hrtime.bigint();
          if (r > 0) ms.push(Number(end - t0) / 1e6);
          if (fused && precision === 'f32')
            host = {
              msPerStep: Number(stepNs) / 1e6 / hostSteps,
              dispatchesPerStep: (wgslDispatches() - d0) / chainSteps,
              setupMs: Number(firstStep - t0) / 1e6,
              drainMs: Number(end - lastStep) / 1e6,
            };
        }
        return median(ms);
      });
    const fused = time(true, 'f32');
    const fusedHost = host;
    const kernels = await withMatmulPrecision('f32', () => gpuKernelMs(model, opts));
    const kernelsTC = tensorCoresAvailable() ? await withMatmulPrecision('f16', () => gpuKernelMs(model, opts)) : null;
    const tensorCores = tensorCoresAvailable() ? time(true, 'f16') : NaN;
    const ops = c.preset === 'mnist-base' && c.arSteps === 1 ? time(false, 'f32') : NaN;
    model.dispose();
    const twin = (precision: string) =>
      python
        ? (runJson(
            python,
            [TWIN],
            {},
            JSON.stringify({
              mode: 'sample',
              device: 'cuda',
              precision,
              config,
              batch: c.images,
              arSteps: c.arSteps,
              diffusionSteps: c.steps,
              cfgScale: c.cfgScale,
              repeats,
            }),
          ) as { medianMs: number; peakGpuMb: number })
        : { medianMs: NaN, peakGpuMb: NaN };
    const [fp32, bf16] = [twin('fp32'), twin('bf16')];
    rows.push({
      kind: 'gpu-sampling',
      case: name,
      fusedMs: fused,
      fusedTensorCoresMs: tensorCores,
      fusedHostMsPerStep: fusedHost.msPerStep,
      fusedDispatchesPerStep: fusedHost.dispatchesPerStep,
      fusedSetupMs: fusedHost.setupMs,
      fusedDrainMs: fusedHost.drainMs,
      fusedGpuMsPerStep: kernels.msPerStep,
      fusedGpuKernels: kernels.byKernel,
      fusedTensorCoresGpuMsPerStep: kernelsTC?.msPerStep ?? NaN,
      fusedTensorCoresGpuKernels: kernelsTC?.byKernel ?? {},
      opByOpMs: ops,
      torchFp32Ms: fp32.medianMs,
      torchBf16Ms: bf16.medianMs,
      oursPoolPeakMb: webgpuPeakMb(), // the buffer pool's peak so far in this process (all cases up to here)
      torchPeakGpuMb: fp32.peakGpuMb,
      ratioFp32: fused / fp32.medianMs,
      ratioBf16: fused / bf16.medianMs,
      ratioTensorCoresToBf16: tensorCores / bf16.medianMs,
    });
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(0) : 'n/a');
    console.log(
      `${name.padEnd(39)}| ${f(fused).padStart(18)} | ${f(tensorCores).padStart(8)} | ${f(ops).padStart(8)} | ${f(fp32.medianMs).padStart(10)} | ${f(bf16.medianMs).padStart(10)} | ${(fused / fp32.medianMs).toFixed(2).padStart(10)}x | ${(tensorCores / bf16.medianMs).toFixed(2).padStart(8)}x | ${fusedHost.msPerStep.toFixed(2)} / ${kernels.msPerStep.toFixed(2)} / ${fusedHost.dispatchesPerStep.toFixed(0)} | ${f(fusedHost.setupMs)} / ${f(fusedHost.drainMs)}`,
    );
    for (const [label, k] of [
      ['fp32', kernels],
      ['tensor cores', kernelsTC],
    ] as const)
      if (k)
        console.log(
          `  GPU ms per step by kernel (${label}, ${k.msPerStep.toFixed(2)} in all): ${Object.entries(k.byKernel)
            .map(([name, v]) => `${name} ${v.toFixed(3)}`)
            .join(', ')}`,
        );
  }
  return rows;
}
