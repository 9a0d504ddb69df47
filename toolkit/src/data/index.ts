export * from './idx';
export * from './datasets';
export * from './loader';
export * from './folder';
export * from './assets';
