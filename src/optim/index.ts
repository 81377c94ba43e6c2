/** torch.optim for @lib/nn: optimisers with fused GPU updates, learning-rate schedulers and gradient clipping. */
export { Optimizer, type GroupOptions, type ParamGroup, type ParamGroupInput, type ParamState, type OptimizerStateDict, type OptimizerStateInput } from './optimizer.js';
export { SGD, type SgdOptions } from './sgd.js';
export { Adam, AdamW, type AdamOptions } from './adam.js';
export { LRScheduler, StepLR, CosineAnnealingLR, LinearLR, ReduceLROnPlateau, type SchedulerStateDict } from './schedulers.js';
export { clipGradNorm } from './clip.js';
