/**
 * CausalFusion Lab toolkit: Causal Diffusion Transformers (arXiv 2412.12095) on TensorFlow.js, for Node.
 * One import gives the whole public API: the browser-safe core (core.ts) and what needs Node (backends with
 * native kernels and Dawn, files, datasets, training, evaluation, the studies, notebook display). `tf` is the
 * full tfjs package (it registers every gradient), re-exported so notebooks use the same tfjs instance.
 */
export * as tf from '@tensorflow/tfjs';
export * from './core';
export type { ProbsHook } from './model/attention';
export * from './backend';
export * from './data';
export * from './parity';
export * from './io/checkpoint';
export * from './io/files';
export * from './io/image-files';
export * from './train/loss';
export * from './train/optim';
export * from './train/step';
export * from './train/recipes';
export * from './train/stats';
export * from './train/progress';
export * from './train/trainer';
export * from './train/step-timer';
export * from './eval/classifier';
export * from './eval/frechet';
export * from './eval/metrics';
export * from './eval/sample-set';
export * from './viz/static-svg';
export type { LineChartSpec, BarChartSpec, Series } from './viz/views/plots';
export * from './viz/display';
export * from './viz/mime';
export * from './viz/runtime';
export * from './viz/node-host';
export * from './studies/gallery-run';
export * from './studies/gallery';
export * from './studies/training-report';
export * from './studies/claims';
export * from './studies/paper';
export * from './explorer/folder';
export * from './explorer/notebook';
export * from './studies/claims-report';
export * from './studies/claims-charts';
