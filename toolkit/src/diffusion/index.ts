export * from './gaussian';
export * from './respace';
