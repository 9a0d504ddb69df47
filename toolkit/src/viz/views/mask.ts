/**
 * The generalized causal mask as a heatmap: rows are queries, columns keys, both with a role strip; an allowed
 * cell has the key's colour (role, or AR step), a masked one is blank. The cells are one raster (64 + 2 x 256
 * positions are 330k cells); hovering names query and key.
 */
import { bits, legend, legendWidth, onCells, pixelImage, svgRoot, tooltip, View } from './common';

export interface MaskSpec {
  title: string;
  /** Sequence length (rows = columns). */
  n: number;
  /** The cells as a PNG data URI, one pixel per (query, key). */
  cells: string;
  /** Where the query may attend, row-major, a packed bit set (`bits`). */
  allowed: string;
  /** [role index, AR step (0-based, -1 for condition tokens), raster token] per sequence position. */
  positions: [number, number, number][];
  roleNames: string[];
  colors: { roles: string[]; steps: string[] };
  colorBy: 'role' | 'step';
  /** A query row to outline (the explorer's picked token). */
  highlight?: number;
}

const describe = (s: MaskSpec, i: number) => {
  const [role, step, token] = s.positions[i];
  return role === 0 ? `condition token ${token}` : `${s.roleNames[role]} token ${token} (AR step ${step + 1})`;
};

export const drawMask: View<MaskSpec> = (el, s, interactive) => {
  const n = s.n;
  const cell = Math.max(1, Math.min(16, Math.floor(560 / n)));
  const [off, top, side] = [40, 28, n * cell];
  const items = s.roleNames.map((label, k) => ({ color: s.colors.roles[k], label }));
  if (s.colorBy === 'step')
    items.push(
      { color: s.colors.steps[0], label: 'cells: AR step 1 of the key' },
      { color: s.colors.steps[s.colors.steps.length - 1], label: `AR step ${s.colors.steps.length}` },
    );
  items.push({ color: 'white', label: 'blank = masked' });
  const svg = svgRoot(el, off + side + 20 + legendWidth(items), top + off + side + 10, s.title);
  const g = svg.append('g').attr('transform', `translate(${off},${top + off})`);
  const strip = (axis: 'row' | 'col') =>
    g
      .append('g')
      .selectAll('rect')
      .data(s.positions)
      .join('rect')
      .attr(axis === 'row' ? 'x' : 'y', -10)
      .attr(axis === 'row' ? 'y' : 'x', (_, i) => i * cell)
      .attr(axis === 'row' ? 'width' : 'height', 8)
      .attr(axis === 'row' ? 'height' : 'width', cell)
      .attr('fill', (p) => s.colors.roles[p[0]]);
  strip('row');
  strip('col');
  const cells = pixelImage(g, s.cells, 0, 0, side, side).attr('class', 'cf-mask-cells');
  g.append('rect').attr('width', side).attr('height', side).attr('fill', 'none').attr('stroke', '#333');
  g.append('text').attr('y', -14).text('keys →');
  g.append('text').attr('transform', 'translate(-14 40) rotate(-90)').text('queries →');
  legend(g, items, side + 16, 0);
  if (s.highlight !== undefined)
    g.append('rect')
      .attr('class', 'cf-mask-row')
      .attr('x', -12)
      .attr('y', s.highlight * cell - 1)
      .attr('width', side + 14)
      .attr('height', cell + 2)
      .attr('fill', 'none')
      .attr('stroke', '#d62728')
      .attr('stroke-width', 2);
  if (!interactive) return;
  const allowed = bits(s.allowed);
  onCells(cells, tooltip(el), cell, (r, c) =>
    r < 0 || c < 0 || r >= n || c >= n
      ? null
      : `query ${r}: ${describe(s, r)}\nkey ${c}: ${describe(s, c)}\n${allowed(r * n + c) ? 'may attend' : 'masked'}`,
  );
};
