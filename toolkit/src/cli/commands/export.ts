import * as fs from 'fs';
import * as path from 'path';
import { exportWeights } from '../../io/checkpoint';
import { defineCommand } from '../command';
import { MODEL_FLAGS, fileFlag, modelSource } from '../common';
import { UsageError, flag } from '../flags';

export const exportCommand = defineCommand({
  name: 'export',
  summary: "write a checkpoint's weights alone (EMA by default), in float32 or float16",
  synopsis: '--checkpoint FILE --out FILE [options]',
  about: `Writes the weights of a checkpoint (ours, an official safetensors state_dict or a PyTorch .pt) as a
weights-only safetensors file with the model config: what sample / eval / the notebooks load. --dtype f16
halves the file (how data/mnist-base.safetensors ships); sampling reads it back as float32.`,
  flags: {
    ...MODEL_FLAGS,
    checkpoint: fileFlag(undefined, 'the checkpoint to export: ours, an official state_dict or a PyTorch .pt'),
    out: flag.text(undefined, 'the weights file to write'),
    dtype: flag.oneOf(['f32', 'f16'] as const, 'f32', 'stored precision'),
  },
  async run(v) {
    if (!v.checkpoint || !v.out) throw new UsageError('export needs --checkpoint FILE and --out FILE');
    const { file, weights, config } = modelSource(v);
    exportWeights(file, path.resolve(v.out), { weights, dtype: v.dtype === 'f16' ? 'F16' : 'F32', config });
    console.log(`wrote ${v.out} (${(fs.statSync(v.out).size / 2 ** 20).toFixed(1)} MiB, ${v.dtype})`);
    return 0;
  },
});
