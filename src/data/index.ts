/** CPU-side data pipeline: PNG decoding, transforms, NIH ChestX-ray14 metadata, datasets, loader. */
export { type Image, createImage, checkImage } from './image.js';
export { Rng, deriveSeed } from './rng.js';
export { decodePng, encodePng, readImage } from './png.js';
export * as functional from './functional.js';
export {
  type Transform,
  type TransformSpec,
  type Range,
  type ColorJitterParams,
  Compose,
  Resize,
  Grayscale,
  ColorJitter,
  RandomHorizontalFlip,
  RandomAffine,
  ToTensor,
  Normalize,
  transformFromJSON,
} from './transforms.js';
export {
  type NihRecord,
  type LabelOptions,
  FINDINGS,
  NO_FINDING,
  IMAGENET_MEAN,
  IMAGENET_STD,
  parseDataEntry,
  encodeLabels,
  decodeLabels,
  findImages,
  trainTransform,
  evalTransform,
} from './nih.js';
export { type Splits, type SplitOptions, splitByPatient, assertPatientDisjoint } from './split.js';
export { type Dataset, type Sample, type WorkerInit, type NihDatasetOptions, type NihDatasetArgs, NihDataset } from './dataset.js';
export { type Batch, collate } from './batch.js';
export { type DataLoaderOptions, DataLoader } from './loader.js';
