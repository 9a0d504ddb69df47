/**
 * Atomic file writes: a crash, a kill or a full disk never leaves a half-written file under the real name (every
 * checkpoint, report, chart and result of the toolkit is written this way).
 */
import * as fs from 'fs';
import * as path from 'path';

/** Removes temp files of `base` left by writers that were killed (their process no longer exists). */
function removeStaleTemps(dir: string, base: string): void {
  const pattern = /^\.(.+)\.(\d+)\.\d+\.tmp$/;
  for (const name of fs.readdirSync(dir)) {
    const m = pattern.exec(name);
    if (!m || m[1] !== base || Number(m[2]) === process.pid) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(dir, name), { force: true });
    }
  }
}

/**
 * Writes `data` to `file` atomically (temp file in the same folder, fsync, rename, fsync the folder), first
 * clearing temp files that killed writers left behind.
 */
export function writeFileAtomic(file: string, data: Uint8Array): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir, path.basename(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'w');
    // writeSync may write less than asked (a nearly full disk): loop, never rename a short file
    for (let off = 0; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    const err = e as NodeJS.ErrnoException;
    const why =
      err.code === 'ENOSPC' ? 'no space left on device' : err.code === 'EDQUOT' ? 'disk quota exceeded' : err.message;
    const kept = fs.existsSync(file) ? 'the previous file is unchanged' : 'nothing was written';
    throw Object.assign(new Error(`could not write ${file}: ${why} (${(data.length / 1e6).toFixed(1)} MB); ${kept}`), {
      code: err.code,
    });
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    fs.fsyncSync(dfd);
    fs.closeSync(dfd);
  } catch {
    // some filesystems cannot fsync a directory; the rename itself is still atomic
  }
}
