import { loadDataset, toModelRange } from '../../data/datasets';
import { EDIT_MODES, EditMode, editImages, editMask, keepAllBut, keptPixels } from '../../sample/edit';
import { imageGrid } from '../../io/images';
import { savePng } from '../../io/image-files';
import { defineCommand } from '../command';
import { AR_FLAGS, MODEL_FLAGS, datasetFlag, modelSource, sampleOptions, samplerFlags, seedFlag } from '../common';
import { checkDataset } from '../../train/trainer';
import { UsageError, flag, usage } from '../flags';

// defaults resolved in run(): --mode is "not given" when --tokens chooses the region
const DEFAULT_MODE: EditMode = 'inpaint';
const DEFAULT_IMAGES = [0, 1, 2, 3, 4, 5, 6, 7];

export const edit = defineCommand({
  name: 'edit',
  summary: 'zero-shot inpainting / outpainting / half regeneration / class swap of dataset images',
  about: `Keeps part of each image as clean context and generates the rest (no retraining). Writes a grid with three
rows: the originals, the kept part (regenerated region grey), the edits.`,
  flags: {
    ...MODEL_FLAGS,
    dataset: datasetFlag(),
    images: flag.intList('test-split images to edit', DEFAULT_IMAGES.join(',')),
    mode: { ...flag.oneOf(EDIT_MODES, undefined, 'region to regenerate'), shown: DEFAULT_MODE },
    tokens: flag.intList('regenerate exactly these tokens (raster indices 0..L-1) instead of a --mode region'),
    class: flag.int(undefined, "generate every image as class K (class swap); default: each image's own label", 0, 'K'),
    ...AR_FLAGS,
    ...samplerFlags(),
    seed: seedFlag(),
    out: flag.text('edits.png', 'the grid to write'),
    scale: flag.int(2, 'pixel upscaling of the grid'),
  },
  async run(v, ctx) {
    const { load } = modelSource(v);
    const { tokens } = v;
    if (tokens && v.mode !== undefined)
      throw new UsageError('--tokens and --mode both choose the region to regenerate: give one');
    const mode = v.mode ?? DEFAULT_MODE;
    const indices = v.images ?? DEFAULT_IMAGES;
    await ctx.startBackend(true);
    const model = load();
    const mc = model.config;
    const ds = loadDataset(v.dataset, 'test');
    usage(() => checkDataset(ds, mc), 'dataset');
    const bad = indices.find((i) => i >= ds.count);
    if (bad !== undefined)
      throw new UsageError(`--images: ${bad} is outside the ${ds.count} test images (0..${ds.count - 1})`);
    const cls = v.class;
    if (cls !== undefined && cls >= mc.numClasses)
      throw new UsageError(`--class must be < ${mc.numClasses}, got ${cls}`);
    const images = toModelRange(ds, indices);
    const labels = indices.map((i) => cls ?? ds.labels[i]);
    const grid = mc.inputSize / mc.patchSize;
    const keep = tokens ? usage(() => keepAllBut(tokens, grid * grid), 'tokens') : editMask(mode, grid);
    const t0 = Date.now();
    const r = editImages(model, images, labels, keep, sampleOptions(v));
    const sec = (Date.now() - t0) / 1000;
    const rows = new Float32Array(3 * images.length);
    rows.set(images, 0);
    rows.set(keptPixels(images, keep, mc), images.length);
    rows.set(r.images, 2 * images.length);
    const side = mc.inputSize;
    savePng(
      v.out,
      imageGrid(rows, 3 * indices.length, mc.latentChannels, side, side, { cols: indices.length, scale: v.scale }),
    );
    console.log(
      `${tokens ? `${tokens.length} regenerated tokens` : mode} of ${indices.length} ${ds.name} images (${cls === undefined ? 'own labels' : `as class ${cls}`}) in ${sec.toFixed(1)} s -> ${v.out}`,
    );
    model.dispose();
    return 0;
  },
});
