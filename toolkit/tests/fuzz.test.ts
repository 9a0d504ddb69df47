/**
 * Property-based fuzzing (fast-check) of every reader of user files and of user-chosen values: each case ends
 * in a result or in one plain `Error` that names the input, with no hang, no crash, no unhandled rejection and
 * no code run from a file. About a minute in all.
 *
 * Each property runs in a child process of this file with a time limit and a 1 GiB heap, so that an endless
 * loop or a runaway allocation is a failing test that names its seed, not a hung or crashed suite.
 * Replay: `FUZZ_SEED=<seed> node --test toolkit/dist/tests/fuzz.test.js`; a failure message also carries
 * fast-check's `seed` and `path` of the shrunk counterexample.
 */
import { test } from 'node:test';
import { spawnSync } from 'child_process';
import assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as zlib from 'zlib';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { parseSafetensors, serializeSafetensors } from '../src/io/safetensors';
import { readTorchFile } from '../src/io/files';
import { readCheckpoint } from '../src/io/checkpoint';
import { parseIdx, readIdxFile } from '../src/data/idx';
import { loadImageFolder } from '../src/data/folder';
import { makeConfig, CausalFusionConfig } from '../src/model/config';
import { fromSizes, splitIntegerExpDecay, splitEqual } from '../src/factorization/steps';
import { getAttnMask } from '../src/factorization/mask';
import { validateOrder, makeOrder } from '../src/factorization/orders';
import { keepAllBut } from '../src/sample/edit';
import { UsageError, flag, probability } from '../src/cli/flags';
import { Rng } from '../src/rng';
import { tempDir } from './helpers';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : Date.now() % 2 ** 31;
const CHILD = process.env.FUZZ_CHILD;
/** Wall-clock limit of one property's child process; its cases stop generating after 12 s. */
const LIMIT_S = 120;
const REPLAY = `FUZZ_SEED=${SEED} node --test toolkit/dist/tests/fuzz.test.js`;
const TMP = tempDir('cf-fuzz-');
const rejections: unknown[] = [];
process.on('unhandledRejection', (e) => rejections.push(e));

/** Runs a property with this file's seed, bounded in cases and time. */
function check<T>(arb: fc.Arbitrary<T>, prop: (v: T) => void, numRuns: number): void {
  fc.assert(fc.property(arb, prop), {
    seed: SEED,
    numRuns,
    interruptAfterTimeLimit: 12_000,
    markInterruptAsFailure: false,
  });
}

/** Writes each generated file to `file` and reads it back with `read`: a result or a clear error naming it. */
function checkFile(
  arb: fc.Arbitrary<Uint8Array>,
  file: string,
  read: (f: string) => unknown,
  numRuns: number,
  after?: () => void,
): void {
  check(
    arb,
    (bytes) => {
      fs.writeFileSync(file, bytes);
      resultOrClearError(file, () => read(file));
      after?.();
    },
    numRuns,
  );
}

/**
 * A fuzz property: in the test process, a test that runs `body` in a child process (time limit, 1 GiB heap) and
 * fails with the seed on any error, hang or crash; in that child, `body` itself.
 */
function fuzz(name: string, body: () => void): void {
  if (CHILD !== undefined) {
    if (CHILD !== name) return;
    let code = 0;
    try {
      body();
      if (rejections.length) throw new Error(`unhandled rejection: ${String(rejections[0])}`);
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      code = 1;
    }
    process.exit(code);
  }
  test(name, (t) => {
    t.diagnostic(`seed ${SEED} (replay: ${REPLAY})`);
    const r = spawnSync(process.execPath, ['--max-old-space-size=1024', __filename], {
      env: { ...process.env, FUZZ_CHILD: name, FUZZ_SEED: String(SEED), NODE_TEST_CONTEXT: '' },
      encoding: 'utf8',
      timeout: LIMIT_S * 1000,
      maxBuffer: 64 << 20,
    });
    const how = r.error
      ? `hung (killed after ${LIMIT_S} s)`
      : r.signal
        ? `crashed (${r.signal})`
        : `failed (exit ${r.status})`;
    assert.ok(r.status === 0, `${name} ${how}; replay: ${REPLAY}\n${(r.stderr ?? '').slice(-4000)}`);
  });
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
      headerEdits: fc.array(fc.tuple(fc.nat({ max: Math.min(n, 64) - 1 }), fc.integer({ min: 0, max: 255 })), {
        maxLength: 3,
      }),
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

const bytesOrMutated = (base: Uint8Array) =>
  fc.oneof(fc.uint8Array({ maxLength: 256 }), mutations(base), mutations(base));

fuzz('safetensors reader: random and mutated bytes', () => {
  const base = serializeSafetensors(
    {
      w: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
      b: { shape: [3], data: Float32Array.from([7, 8, 9]) },
    },
    { config: JSON.stringify({ hiddenSize: 8 }) },
  );
  check(
    bytesOrMutated(base),
    (bytes) => resultOrClearError('fuzz.safetensors', () => parseSafetensors(bytes, 'fuzz.safetensors')),
    3000,
  );
});

fuzz('checkpoint reader: mutated metadata and tensors of a real checkpoint layout', () => {
  const cfg = makeConfig('tiny');
  const base = serializeSafetensors(
    { 'x_proj.weight': { shape: [2, 2], data: new Float32Array(4) } },
    { config: JSON.stringify(cfg), meta: JSON.stringify({ step: 3 }) },
  );
  checkFile(bytesOrMutated(base), path.join(TMP, 'ckpt.safetensors'), (f) => readCheckpoint(f), 800);
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
  return Buffer.concat([
    Buffer.from([0x80, 0x02]),
    Buffer.from(`c${module}\n${name}\n`),
    Buffer.from([0x58]),
    len,
    a,
    Buffer.from([0x85, 0x52, 0x2e]),
  ]);
}

test('.pt reader: a pickle that calls os.system is refused, names the call, and runs nothing', () => {
  const sentinel = path.join(TMP, 'pwned');
  const file = path.join(TMP, 'evil.pt');
  fs.writeFileSync(file, storedZip([['archive/data.pkl', callingPickle('posix', 'system', `touch ${sentinel}`)]]));
  assert.throws(
    () => readTorchFile(file),
    /evil\.pt: refused: the pickle asks to call posix\.system\("touch .*pwned"\), which would run code/,
  );
  assert.equal(fs.existsSync(sentinel), false);
});

test('.pt reader: a pickle cut inside a GLOBAL name is refused (it looped until out of memory)', () => {
  const file = path.join(TMP, 'cut-global.pt');
  fs.writeFileSync(file, storedZip([['archive/data.pkl', Buffer.from([0x63, 0xfe, 0x0a])]])); // found by this suite, seed 929594047
  assert.throws(() => readTorchFile(file), /cut-global\.pt: pickle ends inside a GLOBAL name/);
});

fuzz('.pt reader: random and mutated archives and pickles', () => {
  const real = fs.readFileSync(path.resolve(__dirname, '..', '..', 'tests', 'fixtures', 'tiny-official.pt'));
  const file = path.join(TMP, 'fuzz.pt');
  const sentinel = path.join(TMP, 'ran');
  const pickles = fc
    .tuple(
      fc.constantFrom('os', 'posix', 'subprocess', 'builtins', 'argparse', 'collections', 'torch._utils', 'numpy'),
      fc.constantFrom('system', 'Popen', 'eval', 'exec', 'Namespace', 'OrderedDict', '_rebuild_tensor_v2'),
    )
    .map(([m, n]) => callingPickle(m, n, `touch ${sentinel}`));
  const archives = fc.oneof(
    mutations(real),
    mutations(real),
    fc.uint8Array({ maxLength: 256 }),
    fc
      .oneof(
        pickles,
        fc.uint8Array({ maxLength: 128 }).map((b) => Buffer.from(b)),
      )
      .map((pkl) => new Uint8Array(storedZip([['archive/data.pkl', Buffer.from(pkl)]]))),
  );
  checkFile(
    archives,
    file,
    (f) => readTorchFile(f),
    400,
    () => assert.equal(fs.existsSync(sentinel), false, 'code from the file ran'),
  );
});

fuzz('IDX reader: random and mutated bytes, plain and gzipped', () => {
  const base = Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
  const file = path.join(TMP, 'fuzz-idx.gz');
  check(
    fc.tuple(bytesOrMutated(base), fc.boolean()),
    ([bytes, gz]) => {
      resultOrClearError('fuzz.idx', () => parseIdx(bytes, 'fuzz.idx'));
      fs.writeFileSync(file, gz ? zlib.gzipSync(bytes) : bytes);
      resultOrClearError(file, () => readIdxFile(file));
    },
    2000,
  );
});

fuzz('PNG folder loader: random and mutated images, huge headers refused before decoding', () => {
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
  assert.throws(
    () => loadImageFolder(root),
    /x\.png: 100000 x 100000 pixels; this loader takes 1 to 4096 pixels a side/,
  );
  checkFile(bytesOrMutated(base), file, () => loadImageFolder(root), 400);
});

fuzz('model configs: random shapes give a valid config or a clear error', () => {
  const field = fc.oneof(fc.integer({ min: -3, max: 70 }), fc.double(), fc.constant(NaN), fc.constant(undefined));
  const configs = fc.record(
    {
      inputSize: field,
      patchSize: field,
      latentChannels: field,
      hiddenSize: field,
      numCondTokens: field,
      depth: field,
      numHeads: field,
      numClasses: field,
      mlpRatio: fc.oneof(fc.double({ min: -1, max: 8 }), fc.constant(4)),
      classDropoutProb: fc.double({ min: -1, max: 2 }),
    },
    { requiredKeys: [] },
  );
  check(
    configs,
    (over) => {
      const defined = Object.fromEntries(
        Object.entries(over).filter(([, v]) => v !== undefined),
      ) as Partial<CausalFusionConfig>;
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

fuzz('split sizes, AR-step law, masks, orders and token indices: valid or a clear error', () => {
  check(
    fc.record({
      L: fc.integer({ min: 1, max: 300 }),
      decay: fc.oneof(fc.double({ min: 0.01, max: 1, noNaN: true }), fc.double()),
      sizes: fc.array(fc.integer({ min: -2, max: 40 }), { maxLength: 12 }),
      seed: fc.nat(),
    }),
    ({ L, decay, sizes, seed }) => {
      const rng = new Rng(seed);
      resultOrClearError('AR-step decay', () => {
        const s = splitIntegerExpDecay(L, decay, rng);
        assert.equal(
          s.splitSizes.reduce((a, b) => a + b, 0),
          L,
        );
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
    fc.record({
      L: fc.integer({ min: 1, max: 64 }),
      order: fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 70 }),
      tokens: fc.array(fc.integer({ min: -2, max: 70 }), { maxLength: 20 }),
      grid: fc.integer({ min: -1, max: 9 }),
      block: fc.integer({ min: -1, max: 9 }),
    }),
    ({ L, order, tokens, grid, block }) => {
      resultOrClearError('order', () => {
        const o = validateOrder(order, L);
        assert.deepEqual(
          [...o].sort((a, b) => a - b),
          Array.from({ length: L }, (_, i) => i),
        );
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

fuzz('CLI flag values: random strings give a checked value or a usage error naming the flag', () => {
  const value = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.integer().map(String),
    fc.double().map(String),
    fc.constantFrom('', ' ', '0x10', '1e3', '-0', '+7', '1,2,,3', 'NaN', 'Infinity', '4.', '.5'),
  );
  check(
    value,
    (v) => {
      const accepts = (name: string, fn: () => unknown, ok: (x: never) => boolean) => {
        try {
          const x = fn();
          assert.ok(ok(x as never), `--${name} accepted ${JSON.stringify(v)} as ${JSON.stringify(x)}`);
        } catch (e) {
          assert.ok(e instanceof UsageError, `--${name}: ${String(e)}`);
          assert.ok((e as Error).message.startsWith(`--${name} `), (e as Error).message);
        }
      };
      accepts(
        'steps',
        () => flag.int(1, '').read('steps', v),
        (x: number) => Number.isSafeInteger(x) && x >= 1 && /\d/.test(v),
      );
      accepts(
        'seed',
        () => flag.int(0, '', 0).read('seed', v),
        (x: number) => Number.isSafeInteger(x) && x >= 0 && /\d/.test(v),
      );
      accepts(
        'lr',
        () => flag.num(1, '').read('lr', v),
        (x: number) => Number.isFinite(x) && /\d/.test(v),
      );
      accepts(
        'label-dropout',
        () => flag.num(0.1, '', probability).read('label-dropout', v),
        (x: number) => x >= 0 && x < 1,
      );
      accepts(
        'tokens',
        () => flag.intList('').read('tokens', v),
        (x: number[]) => x.length === v.split(',').length && x.every((n) => Number.isSafeInteger(n) && n >= 0),
      );
    },
    5000,
  );
});

if (CHILD !== undefined) {
  // a child that found no property of that name (a matching one exits above)
  process.stderr.write(`no fuzz property named "${CHILD}"\n`);
  process.exit(2);
}
