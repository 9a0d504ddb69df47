/** Images written to disk (Node). */
import { encodePng } from './png';
import type { Raster } from './images';
import { writeFileAtomic } from '../util/atomic-write';

/** Writes a raster as PNG (atomically). */
export function savePng(file: string, r: Raster): void {
  writeFileAtomic(file, encodePng(r));
}
