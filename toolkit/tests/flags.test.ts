import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'path';
import { COMMANDS } from '../src/cli/main';
import { commandHelp } from '../src/cli/command';
import { UsageError, flag, flagHelp, parseFlags, positive } from '../src/cli/flags';
import { QUICK_RECIPE } from '../src/train/recipes';
import { DATA_DIR } from '../src/data/assets';

const ROOT = path.dirname(DATA_DIR);

test('every default shown in --help is the value a command gets when the flag is left out', () => {
  for (const c of COMMANDS) {
    const v = parseFlags([], c.flags) as Record<string, unknown>;
    for (const [name, f] of Object.entries(c.flags)) {
      const x = v[name];
      if (f.shown === undefined || x === undefined) continue; // resolved by the command (documented in words)
      const got = Array.isArray(x) ? x.join(',') : String(x);
      // file defaults are absolute; help shows them relative to the repository root
      const want = path.isAbsolute(got) ? path.resolve(ROOT, f.shown) : f.shown;
      assert.equal(got, want, `${c.name} --${name}`);
    }
  }
});

test('every declared flag appears in its command help, with --backend and --help', () => {
  for (const c of COMMANDS) {
    const help = commandHelp(c);
    assert.match(help, new RegExp(`^Usage: causalfusion ${c.name} `));
    for (const name of [...Object.keys(c.flags), 'backend', 'help'])
      assert.match(help, new RegExp(`^  --${name}\\b`, 'm'), `${c.name} --${name}`);
  }
});

test("train's help shows the main job's recipe from train/recipes.ts", () => {
  const help = commandHelp(COMMANDS.find((c) => c.name === 'train')!);
  assert.match(help, new RegExp(`--lr X \\[${QUICK_RECIPE.lr}\\]`));
  assert.match(help, new RegExp(`--batch N \\[${QUICK_RECIPE.batchSize}\\]`));
  assert.match(help, /--decay G \[0\.9\]/);
});

test('a flag check failing names the flag, the condition and the value', () => {
  const table = { lr: flag.num(1, 'learning rate', positive) };
  assert.throws(
    () => parseFlags(['--lr', '0'], table),
    (e: Error) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.message, '--lr must be > 0, got "0"');
      return true;
    },
  );
});

test('unknown flags and a value missing after a flag are usage errors', () => {
  const table = { steps: flag.int(3, 'steps') };
  assert.throws(() => parseFlags(['--nope'], table), UsageError);
  assert.throws(() => parseFlags(['--steps'], table), UsageError);
  assert.equal(parseFlags(['--steps', '7'], table).steps, 7);
});

test('--help skips value checks, so help works beside a bad flag', () => {
  const v = parseFlags(['--steps', 'x', '--help'], { steps: flag.int(3, 'steps') });
  assert.equal(v.help, true);
});

test('help lines line up in one column; a long head puts its help on the next line', () => {
  const text = flagHelp({
    a: flag.int(1, 'first'),
    'a-very-long-flag-name-indeed': flag.text('some/long/default/path.json', 'second'),
  });
  const [l1, l2, l3] = text.split('\n');
  assert.equal(l1.indexOf('first'), l3.indexOf('second'));
  assert.match(l2, /^ {2}--a-very-long-flag-name-indeed FILE \[some\/long\/default\/path\.json\]$/);
});
