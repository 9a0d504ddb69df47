/**
 * Milliseconds of one GPU call by the wall clock, for the benches that compare kernels: unlike the GPU's
 * timestamps it includes the gaps between dispatches and cannot be fooled by where a pass begins.
 */
import { median } from '../src/util/median';

/**
 * `launch(k)` makes k calls back to back and awaits one read-back after them. The result is the median of
 * `rounds` runs of n + 1 calls less the fastest run of one (the launch and read-back), over n; NaN when the
 * noise exceeds the calls. A first run of one compiles and warms up.
 */
export async function wallMsPerCall(launch: (k: number) => Promise<void>, n: number, rounds = 3): Promise<number> {
  const time = async (k: number) => {
    const t0 = performance.now();
    await launch(k);
    return performance.now() - t0;
  };
  await time(1);
  const [many, one]: number[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    many.push(await time(n + 1));
    one.push(await time(1));
  }
  const ms = (median(many) - Math.min(...one)) / n;
  return ms > 0 ? ms : NaN;
}
