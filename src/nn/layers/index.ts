/** The layers (`torch.nn` modules). */
export * from './conv.js';
export * from './linear.js';
export * from './batchnorm.js';
export * from './activation.js';
export * from './pool.js';
export * from './misc.js';
export * from './container.js';
