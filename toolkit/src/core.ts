/**
 * The browser-safe core of CausalFusion Lab: the model, the factorization, the diffusion, the sampler and
 * editing, the recorders, the chart specs and d3 views, and the checkpoint and PNG formats on bytes, over
 * tfjs-core (the page brings its backends: WebGPU with the project's WGSL kernels, WebGL, wasm). It imports no
 * Node module; `npm test` bundles it for the browser and fails if one creeps in (tests/core-browser.test.ts).
 * Node's entry (index.ts) adds files, datasets, the native kernels, Dawn, the CLI and the notebook plumbing. A page
 * that trains registers tfjs-core's gradients itself (`import '@tensorflow/tfjs-core/dist/register_all_gradients'`):
 * they are an ES module, which Node's entry cannot load (it gets them from the full tfjs package).
 */
export * as tf from '@tensorflow/tfjs-core';
export * from './rng';
export * from './factorization';
export * from './diffusion';
export * from './model/config';
export * from './model/params';
export * from './model/patchify';
export * from './model/causalfusion';
export type { LayerCache, Params } from './model/attention';
export * from './backend/kernels';
export { wgslKernels } from './backend/kernels-wgsl';
export * from './sample/sampler';
export * from './sample/edit';
export * from './introspect/recorders';
export * from './introspect/rollout';
export * from './introspect/frames';
export * from './io/safetensors';
export * from './io/torch-pickle';
export * from './io/checkpoint-format';
export * from './io/png';
export * from './io/images';
export * from './util/bytes';
export * from './viz/palette';
export * from './viz/svg-compose';
export * from './viz/chart';
export * from './viz/vega';
export * from './viz/views';
export * from './viz/charts-factorization';
export * from './viz/charts-attention';
export * from './viz/charts-diffusion';
export * from './viz/charts-training';
export * from './explorer/session';
export * from './explorer/manifest';
