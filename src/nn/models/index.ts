/** Model zoo: torchvision's ResNets and EfficientNet-PyTorch's EfficientNets, with their state-dict names. */
export * from './resnet.js';
export * from './efficientnet.js';
