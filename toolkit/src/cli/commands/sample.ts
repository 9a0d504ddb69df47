import { imageGrid } from '../../io/images';
import { savePng } from '../../io/image-files';
import { sampleImages } from '../../sample/sampler';
import { defineCommand } from '../command';
import { AR_FLAGS, MODEL_FLAGS, modelSource, sampleOptions, samplerFlags, seedFlag } from '../common';
import { UsageError, flag, nonNegative } from '../flags';

export const sample = defineCommand({
  name: 'sample',
  summary: 'generate a grid of images from a checkpoint (any AR steps, order, sampler, CFG)',
  about: 'Generates one row per class from a checkpoint (ours, an official safetensors state_dict, or a PyTorch .pt).',
  flags: {
    ...MODEL_FLAGS,
    out: flag.text('samples.png', 'the grid to write'),
    'per-class': flag.int(8, 'images per class'),
    classes: flag.intList('classes to draw, e.g. 3,5,7', 'all'),
    ...AR_FLAGS,
    'step-sizes': flag.intList('tokens per AR step (sum = L), instead of --ar-steps equal steps'),
    ...samplerFlags(),
    eta: flag.num(0, 'DDIM eta', nonNegative),
    'cfg-interval': flag.intList('guide only at timesteps LO,HI', '0,1000'),
    'no-clip': flag.switch('do not clamp x0 to [-1, 1]'),
    seed: seedFlag(),
    scale: flag.int(2, 'pixel upscaling of the grid'),
    json: flag.switch('print timings as JSON'),
  },
  async run(v, ctx) {
    const { load } = modelSource(v);
    const interval = v['cfg-interval'];
    if (interval && interval.length !== 2) throw new UsageError('--cfg-interval takes two numbers: LO,HI');
    await ctx.startBackend(v.json);
    const model = load();
    const mc = model.config;
    const classes = v.classes ?? Array.from({ length: Math.min(mc.numClasses, 10) }, (_, i) => i);
    const labels = classes.flatMap((k) => new Array<number>(v['per-class']).fill(k));
    const t0 = Date.now();
    const r = sampleImages(model, {
      ...sampleOptions(v),
      labels,
      stepSizes: v['step-sizes'],
      eta: v.eta,
      cfgInterval: interval as [number, number] | undefined,
      clipDenoised: !v['no-clip'],
    });
    const sec = (Date.now() - t0) / 1000;
    const grid = imageGrid(r.images, labels.length, mc.latentChannels, mc.inputSize, mc.inputSize, {
      cols: v['per-class'],
      scale: v.scale,
    });
    savePng(v.out, grid);
    const { out } = v;
    if (v.json)
      console.log(
        JSON.stringify({
          out,
          images: labels.length,
          seconds: sec,
          stepSizes: r.stepSizes,
          diffusionSteps: r.timesteps.length,
        }),
      );
    else
      console.log(
        `${labels.length} images (${r.stepSizes.length} AR steps x ${r.timesteps.length} ${v.sampler} steps) in ${sec.toFixed(1)} s -> ${out}`,
      );
    model.dispose();
    return 0;
  },
});
