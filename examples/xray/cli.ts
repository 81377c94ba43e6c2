/** Command-line options of the X-ray example, and the configuration it picks when options are left out. */
import { Command, Option } from 'commander';
import { MODEL_NAMES } from './model.js';

export interface Config {
  dataDir: string | null;
  model: string;
  imageSize: number;
  batchSize: number;
  epochs: number;
  lr: number;
  weightDecay: number;
  patience: number;
  workers: number;
  limit: number | null;
  seed: number;
  out: string;
  resume: boolean;
  posWeight: boolean;
  scheduler: 'none' | 'plateau' | 'cosine';
  noFindingColumn: boolean;
  onUnreadable: 'skip' | 'error';
  cacheDir: string | null;
  show: number;
  gradcam: number;
  syntheticPatients: number;
  maxBatches: number | null;
}

export interface Parsed {
  /** Options the user gave (others come from the preset or the automatic choice). */
  given: Partial<Config>;
  preset: 'auto' | 'seed';
}

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`expected a non-negative integer, got '${v}'`);
  return n;
};
const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`expected a non-negative number, got '${v}'`);
  return n;
};

export function parseArgs(argv: string[]): Parsed {
  const p = new Command('example:xray')
    .description('Multi-label chest X-ray classification on the NIH ChestX-ray14 layout (synthetic data when --data-dir is absent).')
    .option('--data-dir <dir>', 'folder with Data_Entry_2017.csv and the images (any depth below it)')
    .addOption(new Option('--model <name>', 'network').choices(MODEL_NAMES))
    .option('--image-size <px>', 'square input size', int)
    .option('--batch-size <n>', 'images per batch', int)
    .option('--epochs <n>', 'maximum epochs', int)
    .option('--lr <x>', 'Adam learning rate', num)
    .option('--weight-decay <x>', 'Adam weight decay (L2)', num)
    .option('--patience <n>', 'early stopping: epochs without a better validation loss', int)
    .option('--workers <n>', 'data-loading worker threads', int)
    .option('--limit <n>', 'use only the first n images (whole patients)', int)
    .option('--seed <n>', 'seed of splits, shuffling, augmentation and initialisation', int)
    .option('--out <dir>', 'output folder (checkpoints, metrics, report)')
    .option('--resume', 'continue from <out>/last.safetensors')
    .option('--pos-weight', 'weight positives by the negative/positive ratio of each class (class imbalance; on by default except with --preset seed)')
    .option('--no-pos-weight', 'plain BCE without per-class positive weights')
    .addOption(new Option('--scheduler <kind>', 'learning-rate schedule').choices(['none', 'plateau', 'cosine']))
    .option('--label-no-finding', "add 'No Finding' as a 15th label, as the seed's one-hot encoding did")
    .addOption(new Option('--on-unreadable <what>', 'a missing or corrupt image is skipped (and counted) or fatal').choices(['skip', 'error']))
    .option('--cache-dir <dir>', 'cache resized images here (decoding 1024x1024 PNGs is the slow part)')
    .option('--show <n>', 'test predictions printed (all go to predictions.csv)', int)
    .option('--gradcam <n>', 'Grad-CAM heat maps drawn for n test images', int)
    .option('--synthetic-patients <n>', 'patients in the generated synthetic dataset', int)
    .option('--max-batches <n>', 'stop each pass after n batches (quick smoke runs)', int)
    .addOption(new Option('--preset <name>', "'seed' reproduces the original project: EfficientNet-B6 at 1024x1024, Adam 1e-3 / 1e-5, early stopping (needs a real GPU)").choices(['auto', 'seed']).default('auto'))
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  p.parse(argv, { from: 'user' });
  const o = p.opts();
  const given: Partial<Config> = {};
  const copy: [keyof Config, unknown][] = [
    ['dataDir', o.dataDir], ['model', o.model], ['imageSize', o.imageSize], ['batchSize', o.batchSize], ['epochs', o.epochs],
    ['lr', o.lr], ['weightDecay', o.weightDecay], ['patience', o.patience], ['workers', o.workers], ['limit', o.limit],
    ['seed', o.seed], ['out', o.out], ['resume', o.resume], ['posWeight', o.posWeight], ['scheduler', o.scheduler],
    ['noFindingColumn', o.labelNoFinding], ['onUnreadable', o.onUnreadable], ['cacheDir', o.cacheDir],
    ['show', o.show], ['gradcam', o.gradcam], ['syntheticPatients', o.syntheticPatients], ['maxBatches', o.maxBatches],
  ];
  for (const [k, v] of copy) if (v !== undefined) (given as Record<string, unknown>)[k] = v;
  return { given, preset: o.preset };
}

/**
 * The configuration: the user's options over the preset's. Without a preset it sizes the run to the
 * device: a small CNN at 64 px on a CPU driver (so the default run ends within minutes), ResNet-18 at
 * 224 px on a real GPU. Returns the reasons, printed at start.
 */
export function resolveConfig(parsed: Parsed, cpuAdapter: boolean): { config: Config; why: string[] } {
  const why: string[] = [];
  const base: Config = {
    dataDir: null, model: 'small-cnn', imageSize: 64, batchSize: 32, epochs: 12, lr: 1e-3, weightDecay: 1e-5, patience: 3,
    workers: 1, limit: null, seed: 0, out: 'out/xray', resume: false, posWeight: true, scheduler: 'cosine',
    noFindingColumn: false, onUnreadable: 'error', cacheDir: null, show: 20, gradcam: 4, syntheticPatients: 1000, maxBatches: null,
  };
  if (parsed.preset === 'seed') {
    Object.assign(base, {
      model: 'efficientnet-b6', imageSize: 1024, batchSize: 4, epochs: 50, patience: 5, noFindingColumn: true, workers: 4,
      posWeight: false, scheduler: 'none',
    });
    why.push("preset 'seed': EfficientNet-B6 at 1024x1024, Adam lr 1e-3 / weight decay 1e-5, early stopping, 'No Finding' as a 15th label, as the original project");
    if (cpuAdapter) why.push('warning: this preset needs a real GPU; on a CPU driver one epoch takes days');
  } else if (cpuAdapter) {
    why.push('CPU WebGPU driver (no GPU): small CNN at 64x64, batch 32, 12 epochs with a cosine schedule and per-class positive weights, so the default run finishes in minutes');
  } else {
    Object.assign(base, { model: 'resnet18', imageSize: 224, batchSize: 32, epochs: 20, patience: 4, workers: 4, syntheticPatients: 4000 });
    why.push('GPU adapter: ResNet-18 at 224x224, batch 32');
  }
  const config = { ...base, ...parsed.given };
  if (parsed.given.dataDir === undefined) why.push(`no --data-dir: synthetic NIH-layout dataset of ${config.syntheticPatients} patients`);
  for (const k of Object.keys(parsed.given)) why.push(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} given`);
  if (config.batchSize < 1) throw new Error('--batch-size must be at least 1');
  if (config.imageSize < 16) throw new Error('--image-size must be at least 16');
  return { config, why };
}
