import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PNG } from 'pngjs';
import { imageGrid } from '../src/io/images';
import { encodePalettePng, encodePng } from '../src/io/png';

/** The PNG colour type byte of the IHDR chunk (0 greyscale, 6 RGBA). */
const colorType = (png: Uint8Array) => png[25];
const decode = (png: Uint8Array) => PNG.sync.read(Buffer.from(png));

test('a grey image grid is stored as 8-bit greyscale and decodes to the same pixels', () => {
  const images = Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => Math.sin(i * 0.37));
  const grid = imageGrid(images, 2, 1, 28, 28, { cols: 2, scale: 2 });
  const png = encodePng(grid);
  assert.equal(colorType(png), 0);
  assert.deepEqual(new Uint8Array(decode(png).data), new Uint8Array(grid.data));
});

test('a colour raster stays RGBA, pixel for pixel', () => {
  const data = new Uint8Array(4 * 4 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
  const png = encodePng({ width: 4, height: 4, data });
  assert.equal(colorType(png), 6);
  assert.deepEqual(new Uint8Array(decode(png).data), data);
});

test('a grey raster with transparency stays RGBA', () => {
  const data = new Uint8Array(2 * 2 * 4).fill(128);
  assert.equal(colorType(encodePng({ width: 2, height: 2, data })), 6);
});

test('palette PNG: a raster of at most 256 colours decodes to the same pixels, alpha included', () => {
  const width = 32;
  const height = 9;
  // 60 colours: grey levels of each pixel index mod 60, every other one half transparent
  const data = new Uint8Array(width * height * 4).map((_, i) =>
    i % 4 === 3 ? ((i >> 2) % 2 ? 128 : 255) : ((i >> 2) % 60) * 4,
  );
  const png = encodePalettePng({ width, height, data });
  assert.equal(png[25], 3, 'indexed colour');
  const back = decode(png);
  assert.deepEqual(new Uint8Array(back.data), data);
});

test('palette PNG: more than 256 colours keep the most frequent ones and map the rest to the nearest', () => {
  const width = 300;
  const data = new Uint8Array(width * 4 * 2);
  for (let x = 0; x < width; x++) {
    data.set([x < 150 ? 10 : 240, 20, 30, 255], x * 4); // row 0: two colours, 150 pixels each
    data.set([Math.min(255, x), 0, 0, 255], (width + x) * 4); // row 1: 256 greys of red, one pixel each
  }
  const back = new Uint8Array(decode(encodePalettePng({ width, height: 2, data })).data);
  assert.deepEqual(back.subarray(0, width * 4), data.subarray(0, width * 4)); // frequent colours exact
  for (let x = 0; x < width; x++)
    assert.ok(Math.abs(back[(width + x) * 4] - data[(width + x) * 4]) <= 12, `pixel ${x}`);
  assert.throws(() => encodePalettePng({ width, height: 2, data }, 300), /2 to 256 colours, got 300/);
});
