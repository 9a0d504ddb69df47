/**
 * A one-line terminal progress bar (`\r`-redrawn on a TTY, a plain line per log event elsewhere, so CI logs
 * and notebook outputs stay readable).
 */

export interface ProgressInfo {
  step: number;
  total: number;
  loss: number;
  stepsPerSec: number;
  elapsedSec: number;
  /** The run's time budget in seconds, if any: the run ends at whichever of steps and time comes first. */
  maxSeconds?: number;
}

/** `75` -> `1m15s`, `59.7` -> `1m00s` (rounded to whole seconds before splitting, never `16m60s`). */
export function formatDuration(sec: number): string {
  if (!Number.isFinite(sec)) return '?';
  const total = Math.max(0, Math.round(sec));
  const m = Math.floor(total / 60);
  const s = total % 60;
  return m > 0 ? `${m}m${String(s).padStart(2, '0')}s` : `${s}s`;
}

/** Seconds left: the smaller of the step-based estimate and what remains of the time budget. */
export function estimateRemaining(p: ProgressInfo): number {
  const bySteps = p.stepsPerSec > 0 ? (p.total - p.step) / p.stepsPerSec : Infinity;
  const byTime = p.maxSeconds !== undefined ? Math.max(0, p.maxSeconds - p.elapsedSec) : Infinity;
  const eta = Math.min(bySteps, byTime);
  return Number.isFinite(eta) ? eta : NaN;
}

export class ProgressBar {
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number } = process.stderr,
    private readonly width = 24,
  ) {}

  /** The bar text for a state (exposed for tests). */
  static render(p: ProgressInfo, width = 24): string {
    const frac = p.total > 0 ? Math.min(1, p.step / p.total) : 0;
    const filled = Math.round(frac * width);
    const bar = '='.repeat(Math.max(0, filled - 1)) + (filled > 0 ? '>' : '') + ' '.repeat(width - filled);
    const eta = estimateRemaining(p);
    return `step ${p.step}/${p.total} [${bar}] loss ${p.loss.toFixed(4)} ${p.stepsPerSec.toFixed(2)} it/s ${formatDuration(p.elapsedSec)} elapsed, eta ${formatDuration(eta)}`;
  }

  /** Redraws at most 10 times a second on a TTY; elsewhere only when `force` (log events, the end). */
  update(p: ProgressInfo, force = false): void {
    const now = Date.now();
    if (this.out.isTTY) {
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.out.write(`\r${ProgressBar.render(p, this.width)}\x1b[K`);
    } else if (force) {
      this.out.write(ProgressBar.render(p, this.width) + '\n');
    }
  }

  /** Ends the line on a TTY. */
  done(): void {
    if (this.out.isTTY) this.out.write('\n');
  }
}
