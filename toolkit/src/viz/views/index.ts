/** The d3 views by renderer name, shared by the browser runtime and the static renderer. */
import { View } from './common';
import { drawAttention } from './attention';
import { drawFrames } from './frames';
import { drawMask } from './mask';
import { drawOrder } from './order';

export const D3_VIEWS = {
  'd3-mask': drawMask,
  'd3-attention': drawAttention,
  'd3-order': drawOrder,
  'd3-frames': drawFrames,
} as const satisfies Record<string, View<never>>;

export type D3Renderer = keyof typeof D3_VIEWS;
