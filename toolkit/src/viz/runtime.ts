/**
 * The browser side of the charts, sent at most once per page and library: vega, vega-lite, vega-embed and
 * plotly.js (basic bundle) read from node_modules (never a CDN, so everything works offline), and our runtime
 * (`views/browser.ts` bundled with its d3 modules by `npm run build`), which draws every chart output of the page.
 *
 * Two details make this work in every front end: the libraries are evaluated with the AMD `define` of
 * classic Notebook hidden (otherwise the UMD bundles register with require.js and set no globals), and
 * guards skip whatever is on the page already.
 */
import * as fs from 'fs';
import * as path from 'path';

/**
 * A group of browser builds sent together, in load order, with the global that says it is on the page already:
 * each file is `package/path` inside node_modules, or an absolute path (our runtime).
 */
export interface VizLibraryGroup {
  files: readonly { name: string; file: string }[];
  global: string;
}

const RUNTIME_FILE = path.resolve(__dirname, '..', '..', 'viz-runtime', 'causalfusion-viz.js');

/**
 * The libraries by chart library: our runtime (the d3 views) comes with any of them; vega's three packages and
 * plotly's basic bundle are sent only when a chart of theirs is first shown.
 */
export const VIZ_LIBRARIES: Record<'d3' | 'vega-lite' | 'plotly', VizLibraryGroup> = {
  d3: { files: [{ name: 'causalfusion-viz', file: RUNTIME_FILE }], global: 'causalfusionViz' },
  // vega-embed needs vega and vega-lite first
  'vega-lite': {
    files: [
      { name: 'vega', file: 'vega/build/vega.min.js' },
      { name: 'vega-lite', file: 'vega-lite/build/vega-lite.min.js' },
      { name: 'vega-embed', file: 'vega-embed/build/vega-embed.min.js' },
    ],
    global: 'vegaEmbed',
  },
  plotly: {
    files: [{ name: 'plotly.js-basic-dist-min', file: 'plotly.js-basic-dist-min/plotly-basic.min.js' }],
    global: 'Plotly',
  },
};

export type VizLibrary = keyof typeof VIZ_LIBRARIES;

/** The installed folder of a package (its `exports` map may hide package.json from require.resolve). */
function packageDir(name: string): string {
  const dir = (require.resolve.paths(name) ?? [])
    .map((p) => path.join(p, name))
    .find((d) => fs.existsSync(path.join(d, 'package.json')));
  if (!dir) throw new Error(`chart library ${name} is not installed (run npm ci)`);
  return dir;
}

const packageVersion = (dir: string) =>
  (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

/** Version of each inlined library, as installed (our runtime: the toolkit's version). */
export function vizLibraryVersions(): Record<string, string> {
  const files = Object.values(VIZ_LIBRARIES).flatMap((g) => g.files);
  return Object.fromEntries(
    files.map((l) => [
      l.name,
      packageVersion(path.isAbsolute(l.file) ? path.resolve(__dirname, '..', '..', '..') : packageDir(l.name)),
    ]),
  );
}

function libraryFile(rel: string): string {
  if (path.isAbsolute(rel)) {
    if (!fs.existsSync(rel)) throw new Error(`the chart runtime ${rel} is not built: run npm run build`);
    return rel;
  }
  const [pkg] = rel.split('/');
  return path.join(packageDir(pkg), rel.slice(pkg.length + 1));
}

// `</script` inside a library would end the element early, and source-map comments would point devtools at
// files that are not there
const safe = (s: string) => s.replace(/<\/script/gi, '<\\/script').replace(/^\/\/# sourceMappingURL=.*$/gm, '');

const groupCode = new Map<string, string>();

/** The code of one group, evaluated only when its global is missing. */
function groupScript(lib: VizLibrary): string {
  const g = VIZ_LIBRARIES[lib];
  let code = groupCode.get(lib);
  if (!code) {
    code = `if(!window.${g.global}){\n${g.files.map((f) => safe(fs.readFileSync(libraryFile(f.file), 'utf8'))).join('\n;\n')}\n}`;
    groupCode.set(lib, code);
  }
  return code;
}

/**
 * The `<script>` that puts the given libraries on the page, each at most once, and then draws any chart that was
 * waiting for them. Callers send 'd3' (our runtime) first.
 */
export function vizSetupHtml(libs: Iterable<VizLibrary> = ['d3', 'vega-lite', 'plotly']): string {
  const want = [...new Set(libs)];
  const versions = vizLibraryVersions();
  const names = want.flatMap((l) => VIZ_LIBRARIES[l].files.map((f) => `${f.name} ${versions[f.name]}`));
  const note = `CausalFusion Lab charts: ${names.join(', ')} (offline, sent once per page)`;
  return (
    `<div class="cf-viz-setup" style="font:11px sans-serif;color:#888">${note}</div>` +
    // classic Notebook's require.js would make the UMD bundles register as AMD modules and set no globals
    `<script>(function(){var d=window.define;window.define=undefined;try{\n` +
    want.map(groupScript).join('\n;\n') +
    `\n}finally{window.define=d}window.causalfusionViz&&window.causalfusionViz.mountAll()})();</script>`
  );
}
