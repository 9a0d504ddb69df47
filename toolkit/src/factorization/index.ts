export * from './steps';
export * from './mask';
export * from './weights';
export * from './orders';
export * from './step-stats';
