// Renders a vega-lite spec (JSON on stdin) to SVG on stdout with the real vega / vega-lite libraries. A separate
// ES module because both packages are ESM with top-level await, which CommonJS code cannot require on Node 20.
import { compile } from 'vega-lite';
import { parse, View } from 'vega';

let input = '';
for await (const chunk of process.stdin) input += chunk;
const view = new View(parse(compile(JSON.parse(input)).spec), { renderer: 'none' });
process.stdout.write(await view.toSVG());
