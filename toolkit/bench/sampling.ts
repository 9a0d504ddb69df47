/**
 * Sampling speed of the shipped MNIST model: wall time per grid for S = 1, 2, 4, 8, L AR steps in raster and
 * random order, against the PyTorch twin's KV-cache sampler (same shapes, best of 1 and 2 threads) when torch is
 * installed, and the cost of introspection (no observer vs an empty observer vs a recorder taking one
 * layer's attention at one diffusion step per AR step plus all trajectories of one sample).
 * Prints a table and returns the rows (bench-suite writes them to runs/bench.json).
 */
import { initBackend } from '../src/backend';
import { loadModel } from '../src/io/checkpoint';
import { sampleImages, SampleOptions } from '../src/sample/sampler';
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
