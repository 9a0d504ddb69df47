/**
 * The explorer's controls panel: class, CFG, AR steps S and their sizes, token order (with a grid to click the
 * order into), diffusion steps, seed and image count, each with a line of plain language; read as
 * `ExplorerOptions`, and set from them (so a scripted call or a page address shows what ran). Browser only.
 */
import { h } from './dom';
import { drawGrid, scaleFor, tokenAt } from './draw';
import type { ExplorerOptions, ModelCard } from './session';

const SIZES: [string, string][] = [
  ['equal', 'equal sizes'],
  ['law', 'drawn from the training law (γ = 0.9)'],
  ['typed', 'typed…'],
];
const ORDERS: [string, string][] = [
  ['random', 'random (from the seed)'],
  ['raster', 'raster (row by row)'],
  ['click', 'set by clicking tokens'],
];

export class Controls {
  readonly el = {
    label: h('select', { id: 'cf-label' }),
    cfg: h('input', { type: 'range', min: '1', max: '8', step: '0.5', value: '1', id: 'cf-cfg' }),
    arSteps: h('input', { type: 'range', min: '1', max: '16', step: '1', value: '4', id: 'cf-ar' }),
    sizes: h('select', { id: 'cf-sizes' }),
    typedSizes: h('input', { type: 'text', placeholder: 'e.g. 1,3,12', id: 'cf-typed', style: 'display:none' }),
    order: h('select', { id: 'cf-order' }),
    orderGrid: h('canvas', {
      id: 'cf-order-grid',
      style: 'display:none;margin-top:4px',
      title: 'click tokens in the order to generate them',
    }),
    diffusion: h('input', { type: 'range', min: '1', max: '250', step: '1', value: '25', id: 'cf-diff' }),
    seed: h('input', { type: 'number', value: '0', min: '0', id: 'cf-seed', style: 'width:7em' }),
    count: h('select', { id: 'cf-count' }),
    generate: h('button', { class: 'primary', id: 'cf-generate' }, 'Generate'),
  };
  readonly section: HTMLElement;
  /** Tokens clicked into the order grid, first first. */
  private typedOrder: number[] = [];
  private card: ModelCard | null = null;

  constructor() {
    const e = this.el;
    for (const [v, t] of SIZES) e.sizes.append(h('option', { value: v }, t));
    for (const [v, t] of ORDERS) e.order.append(h('option', { value: v }, t));
    for (const n of ['1', '4', '8']) e.count.append(h('option', { value: n }, n));
    const ctl = (title: string, hint: string, ...inputs: (Node | string)[]) =>
      h(
        'div',
        {},
        h('label', { class: 'ctl' }, title, h('span', { class: 'v' })),
        ...inputs,
        h('div', { class: 'hint' }, hint),
      );
    this.section = h(
      'section',
      { id: 'cf-controls' },
      h('h2', {}, 'Controls'),
      ctl(
        'Class',
        'Which class to draw. "unconditional" uses the null class the model learned with label dropout.',
        e.label,
      ),
      ctl(
        'CFG scale',
        'Classifier-free guidance: 1 is off; larger pushes the image towards the class (two passes per step).',
        e.cfg,
      ),
      ctl(
        'AR steps S',
        'How many rounds the image is made in. Each round denoises its tokens from pure noise while seeing the tokens of earlier rounds.',
        e.arSteps,
      ),
      ctl(
        'Step sizes',
        'How many tokens each round makes: equal, random cut points as in training, or typed sizes that sum to L.',
        e.sizes,
        e.typedSizes,
      ),
      ctl('Order', 'Which tokens come first. Training shuffles the order, so any order works.', e.order, e.orderGrid),
      ctl('Diffusion steps', 'Denoising steps per AR step (respaced from 1000, DDPM).', e.diffusion),
      ctl('Seed', 'The same seed and options give the same image.', e.seed),
      ctl('Images', 'Image 0 is animated and inspected; click another to inspect it in the strip.', e.count),
      h('div', { class: 'row', style: 'margin-top:10px' }, e.generate),
    );
    for (const x of [e.cfg, e.arSteps, e.diffusion, e.sizes, e.order]) x.addEventListener('input', () => this.show());
    e.orderGrid.addEventListener('click', (ev) => {
      const t = this.card && tokenAt(e.orderGrid, ev, this.card.grid);
      if (t == null) return;
      const i = this.typedOrder.indexOf(t);
      if (i >= 0) this.typedOrder.splice(i, 1);
      else this.typedOrder.push(t);
      this.drawOrderGrid();
    });
    this.show();
  }

  /** A new model: its classes (with their names, where known), S up to its L; a typed order or sizes are dropped. */
  setModel(card: ModelCard, classNames?: readonly string[]): void {
    const e = this.el;
    this.card = card;
    this.typedOrder = [];
    if (e.sizes.value === 'typed') e.sizes.value = 'equal';
    if (e.order.value === 'click') e.order.value = 'random';
    e.label.replaceChildren(
      ...Array.from({ length: card.classes }, (_, i) =>
        h('option', { value: String(i) }, classNames?.[i] ? `${i}: ${classNames[i]}` : String(i)),
      ),
      ...(card.nullClass ? [h('option', { value: 'null' }, 'unconditional')] : []),
    );
    e.arSteps.max = String(card.tokens);
    if (Number(e.arSteps.value) > card.tokens) e.arSteps.value = String(card.tokens);
    this.show();
  }

  /** The options the controls set. */
  read(): ExplorerOptions {
    const e = this.el;
    const L = this.card?.tokens ?? 0;
    const typed = () => {
      const v = e.typedSizes.value
        .split(/[\s,]+/)
        .filter(Boolean)
        .map(Number);
      if (!v.length || v.some((x) => !Number.isInteger(x) || x < 1))
        throw new Error(`step sizes "${e.typedSizes.value}": type positive integers separated by commas, summing to L`);
      return v;
    };
    // clicked tokens first, then the rest in raster order
    const order =
      e.order.value === 'click'
        ? [...this.typedOrder, ...Array.from({ length: L }, (_, i) => i).filter((i) => !this.typedOrder.includes(i))]
        : (e.order.value as 'random' | 'raster');
    return {
      label: e.label.value === 'null' ? null : Number(e.label.value),
      cfgScale: Number(e.cfg.value),
      arSteps: Number(e.arSteps.value),
      stepSizes: e.sizes.value === 'typed' ? typed() : (e.sizes.value as 'equal' | 'law'),
      order,
      diffusionSteps: Number(e.diffusion.value),
      seed: Number(e.seed.value) || 0,
      count: Number(e.count.value),
    };
  }

  /** Sets the controls from options (what a scripted call or the page's address asked for). */
  set(o: ExplorerOptions): void {
    const e = this.el;
    if (o.label !== undefined) e.label.value = o.label === null ? 'null' : String(o.label);
    if (o.cfgScale !== undefined) e.cfg.value = String(o.cfgScale);
    if (o.arSteps !== undefined) e.arSteps.value = String(o.arSteps);
    if (o.diffusionSteps !== undefined) e.diffusion.value = String(o.diffusionSteps);
    if (o.seed !== undefined) e.seed.value = String(o.seed);
    if (o.count !== undefined) e.count.value = String(o.count);
    if (Array.isArray(o.stepSizes)) {
      e.sizes.value = 'typed';
      e.typedSizes.value = o.stepSizes.join(',');
    } else if (o.stepSizes) e.sizes.value = o.stepSizes as string;
    if (Array.isArray(o.order)) {
      e.order.value = 'click';
      this.typedOrder = [...o.order];
    } else if (o.order) e.order.value = o.order as string;
    this.show();
  }

  /** Values beside the sliders, the typed-sizes box and the order grid where they apply. */
  private show(): void {
    const e = this.el;
    for (const x of [e.cfg, e.arSteps, e.diffusion]) {
      const span = x.parentElement?.querySelector('span.v');
      if (span) span.textContent = x.value;
    }
    e.typedSizes.style.display = e.sizes.value === 'typed' ? '' : 'none';
    e.orderGrid.style.display = e.order.value === 'click' ? '' : 'none';
    this.drawOrderGrid();
  }

  private drawOrderGrid(): void {
    if (!this.card || this.el.order.value !== 'click') return;
    const c = this.el.orderGrid;
    const px = scaleFor(this.card.grid, 160) * this.card.grid;
    c.width = c.height = px;
    const ctx = c.getContext('2d')!;
    ctx.fillStyle = '#eee';
    ctx.fillRect(0, 0, px, px);
    drawGrid(c, this.card.grid, { numbered: this.typedOrder });
  }
}
