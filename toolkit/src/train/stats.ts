/**
 * Training-loss statistics behind the paper's Fig. 4: the unweighted noise MSE broken down by AR-step index
 * (Fig. 4c: later steps see more context), by the number of AR steps S of the batch (Fig. 4a) and by
 * diffusion time t. Plain numbers only, so they serialise into checkpoints and feed charts directly.
 */

/** Sum and count of one bucket. */
interface Bucket {
  sum: number;
  count: number;
}

/** Mean MSE per bucket; `null` where nothing was seen. */
export interface LossBreakdown {
  /** byArStep[s]: mean MSE of tokens generated at AR step s (0-based). */
  byArStep: (number | null)[];
  /** byNumSteps[S - 1]: mean MSE of batches trained with S AR steps. */
  byNumSteps: (number | null)[];
  /** byTBin[b]: mean MSE of samples whose t fell in bin b of `tBins` equal bins over [0, T). */
  byTBin: (number | null)[];
  /** Tokens behind each byArStep entry (to judge noise in the estimate). */
  arStepTokens: number[];
}

export class LossStats {
  private arStep: Bucket[] = [];
  private numSteps: Bucket[] = [];
  private tBin: Bucket[];

  constructor(
    readonly tBins = 10,
    readonly numTimesteps = 1000,
  ) {
    if (!Number.isInteger(tBins) || tBins < 1) throw new Error(`t bins must be a positive integer, got ${tBins}`);
    this.tBin = Array.from({ length: tBins }, () => ({ sum: 0, count: 0 }));
  }

  /**
   * Adds one batch: `tokenMse` is [N * L] in each sample's shuffled order, `cumsum` the split's boundaries
   * (tokens cumsum[s]..cumsum[s+1] belong to AR step s), `t` one timestep per sample.
   */
  add(tokenMse: Float32Array, cumsum: readonly number[], t: readonly number[]): void {
    const N = t.length;
    const L = tokenMse.length / N;
    const S = cumsum.length - 1;
    const grow = (b: Bucket[], n: number) => {
      while (b.length < n) b.push({ sum: 0, count: 0 });
    };
    grow(this.arStep, S);
    grow(this.numSteps, S);
    let batchSum = 0;
    for (let n = 0; n < N; n++) {
      let sampleSum = 0;
      for (let s = 0; s < S; s++) {
        let stepSum = 0;
        for (let i = cumsum[s]; i < cumsum[s + 1]; i++) stepSum += tokenMse[n * L + i];
        this.arStep[s].sum += stepSum;
        this.arStep[s].count += cumsum[s + 1] - cumsum[s];
        sampleSum += stepSum;
      }
      const bin = Math.min(this.tBins - 1, Math.floor((t[n] * this.tBins) / this.numTimesteps));
      this.tBin[bin].sum += sampleSum / L;
      this.tBin[bin].count += 1;
      batchSum += sampleSum;
    }
    this.numSteps[S - 1].sum += batchSum / (N * L);
    this.numSteps[S - 1].count += 1;
  }

  toJSON(): LossStatsState {
    const pairs = (b: Bucket[]) => b.map((x) => [x.sum, x.count] as [number, number]);
    return {
      tBins: this.tBins,
      numTimesteps: this.numTimesteps,
      arStep: pairs(this.arStep),
      numSteps: pairs(this.numSteps),
      tBin: pairs(this.tBin),
    };
  }

  static fromJSON(s: LossStatsState): LossStats {
    const st = new LossStats(s.tBins, s.numTimesteps);
    const buckets = (b: [number, number][]) => b.map(([sum, count]) => ({ sum, count }));
    st.arStep = buckets(s.arStep);
    st.numSteps = buckets(s.numSteps);
    st.tBin = buckets(s.tBin);
    return st;
  }

  breakdown(): LossBreakdown {
    const mean = (b: Bucket) => (b.count > 0 ? b.sum / b.count : null);
    return {
      byArStep: this.arStep.map(mean),
      byNumSteps: this.numSteps.map(mean),
      byTBin: this.tBin.map(mean),
      arStepTokens: this.arStep.map((b) => b.count),
    };
  }
}

/** LossStats buckets as plain JSON, for checkpoints. */
export interface LossStatsState {
  tBins: number;
  numTimesteps: number;
  arStep: [number, number][];
  numSteps: [number, number][];
  tBin: [number, number][];
}
