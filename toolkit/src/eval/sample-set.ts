/**
 * The sample set of an evaluation: N images drawn in chunks, so N = 1000+ stays within memory on every backend.
 */
import { CausalDiffusionModel } from '../model/causalfusion';
import { sampleImages, SampleOptions } from '../sample/sampler';

/**
 * Samples one image per label, `chunk` labels at a time; chunk k (starting at label k) is seeded `seed + k`, so a
 * set is reproducible and its first images do not depend on N.
 */
export function sampleInChunks(
  model: CausalDiffusionModel,
  opts: SampleOptions & { labels: readonly number[] },
  chunk = 250,
): Float32Array {
  const c = model.config;
  const per = c.latentChannels * c.inputSize * c.inputSize;
  const images = new Float32Array(opts.labels.length * per);
  for (let k = 0; k < opts.labels.length; k += chunk) {
    const r = sampleImages(model, { ...opts, labels: opts.labels.slice(k, k + chunk), seed: (opts.seed ?? 0) + k });
    images.set(r.images, k * per);
  }
  return images;
}
