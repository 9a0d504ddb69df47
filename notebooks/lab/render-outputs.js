/**
 * The page side of check-lab.js: JupyterLab's own output rendering, from its npm packages. One OutputArea per
 * notebook output, rendered by a RenderMimeRegistry that holds what a JupyterLab 4 with the plotly extension
 * holds: the standard renderers (HTML, SVG, images, Markdown, LaTeX, JavaScript, text, errors), the vega
 * renderer of @jupyterlab/vega5-extension and the plotly renderer of jupyterlab-plotly, each at its real rank.
 * Bundled by check-lab.js with esbuild; plotly.js and vega come inside the bundle, so nothing is fetched.
 */
import { OutputArea, OutputAreaModel } from '@jupyterlab/outputarea';
import { RenderMimeRegistry, standardRendererFactories } from '@jupyterlab/rendermime';
import vegaExtension from '@jupyterlab/vega5-extension';
import plotlyExtensions from 'jupyterlab-plotly/lib/plotly-renderer';
import { Widget } from '@lumino/widgets';
import '@lumino/widgets/style/widget.css';
import '@jupyterlab/rendermime/style/base.css';
import '@jupyterlab/outputarea/style/base.css';

const rendermime = new RenderMimeRegistry({ initialFactories: standardRendererFactories });
for (const ext of [vegaExtension, ...plotlyExtensions]) rendermime.addFactory(ext.rendererFactory, ext.rank);

/**
 * Renders each output in its own output area (so areas map one to one to outputs), trusted or not, as
 * JupyterLab does for a notebook opened from disk (untrusted) or run / trusted by the user.
 */
window.renderOutputs = (outputs, trusted) => {
  outputs.forEach((output, i) => {
    const area = new OutputArea({ model: new OutputAreaModel({ values: [output], trusted }), rendermime });
    area.node.setAttribute('data-output', String(i));
    Widget.attach(area, document.body);
  });
  return rendermime.mimeTypes;
};
