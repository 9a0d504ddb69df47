/**
 * The attention explorer: for a chosen query token, its attention over the image's patch grid drawn on the
 * image, as layer x head small multiples (plus the head mean and the rollout across layers), and the full
 * query x key matrix of one layer with the mask overlaid. Click an outlined patch or a matrix row to pick the
 * query; hover a map for the share that went to the condition tokens.
 */
import { interpolateOranges } from 'd3-scale-chromatic';
import { bits, bytes, legend, onCells, pixelImage, Sel, svgRoot, textWidth, tooltip, View } from './common';

export interface AttentionSpec {
  title: string;
  /** Side of the patch grid. */
  grid: number;
  /** Image side in pixels. */
  size: number;
  /** The image under the maps, a PNG data URI. */
  image: string;
  /** The query tokens offered: raster token, row in the records, label. */
  queries: { token: number; row: number; label: string }[];
  defaultQuery: number;
  layers: {
    label: string;
    /** Per head: each query's weights over the grid [queries x grid^2], quantised to its maximum, base64. */
    heads: { label: string; maps: string; cond: number[] }[];
  }[];
  matrix?: MatrixSpec;
}

/** One layer's full attention (head mean), with the mask. */
export interface MatrixSpec {
  title: string;
  rows: number;
  cols: number;
  /** The cells as a PNG data URI: oranges where allowed (by weight), grey where masked. */
  image: string;
  /** Each row's weights, quantised to the row's maximum `rowMax`, base64. */
  values: string;
  rowMax: number[];
  /** Where the mask lets the query attend, a packed bit set (`bits`). */
  allowed: string;
  rowRoles: number[];
  colRoles: number[];
  rowLabels: string[];
  colLabels: string[];
  roleColors: string[];
}

const MASKED = '#d9d9d9';
/** Opacity levels of the attention overlay. */
const LEVELS = 16;
const PICKED = '#d62728';

export const drawAttention: View<AttentionSpec> = (el, s, interactive) => {
  const G = s.grid * s.grid;
  const big = Math.max(2, Math.floor(224 / s.size));
  const tile = Math.max(2, Math.floor(96 / s.size));
  const [pickPx, tilePx, gap] = [s.size * big, s.size * tile, 6];
  const y0 = 58;
  const x0 = 10 + pickPx + 24 + Math.max(...s.layers.map((l) => textWidth(l.label))) + 8;
  const nHeads = Math.max(...s.layers.map((l) => l.heads.length));
  const tilesBottom = y0 + 14 + s.layers.length * (tilePx + gap);
  const m = s.matrix;
  const mCell = m ? Math.max(1, Math.min(24, Math.floor(480 / Math.max(m.rows, m.cols)))) : 0;
  const mTop = Math.max(y0 + 14 + pickPx, tilesBottom) + 28;
  const width = Math.max(x0 + nHeads * (tilePx + gap), m ? 10 + 12 + m.cols * mCell + 16 + 260 : 0);
  const height = m ? mTop + 14 + m.rows * mCell + 12 : Math.max(y0 + 14 + pickPx, tilesBottom) + 8;
  const svg = svgRoot(el, width, height, s.title);
  const info = svg.append('text').attr('class', 'cf-query-info').attr('x', 8).attr('y', 36);
  svg
    .append('text')
    .attr('x', 10)
    .attr('y', y0 + 8)
    .text(interactive ? 'Query (click an outlined patch):' : 'Query:');

  // the query picker: the image, every offered query outlined, the chosen one in red
  const picker = svg.append('g').attr('transform', `translate(10,${y0 + 14})`);
  const pickImage = pixelImage(picker, s.image, 0, 0, pickPx, pickPx).attr('class', 'cf-query-picker');
  const p = (s.size / s.grid) * big;
  picker
    .append('g')
    .selectAll('rect')
    .data(s.queries)
    .join('rect')
    .attr('x', (q) => (q.token % s.grid) * p + 1)
    .attr('y', (q) => Math.floor(q.token / s.grid) * p + 1)
    .attr('width', p - 2)
    .attr('height', p - 2)
    .attr('fill', 'none')
    .attr('stroke', 'rgba(79,195,247,0.9)')
    .attr('pointer-events', 'none');
  const picked = picker
    .append('rect')
    .attr('width', p - 3)
    .attr('height', p - 3)
    .attr('fill', 'none')
    .attr('stroke', PICKED)
    .attr('stroke-width', 3)
    .attr('pointer-events', 'none');

  // layer x head small multiples
  const maps = s.layers.map((l) => l.heads.map((h) => bytes(h.maps)));
  s.layers[0].heads.forEach((h, hi) =>
    svg
      .append('text')
      .attr('x', x0 + hi * (tilePx + gap) + tilePx / 2)
      .attr('y', y0 + 8)
      .attr('text-anchor', 'middle')
      .text(h.label),
  );
  const tiles: { g: Sel; title: Sel; li: number; hi: number }[] = [];
  s.layers.forEach((l, li) => {
    const y = y0 + 14 + li * (tilePx + gap);
    svg
      .append('text')
      .attr('x', x0 - 8)
      .attr('y', y + tilePx / 2 + 4)
      .attr('text-anchor', 'end')
      .text(l.label);
    l.heads.forEach((_, hi) => {
      const g = svg
        .append('g')
        .attr('class', 'cf-attn-map')
        .attr('transform', `translate(${x0 + hi * (tilePx + gap)},${y})`);
      pixelImage(g, s.image, 0, 0, tilePx, tilePx);
      g.append('g').attr('class', 'cf-overlay').attr('fill', '#ff7f0e');
      tiles.push({ g, title: g.append('title'), li, hi });
    });
  });

  const show = (q: number) => {
    const query = s.queries[q];
    picked.attr('x', (query.token % s.grid) * p + 1.5).attr('y', Math.floor(query.token / s.grid) * p + 1.5);
    info.text(`query: ${query.label}. Orange: its attention over the image tokens (each map scaled to its maximum).`);
    const tp = tilePx / s.grid;
    for (const t of tiles) {
      const row = maps[t.li][t.hi].subarray(q * G, (q + 1) * G);
      // one path per opacity level (16 levels): 21 maps x 256 tokens stay a few hundred kB in the static SVG
      const levels = Array.from({ length: LEVELS }, () => '');
      row.forEach((v, g) => {
        const k = Math.round((v / 255) * (LEVELS - 1));
        if (k > 0) levels[k] += `M${(g % s.grid) * tp},${Math.floor(g / s.grid) * tp}h${tp}v${tp}h${-tp}z`;
      });
      t.g
        .select('.cf-overlay')
        .selectAll('path')
        .data(levels.flatMap((d, k) => (d ? [{ d, k }] : [])))
        .join('path')
        .attr('fill-opacity', (l) => ((0.8 * l.k) / (LEVELS - 1)).toFixed(3))
        .attr('d', (l) => l.d);
      const { label, heads } = s.layers[t.li];
      t.title.text(`${label}, ${heads[t.hi].label}: condition tokens get ${(100 * heads[t.hi].cond[q]).toFixed(1)}%`);
    }
    el.setAttribute('data-query', String(q));
  };
  show(s.defaultQuery);

  const tip = interactive ? tooltip(el) : null;
  if (tip)
    onCells(
      pickImage,
      tip,
      p,
      (r, c) => `token ${r * s.grid + c}`,
      (r, c) => {
        const found = s.queries.findIndex((q) => q.token === r * s.grid + c);
        if (found >= 0) show(found);
        else
          info.text(`token ${r * s.grid + c} is not a query here (not generated in this step): pick an outlined patch`);
      },
    );
  if (!m) return;

  // the full matrix of one layer, rows = queries, columns = keys, role strips on both
  svg
    .append('text')
    .attr('x', 8)
    .attr('y', mTop - 8)
    .attr('font-weight', 'bold')
    .text(m.title);
  const mg = svg.append('g').attr('transform', `translate(22,${mTop + 12})`);
  const strip = (roles: number[], axis: 'row' | 'col') =>
    mg
      .append('g')
      .selectAll('rect')
      .data(roles)
      .join('rect')
      .attr(axis === 'row' ? 'x' : 'y', -10)
      .attr(axis === 'row' ? 'y' : 'x', (_, i) => i * mCell)
      .attr(axis === 'row' ? 'width' : 'height', 8)
      .attr(axis === 'row' ? 'height' : 'width', mCell)
      .attr('fill', (r) => m.roleColors[r]);
  strip(m.rowRoles, 'row');
  strip(m.colRoles, 'col');
  const matrix = pixelImage(mg, m.image, 0, 0, m.cols * mCell, m.rows * mCell).attr('class', 'cf-attn-matrix');
  legend(
    mg,
    [
      { color: interpolateOranges(1), label: 'high attention (row maximum)' },
      { color: interpolateOranges(0.1), label: 'low' },
      { color: MASKED, label: 'masked by the generalized causal mask' },
    ],
    m.cols * mCell + 16,
    0,
  );
  if (!tip) return;
  const v = bytes(m.values);
  const allowed = bits(m.allowed);
  onCells(
    matrix,
    tip,
    mCell,
    (r, c) =>
      r < 0 || c < 0 || r >= m.rows || c >= m.cols
        ? null
        : `${m.rowLabels[r]}\n→ ${m.colLabels[c]}\n${
            allowed(r * m.cols + c) ? `weight ${((v[r * m.cols + c] / 255) * m.rowMax[r]).toFixed(4)}` : 'masked'
          }`,
    (r) => {
      const found = s.queries.findIndex((q) => q.row === r);
      if (found >= 0) show(found);
    },
  );
};

/** The matrix cell colour of a weight (relative to its row's maximum), and of a masked cell. */
export const matrixColor = (relative: number | null): string =>
  relative === null ? MASKED : interpolateOranges(relative);
