import { DEFAULT_REFERENCE, formatVerifyTable, loadReference, verifyReference } from '../../parity';
import { projectPath } from '../../data/assets';
import { defineCommand } from '../command';
import { flag } from '../flags';

export const verify = defineCommand({
  name: 'verify',
  summary: 'compare this install with a reference fixture of the official PyTorch code',
  about: `Loads a fixture of the official code's outputs (masks, AR weights, step law, schedule, one training
forward/backward, KV-cache inference with CFG; any model config), recomputes everything here and prints max
abs / rel errors per item. Exits 1 when anything is outside tolerance: masks and AR weights exact; step law,
schedule, respacing 1e-12; attention, noise prediction, MSE, loss 1e-4 relative; gradients 1e-3 relative
(gradients whose true value is ~0 are skipped and marked); inference 1e-4.`,
  flags: {
    reference: flag.text(DEFAULT_REFERENCE as string, 'the fixture', 'FILE', projectPath(DEFAULT_REFERENCE)),
    json: flag.switch('one JSON object instead of the table'),
  },
  async run(v, ctx) {
    const ref = loadReference(v.reference);
    const report = await ctx.startBackend(v.json);
    const rows = verifyReference(ref);
    const failed = rows.filter((r) => !r.pass).length;
    if (v.json) console.log(JSON.stringify({ backend: report.chosen, failed, rows }));
    else console.log(formatVerifyTable(rows));
    return failed ? 1 : 0;
  },
});
