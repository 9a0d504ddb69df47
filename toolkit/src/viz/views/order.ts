/**
 * The order in which a sampler fills the image: the patch grid coloured and numbered by AR step, and the image
 * after each step behind a slider and a play button (tokens not generated yet mid-grey). Without frames it is the
 * grid alone.
 */
import { select } from 'd3-selection';
import { interval, Timer } from 'd3-timer';
import { pixelImage, svgRoot, View } from './common';

export interface OrderSpec {
  title: string;
  /** Side of the patch grid. */
  grid: number;
  /** Image side in pixels. */
  size: number;
  /** Raster tokens of each AR step. */
  steps: number[][];
  /** Tokens visible from the start (editing), drawn grey. */
  kept: number[];
  /** PNG data URIs of the image before step 1 and after each step (S + 1), or none. */
  frames: string[];
  colors: { steps: string[] };
  /** What frame 0 shows. */
  startLabel: string;
}

const KEPT = '#bbbbbb';

export const drawOrder: View<OrderSpec> = (el, s, interactive) => {
  const S = s.steps.length;
  const cell = Math.max(14, Math.floor(224 / s.grid));
  const scale = Math.max(2, Math.floor(224 / s.size));
  const [top, gridPx, imgPx] = [26, s.grid * cell, s.frames.length ? s.size * scale : 0];
  const stepOf = new Array<number>(s.grid * s.grid).fill(-1);
  s.steps.forEach((ps, k) => ps.forEach((p) => (stepOf[p] = k)));
  const svg = svgRoot(
    el,
    10 + gridPx + (imgPx ? 18 + imgPx : 0) + 10,
    top + Math.max(gridPx, imgPx + 18) + 10,
    s.title,
  );
  const cells = svg
    .append('g')
    .attr('transform', `translate(10,${top})`)
    .selectAll('g')
    .data(stepOf)
    .join('g')
    .attr('transform', (_, i) => `translate(${(i % s.grid) * cell},${Math.floor(i / s.grid) * cell})`);
  const kept = new Set(s.kept);
  cells
    .append('rect')
    .attr('width', cell - 1)
    .attr('height', cell - 1)
    .attr('fill', (k, i) => (kept.has(i) ? KEPT : k < 0 ? 'white' : s.colors.steps[k]))
    .append('title')
    .text((k, i) => `token ${i}${kept.has(i) ? ' (kept)' : k >= 0 ? `, AR step ${k + 1}` : ''}`);
  cells
    .filter((k) => k >= 0)
    .append('text')
    .attr('x', cell / 2)
    .attr('y', cell / 2 + 4)
    .attr('text-anchor', 'middle')
    .attr('fill', (k) => (k / Math.max(1, S - 1) > 0.5 ? 'white' : '#222'))
    .text((k) => k + 1);
  if (!imgPx) return;
  const x = 10 + gridPx + 18;
  const image = pixelImage(svg, s.frames[S], x, top, imgPx, imgPx).attr('class', 'cf-order-image');
  const caption = svg
    .append('text')
    .attr('x', x)
    .attr('y', top + imgPx + 14);
  const show = (k: number) => {
    image.attr('href', s.frames[k]);
    cells.select('rect').attr('opacity', (st) => (st < k ? 1 : 0.25));
    caption.text(k === 0 ? `before AR step 1 (${s.startLabel})` : `after AR step ${k} of ${S}`);
    el.setAttribute('data-step', String(k));
  };
  show(S);
  if (!interactive) return;
  const controls = select(el).append('div').style('font', '11px sans-serif').style('margin-top', '4px');
  const play = controls.append('button').attr('class', 'cf-play').text('▶ play');
  const slider = controls
    .append('input')
    .attr('type', 'range')
    .attr('class', 'cf-order-slider')
    .attr('min', 0)
    .attr('max', S)
    .attr('value', S)
    .style('vertical-align', 'middle');
  slider.on('input', (ev: Event) => show(+(ev.target as HTMLInputElement).value));
  let timer: Timer | null = null;
  const stop = () => {
    timer?.stop();
    timer = null;
    play.text('▶ play');
  };
  play.on('click', () => {
    if (timer) return stop();
    let k = 0;
    play.text('❚❚ pause');
    timer = interval(
      () => {
        slider.property('value', k);
        show(k);
        if (++k > S) stop();
      },
      Math.max(150, 1500 / S),
    );
  });
};
