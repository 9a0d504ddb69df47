/**
 * Fréchet distance between two feature sets (FID with our classifier's features instead of Inception's):
 *   FD = |mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^(1/2).
 * tr (S1 S2)^(1/2) is the sum of sqrt(eigenvalues) of the symmetric PSD matrix S1^(1/2) S2 S1^(1/2), so two
 * symmetric eigendecompositions (ml-matrix) suffice; tiny negative eigenvalues are clamped to 0.
 * (ml-matrix's instance arithmetic mutates in place, so only `mmul`, `transpose` and fresh matrices are used.)
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';

/** Mean [d] and covariance [d x d] (unbiased, like numpy.cov) of n rows of d features. */
export function meanAndCov(
  features: Float32Array | Float64Array,
  d: number,
): { mean: Float64Array; cov: Float64Array; n: number } {
  const n = features.length / d;
  if (!Number.isInteger(n) || n < 2)
    throw new Error(`need at least 2 feature rows of ${d} values, got ${features.length} values`);
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += features[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = features[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      for (let b = a; b < d; b++) cov[a * d + b] += ra * row[b];
    }
  }
  for (let a = 0; a < d; a++)
    for (let b = a; b < d; b++) {
      cov[a * d + b] /= n - 1;
      cov[b * d + a] = cov[a * d + b];
    }
  return { mean, cov, n };
}

const toMatrix = (a: Float64Array, d: number) =>
  new Matrix(Array.from({ length: d }, (_, i) => Array.from(a.subarray(i * d, (i + 1) * d))));

/** Symmetric square root V diag(sqrt(max(l, 0))) V^T. */
function sqrtPsd(m: Matrix): Matrix {
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const V = e.eigenvectorMatrix;
  const s = Matrix.diag(e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0))));
  return V.mmul(s).mmul(V.transpose());
}

/** Fréchet distance between two Gaussians given by mean and covariance. */
export function frechetFromStats(
  a: { mean: Float64Array; cov: Float64Array },
  b: { mean: Float64Array; cov: Float64Array },
): number {
  const d = a.mean.length;
  if (b.mean.length !== d) throw new Error(`feature sizes differ: ${d} vs ${b.mean.length}`);
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean[j] - b.mean[j]) ** 2;
  let trA = 0;
  let trB = 0;
  for (let j = 0; j < d; j++) ((trA += a.cov[j * d + j]), (trB += b.cov[j * d + j]));
  const r = sqrtPsd(toMatrix(a.cov, d));
  const m = r.mmul(toMatrix(b.cov, d)).mmul(r);
  const sym = new Matrix(d, d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) sym.set(i, j, 0.5 * (m.get(i, j) + m.get(j, i)));
  const trSqrt = new EigenvalueDecomposition(sym, { assumeSymmetric: true }).realEigenvalues.reduce(
    (s, l) => s + Math.sqrt(Math.max(l, 0)),
    0,
  );
  return Math.max(0, meanTerm + trA + trB - 2 * trSqrt);
}

/** Fréchet distance between two sets of d-dimensional features (rows). */
export function frechetDistance(x: Float32Array | Float64Array, y: Float32Array | Float64Array, d: number): number {
  return frechetFromStats(meanAndCov(x, d), meanAndCov(y, d));
}
