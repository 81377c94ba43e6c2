/** @lib/nn — deep learning in TypeScript on WebGPU. */
export { init, createGpu, deviceInfo, memoryInfo, emptyCache, synchronize, flush, type DeviceInfo } from './tensor/device.js';
export { Tensor } from './tensor/tensor.js';
export { noGrad, isGradEnabled } from './tensor/autograd.js';
export { tidy, keep } from './tensor/scope.js';
export * from './tensor/ops/index.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export * as data from './data/index.js';
