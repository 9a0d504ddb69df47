/**
 * Reverse-mode gradients that free memory as they go: tfjs's `variableGrads` / `grads` with PyTorch's
 * memory profile.
 *
 * tfjs's `engine.gradients` records the forward on its tape, keeping only what each op's gradient needs
 * (the `saved` tensors), but then holds every saved tensor and the gradient of every intermediate tensor
 * until the whole backward pass returns, so its peak is the saved activations plus one gradient per
 * activation. This walk goes over the same tape in the same order and, like autograd, frees a node's saved
 * tensors once its gradient ran and an intermediate's gradient once the node that produced it consumed it.
 * The numbers are those of tfjs's walk (the same gradient functions in the same order, sums in the same
 * order); only the lifetimes change.
 */
import * as tf from '@tensorflow/tfjs-core';

/** A recorded op, as tfjs's engine keeps it on its tape. */
interface TapeNode {
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved: tf.Tensor[];
  gradient?: (dys: tf.Tensor[]) => Record<string, () => tf.Tensor>;
}

/** The engine fields this walk uses (present at run time, not in tfjs's public typings). */
interface EngineTape {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
}

/** The nodes on a path from some x to y, in tape order, and the tensors whose gradients the walk needs. */
function pathToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): { nodes: TapeNode[]; fromX: Set<number> } {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<TapeNode>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      nodesFromX.add(node);
      node.outputs.forEach((o) => fromX.add(o.id));
    }
  }
  const toY = new Set([y.id]);
  const nodes: TapeNode[] = [];
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (!node.outputs.some((o) => toY.has(o.id))) continue;
    Object.values(node.inputs).forEach((t) => toY.add(t.id));
    if (nodesFromX.has(node)) nodes.push(node);
  }
  return { nodes: nodes.reverse(), fromX };
}

/**
 * y = f() and the gradients of y (seeded with `dy`, ones when absent) with respect to `xs` (null where y does
 * not depend on one). Like `tf.engine().gradients`, but each saved activation and intermediate gradient is
 * disposed as soon as the backward no longer needs it.
 */
export function gradients<T extends tf.Tensor>(
  f: () => T,
  xs: tf.Tensor[],
  dy?: tf.Tensor,
): { value: T; grads: (tf.Tensor | null)[] } {
  const engine = tf.engine() as unknown as EngineTape;
  if (engine.state.gradientDepth > 0) throw new Error('backprop.gradients: nested gradient calls are not supported');
  const takeTape = () => {
    const tape = engine.state.activeTape ?? [];
    engine.state.activeTape = null;
    return tape;
  };
  let y: T;
  try {
    y = engine.scopedRun(
      () => engine.startTape(),
      () => engine.endTape(),
      () => tf.tidy('forward', f),
    );
  } catch (e) {
    for (const node of takeTape()) node.saved.forEach((t) => t.dispose()); // a failed forward keeps nothing
    throw e;
  }
  const tape = takeTape();
  const { nodes, fromX } = pathToY(tape, xs, y);
  const xIds = new Set(xs.map((x) => x.id));
  const onPath = new Set(nodes);
  for (const node of tape) if (!onPath.has(node)) node.saved.forEach((t) => t.dispose()); // never needed
  if (nodes.length === 0 && xs.length > 0) {
    y.dispose();
    throw new Error('backprop.gradients: y does not depend on any of the xs (is every op inside f?)');
  }
  const grads: (tf.Tensor | null)[] = tf.tidy('backward', () => {
    const grads = new Map<number, tf.Tensor>(); // tensor id -> accumulated gradient
    const refs = new Map<tf.Tensor, number>(); // a gradient can stand for several ids (pass-through ops)
    const hold = (id: number, g: tf.Tensor) => {
      grads.set(id, g);
      refs.set(g, (refs.get(g) ?? 0) + 1);
    };
    const release = (g: tf.Tensor) => {
      const n = (refs.get(g) ?? 0) - 1;
      if (n > 0) return refs.set(g, n);
      refs.delete(g);
      if (g !== dy) g.dispose();
    };
    hold(y.id, dy ?? tf.onesLike(y));
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      if (!node.gradient) throw new Error(`backprop.gradients: op ${node.kernelName} has no gradient`);
      const dys = node.outputs.map((o) => grads.get(o.id) ?? null) as tf.Tensor[]; // null: the engine fills zeros
      const thunks = node.gradient(dys);
      for (const [name, x] of Object.entries(node.inputs)) {
        if (!fromX.has(x.id)) continue;
        if (!(name in thunks)) throw new Error(`backprop.gradients: ${node.kernelName} has no gradient for ${name}`);
        const dx = tf.tidy(thunks[name]);
        if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
          throw new Error(
            `backprop.gradients: ${node.kernelName} gave a ${dx.dtype} [${dx.shape}] gradient for ${name} [${x.shape}]`,
          );
        }
        const before = grads.get(x.id);
        if (!before) {
          hold(x.id, dx);
          continue;
        }
        hold(x.id, tf.add(before, dx));
        release(before);
        if (!refs.has(dx) && dx !== dy) dx.dispose();
      }
      for (const o of node.outputs) {
        const g = grads.get(o.id);
        if (g && !xIds.has(o.id)) {
          grads.delete(o.id);
          release(g);
        }
      }
      for (const t of node.saved) if (!refs.has(t)) t.dispose();
    }
    return xs.map((x) => grads.get(x.id) ?? null) as tf.Tensor[]; // null where y does not depend on x
  });
  return { value: y, grads };
}

/**
 * The scalar f() and its gradients with respect to `vars` by name (tfjs's `variableGrads`, freeing as it goes);
 * a variable y does not depend on gets no entry.
 */
export function variableGrads(
  f: () => tf.Scalar,
  vars: tf.Variable[],
): { value: tf.Scalar; grads: Record<string, tf.Tensor> } {
  const { value, grads } = gradients(() => {
    const y = f();
    if (y.rank !== 0) throw new Error(`variableGrads: f() must return a scalar, not a [${y.shape}] tensor`);
    return y;
  }, vars);
  const out: Record<string, tf.Tensor> = {};
  vars.forEach((v, i) => {
    const g = grads[i];
    if (g) out[v.name] = g;
  });
  return { value, grads: out };
}
