/**
 * Preloaded into every CausalFusion kernel (node --require), before tslab starts:
 * - picks the tfjs backend once and reports it on the kernel log; cells get the report with
 *   `await cf.backendReady()`;
 * - lets tslab's type checker find `causalfusion` (and `tslab`) from any notebook folder: Node finds them through
 *   NODE_PATH, but TypeScript only looks in node_modules folders above the notebook, so lookups that fail there
 *   are answered from this repository's node_modules;
 * - completes two replies that tslab 1.0.22 leaves short of the Jupyter protocol: `status` in kernel_info_reply
 *   and `ename` / `evalue` / `traceback` in an execute_reply with status "error" (taken from the cell's stderr).
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

/** Protocol fixes on tslab's handler (same module instance tslab loads). */
function completeReplies() {
  const { JupyterHandlerImpl } = require('tslab/dist/jupyter');
  const proto = JupyterHandlerImpl.prototype;
  const handleKernel = proto.handleKernel;
  proto.handleKernel = function () {
    return { status: 'ok', ...handleKernel.call(this) };
  };
  const handleExecute = proto.handleExecute;
  proto.handleExecute = async function (req, writeStream, writeDisplayData) {
    let stderr = '';
    const tee = (name, text) => {
      if (name === 'stderr') stderr += text;
      writeStream(name, text);
    };
    const reply = await handleExecute.call(this, req, tee, writeDisplayData);
    if (reply.status !== 'error') return reply;
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    // a runtime error prints "RangeError: boom" among its stack lines; a type error prints "1:7 - message"
    const thrown = lines.map((l) => /^\s*(?:Uncaught\s+)?([A-Za-z]*Error)(?::\s*(.*))?$/.exec(l)).find((m) => m);
    const m = thrown
      ? [thrown[0], thrown[1], thrown[2] || '']
      : [null, 'TSError', (lines[0] || 'execution failed').replace(/^\d+:\d+ - /, '')];
    return { ...reply, ename: m[1], evalue: m[2], traceback: lines };
  };
}

try {
  redirectTypeLookups();
  completeReplies();
} catch (e) {
  process.stderr.write(`[causalfusion kernel] tslab patches not applied: ${e.message}\n`);
}
