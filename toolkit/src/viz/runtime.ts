/**
 * The browser side of the charts, sent once per page: vega, vega-lite, vega-embed, plotly.js (basic bundle)
 * and d3 read from node_modules (never a CDN, so everything works offline), then our runtime
 * (`viz-runtime/causalfusion-viz.js`), which draws every chart output of the page.
 *
 * Two details make this work in every front end: the libraries are evaluated with the AMD `define` of
 * classic Notebook hidden (otherwise the UMD bundles register with require.js and set no globals), and a
 * guard skips everything when the runtime is already on the page.
 */
import * as fs from 'fs';
import * as path from 'path';

/** UMD builds inlined by `vizSetupHtml`, in load order (vega-embed needs vega and vega-lite first). */
export const VIZ_LIBRARIES = [
  { name: 'vega', file: 'vega/build/vega.min.js' },
  { name: 'vega-lite', file: 'vega-lite/build/vega-lite.min.js' },
  { name: 'vega-embed', file: 'vega-embed/build/vega-embed.min.js' },
  { name: 'plotly.js-basic-dist-min', file: 'plotly.js-basic-dist-min/plotly-basic.min.js' },
  { name: 'd3', file: 'd3/dist/d3.min.js' },
] as const;

const RUNTIME_FILE = path.resolve(__dirname, '..', '..', '..', 'viz-runtime', 'causalfusion-viz.js');

/** The installed folder of a package (its `exports` map may hide package.json from require.resolve). */
function packageDir(name: string): string {
  const dir = (require.resolve.paths(name) ?? []).map((p) => path.join(p, name)).find((d) => fs.existsSync(path.join(d, 'package.json')));
  if (!dir) throw new Error(`chart library ${name} is not installed (run npm ci)`);
  return dir;
}

/** Version of each inlined library, as installed. */
export function vizLibraryVersions(): Record<string, string> {
  return Object.fromEntries(VIZ_LIBRARIES.map((l) => [l.name, (JSON.parse(fs.readFileSync(path.join(packageDir(l.name), 'package.json'), 'utf8')) as { version: string }).version]));
}

function libraryFile(rel: string): string {
  const [pkg] = rel.split('/');
  return path.join(packageDir(pkg), rel.slice(pkg.length + 1));
}

let cached: string | null = null;

/** The `<script>` that loads every library and the runtime once per page (about 2.3 MB). */
export function vizSetupHtml(): string {
  if (cached) return cached;
  const libs = VIZ_LIBRARIES.map((l) => fs.readFileSync(libraryFile(l.file), 'utf8'));
  const runtime = fs.readFileSync(RUNTIME_FILE, 'utf8');
  const versions = vizLibraryVersions();
  const note = `CausalFusion Lab charts: ${Object.entries(versions).map(([n, v]) => `${n} ${v}`).join(', ')} (offline, loaded once per page)`;
  // `</script` inside a library would end the element early
  // and source-map comments would point devtools at files that are not there
  const safe = (s: string) => s.replace(/<\/script/gi, '<\\/script').replace(/^\/\/# sourceMappingURL=.*$/gm, '');
  cached =
    `<div class="cf-viz-setup" style="font:11px sans-serif;color:#888">${note}</div>` +
    `<script>(function(){if(window.causalfusionViz)return;var d=window.define;window.define=undefined;try{\n` +
    libs.map(safe).join('\n;\n') +
    `\n;\n${safe(runtime)}\n}finally{window.define=d}})();</script>`;
  return cached;
}
