/**
 * Preloaded into every CausalFusion kernel (node --require), before tslab starts:
 * - picks the tfjs backend once and reports it on the kernel log; cells get the report with
 *   `await cf.backendReady()`;
 * - lets tslab's type checker find `causalfusion` (and `tslab`) from any notebook folder: Node finds them through
 *   NODE_PATH, but TypeScript only looks in node_modules folders above the notebook, so lookups that fail there
 *   are answered from this repository's node_modules;
 * - speaks the parts of the Jupyter protocol that tslab 1.0.22 leaves out: the last expression of a cell as an
 *   `execute_result` (rich: `cf.mimeBundleOf`), runtime errors and TypeScript diagnostics as IOPub `error` messages
 *   with a traceback in the cell's own lines (and the same in the execute_reply), `clear_output`, and `status` in
 *   kernel_info_reply. tslab stays the kernel (completion, inspection, its executor): these wrap its converter,
 *   vm.runInThisContext for its cells, and its execute handler.
 */
'use strict';
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const MODULES = path.join(ROOT, 'node_modules');

let cf;
try {
  cf = require('causalfusion');
} catch (e) {
  process.stderr.write(`[causalfusion kernel] the toolkit could not be loaded: ${e.message}\n`);
}
if (cf) {
  globalThis.causalfusionBackend = cf.initBackend({ quiet: true }).then(
    (report) => {
      process.stderr.write(`[causalfusion kernel] ${report.line}\n`);
      return report;
    },
    (e) => {
      process.stderr.write(`[causalfusion kernel] no tfjs backend could start: ${e.message}\n`);
      throw e;
    },
  );
  // a failed start must not crash the kernel; cells that await it see the error
  globalThis.causalfusionBackend.catch(() => undefined);
}

/** Type lookups of our packages from outside the repository fall back to the repository's node_modules. */
function redirectTypeLookups() {
  const tslabDir = path.dirname(require.resolve('tslab/package.json'));
  const ts = require(require.resolve('@tslab/typescript-for-tslab', { paths: [tslabDir] }));
  const pattern = /^(.*?)[\\/]node_modules[\\/](causalfusion|tslab)([\\/].*)?$/;
  const fallback = (p) => {
    const m = pattern.exec(p);
    return m && path.resolve(m[1]) !== ROOT ? path.join(MODULES, m[2]) + (m[3] || '') : null;
  };
  const sys = ts.sys;
  const fileExists = sys.fileExists.bind(sys);
  const directoryExists = sys.directoryExists.bind(sys);
  const exists = (p) => fileExists(p) || directoryExists(p);
  /** The path to use for p: p itself when it exists, else its fallback (when it has one). */
  const use = (p) => (exists(p) ? p : fallback(p) || p);
  sys.fileExists = (p) => fileExists(use(p));
  sys.directoryExists = (p) => directoryExists(use(p));
  const readFile = sys.readFile.bind(sys);
  sys.readFile = (p, enc) => readFile(use(p), enc);
  if (sys.realpath) {
    const realpath = sys.realpath.bind(sys);
    sys.realpath = (p) => realpath(use(p));
  }
}

/**
 * The cell being executed, as tslab runs it: the name under which its converter stores the last expression (taken
 * over here, so it goes out as an execute_result instead of console.log), its TypeScript diagnostics, and the
 * JavaScript it runs with what it threw (for a traceback in the cell's own lines).
 */
const freshCell = () => ({
  lastExpression: null,
  diagnostics: null,
  source: '',
  code: '',
  thrown: undefined,
  printed: false,
});
const cell = freshCell();

/** tslab's converter, wrapped: records the last-expression variable and the diagnostics of each cell. */
function takeOverConversion() {
  const converter = require('tslab/dist/converter');
  const create = converter.createConverter;
  converter.createConverter = (...args) => {
    const conv = create(...args);
    const convert = conv.convert;
    conv.convert = (prevDecl, src) => {
      const r = convert(prevDecl, src);
      cell.source = src;
      cell.lastExpression = r.lastExpressionVar || null;
      cell.diagnostics = r.diagnostics && r.diagnostics.length ? r.diagnostics : null;
      return { ...r, lastExpressionVar: undefined };
    };
    return conv;
  };
}

/** vm.runInThisContext, wrapped for tslab's cells only: records what a cell throws, synchronously or awaited. */
function recordThrows() {
  const vm = require('vm');
  const run = vm.runInThisContext;
  vm.runInThisContext = function (code, options) {
    if (typeof code !== 'string' || !/^\((async )?function\(exports, require\) \{ /.test(code))
      return run.call(this, code, options);
    cell.code = code;
    const caught = (e) => {
      cell.thrown = e;
      throw e;
    };
    let ret;
    try {
      ret = run.call(this, code, options);
    } catch (e) {
      caught(e);
    }
    return code.startsWith('(async') && ret && typeof ret.then === 'function' ? ret.catch(caught) : ret;
  };
}

/** The tokens of a line of code (names, numbers, strings, single characters), for matching emitted to typed lines. */
const tokens = (line) =>
  line.match(/[A-Za-z_$][\w$]*|\d+(?:\.\d+)?|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`|[^\s\w]/g) || [];

/**
 * The line of the cell (1-based) that line `n` of the JavaScript tslab ran came from: TypeScript's emit keeps the
 * statements in order and drops only types, so the cell line whose tokens contain the emitted line's tokens (in
 * order) is it; where several do, the one at the same relative position. null when none matches.
 */
function cellLine(n) {
  const emitted = (cell.code.split('\n')[n - 1] || '')
    .replace(/^\((async )?function\(exports, require\) \{ /, '')
    .replace(/^\s*exports\.[\w$]+ = /, '');
  const want = tokens(emitted).filter((t) => t !== ';');
  if (!want.length) return null;
  const lines = cell.source.split('\n');
  const contains = (have) => {
    let i = 0;
    for (const t of have) if (t === want[i] && ++i === want.length) return true;
    return false;
  };
  const matches = lines.map((l, i) => (contains(tokens(l)) ? i : -1)).filter((i) => i >= 0);
  if (!matches.length) return null;
  const at = ((n - 1) / Math.max(1, cell.code.split('\n').length - 1)) * (lines.length - 1);
  return matches.reduce((best, i) => (Math.abs(i - at) < Math.abs(best - at) ? i : best)) + 1;
}

/** A Jupyter error (ename, evalue, traceback) for what the cell threw, with frames in the cell's own lines. */
function runtimeError(e) {
  const isError = e instanceof Error || (e && typeof e.stack === 'string');
  const ename = isError ? e.name || 'Error' : typeof e;
  const evalue = isError ? String(e.message) : String(e);
  const frames = [];
  for (const line of (isError ? e.stack : '').split('\n').slice(1)) {
    const m = /^\s*at (?:(.*?) \()?evalmachine\.<anonymous>:(\d+):\d+\)?$/.exec(line);
    if (m) {
      const n = cellLine(Number(m[2]));
      if (n !== null)
        frames.push(
          `    at ${m[1] ? `${m[1]} (cell line ${n})` : `cell line ${n}`}: ${cell.source.split('\n')[n - 1].trim()}`,
        );
    } else if (
      /^\s*at /.test(line) &&
      !/\(node:|at node:|[\\/]tslab[\\/]|evalmachine/.test(line) &&
      !line.includes(__filename)
    )
      frames.push(line);
  }
  return { ename, evalue, traceback: [`${ename}: ${evalue}`, ...frames] };
}

/** A Jupyter error for TypeScript's diagnostics of the cell: each names its line and column, with the line and a caret. */
function diagnosticsError(list) {
  const lines = cell.source.split('\n');
  const message = (d) => (typeof d.messageText === 'string' ? d.messageText : String(d.messageText));
  const traceback = [];
  for (const d of list) {
    const line = d.start.line;
    const col = d.start.character;
    traceback.push(`TSError: ${message(d)}`, `  cell line ${line + 1}, column ${col + 1}:`);
    if (lines[line] !== undefined) traceback.push(`    ${lines[line]}`, `    ${' '.repeat(col)}^`);
  }
  return { ename: 'TSError', evalue: message(list[0]), traceback };
}

/** Whether a write to stderr is tslab's own print of the cell's error (sent as an `error` message instead). */
function isErrorPrint(text) {
  if (cell.diagnostics && /^(\S+ )?\d+:\d+ - /.test(text)) return true;
  if (cell.thrown === undefined || cell.printed) return false;
  const e = cell.thrown;
  const head = e instanceof Error ? String(e.message) : String(e);
  if (!text.includes(head.split('\n')[0])) return false;
  cell.printed = true;
  return true;
}

/**
 * tslab's execute handler (ZmqServer.handleExecute), written again with what the protocol asks and tslab leaves
 * out: the last expression as an `execute_result` with the execution count (its MIME bundle: `cf.mimeBundleOf`,
 * so objects with a `Symbol.for('Jupyter.display')` method and the toolkit's objects show themselves), errors as
 * IOPub `error` messages (and in the reply) instead of text on stderr, and a publisher for `clear_output`.
 */
function completeExecute() {
  const { JupyterHandlerImpl, ZmqServer } = require('tslab/dist/jupyter');
  const handleKernel = JupyterHandlerImpl.prototype.handleKernel;
  JupyterHandlerImpl.prototype.handleKernel = function () {
    return { status: 'ok', ...handleKernel.call(this) };
  };
  ZmqServer.prototype.handleExecute = async function (sock, msg) {
    const send = (type, content, socket = this.iopub) => {
      const m = msg.createReply();
      m.header.msg_type = type;
      m.content = content;
      m.signAndSend(this.connInfo.key, socket);
    };
    Object.assign(cell, freshCell());
    globalThis[Symbol.for('causalfusion.kernel')] = { publish: (type, content) => send(type, content) };
    const writeStream = (name, text) => {
      if (name === 'stderr' && isErrorPrint(text)) return;
      send('stream', { name, text });
    };
    const writeDisplayData = (data, update) => send(update ? 'update_display_data' : 'display_data', data);
    const reply = await this.handler.handleExecute(msg.content, writeStream, writeDisplayData);
    if (reply.status === 'ok' && cell.lastExpression) {
      const locals = this.handler.executor.locals;
      const value = locals[cell.lastExpression];
      delete locals[cell.lastExpression];
      if (value !== undefined) {
        let data;
        try {
          data = cf ? cf.mimeBundleOf(value) : { 'text/plain': require('util').inspect(value) };
        } catch (e) {
          data = { 'text/plain': `${require('util').inspect(value)}\n(its rich display failed: ${e.message})` };
        }
        send('execute_result', { execution_count: reply.execution_count, data, metadata: {} });
      }
    }
    if (reply.status === 'error') {
      const err = cell.diagnostics
        ? diagnosticsError(cell.diagnostics)
        : cell.thrown !== undefined
          ? runtimeError(cell.thrown)
          : { ename: 'Error', evalue: 'execution failed', traceback: ['Error: execution failed'] };
      send('error', err);
      Object.assign(reply, err);
    }
    send('execute_reply', reply, sock);
  };
}

try {
  redirectTypeLookups();
  takeOverConversion();
  recordThrows();
  completeExecute();
} catch (e) {
  process.stderr.write(`[causalfusion kernel] tslab patches not applied: ${e.message}\n`);
}
