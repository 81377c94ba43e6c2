/** Losses (PyTorch semantics): binary cross-entropy with logits, cross-entropy over class indices, mean squared error. */
import { dispatch } from '../../tensor/device.js';
import { bindRange, fitsBinding, forChunks, forRanges, rangeBinding } from '../../tensor/split.js';
import { WG } from '../../shaders/common.js';
import { isGradEnabled, record } from '../../tensor/autograd.js';
import { Tensor } from '../../tensor/tensor.js';
import { tensor } from '../../tensor/ops/creation.js';
import { broadcastShapes, map } from '../../tensor/ops/elementwise.js';
import { mean, sum } from '../../tensor/ops/reduce.js';
import {
  bceBackwardKernel, bceKernel, crossEntropyBackwardKernel, crossEntropyKernel, crossEntropyReduceKernel, type BceShapes,
} from '../../shaders/loss.js';

/** How per-element losses are combined, as PyTorch's `reduction`. */
export type Reduction = 'mean' | 'sum' | 'none';

function checkReduction(op: string, r: Reduction): void {
  if (r !== 'mean' && r !== 'sum' && r !== 'none') throw new Error(`${op}: unknown reduction '${String(r)}'`);
}

function checkSameShape(op: string, input: Tensor, target: Tensor): void {
  if (input.shape.join() !== target.shape.join()) {
    throw new Error(`${op}: input shape [${input.shape}] and target shape [${target.shape}] must be equal`);
  }
}

/** Checks that an optional factor broadcasts to `shape` without growing it, and that it needs no gradient. */
function checkFactor(op: string, name: string, f: Tensor | undefined, shape: number[]): void {
  if (!f) return;
  const b = broadcastShapes(`${op}: ${name}`, shape, f.shape);
  if (b.join() !== shape.join()) throw new Error(`${op}: ${name} of shape [${f.shape}] does not broadcast to the input shape [${shape}]`);
  if (f.requiresGrad && isGradEnabled()) throw new Error(`${op}: gradients for ${name} are not supported; pass it detached`);
}

/** Reduces per-element values (consumed) to a scalar tensor, or returns them for 'none'. */
function reduceLoss(values: Tensor, reduction: Reduction): Tensor {
  if (reduction === 'none') return values;
  const out = reduction === 'sum' ? sum(values) : mean(values);
  values.dispose();
  return out;
}

/**
 * Records an element-wise loss kernel (`make(split)`) over `numel` elements, in ranges when they do not
 * fit one binding: tensors of `numel` elements are bound by range, the others (broadcast factors, a
 * scalar upstream gradient) whole.
 */
function perElement(name: string, detail: string, numel: number, make: (split: boolean) => { code: string; workgroups: number }, bufs: Tensor[]): void {
  if (fitsBinding(...bufs)) {
    const k = make(false);
    dispatch({ name, detail, code: k.code, workgroups: k.workgroups, buffers: bufs.map((t) => t.buffer) });
    return;
  }
  const code = make(true).code;
  forRanges(numel, (start, count) => {
    const buffers = bufs.map((t) => (t.numel === numel ? rangeBinding(t, start, count) : t.buffer));
    dispatch({ name, detail, code, workgroups: Math.ceil(count / WG), buffers, uniforms: new Uint32Array([start, count]) });
  });
}

/** Options of `binaryCrossEntropyWithLogits`. */
export interface BceWithLogitsOptions {
  /** Per-element rescaling, broadcast to the input's shape. */
  weight?: Tensor;
  /** Weight of positive examples, broadcast to the input (a [C] tensor applies per class along the last dim). */
  posWeight?: Tensor;
  /** Default 'mean'. */
  reduction?: Reduction;
}

/**
 * `F.binary_cross_entropy_with_logits`, per element
 * w·[(1 − y)·x + (1 + (pw − 1)·y)·(log(1 + e^−|x|) + max(−x, 0))], stable for any logit,
 * in one element-wise kernel; the backward (w.r.t. logits and target) is one more.
 */
export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, opts: BceWithLogitsOptions = {}): Tensor {
  const op = 'binaryCrossEntropyWithLogits';
  const reduction = opts.reduction ?? 'mean';
  checkReduction(op, reduction);
  checkSameShape(op, logits, target);
  checkFactor(op, 'weight', opts.weight, logits.shape);
  checkFactor(op, 'posWeight', opts.posWeight, logits.shape);
  const s: BceShapes = { shape: logits.shape, weight: opts.weight?.shape, posWeight: opts.posWeight?.shape };
  const factors = [opts.weight, opts.posWeight].filter((t): t is Tensor => !!t);
  const detail = `[${logits.shape}]`;
  const values = Tensor.empty(logits.shape, op);
  if (values.numel) perElement(op, detail, values.numel, (split) => bceKernel(s, split), [logits, target, ...factors, values]);
  const out = reduceLoss(values, reduction);
  const scale = reduction === 'mean' ? 1 / Math.max(logits.numel, 1) : 1;
  return record(op, [logits, target], out, (g) => {
    const wantX = logits.requiresGrad;
    const wantY = target.requiresGrad;
    const grads = [wantX ? Tensor.empty(logits.shape, `${op} dx`) : null, wantY ? Tensor.empty(logits.shape, `${op} dy`) : null];
    if (logits.numel) {
      const outs = grads.filter((t): t is Tensor => !!t);
      const make = (split: boolean) => bceBackwardKernel(s, reduction !== 'none', scale, wantX, wantY, split);
      perElement(`${op}_backward`, detail, logits.numel, make, [g, logits, target, ...factors, ...outs]);
    }
    return grads;
  });
}

/** Options of `crossEntropy`. */
export interface CrossEntropyOptions {
  /** Per-class weight [C]. */
  weight?: Tensor;
  /** Default 'mean': the weighted mean, Σ w[t]·loss / Σ w[t] over the rows not ignored. */
  reduction?: Reduction;
  /** Rows whose target equals this contribute nothing (and count nothing in the mean). Default −100. */
  ignoreIndex?: number;
}

/** Uploads host targets after checking them; passes tensor targets through (checked on the device: NaN loss). */
function targetTensor(op: string, target: Tensor | ArrayLike<number>, n: number, c: number, ignoreIndex: number): Tensor {
  if (target instanceof Tensor) {
    if (target.ndim !== 1 || target.shape[0] !== n) throw new Error(`${op}: target must have shape [${n}], got [${target.shape}]`);
    return target;
  }
  if (target.length !== n) throw new Error(`${op}: ${target.length} targets for ${n} rows of logits`);
  for (let i = 0; i < n; i++) {
    const t = target[i];
    if (t !== ignoreIndex && !(Number.isInteger(t) && t >= 0 && t < c)) {
      throw new Error(`${op}: target ${t} at row ${i} is not a class index in [0, ${c})`);
    }
  }
  return tensor(Float32Array.from(target));
}

/**
 * `F.cross_entropy` for logits [N, C] and class-index targets [N] (a float32 tensor, or host
 * numbers, which are checked here). Computed as −w[t]·logSoftmax(x)[t] with the log-sum-exp
 * per row in one kernel; the backward is w[t]·(softmax − onehot) in one more. A tensor target
 * outside [0, C) (and not `ignoreIndex`) cannot be checked without a read-back: it makes the loss NaN.
 */
export function crossEntropy(logits: Tensor, target: Tensor | ArrayLike<number>, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const reduction = opts.reduction ?? 'mean';
  const ignoreIndex = opts.ignoreIndex ?? -100;
  checkReduction(op, reduction);
  if (logits.ndim !== 2) throw new Error(`${op}: logits must be [N, C], got [${logits.shape}]`);
  const [n, c] = logits.shape;
  if (c < 1) throw new Error(`${op}: logits [${logits.shape}] have no classes`);
  const w = opts.weight;
  if (w && (w.ndim !== 1 || w.shape[0] !== c)) throw new Error(`${op}: weight must have shape [${c}], got [${w.shape}]`);
  if (w?.requiresGrad && isGradEnabled()) throw new Error(`${op}: gradients for weight are not supported; pass it detached`);
  const t = targetTensor(op, target, n, c, ignoreIndex);
  const hostTarget = t !== target;
  const detail = `[${logits.shape}]`;
  const perRow = reduction === 'none';
  const lse = Tensor.empty([n], `${op} logsumexp`);
  const rows = Tensor.empty(perRow ? [n] : [n, 2], op);
  if (n && fitsBinding(logits, rows)) {
    const k = crossEntropyKernel(n, c, !!w, ignoreIndex, perRow);
    dispatch({ name: op, detail, code: k.code, workgroups: k.workgroups, buffers: [logits, t, ...(w ? [w] : []), lse, rows].map((x) => x.buffer) });
  } else if (n) {
    // Rows larger than one binding in total run in chunks of rows.
    const code = crossEntropyKernel(n, c, !!w, ignoreIndex, perRow, true).code;
    const per = perRow ? 1 : 2;
    forChunks(op, detail, n, [c, per], (_chunk, r0, nr) => {
      const [xb, xOff] = bindRange(logits, r0 * c, nr * c);
      const [tb, rOff] = bindRange(t, r0, nr);
      const [ob, outOff] = bindRange(rows, r0 * per, nr * per);
      const buffers = [xb, tb, ...(w ? [w.buffer] : []), bindRange(lse, r0, nr)[0], ob];
      dispatch({ name: op, detail, code, workgroups: Math.ceil(nr / WG), buffers, uniforms: new Uint32Array([xOff, rOff, outOff, nr]) });
    });
  }
  let out = rows;
  let sums: Tensor | null = null;
  if (!perRow) {
    sums = sum(rows, 0);
    rows.dispose();
    out = Tensor.empty([], op);
    const k = crossEntropyReduceKernel(reduction === 'mean');
    dispatch({ name: `${op}_reduce`, detail, code: k.code, workgroups: k.workgroups, buffers: [sums.buffer, out.buffer] });
  }
  record(op, [logits], out, (g) => {
    const dx = Tensor.empty(logits.shape, `${op} dx`);
    if (dx.numel && fitsBinding(dx)) {
      const bufs = [g, logits, t, ...(w ? [w] : []), lse, ...(sums && reduction === 'mean' ? [sums] : []), dx];
      const k = crossEntropyBackwardKernel(n, c, !!w, ignoreIndex, reduction);
      dispatch({ name: `${op}_backward`, detail, code: k.code, workgroups: k.workgroups, buffers: bufs.map((x) => x.buffer) });
    } else if (dx.numel) {
      const code = crossEntropyBackwardKernel(n, c, !!w, ignoreIndex, reduction, true).code;
      forChunks(`${op}_backward`, detail, n, [c], (_chunk, r0, nr) => {
        const [xb, xOff] = bindRange(logits, r0 * c, nr * c);
        const [tb, rOff] = bindRange(t, r0, nr);
        const byRow = (x: Tensor) => bindRange(x, r0, nr)[0];
        const buffers = [
          reduction === 'none' ? byRow(g) : g.buffer, xb, tb, ...(w ? [w.buffer] : []), byRow(lse),
          ...(sums && reduction === 'mean' ? [sums.buffer] : []), bindRange(dx, r0 * c, nr * c)[0],
        ];
        dispatch({ name: `${op}_backward`, detail, code, workgroups: Math.ceil((nr * c) / WG), buffers, uniforms: new Uint32Array([xOff, rOff, nr * c]) });
      });
    }
    return [dx];
  });
  if (!out.gradFn) {
    lse.dispose();
    sums?.dispose();
    if (hostTarget) t.dispose();
  }
  return out;
}

/** `F.mse_loss`: (input − target)² per element, reduced; gradients flow to both. */
export function mseLoss(input: Tensor, target: Tensor, opts: { reduction?: Reduction } = {}): Tensor {
  const op = 'mseLoss';
  const reduction = opts.reduction ?? 'mean';
  checkReduction(op, reduction);
  checkSameShape(op, input, target);
  const out = reduceLoss(map(op, (a, b) => `(${a} - ${b}) * (${a} - ${b})`, [input, target]), reduction);
  const scale = 2 * (reduction === 'mean' ? 1 / Math.max(input.numel, 1) : 1);
  return record(op, [input, target], out, (g) => {
    const dx = map(`${op}_backward`, (gv, a, b, s) => `${gv} * ${s} * (${a} - ${b})`, [g, input, target, scale]);
    return [dx, target.requiresGrad ? map(`${op}_backward_target`, (v) => `-${v}`, [dx]) : null];
  });
}
