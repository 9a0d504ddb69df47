/**
 * ADM timestep respacing (`space_timesteps` of the official `diffusion/respace.py`): which of the original
 * T steps a shorter sampler keeps. "250" keeps 250 evenly spread steps, "10,20" spreads per section,
 * "ddim25" uses the DDIM paper's fixed integer stride.
 */

/** Python 3 `round()`: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The kept original timesteps, ascending. */
export function spaceTimesteps(numTimesteps: number, sectionCounts: string | readonly number[]): number[] {
  let counts: number[];
  if (typeof sectionCounts === 'string') {
    const spec = sectionCounts.trim();
    if (spec.startsWith('ddim')) {
      const desired = Number(spec.slice(4));
      if (!Number.isInteger(desired) || desired < 1)
        throw new Error(`bad respacing "${spec}": expected ddimN with N >= 1`);
      for (let i = 1; i < numTimesteps; i++) {
        if (Math.ceil(numTimesteps / i) === desired) return Array.from({ length: desired }, (_, k) => k * i);
      }
      throw new Error(`cannot create exactly ${desired} steps with an integer stride from ${numTimesteps}`);
    }
    counts = spec.split(',').map((s) => Number(s.trim()));
    if (spec === '' || counts.some((c) => !Number.isInteger(c) || c < 1)) {
      throw new Error(`bad respacing "${sectionCounts}": expected comma-separated step counts like "250" or "ddim25"`);
    }
  } else {
    counts = sectionCounts.slice();
  }
  const sizePer = Math.floor(numTimesteps / counts.length);
  const extra = numTimesteps % counts.length;
  let startIdx = 0;
  const all = new Set<number>();
  counts.forEach((count, i) => {
    const size = sizePer + (i < extra ? 1 : 0);
    if (size < count) throw new Error(`cannot divide section of ${size} steps into ${count}`);
    const stride = count <= 1 ? 1 : (size - 1) / (count - 1);
    let cur = 0.0;
    for (let k = 0; k < count; k++) {
      all.add(startIdx + roundHalfEven(cur));
      cur += stride;
    }
    startIdx += size;
  });
  return [...all].sort((a, b) => a - b);
}
