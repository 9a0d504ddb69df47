/**
 * Parameter names, shapes and initialisation of `CausalDiffusionModel`, exactly as the official state_dict
 * names them (Linear weights are [out, in]), so official checkpoints load unchanged.
 */
import { Rng } from '../rng';
import { CausalFusionConfig, labelTableRows, numPatches, patchDim } from './config';

/** A host-side tensor: shape and float32 values, row-major. */
export interface HostTensor {
  shape: number[];
  data: Float32Array;
}
export type StateDict = Record<string, HostTensor>;

/** Official parameter names in state_dict order, with their shapes. */
export function parameterShapes(c: CausalFusionConfig): [string, number[]][] {
  const D = c.hiddenSize;
  const d = patchDim(c);
  const hd = D / c.numHeads;
  const mlp = Math.floor(D * c.mlpRatio);
  const out: [string, number[]][] = [
    ['pos_embed', [1, numPatches(c), D]],
    ['cond_pos_embed', [1, c.numCondTokens, D]],
    ['x_proj.weight', [D, d]],
    ['x_proj.bias', [D]],
    ['t_embedder.mlp.0.weight', [D, 256]],
    ['t_embedder.mlp.0.bias', [D]],
    ['t_embedder.mlp.2.weight', [D, D]],
    ['t_embedder.mlp.2.bias', [D]],
    ['y_embedder.embedding_table.weight', [labelTableRows(c), D * c.numCondTokens]],
  ];
  for (let i = 0; i < c.depth; i++) {
    const b = `blocks.${i}`;
    out.push(
      [`${b}.norm1.weight`, [D]],
      [`${b}.norm1.bias`, [D]],
      [`${b}.attn.qkv.weight`, [3 * D, D]],
      [`${b}.attn.proj.weight`, [D, D]],
      [`${b}.attn.proj.bias`, [D]],
      [`${b}.attn.q_norm.weight`, [hd]],
      [`${b}.attn.q_norm.bias`, [hd]],
      [`${b}.attn.k_norm.weight`, [hd]],
      [`${b}.attn.k_norm.bias`, [hd]],
      [`${b}.norm2.weight`, [D]],
      [`${b}.norm2.bias`, [D]],
      [`${b}.mlp.fc1.weight`, [mlp, D]],
      [`${b}.mlp.fc1.bias`, [mlp]],
      [`${b}.mlp.fc2.weight`, [D, mlp]],
      [`${b}.mlp.fc2.bias`, [D]],
    );
  }
  out.push(
    ['final_layer.0.weight', [D]],
    ['final_layer.0.bias', [D]],
    ['final_layer.1.weight', [d, D]],
    ['final_layer.1.bias', [d]],
  );
  return out;
}

/** Total number of parameters. */
export function countParameters(c: CausalFusionConfig): number {
  return parameterShapes(c).reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);
}

/**
 * MAE-style 2-D sin-cos table [gridSize², D] (`get_2d_sincos_pos_embed`): the first half of the channels
 * encodes the column, the second half the row; each half is [sin | cos] over D/4 frequencies.
 */
export function get2dSincosPosEmbed(embedDim: number, gridSize: number): Float32Array {
  const half = embedDim / 2;
  const quarter = half / 2;
  const out = new Float32Array(gridSize * gridSize * embedDim);
  const omega = Float64Array.from({ length: quarter }, (_, i) => 1 / Math.pow(10000, i / quarter));
  for (let h = 0; h < gridSize; h++) {
    for (let w = 0; w < gridSize; w++) {
      const row = (h * gridSize + w) * embedDim;
      [w, h].forEach((pos, part) => {
        // numpy works on float32 grid values, then float64 products: pos is an exact small integer either way.
        for (let i = 0; i < quarter; i++) {
          const a = pos * omega[i];
          out[row + part * half + i] = Math.sin(a);
          out[row + part * half + quarter + i] = Math.cos(a);
        }
      });
    }
  }
  return out;
}

/** `initialize_weights`: xavier-uniform Linears with zero bias, LayerNorm 1/0, sin-cos positions, N(0, 0.02)
 *  label table and cond positions, zero final projection. Seeded. */
export function initParameters(c: CausalFusionConfig, rng: Rng): StateDict {
  const sd: StateDict = {};
  for (const [name, shape] of parameterShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name === 'pos_embed') {
      data.set(get2dSincosPosEmbed(c.hiddenSize, c.inputSize / c.patchSize));
    } else if (name === 'y_embedder.embedding_table.weight' || name === 'cond_pos_embed') {
      for (let i = 0; i < n; i++) data[i] = 0.02 * rng.normal();
    } else if (name === 'final_layer.1.weight' || name.endsWith('.bias')) {
      // zeros: final projection (so the first prediction is 0) and every bias, LayerNorm biases included
    } else if (shape.length === 1) {
      data.fill(1); // LayerNorm weights
    } else {
      const bound = Math.sqrt(6 / (shape[0] + shape[1]));
      for (let i = 0; i < n; i++) data[i] = (2 * rng.random() - 1) * bound;
    }
    sd[name] = { shape, data };
  }
  return sd;
}
