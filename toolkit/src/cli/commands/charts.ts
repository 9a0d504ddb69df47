import * as path from 'path';
import { loadMnist } from '../../data/datasets';
import { galleryCharts } from '../../studies/gallery';
import { recordGalleryRun } from '../../studies/gallery-run';
import { standalonePage } from '../../viz/chart';
import { writeFileAtomic } from '../../util/atomic-write';
import { defineCommand } from '../command';
import { MODEL_FLAGS, modelSource } from '../common';
import { flag } from '../flags';

export const charts = defineCommand({
  name: 'charts',
  summary: 'every interactive chart from the shipped model: offline gallery.html plus .svg / .png per chart',
  about: `Samples from a model with a recorder attached, traces a training batch and trains a few steps, then writes
every chart of the toolkit (mask, attention explorer, generation order, denoising grid, schedule,
trajectories, training curves, Fig. 4 breakdowns, AR-step statistics, sample grid): gallery.html
(interactive, offline: libraries inlined once) and NAME.svg / NAME.png (static) per chart.`,
  flags: {
    ...MODEL_FLAGS,
    out: flag.text('runs/charts', 'output folder', 'DIR'),
    'no-png': flag.switch('SVG only'),
  },
  async run(v, ctx) {
    const { load } = modelSource(v);
    const out = path.resolve(v.out);
    await ctx.startBackend(true);
    const model = load();
    const t0 = Date.now();
    const gallery = galleryCharts(await recordGalleryRun(model, loadMnist('test')));
    console.log(`built ${Object.keys(gallery).length} charts in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const [name, chart] of Object.entries(gallery)) {
      chart.save(path.join(out, `${name}.svg`));
      if (!v['no-png']) chart.save(path.join(out, `${name}.png`));
    }
    const page = path.join(out, 'gallery.html');
    writeFileAtomic(page, Buffer.from(standalonePage('CausalFusion Lab chart gallery', Object.values(gallery))));
    console.log(`gallery ${page}`);
    model.dispose();
    return 0;
  },
});
