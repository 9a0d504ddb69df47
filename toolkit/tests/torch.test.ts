import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { readTorchFile, readTorchStateDict } from '../src/io/files';
import { loadModel, readCheckpoint } from '../src/io/checkpoint';
import { saveSafetensors } from '../src/io/files';
import { configFromOfficial } from '../src/model/config';
import { HostTensor } from '../src/model/params';
import { reference, useBackend, tempDir } from './helpers';

/** Written by real PyTorch (tests/fixtures/make_torch_fixture.py) in the official training-checkpoint layout. */
const FIXTURE = path.resolve(__dirname, '..', '..', 'tests', 'fixtures', 'tiny-official.pt');

test('a torch.save training checkpoint loads without running code: model, EMA (fp16), strided tensors', () => {
  const ref = reference();
  const { model, ema } = readTorchStateDict(FIXTURE);
  assert.deepEqual(Object.keys(model).sort(), Object.keys(ref.state_dict).sort());
  for (const [k, v] of Object.entries(ref.state_dict)) {
    assert.deepEqual(model[k].shape, v.shape, k);
    assert.deepEqual(Array.from(model[k].data), Array.from(Float32Array.from(v.data)), k);
    const half = ema![k].data;
    v.data.forEach((x, i) => assert.ok(Math.abs(half[i] - 0.5 * x) <= 1e-3 * Math.abs(0.5 * x) + 1e-7, `${k}[${i}]`));
  }
  const top = readTorchFile(FIXTURE) as Map<string, unknown>;
  assert.equal(top.get('train_steps'), 7);
  const probe = top.get('probe') as HostTensor; // arange(6).reshape(2, 3).t(): a non-contiguous view
  assert.deepEqual(probe.shape, [3, 2]);
  assert.deepEqual(Array.from(probe.data), [0, 3, 1, 4, 2, 5]);
  assert.equal((top.get('args') as { name: string }).name, 'argparse.Namespace'); // an inert placeholder
});

test('loadModel reads an official .pt with a config and prefers its EMA weights', async () => {
  await useBackend('wasm');
  const cfg = configFromOfficial(reference().model_config);
  const m = loadModel(FIXTURE, { config: cfg });
  const raw = loadModel(FIXTURE, { config: cfg, weights: 'model' });
  const w = reference().state_dict['x_proj.weight'].data;
  assert.ok(Math.abs(m.params['x_proj.weight'].dataSync()[0] - 0.5 * w[0]) < 1e-3);
  assert.equal(raw.params['x_proj.weight'].dataSync()[0], Math.fround(w[0]));
  assert.throws(() => readCheckpoint(FIXTURE), /carries no CausalFusion config; pass one/);
  m.dispose();
  raw.dispose();
});

test('legacy, truncated and foreign files are refused with a reason', () => {
  const dir = tempDir('cf-torch-');
  const legacy = path.join(dir, 'old.pt');
  fs.writeFileSync(
    legacy,
    Buffer.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19]),
  );
  assert.throws(() => readTorchFile(legacy), /not a zip archive \(legacy torch.save format\?\).*safetensors/);
  const bytes = fs.readFileSync(FIXTURE);
  const cut = path.join(dir, 'cut.pt');
  fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 200));
  assert.throws(() => readTorchFile(cut), /cut.pt: (not a zip archive|corrupt zip)/);
  assert.throws(() => readTorchFile(path.join(dir, 'none.pt')), /none.pt not found/);
});

test('an official-format safetensors state_dict (no metadata) loads with a config', async () => {
  await useBackend('wasm');
  const file = path.join(tempDir('cf-st-'), 'official.safetensors');
  saveSafetensors(file, reference().state_dict);
  assert.throws(() => loadModel(file), /no model config in the metadata; pass one/);
  const m = loadModel(file, { config: configFromOfficial(reference().model_config) });
  assert.deepEqual(
    Array.from(m.params['final_layer.1.bias'].dataSync()),
    Array.from(reference().state_dict['final_layer.1.bias'].data),
  );
  m.dispose();
});
