// Plain float64 reference implementations: the ground truth kernel tests compare against.
export * from './array.js';
// Test data comes from the library's seeded generator (itself tested in data-transforms.test.ts).
export { Rng } from '../../src/data/rng.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './matmul.js';
export * from './conv.js';
export * from './pool.js';
export * from './norm.js';
export * from './loss.js';
export * from './linear.js';
export * from './optim.js';
export * from './gradcheck.js';
