import * as fs from 'fs';
import { loadDataset } from '../../data/datasets';
import { classifierPath } from '../../data/assets';
import { Classifier } from '../../eval/classifier';
import { scoreSamples } from '../../eval/metrics';
import { sampleInChunks } from '../../eval/sample-set';
import { SAMPLING_DEFAULTS } from '../../sample/sampler';
import { defineCommand } from '../command';
import { AR_FLAGS, MODEL_FLAGS, datasetFlag, modelSource, sampleOptions, samplerFlags, seedFlag } from '../common';
import { checkDataset } from '../../train/trainer';
import { UsageError, flag, usage } from '../flags';

export const evalCommand = defineCommand({
  name: 'eval',
  summary: "score a checkpoint's samples: Fréchet distance, conditional accuracy, memorisation (JSON)",
  about: `Samples N images (N/10 per class) from a checkpoint and prints one JSON object: the Fréchet distance of their
classifier features to real test images and the real-vs-real value at the same N, the conditional accuracy
(overall and per class), the mean confidence, and the memorisation check (distance to the nearest training
image, against held-out real images).`,
  flags: {
    ...MODEL_FLAGS,
    dataset: datasetFlag(),
    classifier: flag.text(undefined, 'the evaluator', 'FILE', 'data/classifier-<dataset>.safetensors'),
    n: flag.int(1000, 'images to sample', 2),
    ...AR_FLAGS,
    ...samplerFlags(SAMPLING_DEFAULTS.evalDdpmSteps),
    seed: seedFlag(),
  },
  async run(v, ctx) {
    const { file, load } = modelSource(v);
    const clfFile = v.classifier ?? classifierPath(v.dataset);
    if (!fs.existsSync(clfFile))
      throw new UsageError(
        `--classifier: ${clfFile} not found (train one with "causalfusion classifier --dataset ${v.dataset}")`,
      );
    await ctx.startBackend(true);
    const model = load();
    const clf = Classifier.load(clfFile);
    const test = loadDataset(v.dataset, 'test');
    const train = loadDataset(v.dataset, 'train');
    const mc = model.config;
    usage(() => checkDataset(test, mc), 'dataset');
    const labels = Array.from({ length: v.n }, (_, i) => i % test.classNames.length);
    const opts = sampleOptions(v, SAMPLING_DEFAULTS.evalDdpmSteps);
    const steps = opts.diffusionSteps;
    const t0 = Date.now();
    const images = sampleInChunks(model, { ...opts, labels });
    const sampleSeconds = (Date.now() - t0) / 1000;
    const m = scoreSamples(clf, images, labels, test, train, v.seed);
    const { sampler, cfg } = v;
    console.log(JSON.stringify({ checkpoint: file, dataset: test.name, sampler, steps, cfg, sampleSeconds, ...m }));
    model.dispose();
    clf.dispose();
    return 0;
  },
});
