export * from './gaussian';
export * from './respace';
export * from './time-sampling';
