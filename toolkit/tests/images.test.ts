import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { encodePng, imageGrid } from '../src/io/images';

/** The PNG colour type byte of the IHDR chunk (0 greyscale, 6 RGBA). */
const colorType = (png: Buffer) => png[25];

test('a grey image grid is stored as 8-bit greyscale and decodes to the same pixels', () => {
  const images = Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => Math.sin(i * 0.37));
  const grid = imageGrid(images, 2, 1, 28, 28, { cols: 2, scale: 2 });
  const png = encodePng(grid);
  assert.equal(colorType(png), 0);
  assert.deepEqual(new Uint8Array(PNG.sync.read(png).data), new Uint8Array(grid.data));
});

test('a colour raster stays RGBA, pixel for pixel', () => {
  const data = new Uint8Array(4 * 4 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
  const png = encodePng({ width: 4, height: 4, data });
  assert.equal(colorType(png), 6);
  assert.deepEqual(new Uint8Array(PNG.sync.read(png).data), data);
});

test('a grey raster with transparency stays RGBA', () => {
  const data = new Uint8Array(2 * 2 * 4).fill(128);
  assert.equal(colorType(encodePng({ width: 2, height: 2, data })), 6);
});
