/** `nn.functional`: the layers' math as plain functions (PyTorch semantics, NCHW). */
export * from './conv.js';
export * from './linear.js';
export * from './norm.js';
export * from './pool.js';
export * from './dropout.js';
export * from './loss.js';
export { relu, sigmoid, silu, tanh, softmax, logSoftmax } from '../../tensor/ops/index.js';
