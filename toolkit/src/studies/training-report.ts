/**
 * The short report a training run leaves behind: a Markdown page with the run's numbers, the loss curve,
 * the per-AR-step loss (paper Fig. 4c) and the sample grid, plus the raw history as JSON.
 */
import * as fs from 'fs';
import * as path from 'path';
import { lineChartSvg } from '../viz/static-svg';
import { countParameters } from '../model/params';
import { writeFileAtomic } from '../util/atomic-write';
import { Trainer, RunSummary } from '../train/trainer';

export interface ReportInputs {
  trainer: Trainer;
  summary: RunSummary;
  /** File names (relative to the report folder) of the sample grid and the checkpoints. */
  samples?: string;
  samplesCaption?: string;
  checkpoint?: string;
  weights?: string;
  backend: string;
}

const write = (file: string, text: string) => writeFileAtomic(file, Buffer.from(text, 'utf8'));

/** Writes report.md, loss.svg, ar-step-loss.svg and history.json into `dir`; returns the report's path. */
export function writeTrainingReport(dir: string, r: ReportInputs): string {
  fs.mkdirSync(dir, { recursive: true });
  const t = r.trainer;
  const h = t.history;
  const c = t.config;
  if (h.length > 0) {
    write(
      path.join(dir, 'loss.svg'),
      lineChartSvg({
        title: 'Training loss',
        xTitle: 'step',
        yTitle: 'loss',
        logY: true,
        series: [
          { name: 'AR-weighted loss', x: h.map((e) => e.step), y: h.map((e) => e.loss) },
          { name: 'unweighted MSE', x: h.map((e) => e.step), y: h.map((e) => e.mse) },
        ],
      }),
    );
    const bd = t.stats.breakdown();
    write(
      path.join(dir, 'ar-step-loss.svg'),
      lineChartSvg({
        title: 'Unweighted MSE by AR step (all training so far)',
        xTitle: 'AR step index s (0 = first)',
        yTitle: 'MSE',
        series: [{ name: 'per AR step', x: bd.byArStep.map((_, i) => i), y: bd.byArStep }],
      }),
    );
  }
  write(
    path.join(dir, 'history.json'),
    JSON.stringify({ config: c, history: h, breakdown: t.stats.breakdown() }, null, 1),
  );
  const last = h[h.length - 1];
  const rows: [string, string][] = [
    ['dataset', `${t.dataset.name} (${t.dataset.count.toLocaleString('en')} images)`],
    [
      'model',
      `hidden ${c.model.hiddenSize}, depth ${c.model.depth}, heads ${c.model.numHeads}, ${c.model.inputSize}px / patch ${c.model.patchSize} = ${(c.model.inputSize / c.model.patchSize) ** 2} tokens, ` +
        `${countParameters(c.model).toLocaleString('en')} parameters, ${c.model.prediction === 'v' ? 'v' : 'eps'}-prediction, ${c.model.noiseSchedule} schedule${c.model.prediction === 'eps' && c.model.noiseSchedule === 'linear' ? ' (as the official model)' : ''}`,
    ],
    [
      'recipe',
      `batch ${c.batchSize}, AdamW lr ${c.lr} (warm-up ${c.warmupSteps}), betas ${c.beta1}/${c.beta2}, clip ${c.gradClip}, EMA ${c.emaDecay}, ` +
        `AR-step decay ${c.factorization.arStepDecay}, AR weights ${c.factorization.maxArWeight} -> ${c.factorization.minArWeight} (${c.factorization.arWeightSchedule}), label dropout ${c.factorization.classDropoutProb}, seed ${c.seed}`,
    ],
    ['backend', r.backend],
    ['steps', `${t.step} (stopped by ${r.summary.stoppedBy})`],
    [
      'wall time',
      `${(t.elapsedSec / 60).toFixed(1)} min training (${(t.step / Math.max(1e-9, t.elapsedSec)).toFixed(2)} steps/s)`,
    ],
    [
      'final loss',
      last
        ? `${last.loss.toFixed(4)} (AR-weighted, mean of the last ${last.step - (h[h.length - 2]?.step ?? 0)} steps); unweighted MSE ${last.mse.toFixed(4)}`
        : 'n/a',
    ],
  ];
  if (r.checkpoint)
    rows.push(['checkpoint', `\`${r.checkpoint}\` (resumable: model, EMA, AdamW state, RNG, data position)`]);
  if (r.weights) rows.push(['weights', `\`${r.weights}\` (EMA weights + config, for sampling)`]);
  const md = [
    `# CausalFusion training report`,
    '',
    '| | |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    ...(r.samples ? ['## Samples', '', r.samplesCaption ?? '', '', `![samples](${r.samples})`, ''] : []),
    ...(h.length
      ? [
          '## Loss',
          '',
          '![loss curve](loss.svg)',
          '',
          'Later AR steps see more of the image, so their noise is easier to predict (paper Fig. 4c):',
          '',
          '![loss by AR step](ar-step-loss.svg)',
          '',
        ]
      : []),
    'Raw numbers: `history.json`.',
    '',
  ].join('\n');
  const file = path.join(dir, 'report.md');
  write(file, md);
  return file;
}
