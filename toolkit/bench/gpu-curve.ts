/**
 * `npm run bench -- --gpu-curve [steps]`: does training with tensor-core matmuls (fp16 inputs, fp32 accumulation,
 * loss scaling) follow the fp32 path? Trains the 49-token model (mnist-base) on webgpu twice from the same seed,
 * same batches and same draws, once per matmul precision, each in its own process, on a synthetic 28 x 28
 * dataset (a bar per class at its own angle, with noise: learnable, and needing no download), and compares the
 * loss curves as 100-step means. Writes runs/gpu-curve.json.
 */
import { runJson } from './torch';
import '@tensorflow/tfjs'; // registers the gradients the trainer needs
import { initBackend } from '../src/backend';
import { ImageDataset } from '../src/data/datasets';
import { Rng } from '../src/rng';
import { Trainer } from '../src/train/trainer';

/** count 28 x 28 images of 10 classes: class c is a bright bar through the centre at angle 18°·c, plus noise. */
function barDataset(count: number, seed: number): ImageDataset {
  const rng = new Rng(seed);
  const images = new Uint8Array(count * 28 * 28);
  const labels = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    const c = n % 10;
    labels[n] = c;
    const a = (c * Math.PI) / 10 + (rng.random() - 0.5) * 0.2;
    const [dx, dy] = [Math.cos(a), Math.sin(a)];
    const [cx, cy] = [13.5 + (rng.random() - 0.5) * 6, 13.5 + (rng.random() - 0.5) * 6];
    for (let y = 0; y < 28; y++)
      for (let x = 0; x < 28; x++) {
        const dist = Math.abs((x - cx) * dy - (y - cy) * dx); // distance to the bar's line
        const along = Math.abs((x - cx) * dx + (y - cy) * dy);
        const v = dist < 1.5 && along < 10 ? 230 : 0;
        images[n * 784 + y * 28 + x] = Math.min(255, v + rng.randint(0, 25));
      }
  }
  return {
    name: 'bars',
    images,
    labels,
    count,
    channels: 1,
    height: 28,
    width: 28,
    classNames: Array.from({ length: 10 }, (_, i) => `${18 * i}°`),
  };
}

/** One run (child process): prints the per-step losses as one JSON line. */
async function child(steps: number): Promise<void> {
  await initBackend({ backend: 'webgpu', quiet: true });
  const tr = new Trainer(barDataset(4000, 1), {
    model: 'mnist-base',
    batchSize: 64,
    lr: 1e-3,
    warmupSteps: 100,
    seed: 3,
  });
  const losses: number[] = [];
  const t0 = Date.now();
  for (let s = 0; s < steps; s++) losses.push(tr.trainOne().loss);
  tr.dispose();
  console.log(JSON.stringify({ losses, seconds: (Date.now() - t0) / 1000 }));
}

/** Both runs, and their 100-step means side by side. */
export function benchGpuCurve(steps: number): Record<string, unknown> {
  const run = (matmul: 'f16' | 'f32') =>
    runJson(process.execPath, [__filename, '--child', String(steps)], { CAUSALFUSION_MATMUL: matmul }) as {
      losses: number[];
      seconds: number;
    };
  const [f16, f32] = [run('f16'), run('f32')];
  const means = (l: number[]) =>
    Array.from(
      { length: Math.floor(l.length / 100) },
      (_, i) => l.slice(100 * i, 100 * i + 100).reduce((a, b) => a + b) / 100,
    );
  const [m16, m32] = [means(f16.losses), means(f32.losses)];
  console.log(`\ntraining curve on webgpu, mnist-base B64, ${steps} steps: 100-step mean loss`);
  console.log('steps       | tensor cores | fp32     | relative gap');
  m16.forEach((v, i) =>
    console.log(
      `${String(100 * i + 1).padStart(5)}-${String(100 * i + 100).padEnd(5)} | ${v.toFixed(5).padStart(12)} | ${m32[i].toFixed(5).padStart(8)} | ${(((v - m32[i]) / m32[i]) * 100).toFixed(2)} %`,
    ),
  );
  // noise of a 100-step mean: the spread of the fp32 path's step losses within the last window
  const last = f32.losses.slice(-100);
  const sd = Math.sqrt(last.reduce((a, b) => a + (b - m32[m32.length - 1]) ** 2, 0) / 99) / 10;
  console.log(
    `standard error of a 100-step mean near the end: ${sd.toFixed(5)}; seconds: ${f16.seconds} (tensor cores), ${f32.seconds} (fp32)`,
  );
  return {
    kind: 'gpu-curve',
    steps,
    means: { tensorCores: m16, fp32: m32 },
    standardError: sd,
    seconds: { tensorCores: f16.seconds, fp32: f32.seconds },
  };
}

if (process.argv[2] === '--child')
  child(Number(process.argv[3])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
