/**
 * Static SVG renderers for the pictures only CausalFusion needs: the generalized causal mask with every
 * position's role and AR step, the generation order on the patch grid, attention of one query over the patch
 * grid, and a bar chart. They work everywhere (Node, notebooks, GitHub) and are the fallbacks of the
 * interactive charts. Colours: condition grey, clean blue, noisy orange; AR steps on a sequential ramp.
 */
import { AttnMask, SequencePosition } from '../factorization/mask';
import { pngDataUri } from './svg-compose';
import { escapeXml } from './svg-chart';

export const ROLE_COLORS: Record<SequencePosition['role'], string> = {
  cond: '#7f7f7f',
  clean: '#1f77b4',
  noisy: '#ff7f0e',
};

const esc = escapeXml;

/** How hovers and labels name a sequence position: role, raster token and AR step. */
export const positionLabel = (p: SequencePosition): string =>
  p.role === 'cond' ? `condition token ${p.token}` : `${p.role} token ${p.token} (AR step ${p.step + 1})`;

/** A colour for AR step s of S on a light-to-dark blue-purple ramp. */
export function stepColor(s: number, S: number): string {
  const f = S <= 1 ? 0.5 : s / (S - 1);
  const lerp = (a: number, b: number) => Math.round(a + (b - a) * f);
  return `rgb(${lerp(198, 63)},${lerp(219, 0)},${lerp(239, 125)})`;
}

/** Width a bold 13px title needs (about 7.5 px per character). */
const titleWidth = (title: string) => 16 + Math.ceil(7.5 * title.length);

const header = (w: number, h: number, title: string) =>
  `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="11"><rect width="${w}" height="${h}" fill="white"/><text x="8" y="16" font-size="13" font-weight="bold">${esc(title)}</text>`;

/**
 * The mask as a heatmap: a cell is filled (in the key's role colour) where the query may attend, blank where
 * masked. A role strip and the AR step label every row and column; each cell has a hover title.
 */
export function maskSvg(
  mask: AttnMask,
  positions: readonly SequencePosition[],
  opts: { title?: string; cell?: number } = {},
): string {
  const n = mask.seqLen;
  if (positions.length !== n) throw new Error(`${positions.length} position labels for a mask of ${n}`);
  const cell = opts.cell ?? Math.max(3, Math.min(16, Math.floor(560 / n)));
  const off = 40;
  const top = 28;
  const W = off + n * cell + 150;
  const H = top + off + n * cell + 10;
  const parts = [header(W, H, opts.title ?? `Generalized causal mask (${n} positions)`)];
  positions.forEach((p, i) => {
    parts.push(
      `<rect x="${off - 10}" y="${top + off + i * cell}" width="8" height="${cell}" fill="${ROLE_COLORS[p.role]}"/>`,
    );
    parts.push(
      `<rect x="${off + i * cell}" y="${top + off - 10}" width="${cell}" height="8" fill="${ROLE_COLORS[p.role]}"/>`,
    );
  });
  if (n <= 64) {
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) {
        if (mask.maskedOut[r * n + c]) continue;
        parts.push(
          `<rect x="${off + c * cell}" y="${top + off + r * cell}" width="${cell}" height="${cell}" fill="${ROLE_COLORS[positions[c].role]}" fill-opacity="0.75"><title>query: ${esc(positionLabel(positions[r]))}&#10;key: ${esc(positionLabel(positions[c]))}</title></rect>`,
        );
      }
    }
  } else {
    // one rect per cell would be megabytes at 64 + 2 x 256 positions: embed the cells as a PNG, one pixel each
    const rgb = (hex: string) =>
      [1, 3, 5].map((i) => Math.round(255 - 0.75 * (255 - parseInt(hex.slice(i, i + 2), 16))));
    const data = new Uint8Array(4 * n * n).fill(255);
    for (let r = 0; r < n; r++)
      for (let c = 0; c < n; c++)
        if (!mask.maskedOut[r * n + c]) data.set(rgb(ROLE_COLORS[positions[c].role]), 4 * (r * n + c));
    parts.push(
      `<image x="${off}" y="${top + off}" width="${n * cell}" height="${n * cell}" image-rendering="pixelated" style="image-rendering:pixelated" href="${pngDataUri({ width: n, height: n, data })}"/>`,
    );
  }
  parts.push(`<rect x="${off}" y="${top + off}" width="${n * cell}" height="${n * cell}" fill="none" stroke="#333"/>`);
  parts.push(
    `<text x="${off}" y="${top + off - 14}">keys →</text><text transform="translate(${off - 14} ${top + off + 40}) rotate(-90)">queries →</text>`,
  );
  (['cond', 'clean', 'noisy'] as const).forEach((role, k) => {
    parts.push(
      `<rect x="${off + n * cell + 16}" y="${top + off + 18 * k}" width="10" height="10" fill="${ROLE_COLORS[role]}"/><text x="${off + n * cell + 30}" y="${top + off + 18 * k + 9}">${role === 'cond' ? 'condition' : role}</text>`,
    );
  });
  parts.push(`<text x="${off + n * cell + 16}" y="${top + off + 66}">filled = may attend</text>`);
  parts.push('</svg>');
  return parts.join('');
}

/**
 * The patch grid coloured by the AR step that produces each token, with the step number in each cell.
 * `steps[s]` lists the raster positions of step s; `kept` positions (editing) are drawn grey.
 */
export function orderGridSvg(
  grid: number,
  steps: readonly (readonly number[])[],
  opts: { title?: string; cell?: number; kept?: readonly number[] } = {},
): string {
  const cell = opts.cell ?? Math.max(14, Math.floor(280 / grid));
  const top = 26;
  const W = grid * cell + 20;
  const H = top + grid * cell + 10;
  const stepOf = new Array<number>(grid * grid).fill(-1);
  steps.forEach((ps, s) => ps.forEach((p) => (stepOf[p] = s)));
  const title = opts.title ?? `Generation order (${steps.length} AR steps)`;
  const parts = [header(Math.max(W, titleWidth(title)), H, title)];
  for (let i = 0; i < grid * grid; i++) {
    const x = 10 + (i % grid) * cell;
    const y = top + Math.floor(i / grid) * cell;
    const s = stepOf[i];
    const kept = opts.kept?.includes(i);
    const fill = kept ? '#bbbbbb' : s < 0 ? '#ffffff' : stepColor(s, steps.length);
    parts.push(
      `<rect x="${x}" y="${y}" width="${cell}" height="${cell}" fill="${fill}" stroke="white"><title>token ${i}${kept ? ' (kept)' : s >= 0 ? `, AR step ${s + 1}` : ''}</title></rect>`,
    );
    if (s >= 0 && cell >= 14)
      parts.push(
        `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${s / Math.max(1, steps.length - 1) > 0.5 ? 'white' : '#222'}">${s + 1}</text>`,
      );
  }
  parts.push('</svg>');
  return parts.join('');
}

/**
 * Attention of one query over the patch grid, drawn on top of the image: `weights[raster index]` (summed over
 * heads or one head) as an orange overlay; the image is [size x size] grey in [-1, 1].
 */
export function attentionGridSvg(
  image: Float32Array,
  size: number,
  grid: number,
  weights: readonly number[],
  opts: { title?: string; scale?: number; query?: number } = {},
): string {
  const s = opts.scale ?? 8;
  const top = 26;
  const W = size * s + 20;
  const H = top + size * s + 10;
  const title = opts.title ?? 'Attention over the patch grid';
  const parts = [header(Math.max(W, titleWidth(title)), H, title)];
  parts.push(
    `<image x="10" y="${top}" width="${size * s}" height="${size * s}" image-rendering="pixelated" style="image-rendering:pixelated" href="${pngDataUri(image, size)}"/>`,
  );
  const max = Math.max(1e-12, ...weights);
  const p = (size / grid) * s;
  weights.forEach((w, i) => {
    const x = 10 + (i % grid) * p;
    const y = top + Math.floor(i / grid) * p;
    parts.push(
      `<rect x="${x}" y="${y}" width="${p}" height="${p}" fill="#ff7f0e" fill-opacity="${(0.75 * w) / max}" stroke="${i === opts.query ? '#d62728' : 'none'}" stroke-width="2"><title>token ${i}: ${w.toFixed(4)}</title></rect>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

/** A bar chart of labelled values. */
export function barChartSvg(spec: {
  title: string;
  xTitle: string;
  yTitle: string;
  labels: readonly (string | number)[];
  values: readonly number[];
  width?: number;
  height?: number;
}): string {
  const W = spec.width ?? 560;
  const H = spec.height ?? 260;
  const m = { l: 56, r: 16, t: 30, b: 44 };
  const n = spec.values.length;
  const max = Math.max(1e-12, ...spec.values);
  const bw = (W - m.l - m.r) / n;
  const parts = [header(W, H, spec.title)];
  spec.values.forEach((v, i) => {
    const h = ((H - m.t - m.b) * v) / max;
    parts.push(
      `<rect x="${m.l + i * bw + 1}" y="${H - m.b - h}" width="${Math.max(1, bw - 2)}" height="${h}" fill="#1f77b4"><title>${esc(String(spec.labels[i]))}: ${v.toPrecision(4)}</title></rect>`,
    );
    if (n <= 32 || i % Math.ceil(n / 16) === 0)
      parts.push(
        `<text x="${m.l + (i + 0.5) * bw}" y="${H - m.b + 14}" text-anchor="middle">${esc(String(spec.labels[i]))}</text>`,
      );
  });
  for (const f of [0, 0.5, 1]) {
    const y = H - m.b - f * (H - m.t - m.b);
    parts.push(
      `<line x1="${m.l - 4}" x2="${W - m.r}" y1="${y}" y2="${y}" stroke="#ddd"/><text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${(f * max).toPrecision(2)}</text>`,
    );
  }
  parts.push(
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(spec.xTitle)}</text><text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yTitle)}</text></svg>`,
  );
  return parts.join('');
}
