/**
 * The committed notebooks are stored slim (notebooks/slim.js): no chart libraries and no chart scripts in their
 * outputs, while every chart keeps its static SVG for GitHub, nbviewer and untrusted Notebooks.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const NOTEBOOKS = path.resolve(__dirname, '..', '..', '..', 'notebooks');
const slim = require(path.join(NOTEBOOKS, 'slim.js')) as {
  slimNotebook(nb: Notebook): Notebook;
  LIBRARIES: string;
  UNTRUSTED_HINT: string;
};

type Output = { output_type: string; data?: Record<string, string | string[]> };
type Notebook = { cells: { cell_type: string; outputs?: Output[] }[] };
const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const outputs = (nb: Notebook) => nb.cells.flatMap((c) => c.outputs ?? []);

test('committed notebooks hold no chart libraries and no scripts, and each chart once, as its static SVG', () => {
  const files = fs.readdirSync(NOTEBOOKS).filter((f) => f.endsWith('.ipynb'));
  assert.equal(files.length, 7);
  for (const f of files) {
    const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, f), 'utf8')) as Notebook;
    let charts = 0;
    for (const o of outputs(nb)) {
      assert.ok(!text(o.data?.['text/plain']).startsWith(slim.LIBRARIES), `${f}: chart libraries stored`);
      assert.doesNotMatch(text(o.data?.['text/html']), /<script/, `${f}: a script in an output`);
      if (/^\[(vega-lite|plotly|d3) chart\]/.test(text(o.data?.['text/plain']))) {
        charts++;
        assert.match(text(o.data?.['image/svg+xml']), /^<svg/, `${f}: a chart without image/svg+xml`);
        assert.equal(o.data?.['text/html'], undefined, `${f}: a chart stored twice (HTML and SVG)`);
        assert.ok(text(o.data?.['text/plain']).endsWith(slim.UNTRUSTED_HINT), `${f}: a chart without its hint`);
      }
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

test('slimNotebook drops the library output and keeps each chart as its SVG alone; tables stay', () => {
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
              'image/svg+xml': '<svg/>',
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
              'image/svg+xml': '<svg/>',
              'text/plain': '[SVG figure]',
            },
          },
        ],
      },
      { cell_type: 'markdown' },
    ],
  };
  const out = slim.slimNotebook(nb);
  assert.deepEqual(out.cells[0].outputs, []);
  assert.deepEqual(out.cells[1].outputs![0].data, {
    'image/svg+xml': '<svg/>',
    'text/plain': `[vega-lite chart] t${slim.UNTRUSTED_HINT}`,
  });
  assert.deepEqual(slim.slimNotebook(structuredClone(out)), out); // slimming twice changes nothing
  assert.equal(out.cells[2].outputs![0].data!['text/html'], '<b>table</b><script>x()</script>');
  assert.deepEqual(out.cells[3].outputs![0].data, {
    'image/svg+xml': '<svg/>',
    'text/plain': `[SVG figure]${slim.UNTRUSTED_HINT}`,
  });
});
