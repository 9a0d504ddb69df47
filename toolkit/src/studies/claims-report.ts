/**
 * The claims study as tables with the paper's numbers beside ours and a verdict per claim that takes the
 * run-to-run spread into account: a difference no larger than the seeds' spread is called inconclusive.
 */
import { ClaimsResults, ClaimsSummaryRow, Spread, summarizeClaims } from './claims';
import { makeConfig, numPatches } from '../model/config';
import { PAPER_S_EVAL, PAPER_TABLE2, PAPER_TABLE3A, PAPER_TABLE3B, PAPER_TABLE3C } from './paper';

/** One claim: its table (markdown) and what our numbers say about it. */
export interface ClaimReport {
  id: string;
  title: string;
  markdown: string;
  verdict: string;
}

const fmt = (s: Spread | undefined, digits = 1) =>
  s ? `${s.mean.toFixed(digits)} ± ${s.halfRange.toFixed(digits)}` : '–';
const pct = (s: Spread | undefined) => (s ? `${(100 * s.mean).toFixed(1)} ± ${(100 * s.halfRange).toFixed(1)}%` : '–');

/**
 * Compares FD (lower is better) of `a` against `b`: "a better", "b better" or "inconclusive" when the
 * difference of the means is within the sum of the half-ranges over seeds.
 */
export function compareFd(a: Spread, b: Spread): 'a' | 'b' | 'inconclusive' {
  const d = b.mean - a.mean;
  if (Math.abs(d) <= a.halfRange + b.halfRange) return 'inconclusive';
  return d > 0 ? 'a' : 'b';
}

/** The paper's number at S_eval = `s` in a row of Table 2 / 3a / 3c ('–' where the paper has none). */
const paperAt = (row: number[] | undefined, s: number) =>
  String(row?.[PAPER_S_EVAL.indexOf(s as (typeof PAPER_S_EVAL)[number])] ?? '–');

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

/** Builds the five claims' tables and verdicts from a study's results. */
export function claimReports(results: ClaimsResults): ClaimReport[] {
  const rows = summarizeClaims(results);
  const by = (id: string): ClaimsSummaryRow => {
    const r = rows.find((x) => x.ablation.id === id);
    if (!r) throw new Error(`the study has no runs of "${id}"`);
    return r;
  };
  const S = results.setting.sEval;
  const floor = results.runs[0].fdRealVsReal;
  const seeds = seedsOf(results);
  const note = `FD at N = ${results.setting.evalN} (real-vs-real floor ${floor.toFixed(1)}); mean ± half-range over seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}; paper: FID-10k on ImageNet 256.`;
  const base = by('causalfusion');
  const out: ClaimReport[] = [];
  const say = (c: 'a' | 'b' | 'inconclusive', a: string, b: string, paperWinner: 'a' | 'b', what: string) =>
    c === 'inconclusive'
      ? `Inconclusive here: the difference is within the seed spread (${what}).`
      : c === paperWinner
        ? `Agrees with the paper: ${c === 'a' ? a : b} is better (${what}).`
        : `Disagrees with the paper: ${c === 'a' ? a : b} is better here (${what}).`;

  // 1. random vs raster order (Table 3b)
  const raster = by('raster');
  const orderVerdict = say(
    compareFd(base.fd[1], raster.fd[1]),
    'random order',
    'raster order',
    'a',
    `FD ${base.fd[1].mean.toFixed(1)} vs ${raster.fd[1].mean.toFixed(1)}`,
  );
  const sampledIn = results.setting.evalOrders;
  if (sampledIn) {
    // every model sampled in both orders: training order x sampling order, across S_eval
    const L = S[S.length - 1];
    const rowsOf = (name: string, r: ClaimsSummaryRow) =>
      sampledIn.map((o) => [
        `${name}, sampled ${o}`,
        ...S.map((s) => `${fmt(r.fdByOrder[o]?.[s])} / ${pct(r.accuracyByOrder[o]?.[s])}`),
      ]);
    const atL = say(
      compareFd(base.fd[L], raster.fd[L]),
      'random order',
      'raster order',
      'a',
      `each in its own order at S_eval = ${L}: FD ${base.fd[L].mean.toFixed(1)} vs ${raster.fd[L].mean.toFixed(1)}`,
    );
    out.push({
      id: 'order',
      title: 'Random vs raster order (Table 3b): FD / accuracy by training order, sampling order and S_eval',
      markdown:
        table(['trained', ...S.map((s) => `S_eval = ${s}`)], [...rowsOf('random', base), ...rowsOf('raster', raster)]) +
        `\n\nPaper (S_eval = 1, FID-10k): random ${PAPER_TABLE3B.random}, raster ${PAPER_TABLE3B.raster}.`,
      verdict: `S_eval = 1: ${orderVerdict} S_eval = ${L}: ${atL}`,
    });
  } else {
    out.push({
      id: 'order',
      title: 'Random vs raster order (Table 3b), S_eval = 1',
      markdown: table(
        ['order', 'FD (ours)', 'accuracy (ours)', 'FID-10k (paper)'],
        [
          ['random', fmt(base.fd[1]), pct(base.accuracy[1]), String(PAPER_TABLE3B.random)],
          ['raster', fmt(raster.fd[1]), pct(raster.accuracy[1]), String(PAPER_TABLE3B.raster)],
        ],
      ),
      verdict: orderVerdict,
    });
  }

  // 2. gamma (Table 3a)
  const gammas: [string, ClaimsSummaryRow][] = [
    ['1.0', by('gamma-1.0')],
    ['0.9', base],
    ['0.8', by('gamma-0.8')],
  ];
  const g1 = gammas[0][1].fd;
  const best = (s: number) => gammas.reduce((a, b) => (b[1].fd[s].mean < a[1].fd[s].mean ? b : a))[0];
  out.push({
    id: 'gamma',
    title: 'AR-step decay γ across S_eval (Table 3a): FD ours / FID paper',
    markdown: table(
      ['γ', ...S.map((s) => `S_eval = ${s}`)],
      gammas.map(([g, r]) => [g, ...S.map((s) => `${fmt(r.fd[s])} / ${paperAt(PAPER_TABLE3A[g], s)}`)]),
    ),
    verdict:
      say(
        compareFd(base.fd[1], g1[1]),
        'γ = 0.9',
        'γ = 1.0',
        'a',
        `S_eval = 1: ${base.fd[1].mean.toFixed(1)} vs ${g1[1].mean.toFixed(1)}`,
      ) +
      ` Best γ per S_eval here: ${S.map((s) => `S=${s}: ${best(s)}`).join(', ')} (paper: 0.8 for S = 1, 2; 0.9 for S = 4, 8).`,
  });

  // 3. fixed S_train vs random S (Table 2)
  const t2: [string, string, ClaimsSummaryRow][] = [
    ['fixed S_train = 1', '1', by('fixed-1')],
    ['fixed S_train = 4', '4', by('fixed-4')],
    ['uniform S (γ = 1.0)', 'random', by('gamma-1.0')],
    ['γ = 0.9 law', '', base],
  ];
  const f1 = by('fixed-1').fd;
  const f4 = by('fixed-4').fd;
  const offDiag = S.filter((s) => s !== 1).every((s) => f1[s].mean > f1[1].mean + f1[1].halfRange + f1[s].halfRange);
  out.push({
    id: 'fixed-s',
    title: 'Fixed S_train vs random S across S_eval (Table 2 in miniature): FD ours / FID paper',
    markdown: table(
      ['S_train', ...S.map((s) => `S_eval = ${s}`)],
      t2.map(([name, key, r]) => [
        name,
        ...S.map((s) => `${fmt(r.fd[s])} / ${key ? paperAt(PAPER_TABLE2[key], s) : '–'}`),
      ]),
    ),
    verdict:
      (offDiag
        ? 'Agrees with the paper: a model trained only with S = 1 breaks down at every other S_eval'
        : 'Disagrees with the paper: the S_train = 1 model does not clearly break down off its diagonal') +
      ` (FD ${S.map((s) => f1[s].mean.toFixed(0)).join(' / ')} for S_eval ${S.join(' / ')}); S_train = 4 is ${f4[4].mean < f4[1].mean ? 'best near its own S' : 'not best at its own S'} (FD ${f4[4].mean.toFixed(1)} at S_eval = 4 vs ${f4[1].mean.toFixed(1)} at 1);` +
      ` the random-S models degrade gradually (γ = 0.9: ${S.map((s) => base.fd[s].mean.toFixed(0)).join(' / ')}).`,
  });

  // 4. loss weighting (Table 3c)
  const w11 = by('weights-1to1');
  const s3 = S.filter((s) => s <= 4);
  out.push({
    id: 'weights',
    title: 'AR loss weights 1 → 1 vs 2 → 1 (Table 3c): FD ours / FID paper',
    markdown: table(
      ['weights', ...s3.map((s) => `S_eval = ${s}`)],
      [
        ['1 → 1', ...s3.map((s) => `${fmt(w11.fd[s])} / ${paperAt(PAPER_TABLE3C['1 -> 1'], s)}`)],
        ['2 → 1', ...s3.map((s) => `${fmt(base.fd[s])} / ${paperAt(PAPER_TABLE3C['2 -> 1'], s)}`)],
      ],
    ),
    verdict: say(
      compareFd(base.fd[1], w11.fd[1]),
      '2 → 1',
      '1 → 1',
      'a',
      `S_eval = 1: ${base.fd[1].mean.toFixed(1)} vs ${w11.fd[1].mean.toFixed(1)}`,
    ),
  });

  // 5. Fig. 4a / Table 2: loss falls with more AR steps, quality does not improve
  const Ls = Object.keys(base.heldOutLoss).map(Number);
  const lossFalls = Ls.every((s, i) => i === 0 || base.heldOutLoss[s].mean < base.heldOutLoss[Ls[i - 1]].mean);
  const fdRises = base.fd[S[S.length - 1]].mean > base.fd[1].mean;
  out.push({
    id: 'loss-vs-quality',
    title: 'More AR steps: lower loss, not better samples (Fig. 4a, Table 2), CausalFusion model',
    markdown: table(
      ['S', 'held-out MSE (ours)', 'FD when sampling with S (ours)'],
      Ls.map((s) => [String(s), fmt(base.heldOutLoss[s], 4), fmt(base.fd[s])]),
    ),
    verdict:
      `${lossFalls ? 'Agrees with the paper: the held-out loss falls monotonically' : 'Partly disagrees: the held-out loss does not fall monotonically'}` +
      ` as the same images are cut into more AR steps (${Ls.map((s) => base.heldOutLoss[s].mean.toFixed(3)).join(' → ')}), ${fdRises ? 'while FD rises' : 'and FD does not rise'} (${S.map((s) => base.fd[s].mean.toFixed(0)).join(' → ')}).`,
  });
  // one seed has no spread, so no difference can be told from seed noise yet
  const provisional =
    seeds.length < 2
      ? `Provisional (${seeds.length} seed of ${results.setting.seeds.length}, no spread measured): `
      : '';
  return out.map((c) => ({ ...c, markdown: `${c.markdown}\n\n${note}`, verdict: provisional + c.verdict }));
}

/** The seeds a study's results actually hold (a study may be committed before all its seeds ran). */
function seedsOf(results: ClaimsResults): number[] {
  return [...new Set(results.runs.map((r) => r.seed))].sort((a, b) => a - b);
}

/** The whole study as one markdown document (what `causalfusion claims` writes next to results.json). */
export function claimsMarkdown(results: ClaimsResults): string {
  const s = results.setting;
  const tokens = numPatches(makeConfig(s.preset));
  const orders = s.evalOrders ? `, in ${s.evalOrders.join(' and ')} order` : ', in its training order';
  const seeds = seedsOf(results).length;
  const head =
    `# CausalFusion claims at small scale (${s.name} setting, ${tokens} tokens)\n\n${results.ablations.length} variants x ${seeds} seed${seeds > 1 ? 's' : ''} (of ${s.seeds.length} planned), ` +
    `each trained ${s.steps} steps (batch ${s.batchSize}, lr ${s.lr}, ${s.preset}), scored with ${s.evalN} samples per S_eval${orders} (${s.evalDiffusionSteps} DDPM steps, no guidance).\n`;
  return [
    head,
    ...claimReports(results).map((c, i) => `## ${i + 1}. ${c.title}\n\n${c.markdown}\n\n**${c.verdict}**\n`),
  ].join('\n');
}
