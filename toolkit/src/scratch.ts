import { initBackend } from './backend';
import { loadReference } from './io/reference';
import { verifyReference, formatVerifyTable } from './verify';
(async () => {
  await initBackend({ backend: (process.argv[2] as any) ?? 'wasm' });
  const ref = loadReference('/work/shared/reference/causalfusion-reference.json');
  const t0 = Date.now();
  console.log(formatVerifyTable(verifyReference(ref)));
  console.log('ms', Date.now() - t0);
})();
