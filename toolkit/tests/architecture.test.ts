/**
 * The import graph says what the architecture is: folders in layers, each importing only its own layer's folder
 * and the layers below (type imports included), and no file-level import cycle. README's "Layout" draws the
 * same layers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const SRC = path.resolve(__dirname, '..', '..', 'src');

/** Low to high. Entry points (index, core, cli) sit on top. */
export const LAYERS: readonly (readonly string[])[] = [
  ['util', 'rng'],
  ['factorization', 'diffusion', 'data'],
  ['backend'],
  ['model'],
  ['io', 'sample'],
  ['train'],
  ['introspect'],
  ['eval'],
  ['viz'],
  ['studies', 'parity', 'explorer'],
  ['cli', 'index', 'core'],
];
const layerOf = (folder: string) => LAYERS.findIndex((l) => l.includes(folder));
/** The entry points build on each other: Node's entry is the browser core plus Node; the CLI uses Node's entry. */
const ENTRY_IMPORTS = ['index -> core', 'cli -> index'];

/** Every .ts file under src with its relative imports resolved to files. */
function imports(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        const deps = [...fs.readFileSync(p, 'utf8').matchAll(/(?:from|import)\s+'(\.[^']+)'/g)].map((m) => {
          const t = path.resolve(dir, m[1]);
          return fs.existsSync(t) && fs.statSync(t).isDirectory() ? path.join(t, 'index.ts') : `${t}.ts`;
        });
        out.set(p, deps);
      }
    }
  };
  walk(SRC);
  return out;
}

/** The top folder of a source file ('index' for src/index.ts). */
const folderOf = (file: string) => path.relative(SRC, file).split(path.sep)[0].replace(/\.ts$/, '');

test('every folder of toolkit/src imports only its own folder and lower layers', () => {
  const graph = imports();
  const wrong: string[] = [];
  for (const [file, deps] of graph) {
    const from = folderOf(file);
    assert.ok(layerOf(from) >= 0, `${path.relative(SRC, file)}: folder ${from} is in no layer`);
    for (const dep of deps) {
      const to = folderOf(dep);
      if (to === from) continue;
      if (layerOf(to) >= layerOf(from) && !ENTRY_IMPORTS.includes(`${from} -> ${to}`))
        wrong.push(`${path.relative(SRC, file)} -> ${path.relative(SRC, dep)} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycle between files (type imports included)', () => {
  const graph = imports();
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (u: string) => {
    state.set(u, 1);
    stack.push(u);
    for (const v of graph.get(u) ?? []) {
      if (!graph.has(v)) continue;
      if (state.get(v) === 1)
        cycles.push([...stack.slice(stack.indexOf(v)), v].map((f) => path.relative(SRC, f)).join(' -> '));
      else if (!state.has(v)) visit(v);
    }
    stack.pop();
    state.set(u, 2);
  };
  for (const u of graph.keys()) if (!state.has(u)) visit(u);
  assert.deepEqual(cycles, []);
});
