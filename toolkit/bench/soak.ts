/**
 * Soak benchmark (`npm run bench -- --soak [steps]`): trains the main job's model on MNIST for 2000 steps and
 * samples RSS and the tfjs tensor count / bytes every 100 steps, then reports the growth per 1000 steps as the
 * least-squares slope over the second half of the run (the first half includes allocator warm-up).
 */
import { initBackend } from '../src/backend';
import { loadMnist } from '../src/data/datasets';
import { Trainer } from '../src/train/trainer';
import { QUICK_RECIPE } from '../src/train/recipes';
import { makeConfig } from '../src/model/config';
import * as tf from '@tensorflow/tfjs';

export interface SoakSample {
  step: number;
  rssMb: number;
  tensors: number;
  tensorMb: number;
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

export async function benchSoak(steps = 2000, every = 100): Promise<Record<string, unknown>> {
  const backend = await initBackend({ quiet: true });
  const { model, noiseSchedule, prediction, steps: _s, minutes: _m, cfgScale: _c, ...settings } = QUICK_RECIPE;
  const trainer = new Trainer(loadMnist('train'), {
    ...settings,
    model: makeConfig(model, { noiseSchedule, prediction }),
  });
  const samples: SoakSample[] = [];
  const take = (step: number) => {
    const m = tf.memory();
    samples.push({
      step,
      rssMb: process.memoryUsage().rss / 2 ** 20,
      tensors: m.numTensors,
      tensorMb: m.numBytes / 2 ** 20,
    });
  };
  take(0);
  const t0 = Date.now();
  await trainer.run({
    steps,
    logEvery: every,
    callbacks: { onStep: (e) => void (e.step % every === 0 && take(e.step)) },
  });
  const sec = (Date.now() - t0) / 1000;
  trainer.dispose();
  const late = samples.filter((s) => s.step >= steps / 2);
  const per1000 = (k: keyof SoakSample) =>
    1000 *
    slope(
      late.map((s) => s.step),
      late.map((s) => s[k]),
    );
  const result = {
    bench: 'soak',
    backend: backend.chosen,
    steps,
    seconds: sec,
    rssGrowthMbPer1000Steps: per1000('rssMb'),
    tensorGrowthPer1000Steps: per1000('tensors'),
    tensorMbGrowthPer1000Steps: per1000('tensorMb'),
    samples,
  };
  console.log('step  | RSS MB | tensors | tensor MB');
  for (const s of samples)
    console.log(
      `${String(s.step).padStart(5)} | ${s.rssMb.toFixed(0).padStart(6)} | ${String(s.tensors).padStart(7)} | ${s.tensorMb.toFixed(1).padStart(9)}`,
    );
  console.log(
    `soak: ${steps} steps in ${sec.toFixed(0)} s on ${backend.chosen}; growth per 1000 steps over steps ${steps / 2}-${steps}: ` +
      `RSS ${result.rssGrowthMbPer1000Steps.toFixed(2)} MB, tensors ${result.tensorGrowthPer1000Steps.toFixed(2)}, tensor bytes ${result.tensorMbGrowthPer1000Steps.toFixed(3)} MB`,
  );
  return result;
}
