/**
 * Seeded shuffling and batching over an in-memory dataset. The order of epoch e is a permutation drawn from
 * (seed, e) alone, so a run resumes from `{epoch, position}` exactly where it stopped.
 */
import { Rng } from '../rng';
import { ImageDataset, toModelRange } from './datasets';

export interface LoaderOptions {
  batchSize: number;
  seed: number;
  /** Random horizontal flips (the official recipe's augmentation; off for digits by default). */
  flip: boolean;
}

/** Where a loader stands: enough to resume it. */
export interface LoaderState {
  epoch: number;
  position: number;
}

export interface ImageBatch {
  /** [batchSize, C, H, W] in [-1, 1]. */
  x: Float32Array;
  y: number[];
  indices: number[];
}

export class BatchLoader {
  readonly options: LoaderOptions;
  private epoch = 0;
  private position = 0;
  private order: number[];

  constructor(
    readonly dataset: ImageDataset,
    options: Partial<LoaderOptions> = {},
  ) {
    this.options = { batchSize: 64, seed: 0, flip: false, ...options };
    const b = this.options.batchSize;
    if (!Number.isInteger(b) || b < 1) throw new Error(`batch size must be a positive integer, got ${b}`);
    if (b > dataset.count) throw new Error(`batch size ${b} is larger than the dataset (${dataset.count} images)`);
    this.order = this.epochOrder(0);
  }

  private epochOrder(epoch: number): number[] {
    return new Rng(this.options.seed).fork(`epoch-${epoch}`).permutation(this.dataset.count);
  }

  /** The next full batch; a new epoch (with a new order) starts when fewer than batchSize images remain. */
  next(): ImageBatch {
    const b = this.options.batchSize;
    if (this.position + b > this.dataset.count) {
      this.epoch += 1;
      this.position = 0;
      this.order = this.epochOrder(this.epoch);
    }
    const indices = this.order.slice(this.position, this.position + b);
    const flipRng = new Rng(this.options.seed).fork(`flip-${this.epoch}-${this.position}`);
    const flips = this.options.flip ? indices.map(() => flipRng.random() < 0.5) : undefined;
    this.position += b;
    return { x: toModelRange(this.dataset, indices, flips), y: indices.map((i) => this.dataset.labels[i]), indices };
  }

  state(): LoaderState {
    return { epoch: this.epoch, position: this.position };
  }

  restore(s: LoaderState): void {
    if (
      !Number.isInteger(s.epoch) ||
      s.epoch < 0 ||
      !Number.isInteger(s.position) ||
      s.position < 0 ||
      s.position > this.dataset.count
    ) {
      throw new Error(`invalid loader state ${JSON.stringify(s)} for a dataset of ${this.dataset.count} images`);
    }
    this.epoch = s.epoch;
    this.position = s.position;
    this.order = this.epochOrder(s.epoch);
  }
}
