/** A labelled grid of small images: AR step x diffusion step predictions, sample sheets, edits. */
import { pixelImage, svgRoot, textWidth, View } from './common';

export interface FramesSpec {
  title: string;
  /** Image side in pixels. */
  size: number;
  rows: string[];
  cols: string[];
  rowTitle: string;
  colTitle: string;
  /** Screen pixels per cell (rounded down to a whole multiple of the image side). */
  cellPx: number;
  /** PNG data URIs, row-major; null leaves the cell empty. */
  cells: (string | null)[];
}

export const drawFrames: View<FramesSpec> = (el, s) => {
  const px = s.size * Math.max(1, Math.floor(s.cellPx / s.size));
  const colW = Math.max(px, ...s.cols.map((c) => textWidth(c))) + 6;
  const left = Math.max(textWidth(s.rowTitle), ...s.rows.map((r) => textWidth(r))) + 14;
  const top = 56;
  const svg = svgRoot(el, left + s.cols.length * colW, top + s.rows.length * (px + 4) + 6, s.title);
  svg
    .append('text')
    .attr('x', left - 8)
    .attr('y', top - 24)
    .attr('text-anchor', 'end')
    .text(`${s.rowTitle} ↓`);
  svg
    .append('text')
    .attr('x', left)
    .attr('y', top - 24)
    .text(`${s.colTitle} →`);
  s.cols.forEach((c, ci) =>
    svg
      .append('text')
      .attr('x', left + ci * colW + px / 2)
      .attr('y', top - 6)
      .attr('text-anchor', 'middle')
      .text(c),
  );
  s.rows.forEach((r, ri) => {
    const y = top + ri * (px + 4);
    svg
      .append('text')
      .attr('x', left - 8)
      .attr('y', y + px / 2 + 4)
      .attr('text-anchor', 'end')
      .text(r);
    s.cols.forEach((c, ci) => {
      const href = s.cells[ri * s.cols.length + ci];
      if (href)
        pixelImage(svg, href, left + ci * colW, y, px, px)
          .append('title')
          .text(`${s.rowTitle} ${r}, ${s.colTitle} ${c}`);
    });
  });
};
