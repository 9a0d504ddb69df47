/**
 * The fused CPU kernels in plain JavaScript, for the wasm backend where no native addon can load (a web page):
 * the functions of toolkit/native/cfkernels.c on the same views of the wasm heap, one pass each. A page's
 * tfjs-wasm builds LayerNorm from ~9 ops and the attention of each (sample, head) from its own small matmuls
 * (XNNPACK wants plain 2-D products); for the few queries of a KV-cache step the dispatches, not the arithmetic,
 * cost the time. GELU is left to tfjs (Math.exp in a loop loses to its vectorised ops), as is attention over many
 * queries (the table's `maxAttentionQueries`). Sums run in float64 (cfkernels.c sums float lanes), so results
 * agree with the tfjs ops and the addon to float32 rounding. Browser-safe.
 */
import type { HeapKernels } from './heap-kernels';

/** Attention shape arguments as the addon takes them: N, H, Lq, Lk, hd, scale, (sN, sH, sL) of q, k, v. */
function shape(a: number[]) {
  const [N, H, Lq, Lk, hd, scale] = a;
  return { N, H, Lq, Lk, hd, scale, sq: a.slice(6, 9), sk: a.slice(9, 12), sv: a.slice(12, 15) };
}

/** Softmax of `row` over keys [0, r0) and [r1, r2) (`getAttnRanges`), 0 elsewhere. */
function softmaxRanges(row: Float32Array, at: number, Lk: number, r0: number, r1: number, r2: number): void {
  const a = r0;
  const b = Math.max(r1, a);
  const e = Math.max(r2, b);
  let mx = -Infinity;
  for (let j = 0; j < a; j++) mx = Math.max(mx, row[at + j]);
  for (let j = b; j < e; j++) mx = Math.max(mx, row[at + j]);
  let sum = 0;
  for (let j = 0; j < Lk; j++) {
    const inside = j < a || (j >= b && j < e);
    const v = inside ? Math.exp(row[at + j] - mx) : 0;
    row[at + j] = v;
    sum += v;
  }
  const inv = 1 / sum;
  for (let j = 0; j < Lk; j++) row[at + j] *= inv;
}

export const jsHeapKernels: HeapKernels = {
  layerNormForward(x, w, b, y, stats, rows, C, eps) {
    for (let r = 0; r < rows; r++) {
      const o = r * C;
      let s = 0;
      for (let i = 0; i < C; i++) s += x[o + i];
      const m = Math.fround(s / C);
      let q = 0;
      for (let i = 0; i < C; i++) q += (x[o + i] - m) * (x[o + i] - m);
      const rstd = Math.fround(1 / Math.sqrt(q / C + eps));
      for (let i = 0; i < C; i++) y[o + i] = (x[o + i] - m) * rstd * w[i] + b[i];
      stats[2 * r] = m;
      stats[2 * r + 1] = rstd;
    }
  },
  layerNormBackward(dy, x, w, stats, dx, dw, db, rows, C) {
    const sw = new Float64Array(C);
    const sb = new Float64Array(C);
    for (let r = 0; r < rows; r++) {
      const o = r * C;
      const [mean, rstd] = [stats[2 * r], stats[2 * r + 1]];
      let s1 = 0;
      let s2 = 0;
      for (let i = 0; i < C; i++) {
        const g = dy[o + i] * w[i];
        s1 += g;
        s2 += g * (x[o + i] - mean) * rstd;
      }
      const [m1, m2] = [s1 / C, s2 / C];
      for (let j = 0; j < C; j++) {
        const xh = (x[o + j] - mean) * rstd;
        dx[o + j] = rstd * (dy[o + j] * w[j] - m1 - xh * m2);
        sw[j] += dy[o + j] * xh;
        sb[j] += dy[o + j];
      }
    }
    dw.set(sw);
    db.set(sb);
  },
  attentionForward(q, k, v, ranges, o, p, ...args) {
    const { N, H, Lq, Lk, hd, scale, sq, sk, sv } = shape(args);
    const D = H * hd;
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++) {
        const [q0, k0, v0] = [n * sq[0] + h * sq[1], n * sk[0] + h * sk[1], n * sv[0] + h * sv[1]];
        const P = (n * H + h) * Lq * Lk;
        for (let i = 0; i < Lq; i++) {
          const [r0, r1, r2] = [ranges[3 * i], ranges[3 * i + 1], ranges[3 * i + 2]];
          const qi = q0 + i * sq[2];
          for (let j = 0; j < Lk; j++) {
            if (!(j < r0 || (j >= r1 && j < r2))) continue; // masked: softmaxRanges writes the 0
            const kj = k0 + j * sk[2];
            let dot = 0;
            for (let d = 0; d < hd; d++) dot += q[qi + d] * k[kj + d];
            p[P + i * Lk + j] = dot * scale;
          }
          softmaxRanges(p, P + i * Lk, Lk, r0, r1, r2);
          const oi = n * Lq * D + i * D + h * hd;
          for (let d = 0; d < hd; d++) o[oi + d] = 0;
          for (let j = 0; j < Lk; j++) {
            const pij = p[P + i * Lk + j];
            if (pij === 0) continue;
            const vj = v0 + j * sv[2];
            for (let d = 0; d < hd; d++) o[oi + d] += pij * v[vj + d];
          }
        }
      }
  },
  attentionBackward(q, k, v, p, dO, dq, dk, dv, ...args) {
    const { N, H, Lq, Lk, hd, scale, sq, sk, sv } = shape(args);
    const D = H * hd;
    const dS = new Float64Array(Lk);
    for (let n = 0; n < N; n++)
      for (let h = 0; h < H; h++) {
        const [q0, k0, v0] = [n * sq[0] + h * sq[1], n * sk[0] + h * sk[1], n * sv[0] + h * sv[1]];
        const P = (n * H + h) * Lq * Lk;
        for (let j = 0; j < Lk; j++) for (let d = 0; d < hd; d++) dk[k0 + j * sk[2] + d] = dv[v0 + j * sv[2] + d] = 0;
        for (let i = 0; i < Lq; i++) {
          const oi = n * Lq * D + i * D + h * hd;
          let dot = 0;
          for (let j = 0; j < Lk; j++) {
            let s = 0;
            for (let d = 0; d < hd; d++) s += dO[oi + d] * v[v0 + j * sv[2] + d];
            dS[j] = s;
            dot += p[P + i * Lk + j] * s;
          }
          const qi = q0 + i * sq[2];
          for (let d = 0; d < hd; d++) dq[qi + d] = 0;
          for (let j = 0; j < Lk; j++) {
            const pij = p[P + i * Lk + j];
            const g = pij * (dS[j] - dot) * scale;
            const [kj, vj] = [k0 + j * sk[2], v0 + j * sv[2]];
            for (let d = 0; d < hd; d++) {
              dq[qi + d] += g * k[kj + d];
              dk[kj + d] += g * q[qi + d];
              dv[vj + d] += pij * dO[oi + d];
            }
          }
        }
      }
  },
  sumSquares(g, n) {
    let s = 0;
    for (let i = 0; i < n; i++) s += g[i] * g[i];
    return s;
  },
  adamwUpdate(p, g, m, v, ema, n, gradScale, lr, beta1, beta2, eps, weightDecay, bc1, bc2Sqrt, emaDecay) {
    // the addon's float32 arithmetic: its arguments are floats, and every operation rounds to float
    const f = Math.fround;
    const [scale, b1, b2, e, bc2s, d] = [gradScale, beta1, beta2, eps, bc2Sqrt, emaDecay].map(f);
    const decay = weightDecay > 0 ? f(1 - f(f(lr) * f(weightDecay))) : 1;
    const step = f(f(lr) / f(bc1));
    if (g && m && v)
      for (let i = 0; i < n; i++) {
        const gi = f(g[i] * scale);
        const mi = f(f(m[i] * b1) + f(gi * f(1 - b1)));
        const vi = f(f(v[i] * b2) + f(f(gi * gi) * f(1 - b2)));
        m[i] = mi;
        v[i] = vi;
        const den = f(f(f(Math.sqrt(vi)) / bc2s) + e);
        p[i] = f(f(p[i] * decay) - f(f(mi / den) * step));
      }
    if (ema) for (let i = 0; i < n; i++) ema[i] = f(ema[i] * d) + f(p[i] * f(1 - d));
  },
  sumRows(x, out, rows, cols) {
    const acc = new Float64Array(cols);
    for (let r = 0; r < rows; r++) for (let i = 0; i < cols; i++) acc[i] += x[r * cols + i];
    out.set(acc);
  },
};
