import * as tf from '@tensorflow/tfjs-core';
import { activeWebgpu } from '../../backend/wgsl/runner';
import { makeConfig } from '../../model/config';
import { BENCH_DEFAULTS as D, benchTrainStep, kernelTable, profileTrainStep } from '../../train/step-timer';
import { defineCommand } from '../command';
import { decayRange, flag } from '../flags';
import { seedFlag } from '../common';

export const bench = defineCommand({
  name: 'bench',
  summary: 'time one training step (forward, backward, clip, AdamW, EMA)',
  synopsis: '[--json] [options]',
  about: 'Times the training step on the active backend and prints the median step time, peak memory and backend.',
  flags: {
    hidden: flag.int(D.hidden, 'hidden size'),
    depth: flag.int(D.depth, 'transformer blocks'),
    heads: flag.int(D.heads, 'attention heads'),
    'image-size': flag.int(D.imageSize, 'image side in pixels'),
    'patch-size': flag.int(D.patchSize, 'patch side in pixels'),
    channels: flag.int(D.channels, 'image channels'),
    'cond-tokens': flag.int(D.condTokens, 'condition tokens', 0),
    classes: flag.int(D.classes, 'classes'),
    batch: flag.int(D.batch, 'batch size'),
    steps: flag.int(D.steps, 'timed steps'),
    warmup: flag.int(D.warmup, 'untimed steps first', 0),
    checkpoint: flag.switch('recompute blocks in the backward pass (bounded memory, for large batches)'),
    decay: flag.num(D.arStepDecay, 'AR-step decay gamma', decayRange, 'G'),
    seed: seedFlag(),
    kernels: flag.switch(
      'also the GPU time of a step by kernel (webgpu with timestamp queries; a fresh model, its warm-up, then one profiled step)',
    ),
    json: flag.switch('one JSON line (with the AR-step splits used, for a PyTorch twin to replay)'),
  },
  async run(v, ctx) {
    const opts = {
      hidden: v.hidden,
      depth: v.depth,
      heads: v.heads,
      imageSize: v['image-size'],
      patchSize: v['patch-size'],
      channels: v.channels,
      condTokens: v['cond-tokens'],
      classes: v.classes,
      batch: v.batch,
      steps: v.steps,
      warmup: v.warmup,
      checkpoint: v.checkpoint,
      arStepDecay: v.decay,
      seed: v.seed,
    };
    // validate the shape before starting a backend, so a bad config fails fast with one message
    makeConfig(null, {
      inputSize: opts.imageSize,
      patchSize: opts.patchSize,
      latentChannels: opts.channels,
      hiddenSize: opts.hidden,
      depth: opts.depth,
      numHeads: opts.heads,
      numCondTokens: opts.condTokens,
      numClasses: opts.classes,
    });
    await ctx.startBackend(v.json);
    if (v.kernels && !activeWebgpu()?.supportTimestampQuery)
      throw new Error(
        `--kernels needs the webgpu backend on an adapter with timestamp queries (this is ${tf.getBackend()}; CAUSALFUSION_BACKEND=webgpu)`,
      );
    const r = benchTrainStep(opts);
    const profile = v.kernels ? await profileTrainStep(opts) : null;
    if (v.json) {
      console.log(JSON.stringify(profile ? { ...r, kernels: profile } : r));
    } else {
      console.log(
        `backend ${r.backend}: ${r.params.toLocaleString()} params, batch ${r.batch}${r.checkpoint ? ', checkpointed' : ''}`,
      );
      console.log(
        `median step ${r.medianMs.toFixed(0)} ms (min ${r.minMs.toFixed(0)}, max ${r.maxMs.toFixed(0)}, ${r.stepsMs.length} steps; host ${r.hostMsPerStep.toFixed(0)} ms${r.dispatchesPerStep === null ? '' : `, ${r.dispatchesPerStep} GPU dispatches`}${r.pool ? `; pool: ${r.pool.buffersCreatedPerStep.toFixed(1)} storage buffers (${r.pool.mbCreatedPerStep.toFixed(0)} MiB) created a step, ${r.pool.trims} trims` : ''}), peak RSS ${r.peakRssMb.toFixed(0)} MB, leaked tensors/step ${r.tensorsLeakedPerStep}`,
      );
      if (profile) {
        console.log(`GPU time of one step by kernel (each dispatch timed alone): ${profile.gpuMs.toFixed(1)} ms`);
        for (const line of kernelTable(profile, 20)) console.log(line);
      }
    }
    return 0;
  },
});
