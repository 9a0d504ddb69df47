import { buildExplorer, writeExplorerFolder } from '../../explorer/folder';
import { defineCommand } from '../command';
import { flag, UsageError } from '../flags';

export const explorer = defineCommand({
  name: 'explorer',
  summary: 'write the live browser explorer (a static folder: open index.html, or publish it on any static host)',
  synopsis: '--out DIR [--checkpoint FILE[,FILE...]]',
  about: `Writes a static folder that runs CausalFusion models in the reader's browser (WebGPU, else WebGL, else
wasm) with no install and no network: index.html, the bundle, tfjs's wasm files, each model's weights in
float16 and a few real test images for editing. Open DIR/index.html (file:// works), or copy DIR to any static
host (GitHub Pages, a web server folder). --checkpoint takes our .safetensors files, the shipped names
mnist-small and mnist-base, or official .pt files (their preset is found from their shapes); several,
comma-separated, fill the page's model list.`,
  flags: {
    checkpoint: flag.text(
      'mnist-small,mnist-base',
      'models, comma-separated: checkpoint files or shipped names',
      'FILE[,FILE...]',
    ),
    out: flag.text(
      undefined,
      'the folder to write (replaced if it is an explorer folder; refused if it holds other files)',
      'DIR',
    ),
    title: flag.text('CausalFusion explorer', 'the page title', 'TEXT'),
  },
  async run(v) {
    if (!v.out) throw new UsageError('explorer needs --out DIR');
    const sources = v.checkpoint
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((checkpoint) => ({ checkpoint }));
    const built = buildExplorer(sources, v.title);
    const f = writeExplorerFolder(v.out, built);
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(
      `wrote ${f.dir} (${f.files.length} files, ${mb(f.bytes)}; the first page load is ${mb(f.firstLoadBytes)})\n` +
        `models: ${built.manifest.models.map((m) => `${m.name} (${mb(m.bytes)} float16)`).join(', ')}\n` +
        `open ${f.dir}/index.html in a browser, or publish the folder on a static host`,
    );
    return 0;
  },
});
