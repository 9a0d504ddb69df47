/** The PyTorch side of the benchmarks: finding an interpreter with torch and running the twin (bench/torch_twin.py). */
import { spawnSync } from 'child_process';
import * as path from 'path';

/** The twin script: one training step or one sampling run in PyTorch, from a JSON plan on stdin. */
export const TWIN = path.resolve(__dirname, '..', '..', 'bench', 'torch_twin.py');

/**
 * $PYTHON, python3 or /usr/bin/python3, the first that imports torch (with `cuda`, one whose torch sees a CUDA
 * GPU: the GPU tables compare on the same card); null when none does.
 */
export function findPython(cuda = false): string | null {
  const check = cuda ? 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' : 'import torch';
  for (const py of [process.env.PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean) as string[]) {
    if (spawnSync(py, ['-c', check], { encoding: 'utf8' }).status === 0) return py;
  }
  return null;
}

/** Runs a command that prints one JSON line last; throws with its stderr when it fails. */
export function runJson(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Record<string, unknown> {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line);
}
