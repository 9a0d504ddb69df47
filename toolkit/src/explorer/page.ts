/**
 * The explorer page (bundled by toolkit/scripts/bundle-viz.js into dist/explorer/explorer.js): a CausalFusion
 * model running live in the reader's browser, with every part of the dual factorization under the reader's
 * hands. It starts the best backend (WebGPU with the project's WGSL kernels, WebGL, wasm), loads the weights
 * with a progress bar, and offers: generation with class, CFG, AR steps S and their sizes, order, diffusion steps
 * and seed, animated AR step by AR step with a scrubber over x_t and x̂0; a click on a token for its attention and
 * its row of the generalized causal mask; editing of real test images; S = 1 vs a few steps vs S = L; a dropped
 * checkpoint of one's own. Everything it does is on `window.causalfusion` (see `ExplorerApi`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { initPageBackend, PAGE_BACKENDS, PageBackend, PageBackendReport } from '../backend/browser';
import { editMask, EditMode, EDIT_MODES, keptPixels } from '../sample/edit';
import { SamplingPause } from '../sample/sampler';
import { attentionChart } from '../viz/charts-attention';
import { maskChart } from '../viz/charts-factorization';
import { D3_VIEWS } from '../viz/views';
import { fromBase64 } from '../util/bytes';
import { decodeImages, ExplorerGlobals, ManifestImages } from './manifest';
import {
  ExplorerOptions,
  ExplorerRun,
  ExplorerSession,
  frameImage,
  maskRow,
  ModelCard,
  runImage,
  stepOfToken,
  tokenAttention,
} from './session';
import { drawGrid, drawHeat, drawImage, scaleFor, tokenAt } from './draw';
import { h, loadScript } from './dom';
import { Controls } from './controls';
import { EditRequest, ExplorerApi, optionsFromQuery, runSummary, ShownAttention } from './api';
import { EXPLORER_CSS } from './style';

type Globals = ExplorerGlobals & typeof globalThis & { causalfusion?: ExplorerApi };
const g = globalThis as Globals;

class ExplorerPage {
  readonly session = new ExplorerSession();
  private manifest = g.CAUSALFUSION_EXPLORER!;
  private report: PageBackendReport | null = null;
  private run: ExplorerRun | null = null;
  private focus = 0;
  private frame = { index: -1, which: 'x0' as 'xt' | 'x0' };
  private picked: number | null = null;
  private shown: ShownAttention | null = null;
  private readonly controls = new Controls();
  private editKeep: boolean[] = [];
  private editSource: Float32Array | null = null;
  /** The class of the image being edited (null: unknown, e.g. given pixels). */
  private editLabel: number | null = null;
  /** The current model's test images (decoded once), their classes and the dataset's class names. */
  private tests: { images: Float32Array[]; labels: number[]; classNames?: string[] } = { images: [], labels: [] };
  private busy = false;
  private playing = 0;
  readonly times: Record<string, number> = {};
  private readonly el = {
    status: h('span', { class: 'status' }, 'starting…'),
    bar: h('div'),
    card: h('div', { class: 'card' }),
    error: h('div', { class: 'error', role: 'alert' }),
    models: h('select', { 'aria-label': 'model' }),
    backend: h('select', { 'aria-label': 'backend' }),
    drop: h(
      'div',
      { class: 'drop' },
      'Drop your own .safetensors or official .pt here, or ',
      h('input', { type: 'file', accept: '.safetensors,.pt,.pth,.bin' }),
    ),
    main: h('canvas', { id: 'cf-main', title: 'click a generated token to see its attention' }),
    scrub: h('input', { type: 'range', min: '0', max: '0', value: '0', id: 'cf-scrub' }),
    scrubLabel: h('div', { class: 'hint' }),
    which: h('select', { id: 'cf-which' }),
    play: h('button', { id: 'cf-play' }, '▶ replay'),
    strip: h('div', { class: 'strip', id: 'cf-strip' }),
    attention: h('div', { class: 'cf-view', id: 'cf-attention' }),
    mask: h('div', { class: 'cf-view', id: 'cf-mask' }),
    editImages: h('div', { class: 'strip', id: 'cf-edit-images' }),
    editGrid: h('canvas', { id: 'cf-edit-grid', title: 'click or drag over tokens to regenerate them' }),
    editLabel: h('select', { id: 'cf-edit-label' }),
    editRun: h('button', { class: 'primary', id: 'cf-edit-run' }, 'Regenerate the red tokens'),
    editOut: h('div', { id: 'cf-edit-out' }),
    compareRun: h('button', { id: 'cf-compare-run' }, 'Compare S = 1, 4, L'),
    compareOut: h('div', { id: 'cf-compare-out' }),
  };

  constructor() {
    this.build();
  }

  // ---------------------------------------------------------------- layout

  private build(): void {
    const style = h('style', {}, EXPLORER_CSS);
    document.head.append(style);
    document.title = this.manifest.title;
    const e = this.el;
    for (const b of ['auto', ...PAGE_BACKENDS]) e.backend.append(h('option', { value: b }, b));
    e.backend.value = new URLSearchParams(location.search).get('backend') ?? 'auto';
    for (const m of this.manifest.models) e.models.append(h('option', { value: m.name }, m.name));
    for (const [v, t] of [
      ['x0', 'predicted x̂0'],
      ['xt', 'noisy x_t'],
    ])
      e.which.append(h('option', { value: v }, t));

    const header = h(
      'header',
      {},
      h('h1', {}, 'CausalFusion explorer'),
      h(
        'div',
        { class: 'tag' },
        'A Causal Diffusion Transformer running in your browser: it generates an image in S autoregressive steps, each one a full diffusion chain over its tokens. S = 1 is plain diffusion; S = L is token-by-token AR.',
      ),
      h('div', {}, h('div', { class: 'row' }, 'model ', e.models, ' backend ', e.backend), e.drop),
      h('div', {}, e.card, h('div', { class: 'row' }, h('div', { class: 'progress' }, e.bar), e.status)),
    );
    const generation = h(
      'section',
      { id: 'cf-generation' },
      h('h2', {}, 'Generation, AR step by AR step'),
      h(
        'div',
        { class: 'hint' },
        'Coloured frames: the AR step that made each token. Scrub through every denoising step; click a token for its attention.',
      ),
      e.main,
      e.scrub,
      h('div', { class: 'row' }, e.which, e.play),
      e.scrubLabel,
      e.strip,
    );
    const attention = h(
      'section',
      { id: 'cf-attention-panel' },
      h('h2', {}, 'Attention of the clicked token'),
      h(
        'div',
        { class: 'hint' },
        "Where the token looked when it was generated: every layer and head, the head mean and the rollout. Below: the generalized causal mask of this schedule, the token's row outlined.",
      ),
      e.attention,
      e.mask,
    );
    const editing = h(
      'section',
      { id: 'cf-editing' },
      h('h2', {}, 'Zero-shot editing'),
      h(
        'div',
        { class: 'hint' },
        'Pick an image, paint the tokens to regenerate (red), optionally swap the class. Kept tokens go into the KV cache as clean context and come back bit-exact.',
      ),
      e.editImages,
      h('div', { class: 'row' }, ...EDIT_MODES.map((m) => this.button(`regen ${m}`, () => this.setEditKeep(m)))),
      e.editGrid,
      h('div', { class: 'row', style: 'margin-top:6px' }, 'class ', e.editLabel, e.editRun),
      e.editOut,
    );
    const compare = h(
      'section',
      { id: 'cf-compare' },
      h('h2', {}, 'Side by side: S = 1, a few AR steps, S = L'),
      h(
        'div',
        { class: 'hint' },
        'The same class, seed and diffusion steps, generated as plain diffusion, in a few AR steps, and token by token.',
      ),
      e.compareRun,
      e.compareOut,
    );
    document.body.append(
      header,
      e.error,
      h('main', {}, this.controls.section, generation, attention, h('div', { class: 'wide two' }, editing, compare)),
    );
    this.wire();
    this.controls.set(optionsFromQuery(location.search));
  }

  private button(text: string, onClick: () => void): HTMLButtonElement {
    const b = h('button', {}, text);
    b.addEventListener('click', onClick);
    return b;
  }

  private wire(): void {
    const e = this.el;
    this.controls.el.generate.addEventListener(
      'click',
      () => void this.guard(() => this.generate(this.controls.read())),
    );
    e.backend.addEventListener('change', () => {
      const u = new URL(location.href);
      u.searchParams.set('backend', e.backend.value);
      location.href = u.toString();
    });
    e.models.addEventListener('change', () => void this.guard(() => this.selectModel(e.models.value)));
    const file = e.drop.querySelector('input')!;
    file.addEventListener('change', () => file.files?.[0] && void this.dropFile(file.files[0]));
    e.drop.addEventListener('dragover', (ev) => (ev.preventDefault(), e.drop.classList.add('over')));
    e.drop.addEventListener('dragleave', () => e.drop.classList.remove('over'));
    e.drop.addEventListener('drop', (ev) => {
      ev.preventDefault();
      e.drop.classList.remove('over');
      const f = ev.dataTransfer?.files[0];
      if (f) void this.dropFile(f);
    });
    e.scrub.addEventListener('input', () => this.showFrame(Number(e.scrub.value)));
    e.which.addEventListener('change', () => {
      this.frame.which = e.which.value as 'xt' | 'x0';
      this.showFrame(this.frame.index);
    });
    e.play.addEventListener('click', () => this.replay());
    e.main.addEventListener('click', (ev) => {
      const c = this.session.card;
      const t = c && tokenAt(e.main, ev, c.grid);
      if (t != null && this.run) this.guard(() => this.clickToken(t));
    });
    let painting: boolean | null = null;
    const paint = (ev: MouseEvent) => {
      const c = this.session.card;
      const t = c && tokenAt(e.editGrid, ev, c.grid);
      if (t == null || painting === null) return;
      this.editKeep[t] = !painting;
      this.drawEditGrid();
    };
    e.editGrid.addEventListener('mousedown', (ev) => {
      const c = this.session.card;
      const t = c && tokenAt(e.editGrid, ev, c.grid);
      if (t == null) return;
      painting = this.editKeep[t]; // start on a kept token: paint "regenerate"; else erase
      paint(ev);
    });
    e.editGrid.addEventListener('mousemove', (ev) => ev.buttons && paint(ev));
    window.addEventListener('mouseup', () => (painting = null));
    e.editRun.addEventListener('click', () => void this.guard(() => this.runEdit({})));
    e.compareRun.addEventListener('click', () => void this.guard(() => this.compare(this.controls.read())));
  }

  // ---------------------------------------------------------------- status and errors

  private status(text: string, fraction?: number): void {
    this.el.status.textContent = text;
    if (fraction !== undefined) this.el.bar.style.width = `${Math.round(100 * Math.min(1, fraction))}%`;
  }

  showError(err: unknown): void {
    const m = err instanceof Error ? err.message : String(err);
    this.el.error.textContent = m;
    this.el.error.style.display = 'block';
    console.warn(`[causalfusion explorer] ${m}`);
  }

  private clearError(): void {
    this.el.error.style.display = 'none';
    this.el.error.textContent = '';
  }

  /** Runs a user action: one at a time, errors shown in the page (and passed on to scripted callers). */
  private async guard<T>(f: () => T | Promise<T>): Promise<T> {
    if (this.busy) throw new Error('the explorer is busy; wait for the current run to finish');
    this.busy = true;
    this.controls.el.generate.disabled = this.el.editRun.disabled = this.el.compareRun.disabled = true;
    try {
      const r = await f();
      this.clearError();
      return r;
    } catch (e) {
      this.showError(e);
      throw e;
    } finally {
      this.busy = false;
      this.controls.el.generate.disabled = this.el.editRun.disabled = this.el.compareRun.disabled = false;
    }
  }

  // ---------------------------------------------------------------- start-up and models

  async start(): Promise<ModelCard> {
    const t0 = performance.now();
    this.status('starting the backend…', 0.02);
    const wasmFiles = async () => {
      if (!g.CAUSALFUSION_WASM) await loadScript('wasm.js');
      return Object.fromEntries(
        Object.entries(g.CAUSALFUSION_WASM ?? {}).map(([name, b64]) => [
          name,
          URL.createObjectURL(new Blob([fromBase64(b64)], { type: 'application/wasm' })),
        ]),
      );
    };
    this.report = await initPageBackend(this.el.backend.value as PageBackend | 'auto', { wasmFiles });
    this.times.backend = performance.now() - t0;
    const wanted = new URLSearchParams(location.search).get('model');
    const first = this.manifest.models.find((m) => m.name === wanted) ?? this.manifest.models[0];
    if (!first) throw new Error('this explorer folder holds no model');
    const card = await this.guard(() => this.selectModel(first.name));
    this.times.firstImage = performance.now();
    return card;
  }

  /** Loads a shipped model's chunks (scripts, so that file:// works), with progress. */
  private async fetchShipped(name: string): Promise<Uint8Array> {
    const m = this.manifest.models.find((x) => x.name === name);
    if (!m)
      throw new Error(
        `no model "${name}" in this folder (it has ${this.manifest.models.map((x) => x.name).join(', ')})`,
      );
    const inline = g.CAUSALFUSION_INLINE_WEIGHTS?.[name];
    const parts: string[] = inline ? inline.slice() : new Array<string>(m.chunks);
    if (!inline) {
      for (let i = 0; i < m.chunks; i++) {
        g.causalfusionChunk = (model, index, b64) => {
          if (model === name && index === i) parts[i] = b64;
        };
        await loadScript(`models/${encodeURIComponent(name)}/${i}.js`);
        this.status(
          `loading ${name}: ${((((i + 1) / m.chunks) * m.bytes) / 1e6).toFixed(1)} of ${(m.bytes / 1e6).toFixed(1)} MB`,
          0.05 + (0.75 * (i + 1)) / m.chunks,
        );
      }
    }
    const out = new Uint8Array(m.bytes);
    let at = 0;
    for (const p of parts) {
      const b = fromBase64(p);
      out.set(b, at);
      at += b.length;
    }
    if (at !== m.bytes) throw new Error(`weights of ${name}: ${at} bytes arrived, ${m.bytes} expected`);
    return out;
  }

  async selectModel(name: string): Promise<ModelCard> {
    const t0 = performance.now();
    const bytes = await this.fetchShipped(name);
    const m = this.manifest.models.find((x) => x.name === name)!;
    this.el.models.value = name;
    this.times.weights = performance.now() - t0;
    return this.useModel(bytes, m.file, this.manifest.images[name]);
  }

  async loadModel(bytes: Uint8Array, name: string): Promise<ModelCard> {
    const images = Object.values(this.manifest.images);
    return this.useModel(bytes, name, undefined, images);
  }

  private async dropFile(f: File): Promise<void> {
    try {
      this.status(`reading ${f.name}…`, 0.1);
      const bytes = new Uint8Array(await f.arrayBuffer());
      await this.guard(() => this.loadModel(bytes, f.name));
    } catch {
      this.status(`kept ${this.session.card?.name ?? 'no model'}`, 1); // the error is on the page
    }
  }

  /** Makes the model current (the session keeps the old one on error), then compiles and draws a first image. */
  private async useModel(
    bytes: Uint8Array,
    file: string,
    images?: ManifestImages,
    candidates: ManifestImages[] = [],
  ): Promise<ModelCard> {
    this.status(`building ${file}…`, 0.85);
    const card = this.session.load(bytes, file);
    const c = this.session.model.config;
    const set =
      images ??
      candidates.find(
        (m) => m.shape[1] === c.latentChannels && m.shape[2] === c.inputSize && m.shape[3] === c.inputSize,
      );
    this.tests = set
      ? { images: decodeImages(set), labels: set.labels, classNames: set.classNames }
      : { images: [], labels: [] };
    this.run = null;
    this.picked = null;
    this.shown = null;
    this.fillCard(card);
    this.controls.setModel(card, this.tests.classNames);
    this.fillEditLabels(card);
    this.el.compareRun.textContent = `Compare S = 1, ${Math.min(4, card.tokens)}, ${card.tokens}`;
    this.el.attention.textContent = '';
    this.el.mask.textContent = '';
    this.el.compareOut.textContent = '';
    this.el.editOut.textContent = '';
    this.fillEditImages();
    this.status('compiling shaders: first image…', 0.9);
    await this.generate(this.controls.read());
    this.status(`ready: ${card.name} on ${this.report?.chosen}`, 1);
    return card;
  }

  private fillCard(card: ModelCard): void {
    const rows: [string, string][] = [
      ['model', card.name],
      ['preset', card.preset],
      ['tokens', `L = ${card.tokens} (${card.grid}×${card.grid} patches of ${card.patchSize}×${card.patchSize})`],
      ['parameters', `${(card.parameters / 1e6).toFixed(2)} M`],
      ['classes', `${card.classes}${card.nullClass ? ' + null' : ''}`],
      ['backend', `${this.report?.chosen ?? '?'}: ${this.report?.detail ?? ''}`],
    ];
    this.el.card.replaceChildren(...rows.flatMap(([k, v]) => [h('b', {}, k), h('span', { 'data-field': k }, v)]));
  }

  private fillEditLabels(card: ModelCard): void {
    const names = this.tests.classNames;
    this.el.editLabel.replaceChildren(
      h('option', { value: 'own' }, "the image's own"),
      ...Array.from({ length: card.classes }, (_, i) =>
        h('option', { value: String(i) }, `swap to ${names?.[i] ?? i}`),
      ),
    );
  }

  // ---------------------------------------------------------------- generation and its animation

  async generate(opts: ExplorerOptions): Promise<ExplorerRun> {
    this.controls.set(opts);
    const card = this.session.card!;
    this.status('generating…');
    const run = await this.session.generate(opts, {
      onPause: (p: SamplingPause) => {
        if (p.kind === 'step' && (p.diffusionStep + 1) % 5 === 0)
          this.status(
            `AR step ${p.arStep + 1} of ${p.arSteps}, denoising step ${p.diffusionStep + 1} of ${p.diffusionSteps}`,
          );
      },
    });
    this.showRun(run);
    this.status(
      `${card.name}: ${run.options.count} image(s), S = ${run.stepSizes.length}, ${run.options.diffusionSteps} denoising steps in ${run.ms} ms`,
      1,
    );
    return run;
  }

  private showRun(run: ExplorerRun): void {
    this.run = run;
    this.focus = 0;
    this.picked = null;
    const frames = run.frames.reduce((n, f) => n + f.xt.length, 0);
    this.el.scrub.max = String(Math.max(0, frames - 1));
    this.el.scrub.value = this.el.scrub.max;
    this.drawStrip();
    this.showFrame(frames - 1);
    this.replay();
  }

  /** Plays the whole run once: AR step by AR step, every denoising step (about 2 s). */
  private replay(): void {
    const total = Number(this.el.scrub.max) + 1;
    const id = ++this.playing;
    const t0 = performance.now();
    const tick = () => {
      if (id !== this.playing) return;
      const i = Math.min(total - 1, Math.floor(((performance.now() - t0) / 2000) * total));
      this.el.scrub.value = String(i);
      this.showFrame(i);
      if (i < total - 1) requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  /** Draws frame `index` of image 0 (the final image for the strip's other images). */
  private showFrame(index: number): void {
    const run = this.run;
    const card = this.session.card;
    if (!run || !card) return;
    this.frame.index = index;
    const [, C, H, W] = run.imageShape;
    let img: Float32Array;
    let s = run.frames.length - 1;
    let j = 0;
    let text = `image ${this.focus}: final`;
    if (this.focus === 0 && run.frames.length) {
      let left = index;
      s = 0;
      while (s < run.frames.length - 1 && left >= run.frames[s].xt.length) left -= run.frames[s++].xt.length;
      j = Math.max(0, Math.min(left, run.frames[s].xt.length - 1));
      img = frameImage(run, s, j, this.frame.which);
      text = `AR step ${s + 1} of ${run.frames.length} (${run.frames[s].positions.length} tokens), denoising step ${j + 1} of ${run.frames[s].xt.length}, t = ${run.frames[s].t[j]}: ${this.frame.which === 'x0' ? 'predicted clean tokens x̂0' : 'noisy tokens x_t'}`;
    } else img = runImage(run, this.focus);
    drawImage(this.el.main, img, C, H, W, scaleFor(W, 280));
    const stepOf = new Array<number>(run.L).fill(-1);
    run.kept.forEach((t) => (stepOf[t] = -2));
    let cum = 0;
    run.stepSizes.forEach((k, st) => {
      if (st <= s || this.focus !== 0) for (const t of run.orders[this.focus].slice(cum, cum + k)) stepOf[t] = st;
      cum += k;
    });
    drawGrid(this.el.main, card.grid, { stepOf, steps: run.stepSizes.length, picked: this.picked });
    this.el.scrubLabel.textContent = text;
  }

  private drawStrip(): void {
    const run = this.run!;
    const [N, C, H, W] = run.imageShape;
    this.el.strip.replaceChildren(
      ...Array.from({ length: N }, (_, n) => {
        const c = h('canvas', { 'data-image': String(n) });
        drawImage(c, runImage(run, n), C, H, W, scaleFor(W, 56));
        if (n === this.focus) c.classList.add('focus');
        c.addEventListener('click', () => {
          this.focus = n;
          this.drawStrip();
          this.showFrame(this.frame.index);
        });
        return c;
      }),
    );
  }

  // ---------------------------------------------------------------- attention of a token

  clickToken(token: number): ShownAttention {
    const run = this.run;
    if (!run) throw new Error('generate an image first');
    if (this.focus !== 0) {
      this.focus = 0;
      this.drawStrip();
    }
    const card = this.session.card!;
    if (!Number.isInteger(token) || token < 0 || token >= card.tokens)
      throw new Error(`token ${token} is outside 0..${card.tokens - 1}`);
    if (stepOfToken(run, token) < 0) throw new Error(`token ${token} was kept from the input, not generated`);
    const a = tokenAttention(run, token);
    const row = maskRow(run, token);
    this.picked = token;
    this.showFrame(this.frame.index);
    const [, C, H, W] = run.imageShape;
    const grey = runImage(run, 0).subarray(0, H * W);
    const records = run.attention.filter((r) => r.arStep === a.arStep);
    this.el.attention.replaceChildren();
    if (C === 1 && H === W) {
      const chart = attentionChart(records, Float32Array.from(grey), W, card.grid, { query: token, matrixLayer: null });
      D3_VIEWS['d3-attention'](this.el.attention, chart.spec as never, true);
    } else {
      // no grey image under the maps: draw the head means over a blank grid
      for (const l of a.layers) {
        const c = h('canvas');
        c.width = c.height = card.grid * 12;
        drawHeat(c, card.grid, l.mean);
        this.el.attention.append(h('div', { class: 'figure' }, c, `layer ${l.layer} mean`));
      }
    }
    const m = maskChart(run.mask.mask, run.mask.positions, {
      title: `Generalized causal mask of this schedule; row of token ${token} outlined`,
      highlight: row,
    });
    this.el.mask.replaceChildren();
    D3_VIEWS['d3-mask'](this.el.mask, m.spec as never, true);
    this.shown = {
      token,
      arStep: a.arStep,
      diffusionStep: a.diffusionStep,
      t: a.t,
      layers: a.layers.map((l) => ({
        layer: l.layer,
        mean: Array.from(l.mean),
        heads: l.heads.map((x) => Array.from(x)),
        cond: l.meanCond,
      })),
      rollout: Array.from(a.rollout),
      maskRow: row,
    };
    return this.shown;
  }

  // ---------------------------------------------------------------- editing

  private fillEditImages(): void {
    const card = this.session.card!;
    const { images: imgs, labels } = this.tests;
    const [C, H, W] = [card.channels, card.imageSize, card.imageSize];
    const pick = (img: Float32Array, label: number | null) => {
      this.editSource = img;
      this.editLabel = label;
      if (this.editKeep.length !== card.tokens) this.editKeep = editMask('bottom', card.grid);
      this.drawEditGrid();
    };
    const thumbs = imgs.map((img, i) => {
      const c = h('canvas', {
        'data-test-image': String(i),
        title: `test image ${i} (class ${labels[i]})`,
      });
      drawImage(c, img, C, H, W, scaleFor(W, 48));
      c.addEventListener('click', () => pick(img, labels[i]));
      return c;
    });
    const fromRun = this.button(
      'use generated image 0',
      () => this.run && pick(runImage(this.run, 0), this.run.options.label),
    );
    this.el.editImages.replaceChildren(...thumbs, fromRun);
    this.editKeep = [];
    if (imgs.length) pick(imgs[0], labels[0]);
    else
      this.el.editImages.prepend(
        h('div', { class: 'hint' }, 'No test images of this shape ship with the page: edit a generated image.'),
      );
  }

  private setEditKeep(mode: EditMode): void {
    const card = this.session.card;
    if (!card) return;
    this.editKeep = editMask(mode, card.grid);
    this.drawEditGrid();
  }

  private drawEditGrid(): void {
    const card = this.session.card;
    if (!card || !this.editSource) return;
    drawImage(
      this.el.editGrid,
      this.editSource,
      card.channels,
      card.imageSize,
      card.imageSize,
      scaleFor(card.imageSize, 168),
    );
    drawGrid(this.el.editGrid, card.grid, { shaded: this.editKeep.map((k) => !k) });
  }

  async runEdit(req: EditRequest): Promise<ExplorerRun & { input: Float32Array }> {
    const card = this.session.card!;
    const imgs = this.tests.images;
    let image = this.editSource;
    let own = this.editLabel;
    if (typeof req.image === 'number') {
      if (!imgs[req.image]) throw new Error(`no test image ${req.image} (this model has ${imgs.length})`);
      image = imgs[req.image];
      own = this.tests.labels[req.image];
    } else if (Array.isArray(req.image)) {
      image = Float32Array.from(req.image);
      own = null;
    }
    if (!image) throw new Error('pick an image to edit first');
    const keep =
      req.keep === undefined ? this.editKeep : typeof req.keep === 'string' ? editMask(req.keep, card.grid) : req.keep;
    if (!keep.length) throw new Error('paint the tokens to regenerate first');
    const swap = this.el.editLabel.value;
    const label = req.label !== undefined ? req.label : swap === 'own' ? (own ?? 0) : Number(swap);
    this.editSource = image;
    this.editKeep = [...keep];
    this.drawEditGrid();
    const run = await this.session.edit(image, keep, { ...this.controls.read(), ...req, label, count: req.count ?? 1 });
    const [, C, H, W] = run.imageShape;
    const fig = (img: Float32Array, caption: string) => {
      const c = h('canvas');
      drawImage(c, img, C, H, W, scaleFor(W, 112));
      return h('div', { class: 'figure' }, c, caption);
    };
    const keptOnly = keptPixels(image, keep, this.session.model.config);
    this.el.editOut.replaceChildren(
      fig(image, 'input'),
      fig(keptOnly, 'kept tokens'),
      fig(runImage(run, 0), `result, class ${label} (${run.ms} ms)`),
    );
    this.showRun(run);
    return { ...run, input: image };
  }

  // ---------------------------------------------------------------- side by side

  async compare(opts: ExplorerOptions, arSteps?: number[]): Promise<ExplorerRun[]> {
    const runs = await this.session.compare({ ...opts, count: 1 }, arSteps, {
      onPause: (p) =>
        void (
          p.kind === 'step' &&
          p.diffusionStep === 0 &&
          this.status(`comparing: S = ${p.arSteps}, AR step ${p.arStep + 1}`)
        ),
    });
    this.el.compareOut.replaceChildren(
      ...runs.map((r) => {
        const [, C, H, W] = r.imageShape;
        const c = h('canvas');
        drawImage(c, runImage(r, 0), C, H, W, scaleFor(W, 112));
        const S = r.stepSizes.length;
        const name = S === 1 ? 'plain diffusion' : S === r.L ? 'token by token' : `${S} AR steps`;
        return h('div', { class: 'figure' }, c, `S = ${S}: ${name}`, h('br'), `${r.ms} ms`);
      }),
    );
    this.status(`compared S = ${runs.map((r) => r.stepSizes.length).join(', ')}`, 1);
    return runs;
  }

  api(ready: Promise<ModelCard>): ExplorerApi {
    const testImages = () => ({
      images: this.tests.images.map((x) => Array.from(x)),
      labels: this.tests.labels.slice(),
    });
    return {
      ready,
      backend: () => this.report,
      card: () => this.session.card,
      models: () => this.manifest.models.map((m) => m.name),
      selectModel: (name) => this.guard(() => this.selectModel(name)),
      loadModel: (bytes, name) =>
        this.guard(() =>
          this.loadModel(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes as ArrayBuffer), name),
        ),
      generate: async (opts = {}) =>
        runSummary(await this.guard(() => this.generate({ ...this.controls.read(), ...opts }))),
      clickToken: (token) => {
        try {
          const r = this.clickToken(token);
          this.clearError();
          return r;
        } catch (e) {
          this.showError(e);
          throw e;
        }
      },
      shownAttention: () => this.shown,
      edit: async (req) => {
        const r = await this.guard(() => this.runEdit(req));
        return { ...runSummary(r), input: Array.from(r.input) };
      },
      compare: async (opts = {}, arSteps) =>
        (await this.guard(() => this.compare({ ...this.controls.read(), ...opts }, arSteps))).map(runSummary),
      testImages,
      timings: () => ({ ...this.times }),
    };
  }
}

/** Boots the page: the api exists at once, `ready` settles when the first image is drawn. */
function boot(): void {
  if (!g.CAUSALFUSION_EXPLORER) {
    document.body.textContent =
      'This page needs its manifest (manifest.js): write the folder with `causalfusion explorer`.';
    return;
  }
  tf.env().set('PROD', true); // no tfjs debug checks or warnings in the page
  const page = new ExplorerPage();
  const ready = page.start().catch((e: unknown) => {
    page.showError(e);
    throw e;
  });
  ready.catch(() => undefined); // shown in the page; scripted callers still see the rejection
  g.causalfusion = page.api(ready);
}

boot();
