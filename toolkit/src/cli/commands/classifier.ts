import { loadDataset } from '../../data/datasets';
import { classifierPath } from '../../data/assets';
import { CLASSIFIER_RECIPE as R, Classifier } from '../../eval/classifier';
import { defineCommand } from '../command';
import { datasetFlag, seedFlag } from '../common';
import { flag, positive } from '../flags';

export const classifier = defineCommand({
  name: 'classifier',
  summary: 'train the evaluator classifier of a dataset (what data/classifier-*.safetensors holds)',
  about: `Trains the evaluator CNN on the dataset's training split, prints test accuracy and writes the weights.`,
  flags: {
    dataset: datasetFlag(),
    epochs: flag.int(R.epochs, 'passes over the training split'),
    batch: flag.int(R.batchSize, 'batch size'),
    lr: flag.num(R.lr, 'peak learning rate (AdamW, cosine decay)', positive),
    seed: seedFlag(),
    out: flag.text(undefined, 'the weights to write', 'FILE', 'data/classifier-<dataset>.safetensors'),
  },
  async run(v, ctx) {
    const out = v.out ?? classifierPath(v.dataset);
    console.log((await ctx.startBackend(true)).line);
    const test = loadDataset(v.dataset, 'test');
    const train = loadDataset(v.dataset, 'train');
    const { epochs, batch: batchSize, lr, seed } = v;
    const clf = new Classifier(
      {
        size: train.height,
        channels: train.channels,
        classes: train.classNames.length,
        dataset: train.name.replace(/ train$/, ''),
      },
      undefined,
      seed,
    );
    const t0 = Date.now();
    clf.train(train, {
      epochs,
      batchSize,
      lr,
      seed,
      onEpoch: (e, loss) =>
        console.log(`epoch ${e}: loss ${loss.toFixed(4)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`),
    });
    const acc = clf.accuracy(test);
    const sec = (Date.now() - t0) / 1000;
    clf.save(out, { testAccuracy: acc, epochs, batchSize, lr, seed, trainSeconds: sec });
    console.log(`test accuracy ${(100 * acc).toFixed(2)}% after ${epochs} epochs (${sec.toFixed(0)} s) -> ${out}`);
    clf.dispose();
    return 0;
  },
});
