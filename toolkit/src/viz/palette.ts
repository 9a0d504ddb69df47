/**
 * The project's colours, shared by every chart: condition grey, clean blue, noisy orange (the roles of the
 * sequence), and the AR steps on a light-to-dark sequential ramp.
 */
import type { TokenRole } from '../factorization/mask';

export const ROLE_COLORS: Record<TokenRole, string> = {
  cond: '#7f7f7f',
  clean: '#1f77b4',
  noisy: '#ff7f0e',
};

/** The roles in the order the d3 views index them. */
export const ROLES: readonly TokenRole[] = ['cond', 'clean', 'noisy'];

/** A colour for AR step s of S on a light-to-dark blue-purple ramp. */
export function stepColor(s: number, S: number): string {
  const f = S <= 1 ? 0.5 : s / (S - 1);
  const lerp = (a: number, b: number) => Math.round(a + (b - a) * f);
  return `rgb(${lerp(198, 63)},${lerp(219, 0)},${lerp(239, 125)})`;
}

/** Role colours in role-index order (condition, clean, noisy) and one colour per AR step. */
export function colorScheme(S: number): { roles: string[]; steps: string[] } {
  return { roles: ROLES.map((r) => ROLE_COLORS[r]), steps: Array.from({ length: S }, (_, s) => stepColor(s, S)) };
}

/** "#rrggbb" or "rgb(r,g,b)" as bytes. */
export function rgbBytes(color: string): [number, number, number] {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) return [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16)) as [number, number, number];
  const rgb = /^rgb\((\d+),\s*(\d+),\s*(\d+)\)$/.exec(color);
  if (!rgb) throw new Error(`unknown colour ${color}`);
  return [Number(rgb[1]), Number(rgb[2]), Number(rgb[3])];
}
