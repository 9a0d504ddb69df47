/**
 * Sample-quality metrics for class-conditional models, all computed with the project's own classifier:
 * Fréchet distance of sample features to real test features (always with the real-vs-real value at the same N
 * beside it, since FD is biased upwards at small N), conditional accuracy and confidence, and a nearest-
 * neighbour memorisation check (distance of each sample to its closest training image, against the same for
 * held-out real images).
 */
import * as tf from '@tensorflow/tfjs-core';
import { ImageDataset, toModelRange } from '../data/datasets';
import { Rng } from '../rng';
import { Classifier } from './classifier';
import { frechetDistance } from './frechet';
import { median } from '../util/median';

export interface SampleMetrics {
  n: number;
  /** FD(samples, real test images). */
  fd: number;
  /** FD(real train subset, real test images) at the same N: the floor to compare against. */
  fdRealVsReal: number;
  /** Fraction of samples the classifier assigns to the class they were generated for. */
  conditionalAccuracy: number;
  perClassAccuracy: number[];
  /** Mean classifier probability of the intended class. */
  meanConfidence: number;
  memorisation: {
    /** Median L2 distance (pixel space, [-1, 1]) from a sample to its nearest training image. */
    medianSampleToTrain: number;
    /** The same for held-out test images: what "new but realistic" looks like. */
    medianTestToTrain: number;
    /** Fraction of samples closer to a training image than the 1st percentile of test-to-train distances. */
    nearCopies: number;
  };
}

/** For each row of `a` [n, D], the L2 distance to its nearest row of `b` [m, D] (matrix products, chunked). */
export function nearestDistances(a: Float32Array, b: Float32Array, D: number, chunk = 8192): Float32Array {
  const n = a.length / D;
  const m = b.length / D;
  const best = new Float32Array(n).fill(Infinity);
  const A = tf.tensor2d(a, [n, D]);
  const aa = tf.sum(tf.square(A), 1, true);
  for (let s = 0; s < m; s += chunk) {
    const k = Math.min(chunk, m - s);
    const d = tf.tidy(() => {
      const B = tf.tensor2d(b.subarray(s * D, (s + k) * D), [k, D]);
      const bb = tf.reshape(tf.sum(tf.square(B), 1), [1, k]);
      const d2 = tf.add(tf.sub(aa, tf.mul(2, tf.matMul(A, B, false, true))), bb);
      return tf.min(d2, 1).dataSync();
    });
    d.forEach((v, i) => (best[i] = Math.min(best[i], v)));
  }
  tf.dispose([A, aa]);
  return best.map((v) => Math.sqrt(Math.max(0, v)));
}

/**
 * Scores class-conditional samples [n, C, H, W] generated for `labels` against a dataset's test split (FD,
 * accuracy) and train split (memorisation).
 */
export function scoreSamples(
  clf: Classifier,
  samples: Float32Array,
  labels: readonly number[],
  test: ImageDataset,
  train: ImageDataset,
  seed = 0,
): SampleMetrics {
  const n = labels.length;
  const D = test.channels * test.height * test.width;
  if (samples.length !== n * D) throw new Error(`expected ${n} samples of ${D} values, got ${samples.length} values`);
  if (n < 2) throw new Error('need at least 2 samples to score');
  if (n > test.count) throw new Error(`N = ${n} exceeds the ${test.count} test images`);
  const rng = new Rng(seed);
  const testIdx = rng.sample(
    Array.from({ length: test.count }, (_, i) => i),
    n,
  );
  const trainIdx = rng.sample(
    Array.from({ length: train.count }, (_, i) => i),
    n,
  );
  const testX = toModelRange(test, testIdx);
  const gen = clf.embed(samples);
  const real = clf.embed(testX);
  const ref = clf.embed(toModelRange(train, trainIdx));
  const K = clf.config.classes;
  let ok = 0;
  let conf = 0;
  const perOk = new Array<number>(K).fill(0);
  const perN = new Array<number>(K).fill(0);
  labels.forEach((y, i) => {
    perN[y]++;
    if (gen.predictions[i] === y) (ok++, perOk[y]++);
    conf += gen.probs[i * K + y];
  });
  const trainX = toModelRange(
    train,
    Array.from({ length: train.count }, (_, i) => i),
  );
  const sampleToTrain = nearestDistances(samples, trainX, D);
  const testToTrain = nearestDistances(testX, trainX, D);
  const p1 = Float32Array.from(testToTrain).sort()[Math.floor(0.01 * n)];
  return {
    n,
    fd: frechetDistance(gen.features, real.features, 128),
    fdRealVsReal: frechetDistance(ref.features, real.features, 128),
    conditionalAccuracy: ok / n,
    perClassAccuracy: perOk.map((c, k) => (perN[k] ? c / perN[k] : NaN)),
    meanConfidence: conf / n,
    memorisation: {
      medianSampleToTrain: median(sampleToTrain),
      medianTestToTrain: median(testToTrain),
      nearCopies: sampleToTrain.filter((d) => d < p1).length / n,
    },
  };
}
