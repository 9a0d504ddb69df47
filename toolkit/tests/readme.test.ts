/** The README's first code example, run as written through the package name (as a notebook would). */
import { test } from 'node:test';
import assert from 'node:assert/strict';

test('README quick-start runs through `require("causalfusion")`', async () => {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const cf = require('causalfusion') as typeof import('../src');
  await cf.initBackend({ quiet: true });
  const config = cf.makeConfig('tiny');
  const model = new cf.CausalDiffusionModel(config, { seed: 0 });
  const diffusion = cf.createDiffusion('');
  const opt = new cf.AdamW({ lr: 1e-3 });
  const ema = new cf.Ema(model.params, 0.9999);
  const rng = new cf.Rng(0);
  const images = rng.normalArray(4 * 4 * 4 * 4).map((v) => Math.tanh(v));
  const labels = [0, 1, 2, 3];
  const batch = cf.sampleBatch(model, diffusion, images, labels, rng);
  const { loss, gradNorm } = cf.trainStep(model, opt, ema, batch, { ...cf.STEP_DEFAULTS, lr: 1e-3 });
  assert.ok(Number.isFinite(loss) && loss > 0);
  assert.ok(Number.isFinite(gradNorm));
  assert.equal(typeof cf.tf.getBackend(), 'string');
  opt.dispose();
  ema.dispose();
  model.dispose();
});
