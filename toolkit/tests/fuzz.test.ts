/**
 * Property-based fuzzing (fast-check) of every reader of user files and of user-chosen values: each case ends
 * in a result or in one plain `Error` that names the input, with no hang (test timeouts), no crash, no
 * unhandled rejection and no code run from a file. About a minute in all.
 *
 * Replay: each test prints its seed; `FUZZ_SEED=<seed> node --test toolkit/dist/tests/fuzz.test.js` reruns it,
 * and a failure message carries fast-check's `seed` and `path` of the shrunk counterexample.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors';
import { readTorchFile } from '../src/io/torch-pickle';
import { readCheckpoint } from '../src/io/checkpoint';
import { parseIdx, readIdxFile } from '../src/data/idx';
import { loadImageFolder } from '../src/data/folder';
import { makeConfig, CausalFusionConfig } from '../src/model/config';
import { fromSizes, splitIntegerExpDecay, splitEqual } from '../src/factorization/steps';
import { getAttnMask } from '../src/factorization/mask';
import { validateOrder, makeOrder } from '../src/factorization/orders';
import { keepAllBut } from '../src/sample/edit';
import { UsageError, int, intList, num, probability } from '../src/cli/flags';
import { Rng } from '../src/rng';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-fuzz-'));
const rejections: unknown[] = [];
process.on('unhandledRejection', (e) => rejections.push(e));

/** Runs a property with this file's seed, bounded in cases and time, and says how to replay it. */
function check<T>(t: { diagnostic(msg: string): void }, arb: fc.Arbitrary<T>, prop: (v: T) => void, numRuns: number): void {
  t.diagnostic(`seed ${SEED} (replay: FUZZ_SEED=${SEED})`);
  fc.assert(fc.property(arb, prop), { seed: SEED, numRuns, interruptAfterTimeLimit: 12_000, markInterruptAsFailure: false });
}

/** The input was either accepted, or refused with one plain Error whose message names it (`label`). */
function resultOrClearError(label: string, fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof Error, `throws a non-Error: ${String(e)}`);
    assert.equal(e.constructor, Error, `a raw ${e.constructor.name} escaped: ${e.message}`);
    assert.ok(e.message.includes(label), `the error does not name ${label}: ${e.message}`);
  }
}

/** Random byte edits of a valid file: overwrites, a cut, an insertion. */
function mutations(base: Uint8Array): fc.Arbitrary<Uint8Array> {
  const n = base.length;
  return fc
    .record({
      edits: fc.array(fc.tuple(fc.nat({ max: n - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
      cut: fc.option(fc.nat({ max: n }), { freq: 3 }),
      insert: fc.option(fc.tuple(fc.nat({ max: n }), fc.uint8Array({ minLength: 1, maxLength: 16 })), { freq: 3 }),
      headerEdits: fc.array(fc.tuple(fc.nat({ max: Math.min(n, 64) - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
    })
    .map(({ edits, cut, insert, headerEdits }) => {
      let b = Uint8Array.from(base);
      for (const [i, v] of [...edits, ...headerEdits]) b[i] = v;
      if (insert) b = Uint8Array.from([...b.subarray(0, insert[0]), ...insert[1], ...b.subarray(insert[0])]);
      if (cut !== null) b = b.subarray(0, cut);
      // failure reports name the edits, not hundreds of kB of bytes (seed + path replay the case exactly)
      const what = `${b.length} bytes: edits ${JSON.stringify([...edits, ...headerEdits])}, insert ${insert ? `${insert[1].length} at ${insert[0]}` : 'none'}, cut ${cut ?? 'none'}`;
      return Object.defineProperty(b, fc.toStringMethod, { value: () => what });
    });
}

const bytesOrMutated = (base: Uint8Array) => fc.oneof(fc.uint8Array({ maxLength: 256 }), mutations(base), mutations(base));

test('safetensors reader: random and mutated bytes', { timeout: 60_000 }, (t) => {
  const base = serializeSafetensors(
    { w: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { shape: [3], data: Float32Array.from([7, 8, 9]) } },
    { config: JSON.stringify({ hiddenSize: 8 }) },
  );
  check(t, bytesOrMutated(base), (bytes) => resultOrClearError('fuzz.safetensors', () => parseSafetensors(bytes, 'fuzz.safetensors')), 3000);
});

test('checkpoint reader: mutated metadata and tensors of a real checkpoint layout', { timeout: 60_000 }, (t) => {
  const cfg = makeConfig('tiny');
  const base = serializeSafetensors({ 'x_proj.weight': { shape: [2, 2], data: new Float32Array(4) } }, { config: JSON.stringify(cfg), meta: JSON.stringify({ step: 3 }) });
  const file = path.join(TMP, 'ckpt.safetensors');
  check(
    t,
    bytesOrMutated(base),
    (bytes) => {
      fs.writeFileSync(file, bytes);
      resultOrClearError(file, () => readCheckpoint(file));
    },
    800,
  );
});

/** A stored (uncompressed) zip of `entries`, as torch.save writes it. */
function storedZip(entries: [string, Buffer][]): Buffer {
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const [name, data] of entries) {
    const n = Buffer.from(name);
    const crc = zlib.crc32(data);
    const lh = Buffer.alloc(30);
    lh.writeUInt32LE(0x04034b50, 0);
    lh.writeUInt32LE(crc, 14);
    lh.writeUInt32LE(data.length, 18);
    lh.writeUInt32LE(data.length, 22);
    lh.writeUInt16LE(n.length, 26);
    const ch = Buffer.alloc(46);
    ch.writeUInt32LE(0x02014b50, 0);
    ch.writeUInt32LE(crc, 16);
    ch.writeUInt32LE(data.length, 20);
    ch.writeUInt32LE(data.length, 24);
    ch.writeUInt16LE(n.length, 28);
    ch.writeUInt32LE(offset, 42);
    local.push(lh, n, data);
    central.push(ch, n);
    offset += 30 + n.length + data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...local, cd, end]);
}

/** A pickle (protocol 2) that calls module.name(arg) through GLOBAL + REDUCE, as a malicious file would. */
function callingPickle(module: string, name: string, arg: string): Buffer {
  const a = Buffer.from(arg);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(a.length);
  return Buffer.concat([Buffer.from([0x80, 0x02]), Buffer.from(`c${module}\n${name}\n`), Buffer.from([0x58]), len, a, Buffer.from([0x85, 0x52, 0x2e])]);
}

test('.pt reader: a pickle that calls os.system is refused, names the call, and runs nothing', () => {
  const sentinel = path.join(TMP, 'pwned');
  const file = path.join(TMP, 'evil.pt');
  fs.writeFileSync(file, storedZip([['archive/data.pkl', callingPickle('posix', 'system', `touch ${sentinel}`)]]));
  assert.throws(() => readTorchFile(file), /evil\.pt: refused: the pickle asks to call posix\.system\("touch .*pwned"\), which would run code/);
  assert.equal(fs.existsSync(sentinel), false);
});

test('.pt reader: random and mutated archives and pickles', { timeout: 60_000 }, (t) => {
  const real = fs.readFileSync(path.resolve(__dirname, '..', '..', 'tests', 'fixtures', 'tiny-official.pt'));
  const file = path.join(TMP, 'fuzz.pt');
  const sentinel = path.join(TMP, 'ran');
  const pickles = fc
    .tuple(fc.constantFrom('os', 'posix', 'subprocess', 'builtins', 'argparse', 'collections', 'torch._utils', 'numpy'), fc.constantFrom('system', 'Popen', 'eval', 'exec', 'Namespace', 'OrderedDict', '_rebuild_tensor_v2'))
    .map(([m, n]) => callingPickle(m, n, `touch ${sentinel}`));
  const archives = fc.oneof(
    mutations(real),
    mutations(real),
    fc.uint8Array({ maxLength: 256 }),
    fc.oneof(pickles, fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b))).map((pkl) => new Uint8Array(storedZip([['archive/data.pkl', Buffer.from(pkl)]]))),
  );
  check(
    t,
    archives,
    (bytes) => {
      fs.writeFileSync(file, bytes);
      resultOrClearError(file, () => readTorchFile(file));
      assert.equal(fs.existsSync(sentinel), false, 'code from the file ran');
    },
    400,
  );
});

test('IDX reader: random and mutated bytes, plain and gzipped', { timeout: 60_000 }, (t) => {
  const base = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
  const file = path.join(TMP, 'fuzz-idx.gz');
  check(
    t,
    fc.tuple(bytesOrMutated(base), fc.boolean()),
    ([bytes, gz]) => {
      resultOrClearError('fuzz.idx', () => parseIdx(bytes, 'fuzz.idx'));
      fs.writeFileSync(file, gz ? zlib.gzipSync(bytes) : bytes);
      resultOrClearError(file, () => readIdxFile(file));
    },
    2000,
  );
});

test('PNG folder loader: random and mutated images, huge headers refused before decoding', { timeout: 60_000 }, (t) => {
  const png = new PNG({ width: 6, height: 6 });
  png.data.fill(200);
  const base = PNG.sync.write(png);
  const root = path.join(TMP, 'folder');
  const file = path.join(root, 'a', 'x.png');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // a valid PNG whose header claims 100000 x 100000 pixels (40 GB decoded)
  const huge = Buffer.from(base);
  huge.writeUInt32BE(100000, 16);
  huge.writeUInt32BE(100000, 20);
  huge.writeUInt32BE(zlib.crc32(huge.subarray(12, 29)), 29);
  fs.writeFileSync(file, huge);
  assert.throws(() => loadImageFolder(root), /x\.png: 100000 x 100000 pixels; this loader takes 1 to 4096 pixels a side/);
  check(
    t,
    bytesOrMutated(base),
    (bytes) => {
      fs.writeFileSync(file, bytes);
      resultOrClearError(file, () => loadImageFolder(root));
    },
    400,
  );
});

test('model configs: random shapes give a valid config or a clear error', { timeout: 60_000 }, (t) => {
  const field = fc.oneof(fc.integer({ min: -3, max: 70 }), fc.double(), fc.constant(NaN), fc.constant(undefined));
  const configs = fc.record({ inputSize: field, patchSize: field, latentChannels: field, hiddenSize: field, numCondTokens: field, depth: field, numHeads: field, numClasses: field, mlpRatio: fc.oneof(fc.double({ min: -1, max: 8 }), fc.constant(4)), classDropoutProb: fc.double({ min: -1, max: 2 }) }, { requiredKeys: [] });
  check(
    t,
    configs,
    (over) => {
      const defined = Object.fromEntries(Object.entries(over).filter(([, v]) => v !== undefined)) as Partial<CausalFusionConfig>;
      let cfg: CausalFusionConfig;
      try {
        cfg = makeConfig('tiny', defined);
      } catch (e) {
        assert.equal((e as Error).constructor, Error);
        assert.match((e as Error).message, /config\.|hidden size|image size|mlpRatio|classDropoutProb/);
        return;
      }
      assert.equal(cfg.inputSize % cfg.patchSize, 0);
      assert.equal(cfg.hiddenSize % cfg.numHeads, 0);
    },
    3000,
  );
});

test('split sizes, AR-step law, masks, orders and token indices: valid or a clear error', { timeout: 60_000 }, (t) => {
  check(
    t,
    fc.record({ L: fc.integer({ min: 1, max: 300 }), decay: fc.oneof(fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double()), sizes: fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 12 }), seed: fc.nat() }),
    ({ L, decay, sizes, seed }) => {
      const rng = new Rng(seed);
      resultOrClearError('AR-step decay', () => {
        const s = splitIntegerExpDecay(L, decay, rng);
        assert.equal(s.splitSizes.reduce((a, b) => a + b, 0), L);
        assert.ok(s.splitSizes.every((x) => Number.isInteger(x) && x >= 1));
      });
      resultOrClearError('split sizes', () => {
        const s = fromSizes(sizes, L);
        const m = getAttnMask(L, 4, s.splitSizes);
        assert.equal(m.maskedOut.length, m.seqLen * m.seqLen);
      });
      resultOrClearError('AR steps', () => splitEqual(L, sizes.length || 1));
    },
    1500,
  );
  check(
    t,
    fc.record({ L: fc.integer({ min: 1, max: 64 }), order: fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 70 }), tokens: fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 20 }), grid: fc.integer({ min: -1, max: 9 }), block: fc.integer({ min: -1, max: 9 }) }),
    ({ L, order, tokens, grid, block }) => {
      resultOrClearError('order', () => {
        const o = validateOrder(order, L);
        assert.deepEqual([...o].sort((a, b) => a - b), Array.from({ length: L }, (_, i) => i));
      });
      resultOrClearError('token', () => {
        const keep = keepAllBut(tokens, L);
        assert.equal(keep.filter((k) => !k).length, tokens.length);
      });
      resultOrClearError('grid size', () => {
        try {
          makeOrder('block-raster', grid, new Rng(0), { block });
        } catch (e) {
          if (/block size/.test((e as Error).message)) throw new Error(`grid size: ${(e as Error).message}`);
          throw e;
        }
      });
    },
    1500,
  );
});

test('CLI flag values: random strings give a checked value or a usage error naming the flag', { timeout: 60_000 }, (t) => {
  const value = fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.double().map(String), fc.constantFrom('', ' ', '0x10', '1e3', '-0', '+7', '1,2,,3', 'NaN', 'Infinity', '4.', '.5'));
  check(
    t,
    value,
    (v) => {
      const flag = (name: string, fn: () => unknown, ok: (x: never) => boolean) => {
        try {
          const x = fn();
          assert.ok(ok(x as never), `--${name} accepted ${JSON.stringify(v)} as ${JSON.stringify(x)}`);
        } catch (e) {
          assert.ok(e instanceof UsageError, `--${name}: ${String(e)}`);
          assert.ok((e as Error).message.startsWith(`--${name} `), (e as Error).message);
        }
      };
      flag('steps', () => int('steps', v, 1), (x: number) => Number.isSafeInteger(x) && x >= 1 && /\d/.test(v));
      flag('seed', () => int('seed', v, 0, 0), (x: number) => Number.isSafeInteger(x) && x >= 0 && /\d/.test(v));
      flag('lr', () => num('lr', v, 1), (x: number) => Number.isFinite(x) && /\d/.test(v));
      flag('label-dropout', () => probability('label-dropout', v, 0.1), (x: number) => x >= 0 && x < 1);
      flag('tokens', () => intList('tokens', v), (x: number[]) => x.length === v.split(',').length && x.every((n) => Number.isSafeInteger(n) && n >= 0));
    },
    5000,
  );
});

test('no unhandled rejection during the fuzz suite', () => {
  assert.deepEqual(rejections, []);
  fs.rmSync(TMP, { recursive: true, force: true });
});
