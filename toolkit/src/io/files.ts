/**
 * Checkpoint files on disk (Node): the byte parsers of safetensors.ts and torch-pickle.ts given a file, and
 * safetensors written atomically (a temporary file in the same folder, flushed, then renamed over the target), so
 * a crash or a kill never leaves a half-written checkpoint under the real name.
 */
import * as fs from 'fs';
import { HostTensor, StateDict } from '../model/params';
import { parseSafetensors, SafetensorsFile, serializeSafetensors, StoredDtype } from './safetensors';
import { parseTorchFile, parseTorchStateDict } from './torch-pickle';
import { writeFileAtomic } from '../util/atomic-write';

export function saveSafetensors(
  file: string,
  tensors: Record<string, HostTensor>,
  metadata: Record<string, string> = {},
  dtype: StoredDtype = 'F32',
): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata, dtype));
}

export function loadSafetensors(file: string): SafetensorsFile {
  if (!fs.existsSync(file)) throw new Error(`checkpoint not found: ${file}`);
  return parseSafetensors(fs.readFileSync(file), file);
}

/** Everything in a `torch.save` file, as plain JS (Maps for dicts, HostTensors for tensors). */
export function readTorchFile(file: string): unknown {
  if (!fs.existsSync(file)) throw new Error(`${file} not found`);
  return parseTorchFile(fs.readFileSync(file), file);
}

/** The model (and EMA) state_dicts of a `.pt` file (`parseTorchStateDict`). */
export function readTorchStateDict(file: string): { model: StateDict; ema?: StateDict } {
  if (!fs.existsSync(file)) throw new Error(`${file} not found`);
  return parseTorchStateDict(fs.readFileSync(file), file);
}
