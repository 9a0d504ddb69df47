/**
 * Every chart of the toolkit, drawn from the records of one real run (`recordGalleryRun`): `causalfusion charts`
 * saves them as an offline gallery page plus .svg / .png per chart, and the browser tests open that page.
 */
import type { GalleryRecords } from './gallery-run';
import { Chart } from '../viz/chart';
import { arStepStatsChart, maskChart, orderChart } from '../viz/charts-factorization';
import { attentionChart } from '../viz/charts-attention';
import { denoisingGridChart, imageGridChart, scheduleChart, trajectoryChart } from '../viz/charts-diffusion';
import { lossBreakdownChart, trainingCurvesChart } from '../viz/charts-training';

/** Chart name -> chart, in display order. */
export type Gallery = Record<string, Chart>;

/** The gallery of a run's records. */
export function galleryCharts(rec: GalleryRecords): Gallery {
  const { size, grid, arSteps: S, sampling: s, training: tr } = rec;
  const first = s.images[0];
  return {
    mask: maskChart(s.mask, s.positions, {
      title: `Generalized causal mask of this sampling run (${S} AR steps, random order)`,
    }),
    'mask-576': maskChart(rec.bigMask.mask, rec.bigMask.positions, {
      title: 'Generalized causal mask at ImageNet scale: 64 condition + 2 x 256 image positions',
      colorBy: 'step',
    }),
    'attention-sampling': attentionChart(s.attention, first, size, grid),
    'attention-training': attentionChart(tr.attention, tr.image, size, grid, {
      title: 'Attention in a training batch (full sequence: rollout and mask overlay)',
    }),
    order: orderChart(first, size, grid, s.generationOrder, {
      title: `Generation order: ${grid * grid} tokens in ${S} AR steps (random order)`,
    }),
    denoising: denoisingGridChart(s.frames),
    schedule: scheduleChart(rec.schedule.full, rec.schedule.respaced),
    trajectories: trajectoryChart(s.trajectories, s.firstTokens),
    training: trainingCurvesChart(tr.history),
    'loss-breakdown': lossBreakdownChart(tr.breakdown),
    'ar-step-stats': arStepStatsChart(rec.arStepStats),
    samples: imageGridChart(s.images, size, ['samples'], s.labels.map(String), {
      title: 'Samples (class label above)',
      rowTitle: '',
      colTitle: 'class',
    }),
  };
}
