#!/usr/bin/env node
// The `causalfusion` command. This file is committed (dist/ is not) so that `npm ci` links it into
// node_modules/.bin before the first build; it runs the compiled CLI.
let cli;
try {
  cli = require('../dist/src/cli/main.js');
} catch (e) {
  if (e.code !== 'MODULE_NOT_FOUND' || !String(e.message).includes('dist/src/cli/main.js')) throw e;
  console.error(
    'causalfusion: the toolkit is not built yet: run "npm run build" (or "npm start" / "npm test") in the repository root',
  );
  process.exit(2);
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
