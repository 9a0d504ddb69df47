import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors';
import { loadSafetensors, saveSafetensors } from '../src/io/files';
import { configFromOfficial } from '../src/model/config';
import { CausalDiffusionModel } from '../src/model/causalfusion';
import { reference, useBackend, tempDir } from './helpers';
import { f16ToF32, f32ToF16 } from '../src/io/half';

const tmpdir = () => tempDir('st-');

test('round trip of a state dict under the official names, with metadata; it loads into the model', async () => {
  await useBackend('wasm');
  const ref = reference();
  const file = path.join(tmpdir(), 'model.safetensors');
  saveSafetensors(file, ref.state_dict, { format: 'pt', step: '0' });
  const back = loadSafetensors(file);
  assert.deepEqual(back.metadata, { format: 'pt', step: '0' });
  assert.deepEqual(Object.keys(back.tensors), Object.keys(ref.state_dict));
  for (const [k, t] of Object.entries(ref.state_dict)) {
    assert.deepEqual(back.tensors[k].shape, t.shape);
    assert.deepEqual(Array.from(back.tensors[k].data), Array.from(t.data), k);
  }
  const model = new CausalDiffusionModel(configFromOfficial(ref.model_config), { stateDict: back.tensors });
  assert.deepEqual(
    Array.from(model.stateDict()['blocks.1.mlp.fc2.bias'].data),
    Array.from(ref.state_dict['blocks.1.mlp.fc2.bias'].data),
  );
  model.dispose();
  // header is 8-byte aligned, as the format recommends
  const raw = fs.readFileSync(file);
  assert.equal(Number(raw.readBigUInt64LE(0)) % 8, 0);
});

test('reads F16, BF16 and F64 tensors written by other tools', () => {
  const header = JSON.stringify({
    h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] },
    d: { dtype: 'F64', shape: [1], data_offsets: [10, 18] },
  });
  const head = Buffer.from(header);
  const buf = Buffer.alloc(8 + head.length + 18);
  buf.writeBigUInt64LE(BigInt(head.length));
  head.copy(buf, 8);
  const o = 8 + head.length;
  [0x3c00, 0xc000, 0x3555].forEach((v, i) => buf.writeUInt16LE(v, o + 2 * i)); // 1, -2, ~0.33325
  [0x3f80, 0x4049].forEach((v, i) => buf.writeUInt16LE(v, o + 6 + 2 * i)); // 1, 3.140625
  buf.writeDoubleLE(0.1, o + 10);
  const f = parseSafetensors(buf);
  assert.deepEqual(Array.from(f.tensors.h.data.subarray(0, 2)), [1, -2]);
  assert.ok(Math.abs(f.tensors.h.data[2] - 0.33325) < 1e-4);
  assert.deepEqual(Array.from(f.tensors.b.data), [1, 3.140625]);
  assert.equal(f.tensors.d.data[0], Math.fround(0.1));
});

test('truncated, foreign or missing files get errors that name them', () => {
  const good = serializeSafetensors({ w: { shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) } });
  assert.throws(
    () => parseSafetensors(good.subarray(0, good.length - 4), 'w.safetensors'),
    /w.safetensors: tensor w \[2,2\] F32 has byte range/,
  );
  assert.throws(
    () => parseSafetensors(Buffer.from('PK\x03\x04 this is a zip'), 'x.pt'),
    /x.pt: header length .* exceeds the file/,
  );
  assert.throws(
    () => loadSafetensors('/no/such/file.safetensors'),
    /checkpoint not found: \/no\/such\/file.safetensors/,
  );
  assert.throws(
    () => serializeSafetensors({ w: { shape: [3], data: new Float32Array(2) } }),
    /tensor w: 2 values for shape \[3\]/,
  );
});

test('a writer killed with SIGKILL in the middle of saving never leaves a corrupt file', async () => {
  const dir = tmpdir();
  const file = path.join(dir, 'ckpt.safetensors');
  saveSafetensors(file, { v: { shape: [1], data: new Float32Array([1]) } }, { version: 'old' });
  const modulePath = path.resolve(__dirname, '..', 'src', 'io', 'files.js');
  const script = `
    const { saveSafetensors } = require(${JSON.stringify(modulePath)});
    const big = new Float32Array(16 << 20).fill(2);
    process.stdout.write('ready\\n');
    for (;;) saveSafetensors(${JSON.stringify(file)}, { v: { shape: [big.length], data: big } }, { version: 'new' });`;
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 150 + 120 * round));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const f = loadSafetensors(file); // must parse: the old or a complete new version
    assert.ok(f.metadata.version === 'old' || (f.metadata.version === 'new' && f.tensors.v.data.length === 16 << 20));
  }
});

test('F16 storage: every half value survives f16 -> f32 -> f16, rounding is to nearest even, overflow is Infinity', () => {
  for (let h = 0; h < 0x10000; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) assert.ok(Number.isNaN(f16ToF32(f32ToF16(x))), `NaN ${h}`);
    else assert.equal(f32ToF16(x), h, `half 0x${h.toString(16)} = ${x}`);
  }
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to the even mantissa (1); 1 + 3 * 2^-11 goes up
  assert.equal(f32ToF16(1 + 2 ** -11), 0x3c00);
  assert.equal(f32ToF16(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(f32ToF16(2 ** -25), 0); // half the smallest subnormal, a tie: to even (zero)
  assert.equal(f32ToF16(1.5 * 2 ** -25), 1);
  assert.equal(f32ToF16(65520), 0x7c00); // rounds past the largest half (65504)
  assert.equal(f32ToF16(-1e9), 0xfc00);
  const file = path.join(tmpdir(), 'half.safetensors');
  const data = new Float32Array([0.1, -2.5, 3e-6, 60000]);
  saveSafetensors(file, { w: { shape: [4], data } }, {}, 'F16');
  assert.equal(fs.statSync(file).size, 8 + fs.readFileSync(file).readUInt32LE(0) + 8);
  const back = loadSafetensors(file).tensors.w.data;
  for (let i = 0; i < 4; i++)
    assert.ok(Math.abs(back[i] - data[i]) <= Math.abs(data[i]) * 2 ** -11 + 2 ** -25, `${data[i]} -> ${back[i]}`);
});
