import { PRESETS, makeConfig, numPatches } from '../../model/config';
import { countParameters } from '../../model/params';
import { defineCommand } from '../command';

export const info = defineCommand({
  name: 'info',
  summary: 'backend, presets and their sizes',
  about: 'Prints the chosen backend and the model presets with token counts and parameter counts.',
  flags: {},
  async run(_v, ctx) {
    console.log((await ctx.startBackend(true)).line);
    for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) {
      const c = makeConfig(name);
      console.log(
        `preset ${name.padEnd(16)} ${String(numPatches(c)).padStart(4)} tokens  ${(countParameters(c) / 1e6).toFixed(2).padStart(8)} M params  hidden ${c.hiddenSize} depth ${c.depth} heads ${c.numHeads}`,
      );
    }
    return 0;
  },
});
