/** `nn`: modules, layers, weight initialisation, safetensors I/O, models and the functional ops. */
export * from './module.js';
export * from './layers/index.js';
export * from './init.js';
export * from './safetensors.js';
export * from './models/index.js';
export * as functional from './functional/index.js';
