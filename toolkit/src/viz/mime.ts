/**
 * What a notebook shows for a value: the MIME bundle of the last expression of a cell (the kernel's
 * `execute_result`) and of `display(value)`. A value with a `Symbol.for('Jupyter.display')` method (the
 * convention of Deno's Jupyter kernel, so code written for either kernel shows the same) gives its own bundle:
 * models (their card) and charts (the interactive chart) have one. The toolkit's plain records show themselves
 * here: a trainer or its history (the training curves), sampling and training recorders (what was recorded,
 * with a small preview), a sample batch (its image grid), a raster (`imageGrid`: the image). Anything else is its
 * inspected text, bounded in size.
 */
import { inspect } from 'util';
import type { MimeBundle } from './chart';
import { imageGrid, Raster } from '../io/images';
import { encodePng } from '../io/png';
import { toBase64 } from '../util/bytes';
import { escapeXml } from '../util/markup';
import { SamplingRecorder, TrainingRecorder } from '../introspect/recorders';
import type { SampleResult } from '../sample/sampler';
import type { LogEvent, Trainer } from '../train/trainer';
import { trainingCurvesChart } from './charts-training';
import { stepColor } from './palette';

/** The method name of Jupyter's display protocol (Deno: `Deno.jupyter.$display`). */
export const JUPYTER_DISPLAY = Symbol.for('Jupyter.display');

/** The most characters of inspected text an output carries. */
const MAX_TEXT = 20_000;

type Displayable = { [JUPYTER_DISPLAY]: () => MimeBundle };
/** `v` as an object whose fields can be looked at, or null. */
const fields = (v: unknown): Record<string | symbol, unknown> | null =>
  typeof v === 'object' && v !== null ? (v as Record<string | symbol, unknown>) : null;

const isDisplayable = (v: unknown): v is Displayable => typeof fields(v)?.[JUPYTER_DISPLAY] === 'function';
const isRaster = (v: unknown): v is Raster => {
  const f = fields(v);
  return !!f && f.data instanceof Uint8Array && Number.isInteger(f.width) && Number.isInteger(f.height);
};
const isLogEvent = (v: unknown): v is LogEvent => {
  const f = fields(v);
  return !!f && ['step', 'loss', 'lr', 'gradNorm', 'elapsedSec'].every((k) => k in f);
};
const isHistory = (v: unknown): v is LogEvent[] => Array.isArray(v) && v.length > 0 && v.every(isLogEvent);
const isTrainer = (v: unknown): v is Trainer => {
  const f = fields(v);
  return !!f && Array.isArray(f.history) && typeof f.trainOne === 'function';
};
const isSampleResult = (v: unknown): v is SampleResult => {
  const f = fields(v);
  return !!f && f.images instanceof Float32Array && Array.isArray(f.imageShape) && Array.isArray(f.orders);
};

/** The inspected value as text, at most MAX_TEXT characters. */
export function inspectText(value: unknown): string {
  const text = inspect(value, { depth: 3, maxArrayLength: 50, maxStringLength: 2000, breakLength: 100 });
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}\n... (${text.length - MAX_TEXT} more characters)` : text;
}

/** The MIME bundle a notebook shows for `value` (see the module comment). */
export function mimeBundleOf(value: unknown): MimeBundle {
  if (isDisplayable(value)) return value[JUPYTER_DISPLAY]();
  if (isRaster(value))
    return {
      'image/png': toBase64(encodePng(value)),
      'text/plain': `[${value.width} x ${value.height} image]`,
    };
  if (isTrainer(value)) return historyBundle(value.history, `Trainer at step ${value.step}`);
  if (isHistory(value)) return historyBundle(value, `training history`);
  if (value instanceof SamplingRecorder) return samplingRecorderBundle(value);
  if (value instanceof TrainingRecorder) return trainingRecorderBundle(value);
  if (isSampleResult(value)) return sampleBundle(value);
  return { 'text/plain': inspectText(value) };
}

function historyBundle(history: readonly LogEvent[], what: string): MimeBundle {
  if (!history.length) return { 'text/plain': `${what}: no log events yet` };
  const last = history[history.length - 1];
  const bundle = mimeBundleOf(trainingCurvesChart(history));
  return {
    ...bundle,
    'text/plain': `${what}: ${history.length} log events, last at step ${last.step}: loss ${last.loss.toPrecision(4)}, lr ${last.lr.toPrecision(3)}, gradient norm ${last.gradNorm.toPrecision(3)}`,
  };
}

function sampleBundle(r: SampleResult): MimeBundle {
  const [N, C, H, W] = r.imageShape;
  const png = encodePng(imageGrid(r.images, N, C, H, W, { cols: Math.min(N, 10), scale: H < 64 ? 2 : 1 }));
  return {
    'image/png': toBase64(png),
    'text/plain': `${N} samples [${C}, ${H}, ${W}] in ${r.stepSizes.length} AR steps of ${r.stepSizes.join(', ')} tokens, ${r.timesteps.length / r.stepSizes.length} diffusion steps each`,
  };
}

/** A small HTML table: a header row and body rows. */
function table(head: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = (r: readonly (string | number)[], tag: string) =>
    `<tr>${r.map((c) => `<${tag} style="text-align:left">${escapeXml(String(c))}</${tag}>`).join('')}</tr>`;
  return `<table>${cells(head, 'th')}${rows.map((r) => cells(r, 'td')).join('')}</table>`;
}

/** The patch grid of sample 0 with the AR step that generated each token (kept tokens: k), coloured by step. */
function orderPreview(generation: SamplingRecorder['generation']): string {
  const step = new Map<number, number>();
  for (const g of generation) for (const p of g.positions[0] ?? []) step.set(p, g.arStep);
  const side = Math.ceil(Math.sqrt(Math.max(0, ...step.keys()) + 1));
  const cell = (p: number) => {
    const s = step.get(p);
    const bg = s === undefined ? '#999' : stepColor(s, generation.length);
    return `<td style="background:${bg};color:#000;width:1.6em;height:1.6em;text-align:center;padding:0">${s === undefined ? 'k' : s + 1}</td>`;
  };
  const rows = Array.from(
    { length: side },
    (_, y) => `<tr>${Array.from({ length: side }, (_, x) => cell(y * side + x)).join('')}</tr>`,
  );
  return `<table style="border-collapse:collapse;display:inline-table">${rows.join('')}</table>`;
}

function samplingRecorderBundle(r: SamplingRecorder): MimeBundle {
  const layers = [...new Set(r.attention.map((a) => a.layer))];
  const dsteps = [...new Set(r.attention.map((a) => a.diffusionStep))];
  const lines = [
    `SamplingRecorder: ${r.generation.length} AR steps of generation order`,
    `${r.attention.length} attention records (layers ${layers.join(', ') || '-'}, diffusion steps ${dsteps.join(', ') || '-'})`,
    `${r.trajectories.length} trajectory records`,
    `KV cache: ${r.cacheLength.length} events, last length ${r.cacheLength.at(-1)?.length ?? 0}`,
  ];
  const html =
    `<div class="cf-recorder"><b>SamplingRecorder</b>` +
    table(
      ['recorded', 'count', 'detail'],
      [
        [
          'generation order (AR steps)',
          r.generation.length,
          `${r.generation.map((g) => g.positions[0]?.length ?? 0).join(' + ')} tokens (sample 0)`,
        ],
        [
          'attention maps',
          r.attention.length,
          `layers ${layers.join(', ') || '-'}; diffusion steps ${dsteps.join(', ') || '-'}`,
        ],
        [
          'trajectories (x_t, x0, eps)',
          r.trajectories.length,
          `AR steps ${[...new Set(r.trajectories.map((t) => t.arStep))].join(', ') || '-'}`,
        ],
        ['KV-cache events', r.cacheLength.length, `last length ${r.cacheLength.at(-1)?.length ?? 0}`],
      ],
    ) +
    (r.generation.length
      ? `<div>generation order of sample 0 (AR step per patch):</div>${orderPreview(r.generation)}`
      : '') +
    `</div>`;
  return { 'text/plain': lines.join('\n'), 'text/html': html };
}

function trainingRecorderBundle(r: TrainingRecorder): MimeBundle {
  const recent = r.steps.slice(-5);
  const rows = recent.map((e) => [
    e.step,
    e.splitSizes.length,
    e.splitSizes.join(', '),
    (e.t.reduce((a, b) => a + b, 0) / Math.max(1, e.t.length)).toFixed(0),
    e.loss.toPrecision(4),
  ]);
  const text = `TrainingRecorder: ${r.steps.length} steps recorded (every ${r.every})${recent.length ? `, last step ${recent.at(-1)!.step}` : ''}`;
  const html = `<div class="cf-recorder"><b>TrainingRecorder</b>: ${r.steps.length} steps recorded (every ${r.every})${
    rows.length ? `; the last ${rows.length}:${table(['step', 'S', 'step sizes', 'mean t', 'loss'], rows)}` : ''
  }</div>`;
  return { 'text/plain': text, 'text/html': html };
}
