/**
 * CausalFusion Lab toolkit: Causal Diffusion Transformers (arXiv 2412.12095) on TensorFlow.js.
 * One import gives the whole public API; `tf` is re-exported so notebooks use the same tfjs instance.
 */
export * as tf from '@tensorflow/tfjs';
export * from './rng';
export * from './backend';
export * from './factorization';
export * from './diffusion';
export * from './model/config';
export * from './model/params';
export * from './model/patchify';
export * from './model/causalfusion';
export type { LayerCache, ProbsHook, Params } from './model/attention';
export * from './train/loss';
export * from './train/optim';
export * from './train/step';
export * from './parity';
export * from './data';
export * from './io/safetensors';
export * from './train/stats';
export * from './train/progress';
export * from './train/trainer';
export * from './sample/sampler';
export * from './io/checkpoint';
export * from './io/torch-pickle';
export * from './io/images';
export * from './introspect/recorders';
export * from './viz/svg-chart';
export * from './train/report';
export * from './sample/edit';
export * from './eval/classifier';
export * from './eval/frechet';
export * from './eval/metrics';
export * from './eval/claims';
export * from './eval/paper';
export * from './eval/claims-report';
export * from './viz/svg-grids';
export * from './viz/display';
export * from './viz/chart';
export * from './viz/runtime';
export * from './viz/vega';
export * from './viz/svg-compose';
export * from './viz/charts-factorization';
export * from './viz/charts-attention';
export * from './viz/charts-diffusion';
export * from './viz/charts-training';
export * from './viz/gallery';
export * from './viz/charts-claims';
