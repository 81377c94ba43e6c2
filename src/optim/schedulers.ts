/**
 * Learning-rate schedulers (torch.optim.lr_scheduler). They set `lr` on the optimiser's parameter
 * groups; the optimisers pass lr to their kernels as a uniform, so a changing lr never recompiles.
 * The per-epoch formulas are torch's chainable ones (each step from the group's current lr).
 */
import { Optimizer, type GroupOptions } from './optimizer.js';

/** A scheduler's counters and options, JSON-able. */
export type SchedulerStateDict = Record<string, unknown>;

function checkPositiveInt(who: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`${who}: ${name} must be a positive integer, got ${String(v)}`);
}

function checkFinite(who: string, name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${who}: ${name} must be a finite number, got ${String(v)}`);
}

/** What all schedulers share: the optimiser, the last lrs set, and state save/restore. */
abstract class SchedulerBase {
  /** The learning rates of the groups after the last `step()`. */
  protected lastLr: number[];
  /** Number of `step()` calls so far (torch's `last_epoch`). */
  lastEpoch: number;

  constructor(readonly optimizer: Optimizer<GroupOptions>, lastEpoch: number) {
    if (!(optimizer instanceof Optimizer)) throw new Error(`${this.constructor.name}: expected an Optimizer, got ${String(optimizer)}`);
    this.lastEpoch = lastEpoch;
    this.lastLr = optimizer.paramGroups.map((g) => g.lr);
  }

  /** The learning rate of each group as set by the last step. */
  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Counters and options (everything but the optimiser), like torch's `state_dict()`. */
  stateDict(): SchedulerStateDict {
    const { optimizer: _optimizer, ...rest } = this as unknown as Record<string, unknown>;
    return structuredClone(rest);
  }

  /** Restores what `stateDict` returned; unknown keys are an error. */
  loadStateDict(state: SchedulerStateDict): void {
    for (const key of Object.keys(state)) {
      if (key === 'optimizer' || !Object.hasOwn(this, key)) throw new Error(`${this.constructor.name}.loadStateDict: unexpected key ${key}`);
    }
    Object.assign(this, structuredClone(state));
  }
}

/** Epoch-based schedulers: `step()` advances `lastEpoch` and sets each group's lr from `getLr()`. */
export abstract class LRScheduler extends SchedulerBase {
  /** Each group's `initialLr` when the first scheduler was attached. */
  baseLrs: number[];

  constructor(optimizer: Optimizer<GroupOptions>) {
    super(optimizer, -1);
    for (const g of optimizer.paramGroups) g.initialLr ??= g.lr;
    this.baseLrs = optimizer.paramGroups.map((g) => g.initialLr as number);
  }

  /** The lrs for `lastEpoch`, from the groups' current lrs. */
  protected abstract getLr(): number[];

  /** Advances one epoch (or iteration) and sets the groups' learning rates. Call after `optimizer.step()`. */
  step(): void {
    const groups = this.optimizer.paramGroups;
    if (groups.length !== this.baseLrs.length) {
      throw new Error(`${this.constructor.name}: the optimiser has ${groups.length} parameter groups, the scheduler was created for ${this.baseLrs.length}`);
    }
    this.lastEpoch++;
    const lrs = this.getLr();
    groups.forEach((g, i) => (g.lr = lrs[i]));
    this.lastLr = lrs;
  }
}

/** Multiplies lr by `gamma` every `stepSize` epochs: lr = baseLr · gamma^⌊epoch / stepSize⌋. */
export class StepLR extends LRScheduler {
  stepSize: number;
  gamma: number;

  constructor(optimizer: Optimizer<GroupOptions>, { stepSize, gamma = 0.1 }: { stepSize: number; gamma?: number }) {
    super(optimizer);
    checkPositiveInt('StepLR', 'stepSize', stepSize);
    checkFinite('StepLR', 'gamma', gamma);
    this.stepSize = stepSize;
    this.gamma = gamma;
    this.step();
  }

  protected getLr(): number[] {
    const e = this.lastEpoch;
    const decay = e !== 0 && e % this.stepSize === 0;
    return this.optimizer.paramGroups.map((g) => (decay ? g.lr * this.gamma : g.lr));
  }
}

/**
 * Cosine annealing without restarts: lr = etaMin + (baseLr − etaMin)(1 + cos(π·epoch / tMax)) / 2,
 * computed step to step as torch does (so other changes to lr carry through); past tMax it rises again.
 */
export class CosineAnnealingLR extends LRScheduler {
  tMax: number;
  etaMin: number;

  constructor(optimizer: Optimizer<GroupOptions>, { tMax, etaMin = 0 }: { tMax: number; etaMin?: number }) {
    super(optimizer);
    checkPositiveInt('CosineAnnealingLR', 'tMax', tMax);
    checkFinite('CosineAnnealingLR', 'etaMin', etaMin);
    this.tMax = tMax;
    this.etaMin = etaMin;
    this.step();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, tMax: T, etaMin } = this;
    const groups = this.optimizer.paramGroups;
    if (e === 0) return groups.map((g) => g.lr);
    // Just past a minimum the ratio below would divide by 1 + cos(π) = 0.
    if ((e - 1 - T) % (2 * T) === 0) {
      return groups.map((g, i) => g.lr + ((this.baseLrs[i] - etaMin) * (1 - Math.cos(Math.PI / T))) / 2);
    }
    const ratio = (1 + Math.cos((Math.PI * e) / T)) / (1 + Math.cos((Math.PI * (e - 1)) / T));
    return groups.map((g) => ratio * (g.lr - etaMin) + etaMin);
  }
}

/**
 * Linear warm-up (torch's LinearLR): the factor on baseLr goes linearly from `startFactor` at epoch 0
 * to `endFactor` at `totalIters`, then stays.
 */
export class LinearLR extends LRScheduler {
  startFactor: number;
  endFactor: number;
  totalIters: number;

  constructor(optimizer: Optimizer<GroupOptions>, { startFactor = 1 / 3, endFactor = 1, totalIters = 5 }: { startFactor?: number; endFactor?: number; totalIters?: number } = {}) {
    super(optimizer);
    if (typeof startFactor !== 'number' || !(startFactor > 0 && startFactor <= 1)) throw new Error(`LinearLR: startFactor must be in (0, 1], got ${startFactor}`);
    if (typeof endFactor !== 'number' || !(endFactor >= 0 && endFactor <= 1)) throw new Error(`LinearLR: endFactor must be in [0, 1], got ${endFactor}`);
    checkPositiveInt('LinearLR', 'totalIters', totalIters);
    this.startFactor = startFactor;
    this.endFactor = endFactor;
    this.totalIters = totalIters;
    this.step();
  }

  protected getLr(): number[] {
    const { lastEpoch: e, startFactor: s, endFactor: f, totalIters: n } = this;
    const groups = this.optimizer.paramGroups;
    if (e === 0) return groups.map((g) => g.lr * s);
    if (e > n) return groups.map((g) => g.lr);
    const ratio = 1 + (f - s) / (n * s + (e - 1) * (f - s));
    return groups.map((g) => g.lr * ratio);
  }
}

/** Options of ReduceLROnPlateau (PyTorch names and defaults). */
export interface PlateauOptions {
  mode?: 'min' | 'max';
  factor?: number;
  patience?: number;
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  cooldown?: number;
  /** One floor for all groups, or one per group. */
  minLr?: number | number[];
  /** Changes of lr smaller than this are skipped. */
  eps?: number;
}

/**
 * Multiplies lr by `factor` (not below `minLr`) when the metric has not improved for more than
 * `patience` steps, then waits `cooldown` steps before counting again. "Improved" means below
 * best·(1 − threshold) ('min', 'rel'), below best − threshold ('min', 'abs'), or the mirror for 'max'.
 */
export class ReduceLROnPlateau extends SchedulerBase {
  mode: 'min' | 'max';
  factor: number;
  patience: number;
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  cooldown: number;
  minLrs: number[];
  eps: number;
  /** Best metric so far (±Infinity before the first step). */
  best: number;
  numBadEpochs = 0;
  cooldownCounter = 0;

  constructor(optimizer: Optimizer<GroupOptions>, opts: PlateauOptions = {}) {
    super(optimizer, 0);
    const { mode = 'min', factor = 0.1, patience = 10, threshold = 1e-4, thresholdMode = 'rel', cooldown = 0, minLr = 0, eps = 1e-8 } = opts;
    const who = 'ReduceLROnPlateau';
    if (mode !== 'min' && mode !== 'max') throw new Error(`${who}: mode must be 'min' or 'max', got ${String(mode)}`);
    if (thresholdMode !== 'rel' && thresholdMode !== 'abs') throw new Error(`${who}: thresholdMode must be 'rel' or 'abs', got ${String(thresholdMode)}`);
    if (typeof factor !== 'number' || !(factor >= 0 && factor < 1)) throw new Error(`${who}: factor must be in [0, 1), got ${factor}`);
    for (const [name, v] of [['patience', patience], ['cooldown', cooldown]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new Error(`${who}: ${name} must be an integer >= 0, got ${v}`);
    }
    checkFinite(who, 'threshold', threshold);
    checkFinite(who, 'eps', eps);
    const n = optimizer.paramGroups.length;
    const minLrs = Array.isArray(minLr) ? [...minLr] : new Array<number>(n).fill(minLr);
    if (minLrs.length !== n) throw new Error(`${who}: ${minLrs.length} minLr values for ${n} parameter groups`);
    minLrs.forEach((v) => checkFinite(who, 'minLr', v));
    this.mode = mode;
    this.factor = factor;
    this.patience = patience;
    this.threshold = threshold;
    this.thresholdMode = thresholdMode;
    this.cooldown = cooldown;
    this.minLrs = minLrs;
    this.eps = eps;
    this.best = mode === 'min' ? Infinity : -Infinity;
  }

  private isBetter(a: number): boolean {
    const { best, threshold: t } = this;
    if (this.mode === 'min') return this.thresholdMode === 'rel' ? a < best * (1 - t) : a < best - t;
    return this.thresholdMode === 'rel' ? a > best * (1 + t) : a > best + t;
  }

  /** Records this epoch's metric (e.g. the validation loss, read back with `await loss.item()`) and maybe lowers lr. */
  step(metric: number): void {
    if (typeof metric !== 'number' || Number.isNaN(metric)) throw new Error(`ReduceLROnPlateau.step: metric must be a number, got ${String(metric)}`);
    this.lastEpoch++;
    if (this.isBetter(metric)) {
      this.best = metric;
      this.numBadEpochs = 0;
    } else this.numBadEpochs++;
    if (this.cooldownCounter > 0) {
      this.cooldownCounter--;
      this.numBadEpochs = 0; // bad epochs during cooldown are ignored
    }
    if (this.numBadEpochs > this.patience) {
      this.optimizer.paramGroups.forEach((g, i) => {
        const lr = Math.max(g.lr * this.factor, this.minLrs[i]);
        if (g.lr - lr > this.eps) g.lr = lr;
      });
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
    this.lastLr = this.optimizer.paramGroups.map((g) => g.lr);
  }

  /** As the base, but an infinite `best` (no metric yet) is saved as null so the result survives JSON. */
  override stateDict(): SchedulerStateDict {
    const s = super.stateDict();
    if (!Number.isFinite(this.best)) s.best = null;
    return s;
  }

  override loadStateDict(state: SchedulerStateDict): void {
    super.loadStateDict(state);
    if ((this.best as number | null) === null) this.best = this.mode === 'min' ? Infinity : -Infinity;
  }
}
