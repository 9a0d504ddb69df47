/**
 * The committed notebooks are stored slim (notebooks/slim.js): no chart libraries and no chart scripts in their
 * outputs, and every figure once, as a palette PNG that every viewer draws (GitHub, nbviewer, VS Code and an
 * untrusted JupyterLab, which draws no SVG).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const NOTEBOOKS = path.resolve(__dirname, '..', '..', '..', 'notebooks');
const slim = require(path.join(NOTEBOOKS, 'slim.js')) as {
  slimNotebook(nb: Notebook, scale?: number): Notebook;
  LIBRARIES: string;
};

type Output = { output_type: string; data?: Record<string, string | string[]> };
type Notebook = { cells: { cell_type: string; outputs?: Output[] }[] };
const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const outputs = (nb: Notebook) => nb.cells.flatMap((c) => c.outputs ?? []);

/** A PNG's width, height and colour type (3: indexed) from its header. */
function pngHeader(b64: string): { width: number; height: number; colourType: number } {
  const b = Buffer.from(b64, 'base64');
  assert.equal(b.subarray(1, 4).toString('latin1'), 'PNG');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20), colourType: b[25] };
}

test('committed notebooks hold no chart libraries and no scripts, and each figure once, as a palette PNG', () => {
  const files = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb'));
  assert.equal(files.length, 8);
  for (const f of files) {
    const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, f), 'utf8')) as Notebook;
    let charts = 0;
    for (const o of outputs(nb)) {
      assert.ok(!text(o.data?.['text/plain']).startsWith(slim.LIBRARIES), `${f}: chart libraries stored`);
      assert.doesNotMatch(text(o.data?.['text/html']), /<script/, `${f}: a script in an output`);
      if (/^\[((vega-lite|plotly|d3) chart|CausalFusion explorer)\]/.test(text(o.data?.['text/plain']))) {
        charts++;
        assert.equal(pngHeader(text(o.data?.['image/png'])).colourType, 3, `${f}: a chart without its palette PNG`);
      }
      for (const t of ['text/html', 'image/svg+xml'])
        if (o.data?.['image/png'] !== undefined)
          assert.equal(o.data?.[t], undefined, `${f}: a figure stored twice (${t})`);
    }
    if (f !== '06-fashion-and-your-images.ipynb') assert.ok(charts > 0, `${f}: no chart outputs (not executed?)`);
  }
});

test('committed notebooks are at most 500 KB each', () => {
  for (const f of fs.readdirSync(NOTEBOOKS).filter((x) => x.endsWith('.ipynb'))) {
    const kb = fs.statSync(path.join(NOTEBOOKS, f)).size / 1000;
    assert.ok(kb <= 500, `${f}: ${kb.toFixed(0)} KB`);
  }
});

const SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10" fill="#1f77b4"/></svg>';

test('slimNotebook drops the library output and keeps each figure as a palette PNG alone; tables stay', () => {
  const chart =
    '<div id="c1" class="cf-chart"><div class="cf-static"><img src="data:image/svg+xml;base64,PHN2Zy8+"></div><script type="application/json" class="cf-spec">{"a":1}</script><script>mount("c1")</script></div>';
  const nb: Notebook = {
    cells: [
      {
        cell_type: 'code',
        outputs: [
          {
            output_type: 'display_data',
            data: { 'text/html': '<script>libs</script>', 'text/plain': `${slim.LIBRARIES}: d3` },
          },
        ],
      },
      {
        cell_type: 'code',
        outputs: [
          {
            output_type: 'display_data',
            data: {
              'text/html': [chart],
              'image/svg+xml': SVG,
              'text/plain': '[vega-lite chart] t',
              'application/vnd.vegalite.v5+json': '{"mark": "point"}',
            },
          },
        ],
      },
      {
        cell_type: 'code',
        outputs: [{ output_type: 'display_data', data: { 'text/html': '<b>table</b><script>x()</script>' } }],
      },
      {
        cell_type: 'code',
        outputs: [
          {
            output_type: 'display_data',
            data: {
              'text/html': '<img alt="SVG figure" src="data:image/svg+xml;base64,PHN2Zy8+">',
              'image/svg+xml': SVG,
              'text/plain': '[SVG figure]',
            },
          },
        ],
      },
      { cell_type: 'markdown' },
    ],
  };
  const out = slim.slimNotebook(nb, 2);
  assert.deepEqual(out.cells[0].outputs, []);
  for (const [cell, line] of [
    [1, '[vega-lite chart] t'],
    [3, '[SVG figure]'],
  ] as const) {
    const d = out.cells[cell].outputs![0].data!;
    assert.deepEqual(Object.keys(d).sort(), ['image/png', 'text/plain']);
    assert.equal(d['text/plain'], line);
    assert.deepEqual(pngHeader(text(d['image/png'])), { width: 40, height: 20, colourType: 3 }); // 2x the SVG
  }
  assert.deepEqual(slim.slimNotebook(structuredClone(out)), out); // slimming twice changes nothing
  assert.equal(out.cells[2].outputs![0].data!['text/html'], '<b>table</b><script>x()</script>');
});
