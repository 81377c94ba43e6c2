/**
 * Golden fixtures: what the reference models (torchvision's ResNet, EfficientNet-PyTorch's
 * `EfficientNet.from_name`) compute in PyTorch, in float64, with weights, inputs and targets that
 * both sides derive from the same integer hash (no 45 MB weight files in the repo).
 * `scripts/golden_fixtures.py` writes the PyTorch side; `recordModel` runs the same spec through
 * this library and `compareRecords` names every value that disagrees.
 */
import { noGrad, tensor, tidy, type Tensor } from '../../src/index.js';
import { binaryCrossEntropyWithLogits } from '../../src/nn/functional/index.js';
import type { Module } from '../../src/nn/module.js';
import { EfficientNet, resnet18, resnet34, resnet50, resnet101, resnet152 } from '../../src/nn/models/index.js';
import { Adam, SGD, type Optimizer } from '../../src/optim/index.js';

/** One reference run: model, input size, and the optimiser stepped `steps` times on one batch. */
export interface GoldenSpec {
  model: string;
  /**
   * Picks the input and targets (hashed as `input:<seed>`, `target:<seed>`). Seeds were chosen by
   * trying: with them a ±1e-6 relative change of the input moves no compared value beyond
   * tolerance. With others a ReLU input sits within float32 rounding of zero, and its flip moves a
   * whole BN channel's gradient by percents (seen on an NVIDIA GPU against lavapipe).
   */
  seed: number;
  numClasses: number;
  /** [N, 3, H, W] */
  input: number[];
  /** EfficientNet's static-padding size (default: the input's). */
  imageSize?: number;
  /** Skip training: only the eval-mode logits are recorded. */
  evalOnly?: boolean;
  /**
   * Train with BN in eval mode (running statistics, as when fine-tuning with frozen BN). Deep nets at
   * tiny sizes need it: batch statistics over the 4–8 values of a 2x2 final map make the gradients
   * sensitive to input changes of 1e-6, beyond what float32 can match.
   */
  frozenBn?: boolean;
  optimizer?: { name: 'adam'; lr: number; eps: number; weightDecay: number } | { name: 'sgd'; lr: number; momentum: number; weightDecay: number; nesterov: boolean };
  steps?: number;
}

/** A tensor summarised: its first values, L2 norm, sum and size. */
export interface Summary {
  head: number[];
  norm: number;
  sum: number;
  numel: number;
}

export interface GoldenRecord {
  spec: GoldenSpec;
  evalLogits: number[];
  /** The first training step's forward (batch statistics) and its gradients. */
  trainLogits?: number[];
  grads?: Record<string, Summary>;
  /** The loss before each optimiser step. */
  losses?: number[];
  /** Every parameter and buffer after the steps. */
  after?: Record<string, Summary>;
}

const HEAD = 8;

/** 32-bit FNV-1a of an ASCII name: the per-tensor seed. */
function fnv1a(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** An integer mix with full avalanche (lowbias32), identical in numpy's uint64 arithmetic. */
function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** `n` values in [-1, 1) for `name`: exact in float64, so both sides round them to the same float32. */
export function hashUniform(name: string, n: number): Float64Array {
  const seed = fnv1a(name);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = hash32((i ^ seed) >>> 0) / 2 ** 31 - 1;
  return out;
}

/**
 * The value of state-dict entry `name`: BN statistics near their identity, norm weights near 0.5
 * (so that residual sums do not grow with depth in eval mode), biases small, and conv / linear
 * weights He-uniform for their fan-in.
 */
export function goldenValues(name: string, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if (name.endsWith('num_batches_tracked')) return new Float32Array(n);
  const u = hashUniform(name, n);
  const f = name.endsWith('running_var') ? (x: number) => 0.75 + 0.25 * x
    : name.endsWith('running_mean') || name.endsWith('bias') ? (x: number) => 0.1 * x
    : shape.length === 1 ? (x: number) => 0.5 + 0.1 * x
    : ((bound) => (x: number) => x * bound)(Math.sqrt(6 / (n / shape[0])));
  return Float32Array.from(u, f);
}

function buildModel(spec: GoldenSpec): Module {
  const resnets: Record<string, typeof resnet18> = { resnet18, resnet34, resnet50, resnet101, resnet152 };
  if (resnets[spec.model]) return resnets[spec.model]({ numClasses: spec.numClasses });
  return EfficientNet.fromName(spec.model, {
    numClasses: spec.numClasses, imageSize: spec.imageSize ?? spec.input[2], dropoutRate: 0, dropConnectRate: 0,
  });
}

function makeOptimizer(spec: GoldenSpec, m: Module): Optimizer | null {
  const o = spec.optimizer;
  if (!o) return null;
  return o.name === 'adam'
    ? new Adam(m.parameters(), { lr: o.lr, eps: o.eps, weightDecay: o.weightDecay })
    : new SGD(m.parameters(), { lr: o.lr, momentum: o.momentum, weightDecay: o.weightDecay, nesterov: o.nesterov });
}

async function summarise(t: Tensor): Promise<Summary> {
  const d = await t.data();
  let sq = 0;
  let sum = 0;
  for (const v of d) {
    sq += v * v;
    sum += v;
  }
  return { head: Array.from(d.subarray(0, HEAD)), norm: Math.sqrt(sq), sum, numel: d.length };
}

/** The spec's model with the hashed weights, its input and its 0/1 targets (dispose all three). */
function goldenSetup(spec: GoldenSpec): { model: Module; x: Tensor; y: Tensor } {
  const model = buildModel(spec);
  const sd = new Map([...model.stateDict()].map(([k, t]) => [k, tensor(goldenValues(k, t.shape), t.shape)]));
  model.loadStateDict(sd);
  for (const t of sd.values()) t.dispose();
  const n = spec.input.reduce((a, b) => a * b, 1);
  const x = tensor(Float32Array.from(hashUniform(`input:${spec.seed}`, n)), spec.input);
  const yShape = [spec.input[0], spec.numClasses];
  const y = tensor(Float32Array.from(hashUniform(`target:${spec.seed}`, yShape[0] * yShape[1]), (u) => (u >= 0 ? 1 : 0)), yShape);
  return { model, x, y };
}

/** Runs `spec` through this library with the hashed weights, as the PyTorch script does. */
export async function recordModel(spec: GoldenSpec): Promise<GoldenRecord> {
  const { model: m, x, y } = goldenSetup(spec);
  let opt: Optimizer | null = null;
  try {
    opt = makeOptimizer(spec, m);
    const evalLogits = tidy(() => noGrad(() => m.eval().forward(x)));
    const record: GoldenRecord = { spec, evalLogits: Array.from(await evalLogits.data()) };
    evalLogits.dispose();
    if (spec.evalOnly || !opt) return record;

    m.train(!spec.frozenBn);
    record.losses = [];
    for (let step = 0; step < (spec.steps ?? 1); step++) {
      opt.zeroGrad();
      const [logits, loss] = tidy(() => {
        const out = m.forward(x);
        const l = binaryCrossEntropyWithLogits(out, y);
        l.backward();
        return [out, l];
      });
      record.losses.push(await loss.item());
      if (step === 0) {
        record.trainLogits = Array.from(await logits.data());
        record.grads = {};
        for (const [k, p] of m.namedParameters()) record.grads[k] = await summarise(p.grad!);
      }
      logits.dispose();
      loss.dispose();
      opt.step();
    }
    record.after = {};
    for (const [k, t] of m.stateDict()) record.after[k] = await summarise(t);
    return record;
  } finally {
    opt?.zeroGrad();
    opt?.dispose();
    x.dispose();
    y.dispose();
    for (const t of m.stateDict().values()) t.dispose();
  }
}

/**
 * Differences beyond float32 accuracy, one line each. Values are compared against the size of
 * what they belong to (a tensor's RMS, all logits' largest magnitude), since float32 sums over
 * thousands of terms carry errors relative to the whole, not to each small element; and tensors
 * against at least 1e-3 of the largest RMS of their kind, since some gradients are zero in exact
 * arithmetic (a bias followed by batch norm) and float32 leaves rounding noise there.
 */
export function compareRecords(want: GoldenRecord, got: GoldenRecord, rtol = 2e-3): string[] {
  const bad: string[] = [];
  const close = (what: string, a: number[], e: number[], scale: number) => {
    if (a.length !== e.length) return void bad.push(`${what}: ${a.length} values, expected ${e.length}`);
    for (let i = 0; i < e.length; i++) {
      if (!(Math.abs(a[i] - e[i]) <= rtol * scale)) return void bad.push(`${what}[${i}]: ${a[i]} vs ${e[i]} (scale ${scale.toPrecision(3)})`);
    }
  };
  const maxAbs = (v: number[]) => Math.max(1e-6, ...v.map(Math.abs));
  const rms = (s: Summary) => s.norm / Math.sqrt(s.numel);
  const summaries = (what: string, a: Record<string, Summary> | undefined, e: Record<string, Summary> | undefined) => {
    if (!e) return;
    if (!a) return void bad.push(`${what}: missing`);
    const floor = 1e-3 * Math.max(...Object.values(e).map(rms));
    for (const [k, s] of Object.entries(e)) {
      const t = a[k];
      if (!t) {
        bad.push(`${what} ${k}: missing`);
        continue;
      }
      if (t.numel !== s.numel) bad.push(`${what} ${k}: ${t.numel} values, expected ${s.numel}`);
      close(`${what} ${k} head`, t.head, s.head, Math.max(floor, rms(s), ...s.head.map(Math.abs)));
      close(`${what} ${k} norm`, [t.norm], [s.norm], Math.max(floor, s.norm));
      // independent element errors of ε·rms add up to about ε·norm in the sum
      close(`${what} ${k} sum`, [t.sum], [s.sum], Math.max(floor, Math.abs(s.sum), s.norm));
    }
  };
  close('eval logits', got.evalLogits, want.evalLogits, maxAbs(want.evalLogits));
  if (want.trainLogits) close('train logits', got.trainLogits ?? [], want.trainLogits, maxAbs(want.trainLogits));
  if (want.losses) close('losses', got.losses ?? [], want.losses, maxAbs(want.losses));
  summaries('grad', got.grads, want.grads);
  summaries('after', got.after, want.after);
  return bad;
}
