/**
 * The project's own evaluator: a small LeNet-style CNN per dataset (no pretrained network can be downloaded
 * here). Its 128-d penultimate features play Inception's role in a Fréchet distance; its predictions give the
 * conditional accuracy of class-conditional samples.
 *
 *   conv 5x5 (C -> 32) + ReLU + max-pool 2  ->  conv 5x5 (32 -> 64) + ReLU + max-pool 2  ->  fc 128 + ReLU  ->  fc K
 *
 * Convolutions are written as im2col (a gather of 5x5 windows) + one matrix product, because tfjs's wasm
 * backend has no kernel for the filter gradient of conv2d; gather and matmul are fast there (and exact).
 */
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../rng';
import { HostTensor, StateDict } from '../model/params';
import { ImageDataset, toModelRange } from '../data/datasets';
import { BatchLoader } from '../data/loader';
import { AdamW } from '../train/optim';
import { variableGrads } from '../train/backprop';
import { loadSafetensors, saveSafetensors } from '../io/files';
import { existingAsset } from '../data/assets';

export interface ClassifierConfig {
  size: number;
  channels: number;
  classes: number;
  /** Dataset the weights were trained on (metadata, checked when evaluating). */
  dataset: string;
}

const K = 5;
const PAD = 2;
let instances = 0;

/** Indices of the K x K windows of a padded (size+4)^2 grid, row-major over output pixels then taps. */
function windowIndex(size: number): Int32Array {
  const P = size + 2 * PAD;
  const idx = new Int32Array(size * size * K * K);
  let o = 0;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++)
      for (let dy = 0; dy < K; dy++) for (let dx = 0; dx < K; dx++) idx[o++] = (y + dy) * P + (x + dx);
  return idx;
}

function shapes(c: ClassifierConfig): [string, number[]][] {
  const s4 = c.size / 4;
  return [
    ['conv1.weight', [K * K * c.channels, 32]],
    ['conv1.bias', [32]],
    ['conv2.weight', [K * K * 32, 64]],
    ['conv2.bias', [64]],
    ['fc1.weight', [s4 * s4 * 64, 128]],
    ['fc1.bias', [128]],
    ['fc2.weight', [128, c.classes]],
    ['fc2.bias', [c.classes]],
  ];
}

/** How the shipped evaluators were trained (`causalfusion classifier`'s defaults). */
export const CLASSIFIER_RECIPE = { epochs: 3, batchSize: 128, lr: 1e-3 } as const;

export class Classifier {
  readonly params: Record<string, tf.Variable> = {};
  private readonly idx1: tf.Tensor1D;
  private readonly idx2: tf.Tensor1D;

  constructor(
    readonly config: ClassifierConfig,
    weights?: StateDict,
    seed = 0,
  ) {
    if (config.size % 4 !== 0) throw new Error(`classifier input size must be a multiple of 4, got ${config.size}`);
    const rng = new Rng(seed);
    const id = instances++;
    for (const [name, shape] of shapes(config)) {
      const n = shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if (weights) {
        const w = weights[name];
        if (!w || w.data.length !== n)
          throw new Error(
            `classifier weights: ${name} ${w ? `has ${w.data.length} values, expected ${n}` : 'is missing'}`,
          );
        data = w.data;
      } else {
        // He-normal for ReLU layers, zero biases
        data = name.endsWith('bias') ? new Float32Array(n) : rng.normalArray(n).map((v) => v * Math.sqrt(2 / shape[0]));
      }
      this.params[name] = tf.variable(tf.tensor(data, shape), true, `classifier${id}.${name}`);
    }
    this.idx1 = tf.tensor1d(windowIndex(config.size), 'int32');
    this.idx2 = tf.tensor1d(windowIndex(config.size / 2), 'int32');
  }

  /** 5x5 'same' convolution of x [N, S, S, C] with w [25C, Cout] as im2col + matmul. */
  private conv(x: tf.Tensor4D, w: tf.Tensor, b: tf.Tensor, idx: tf.Tensor1D): tf.Tensor4D {
    const [N, S, , C] = x.shape;
    const padded = tf.reshape(
      tf.pad(x, [
        [0, 0],
        [PAD, PAD],
        [PAD, PAD],
        [0, 0],
      ]),
      [N, (S + 2 * PAD) ** 2, C],
    );
    const cols = tf.reshape(tf.gather(padded, idx, 1), [N * S * S, K * K * C]);
    return tf.reshape(tf.add(tf.matMul(cols, w as tf.Tensor2D), b), [N, S, S, -1]) as tf.Tensor4D;
  }

  /** Penultimate features [N, 128] and logits [N, K] of images [N, C, H, W] in [-1, 1]. */
  forward(x: tf.Tensor4D, p: Record<string, tf.Tensor> = this.params): { features: tf.Tensor2D; logits: tf.Tensor2D } {
    const N = x.shape[0];
    const h0 = tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
    const h1 = tf.maxPool(tf.relu(this.conv(h0, p['conv1.weight'], p['conv1.bias'], this.idx1)), 2, 2, 'valid');
    const h2 = tf.maxPool(tf.relu(this.conv(h1, p['conv2.weight'], p['conv2.bias'], this.idx2)), 2, 2, 'valid');
    const features = tf.relu(
      tf.add(tf.matMul(tf.reshape(h2, [N, -1]), p['fc1.weight'] as tf.Tensor2D), p['fc1.bias']),
    ) as tf.Tensor2D;
    const logits = tf.add(tf.matMul(features, p['fc2.weight'] as tf.Tensor2D), p['fc2.bias']) as tf.Tensor2D;
    return { features, logits };
  }

  /** Features and predicted classes of many images [n, C, H, W] (host arrays), in batches. */
  embed(images: Float32Array, batch = 500): { features: Float32Array; predictions: Int32Array; probs: Float32Array } {
    const { size: S, channels: C, classes } = this.config;
    const per = C * S * S;
    const n = images.length / per;
    if (!Number.isInteger(n))
      throw new Error(`${images.length} values are not a whole number of ${C}x${S}x${S} images`);
    const features = new Float32Array(n * 128);
    const predictions = new Int32Array(n);
    const probs = new Float32Array(n * classes);
    for (let s = 0; s < n; s += batch) {
      const m = Math.min(batch, n - s);
      tf.tidy(() => {
        const out = this.forward(tf.tensor4d(images.subarray(s * per, (s + m) * per), [m, C, S, S]));
        features.set(out.features.dataSync(), s * 128);
        predictions.set(tf.argMax(out.logits, 1).dataSync(), s);
        probs.set(tf.softmax(out.logits).dataSync(), s * classes);
      });
    }
    return { features, predictions, probs };
  }

  /** Accuracy on a dataset split. */
  accuracy(ds: ImageDataset): number {
    const all = Array.from({ length: ds.count }, (_, i) => i);
    const { predictions } = this.embed(toModelRange(ds, all));
    let ok = 0;
    predictions.forEach((p, i) => (ok += p === ds.labels[i] ? 1 : 0));
    return ok / ds.count;
  }

  /** Trains with AdamW on cross-entropy, cosine-decayed learning rate; returns the loss of each step. */
  train(
    ds: ImageDataset,
    opts: {
      epochs?: number;
      batchSize?: number;
      lr?: number;
      seed?: number;
      onEpoch?: (epoch: number, loss: number) => void;
    },
  ): number[] {
    const { epochs, batchSize, lr } = { ...CLASSIFIER_RECIPE, ...opts };
    const loader = new BatchLoader(ds, { batchSize, seed: opts.seed ?? 0 });
    const opt = new AdamW({ lr, beta2: 0.999, eps: 1e-8 });
    const steps = Math.floor(ds.count / batchSize) * epochs;
    const losses: number[] = [];
    const names = Object.keys(this.params);
    const vars = names.map((n) => this.params[n]);
    for (let i = 0; i < steps; i++) {
      const b = loader.next();
      const { value, grads } = variableGrads(() => {
        const { logits } = this.forward(tf.tensor4d(b.x, [batchSize, ds.channels, ds.height, ds.width]));
        return tf.losses.softmaxCrossEntropy(
          tf.oneHot(tf.tensor1d(b.y, 'int32'), this.config.classes),
          logits,
        ) as tf.Scalar;
      }, vars);
      const g: Record<string, tf.Tensor> = {};
      names.forEach((n, k) => (g[n] = grads[vars[k].name]));
      // cosine decay to 0 over the run
      opt.apply(this.params, g, lr * 0.5 * (1 + Math.cos((Math.PI * i) / steps)));
      losses.push(value.dataSync()[0]);
      tf.dispose([value, ...Object.values(g)]);
      const perEpoch = steps / epochs;
      if ((i + 1) % perEpoch === 0)
        opts.onEpoch?.((i + 1) / perEpoch, losses.slice(-50).reduce((a, v) => a + v, 0) / 50);
    }
    opt.dispose();
    return losses;
  }

  stateDict(): StateDict {
    const out: StateDict = {};
    for (const [k, v] of Object.entries(this.params))
      out[k] = { shape: v.shape.slice(), data: v.dataSync() as Float32Array };
    return out;
  }

  /** Writes the weights (float32) with the config and `extra` (test accuracy, ...) as metadata. */
  save(file: string, extra: Record<string, unknown> = {}): void {
    saveSafetensors(file, this.stateDict(), {
      format: 'causalfusion-classifier/1',
      config: JSON.stringify(this.config),
      meta: JSON.stringify(extra),
    });
  }

  /** Reads a classifier file, or a shipped one by name (`'classifier-mnist'`, `'classifier-fashion-mnist'`). */
  static load(nameOrFile: string): Classifier {
    const file = existingAsset(nameOrFile, ['classifier-mnist', 'classifier-fashion-mnist'], 'classifier');
    const f = loadSafetensors(file);
    if (f.metadata.format !== 'causalfusion-classifier/1')
      throw new Error(`${file}: not a CausalFusion Lab classifier (format ${f.metadata.format ?? 'missing'})`);
    return new Classifier(JSON.parse(f.metadata.config) as ClassifierConfig, f.tensors as Record<string, HostTensor>);
  }

  dispose(): void {
    tf.dispose([...Object.values(this.params), this.idx1, this.idx2]);
  }
}
