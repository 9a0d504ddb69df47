import * as path from 'path';
import { loadMnist } from '../../data/datasets';
import { DATA_DIR, classifierPath } from '../../data/assets';
import { Classifier } from '../../eval/classifier';
import { ABLATIONS, CLAIMS_SETTINGS, runClaims, summarizeClaims } from '../../studies/claims';
import { claimsMarkdown } from '../../studies/claims-report';
import { writeFileAtomic } from '../../util/atomic-write';
import { defineCommand } from '../command';
import { flag } from '../flags';

/** Where each setting's study is committed (others go to runs/). */
const COMMITTED: Record<string, string> = { full: 'claims', 'gpu-49': 'claims-49' };

export const claims = defineCommand({
  name: 'claims',
  summary: "the paper's ablations in miniature (order, gamma, fixed S, loss weights): train, score, report",
  about: `Trains one small MNIST model per ablation and seed with identical budgets (random vs raster order, gamma 1.0 /
0.9 / 0.8, fixed S_train 1 and 4, AR loss weights 1->1 vs 2->1), scores each with S_eval = 1, 2, 4, 8 (gpu-49:
also 16 and 49, in random and raster order; FD and conditional accuracy at the same N, real-vs-real floor beside
it) and measures held-out loss by S (Fig. 4a). Settings: full (16 tokens, ${CLAIMS_SETTINGS.full.steps} steps per run), gpu-49
(49 tokens, for a GPU), reduced (${CLAIMS_SETTINGS.reduced.steps} steps, for CI).
Finished runs are cached in --out, so an interrupted study resumes; several processes may share one --out
with different --seeds. Writes <out>/results.json (and report.md when every variant ran); notebook 07 turns it
into tables and charts.`,
  flags: {
    setting: flag.oneOf(['full', 'gpu-49', 'reduced'] as const, 'full', 'study size'),
    steps: flag.int(undefined, "training steps per run; cached runs are reused only at the same N [the setting's]"),
    out: flag.text(undefined, 'study folder', 'DIR', 'data/claims, data/claims-49, or runs/claims-reduced'),
    only: flag.text(undefined, `ablation ids (${ABLATIONS.map((a) => a.id).join(', ')})`, 'LIST', 'all'),
    seeds: flag.intList("seeds to run [the setting's]"),
  },
  async run(v, ctx) {
    const base = CLAIMS_SETTINGS[v.setting];
    const setting = { ...base, steps: v.steps ?? base.steps };
    const dir = COMMITTED[setting.name];
    const out = path.resolve(v.out ?? (dir ? path.join(DATA_DIR, dir) : path.join('runs', `claims-${setting.name}`)));
    const only = v.only?.split(',');
    console.log((await ctx.startBackend(true)).line);
    const classifier = Classifier.load(classifierPath('mnist'));
    const data = { train: loadMnist('train'), test: loadMnist('test'), classifier, log: (l: string) => console.log(l) };
    const r = runClaims(setting, data, { dir: out, only, seeds: v.seeds });
    for (const row of summarizeClaims(r)) {
      const cells = Object.entries(row.fd).map(([S, f]) => `S=${S} ${f.mean.toFixed(1)}±${f.halfRange.toFixed(1)}`);
      console.log(`${row.ablation.id.padEnd(14)} FD ${cells.join('  ')}`);
    }
    // the report needs every variant; with fewer seeds than planned it says so and calls its verdicts provisional
    if (!only) writeFileAtomic(path.join(out, 'report.md'), Buffer.from(claimsMarkdown(r)));
    console.log(`results ${path.join(out, 'results.json')}${only ? '' : `, report ${path.join(out, 'report.md')}`}`);
    classifier.dispose();
    return 0;
  },
});
