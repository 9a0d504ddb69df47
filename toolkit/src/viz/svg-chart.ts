/**
 * A tiny static SVG line chart (axes, ticks, labelled series), the fallback used in reports and wherever no
 * browser runs. The spec reads like a small Vega-Lite one: data series, x / y titles, optional log y.
 */

export interface Series {
  name: string;
  x: readonly number[];
  /** null leaves a gap. */
  y: readonly (number | null)[];
  color?: string;
}

export interface LineChartSpec {
  title: string;
  xTitle: string;
  yTitle: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  logY?: boolean;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];

/** Text made safe inside SVG / HTML markup. */
export const escapeXml = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const esc = escapeXml;

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/**
 * 1-2-5 ticks per decade inside [lo, hi] (lo > 0), for log axes; on a range too narrow for three of those
 * (e.g. a loss between 0.6 and 1.6), linear round ticks instead.
 */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = Number((m * 10 ** e).toPrecision(12));
      if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) out.push(v);
    }
  return out.length >= 3 ? out : niceTicks(lo, hi, 6).filter((v) => v > 0);
}

const fmt = (v: number) =>
  Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(3)));

/** Renders the chart as a standalone SVG document. */
export function lineChartSvg(spec: LineChartSpec): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 320;
  const m = { l: 64, r: 140, t: 32, b: 44 };
  const pts = spec.series
    .flatMap((s) => s.x.map((x, i) => [x, s.y[i]] as const))
    .filter((p): p is readonly [number, number] => p[1] !== null && Number.isFinite(p[1]) && (!spec.logY || p[1] > 0));
  if (pts.length === 0) throw new Error(`chart "${spec.title}" has no finite points`);
  const tf = (y: number) => (spec.logY ? Math.log10(y) : y);
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => tf(p[1]))), Math.max(...pts.map((p) => tf(p[1])))];
  if (x1 === x0) ((x0 -= 1), (x1 += 1));
  if (y1 === y0) ((y0 -= 0.5), (y1 += 0.5));
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((tf(y) - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="18" font-size="13" font-weight="bold">${esc(spec.title)}</text>`,
  ];
  for (const v of niceTicks(x0, x1))
    parts.push(
      `<line x1="${X(v)}" x2="${X(v)}" y1="${H - m.b}" y2="${H - m.b + 4}" stroke="#333"/><text x="${X(v)}" y="${H - m.b + 16}" text-anchor="middle">${fmt(v)}</text>`,
    );
  const yTicks = spec.logY ? logTicks(10 ** y0, 10 ** y1) : niceTicks(y0, y1);
  for (const v of yTicks)
    parts.push(
      `<line x1="${m.l - 4}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/><text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  parts.push(
    `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#333"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
  );
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" text-anchor="middle">${esc(spec.xTitle)}</text>`);
  parts.push(
    `<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(spec.yTitle)}${spec.logY ? ' (log)' : ''}</text>`,
  );
  spec.series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    let d = '';
    let pen = false;
    s.x.forEach((x, i) => {
      const y = s.y[i];
      if (y === null || !Number.isFinite(y) || (spec.logY && y <= 0)) return void (pen = false);
      d += `${pen ? 'L' : 'M'}${X(x).toFixed(1)},${Y(y).toFixed(1)}`;
      pen = true;
    });
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.8"><title>${esc(s.name)}</title></path>`);
    parts.push(
      `<rect x="${W - m.r + 12}" y="${m.t + 16 * k}" width="10" height="10" fill="${color}"/><text x="${W - m.r + 26}" y="${m.t + 16 * k + 9}">${esc(s.name)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
