/**
 * Element-wise ops with NumPy broadcasting, each with its backward rule beside it.
 * Operands may be tensors or numbers; numbers travel as uniforms, so changing them never recompiles.
 */
import { dispatch, maxBindingSize } from '../device.js';
import { record } from '../autograd.js';
import { Tensor } from '../tensor.js';
import { SPLIT_UNIFORM_WORDS, broadcastStrides, mapKernel, splitMapKernel } from '../../shaders/elementwise.js';
import { bindRange, chunkElements, forRanges, rangeBinding } from '../split.js';
import { offsetOf } from './shape.js';
import { WG } from '../../shaders/common.js';

export type Operand = Tensor | number;

/** The broadcast shape of several shapes; throws naming the op and every shape when they do not broadcast. */
export function broadcastShapes(op: string, ...shapes: number[][]): number[] {
  const n = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let k = 1; k <= n; k++) {
    let size = 1;
    for (const s of shapes) {
      const d = s[s.length - k] ?? 1;
      if (d !== 1 && size !== 1 && d !== size) {
        throw new Error(`${op}: shapes ${shapes.map((x) => `[${x}]`).join(' and ')} cannot be broadcast together`);
      }
      if (d !== 1) size = d;
    }
    out.unshift(size);
  }
  return out;
}

type Expr = (...operands: string[]) => string;

function operandCode(operands: Operand[]) {
  const tensors: Tensor[] = [];
  const scalars: number[] = [];
  const names = operands.map((o) => {
    if (typeof o === 'number') {
      if (scalars.length === 4) throw new Error('at most 4 scalar operands');
      scalars.push(o);
      return `T(u.${'xyzw'[scalars.length - 1]})`;
    }
    tensors.push(o);
    return 'abc'[tensors.length - 1];
  });
  return { tensors, scalars, names };
}

function uniformOf(scalars: number[]): Float32Array | undefined {
  if (!scalars.length) return undefined;
  const u = new Float32Array(4);
  u.set(scalars);
  return u;
}

/**
 * Records an element-wise kernel over `tensors` into `out`. Work whose buffers exceed one storage
 * binding is split into ranges of the flat output index: with every operand at the output's shape,
 * by plain sub-range bindings; with broadcasting, by `splitMapKernel`, each operand bound over the
 * range its elements for the chunk span (never longer than the chunk, since broadcasting only repeats).
 */
function runMap(name: string, code: string, tensors: Tensor[], outShape: number[], scalars: number[], out: Tensor, inPlace: boolean): void {
  const shapes = tensors.map((t) => t.shape);
  const detail = [...(inPlace ? [outShape] : []), ...shapes].map((s) => `[${s}]`).join(' ');
  const numel = out.numel;
  const limit = maxBindingSize();
  if (numel * 4 <= limit) {
    const k = mapKernel(code, shapes, outShape, scalars.length > 0, inPlace);
    dispatch({ name, detail, code: k.code, workgroups: k.workgroups, buffers: [...tensors.map((t) => t.buffer), out.buffer], uniforms: uniformOf(scalars) });
    return;
  }
  if (tensors.every((t) => t.numel === numel)) {
    forRanges(numel, (start, len) => {
      const range = (t: Tensor) => rangeBinding(t, start, len);
      const k = mapKernel(code, shapes.map(() => [len]), [len], scalars.length > 0, inPlace);
      dispatch({ name, detail, code: k.code, workgroups: k.workgroups, buffers: [...tensors.map(range), range(out)], uniforms: uniformOf(scalars) });
    });
    return;
  }
  const kernel = splitMapKernel(code, shapes, outShape, inPlace);
  const strides = shapes.map((s) => broadcastStrides(s, outShape));
  for (const [start, len] of blockChunks(outShape, chunkElements())) {
    const words = new Uint32Array(SPLIT_UNIFORM_WORDS);
    new Float32Array(words.buffer).set(scalars);
    const [outRange, outDelta] = bindRange(out, start, len);
    words.set([start, len, start - outDelta], 4);
    const bindings = tensors.map((t, k) => {
      if (t.numel * 4 <= limit) return t.buffer;
      const lo = offsetOf(start, outShape, strides[k]);
      const [range, delta] = bindRange(t, lo, offsetOf(start + len - 1, outShape, strides[k]) - lo + 1);
      words[7 + k] = lo - delta;
      return range;
    });
    dispatch({ name, detail, code: kernel, workgroups: Math.ceil(len / WG), buffers: [...bindings, outRange], uniforms: words });
  }
}

/**
 * [start, length] ranges of at most `chunk` elements over a row-major `shape` that are runs of whole
 * blocks of the trailing dims: within such a run every broadcast operand's offsets grow with the
 * output index, so it spans [offset of the first, offset of the last] and no more than the run.
 */
function blockChunks(shape: number[], chunk: number): [number, number][] {
  let d = 0;
  const after = (k: number) => shape.slice(k + 1).reduce((x, y) => x * y, 1);
  while (after(d) > chunk) d++;
  const inner = after(d);
  const per = Math.floor(chunk / inner);
  const outer = shape.slice(0, d).reduce((x, y) => x * y, 1);
  const ranges: [number, number][] = [];
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < shape[d]; j += per) ranges.push([(o * shape[d] + j) * inner, (Math.min(per, shape[d] - j)) * inner]);
  }
  return ranges;
}

/** Runs an element-wise kernel without recording autograd. `expr` builds WGSL from the operands' names. */
export function map(name: string, expr: Expr, operands: Operand[]): Tensor {
  const { tensors, scalars, names } = operandCode(operands);
  if (!tensors.length) throw new Error(`${name}: needs at least one tensor operand`);
  const outShape = broadcastShapes(name, ...tensors.map((t) => t.shape));
  const out = Tensor.empty(outShape, name);
  if (out.numel > 0) runMap(name, expr(...names), tensors, outShape, scalars, out, false);
  return out;
}

/** Updates `target` in place: `target = expr(target, ...operands)`. Operands broadcast to the target's shape. */
export function mapInPlace(name: string, target: Tensor, expr: Expr, operands: Operand[]): void {
  const { tensors, scalars, names } = operandCode(operands);
  const outShape = broadcastShapes(name, target.shape, ...tensors.map((t) => t.shape));
  if (outShape.join() !== target.shape.join()) {
    throw new Error(`${name}: in-place result of shape [${outShape}] does not fit target [${target.shape}]`);
  }
  if (target.numel > 0) runMap(name, expr('t', ...names), tensors, target.shape, scalars, target, true);
}

const tensorsOf = (ops: Operand[]) => ops.filter((o): o is Tensor => o instanceof Tensor);

/** The gradient for one operand, from the output gradient, the output and the operands. */
type GradRule = (g: Tensor, out: Tensor, ...ops: Operand[]) => Tensor;

/**
 * Defines a differentiable element-wise op with one gradient rule per operand (`null`: none flows).
 * A rule runs only for a tensor operand that requires a gradient, so constants cost nothing.
 */
function defineOp(name: string, expr: Expr, grads?: (GradRule | null)[]) {
  return (...ops: Operand[]): Tensor => {
    const out = map(name, expr, ops);
    if (!grads) return out;
    return record(name, tensorsOf(ops), out, (g) =>
      ops.flatMap((o, i) => (o instanceof Tensor ? [o.requiresGrad && grads[i] ? grads[i](g, out, ...ops) : null] : [])),
    );
  };
}

export const add: (a: Operand, b: Operand) => Tensor = defineOp('add', (a, b) => `${a} + ${b}`, [(g) => g, (g) => g]);
export const sub: (a: Operand, b: Operand) => Tensor = defineOp('sub', (a, b) => `${a} - ${b}`, [(g) => g, (g) => neg(g)]);
export const mul: (a: Operand, b: Operand) => Tensor = defineOp('mul', (a, b) => `${a} * ${b}`, [(g, _o, _a, b) => mul(g, b), (g, _o, a) => mul(g, a)]);
export const div: (a: Operand, b: Operand) => Tensor = defineOp('div', (a, b) => `${a} / ${b}`, [
  (g, _o, _a, b) => div(g, b),
  (g, out, _a, b) => map('div_grad_b', (g, y, b) => `-${g} * ${y} / ${b}`, [g, out, b]),
]);
/** a ** b; the gradient for b uses log(a), so it is defined for a > 0. */
export const pow: (a: Operand, b: Operand) => Tensor = defineOp(
  'pow',
  // WGSL pow is undefined for a < 0: handle integer exponents of negative bases explicitly.
  (a, b) => `select(pow(abs(${a}), ${b}) * select(T(1.0), T(-1.0), fract(${b} * 0.5) != T(0.0)), pow(${a}, ${b}), (${a} >= T(0.0)) | (fract(${b}) != T(0.0)))`,
  [
    (g, _out, a, b) => map('pow_grad_a', (g, a, b) => `${g} * ${b} * select(pow(abs(${a}), ${b} - T(1.0)) * select(T(1.0), T(-1.0), fract((${b} - T(1.0)) * 0.5) != T(0.0)), pow(${a}, ${b} - T(1.0)), (${a} >= T(0.0)) | (fract(${b}) != T(0.0)))`, [g, a, b]),
    (g, out, a) => map('pow_grad_b', (g, y, a) => `${g} * ${y} * log(${a})`, [g, out, a]),
  ],
);
/** Gradient of max/min for operand `a` against `b`: all of it where `a` wins, half on ties. */
const extremeGrad = (name: string, wins: string, g: Tensor, a: Operand, b: Operand) =>
  map(`${name}_grad`, (g, a, b) => `${g} * select(select(T(0.0), T(0.5), ${a} == ${b}), T(1.0), ${a} ${wins} ${b})`, [g, a, b]);

export const maximum: (a: Operand, b: Operand) => Tensor = defineOp('maximum', (a, b) => `max(${a}, ${b})`, [(g, _o, a, b) => extremeGrad('maximum', '>', g, a, b), (g, _o, a, b) => extremeGrad('maximum', '>', g, b, a)]);
export const minimum: (a: Operand, b: Operand) => Tensor = defineOp('minimum', (a, b) => `min(${a}, ${b})`, [(g, _o, a, b) => extremeGrad('minimum', '<', g, a, b), (g, _o, a, b) => extremeGrad('minimum', '<', g, b, a)]);

const compare = (name: string, opr: string) =>
  defineOp(name, (a, b) => `select(T(0.0), T(1.0), ${a} ${opr} ${b})`) as (a: Operand, b: Operand) => Tensor;
/** Comparisons give 1.0 where true and 0.0 where false; they carry no gradient. */
export const gt = compare('gt', '>');
export const ge = compare('ge', '>=');
export const lt = compare('lt', '<');
export const le = compare('le', '<=');
export const eq = compare('eq', '==');

/** `cond ? a : b` element-wise (cond is nonzero for true). */
export const where: (cond: Tensor, a: Operand, b: Operand) => Tensor = defineOp(
  'where',
  (c, a, b) => `select(${b}, ${a}, ${c} != T(0.0))`,
  [
    null,
    (g, _o, c) => map('where_grad_a', (g, c) => `select(T(0.0), ${g}, ${c} != T(0.0))`, [g, c]),
    (g, _o, c) => map('where_grad_b', (g, c) => `select(${g}, T(0.0), ${c} != T(0.0))`, [g, c]),
  ],
);

export const neg: (x: Tensor) => Tensor = defineOp('neg', (a) => `-${a}`, [(g) => neg(g)]);
export const exp: (x: Tensor) => Tensor = defineOp('exp', (a) => `exp(${a})`, [(g, y) => mul(g, y)]);
export const log: (x: Tensor) => Tensor = defineOp('log', (a) => `log(${a})`, [(g, _y, x) => div(g, x)]);
export const sqrt: (x: Tensor) => Tensor = defineOp('sqrt', (a) => `sqrt(${a})`, [(g, y) => map('sqrt_grad', (g, y) => `${g} * 0.5 / ${y}`, [g, y])]);
export const rsqrt: (x: Tensor) => Tensor = defineOp('rsqrt', (a) => `inverseSqrt(${a})`, [(g, y) => map('rsqrt_grad', (g, y) => `-0.5 * ${g} * ${y} * ${y} * ${y}`, [g, y])]);
export const abs: (x: Tensor) => Tensor = defineOp('abs', (a) => `abs(${a})`, [(g, _y, x) => map('abs_grad', (g, x) => `${g} * sign(${x})`, [g, x])]);
export const square: (x: Tensor) => Tensor = defineOp('square', (a) => `${a} * ${a}`, [(g, _y, x) => map('square_grad', (g, x) => `2.0 * ${g} * ${x}`, [g, x])]);
export const relu: (x: Tensor) => Tensor = defineOp('relu', (a) => `max(${a}, T(0.0))`, [(g, y) => map('relu_grad', (g, y) => `select(T(0.0), ${g}, ${y} > T(0.0))`, [g, y])]);
export const sigmoid: (x: Tensor) => Tensor = defineOp('sigmoid', (a) => `1.0 / (1.0 + exp(-${a}))`, [(g, y) => map('sigmoid_grad', (g, y) => `${g} * ${y} * (1.0 - ${y})`, [g, y])]);
// tanh of a large argument overflows exp inside some drivers' tanh; it is ±1 to f32 precision beyond 15.
export const tanh: (x: Tensor) => Tensor = defineOp('tanh', (a) => `tanh(clamp(${a}, T(-15.0), T(15.0)))`, [(g, y) => map('tanh_grad', (g, y) => `${g} * (1.0 - ${y} * ${y})`, [g, y])]);
/** x · sigmoid(x); the backward recomputes sigmoid from x in one kernel instead of keeping it. */
export const silu: (x: Tensor) => Tensor = defineOp('silu', (a) => `${a} / (1.0 + exp(-${a}))`, [
  (g, _y, x) => map('silu_grad', (g, x) => `${g} * (1.0 + ${x} * (1.0 - 1.0 / (1.0 + exp(-${x})))) / (1.0 + exp(-${x}))`, [g, x]),
]);

/** Clamps to [min, max]; either bound may be omitted. The gradient passes where the input was inside. */
export function clamp(x: Tensor, min = -3.4e38, max = 3.4e38): Tensor {
  const out = map('clamp', (a, lo, hi) => `clamp(${a}, ${lo}, ${hi})`, [x, min, max]);
  return record('clamp', [x], out, (g) => [
    map('clamp_grad', (g, a, lo, hi) => `select(T(0.0), ${g}, (${a} >= ${lo}) & (${a} <= ${hi}))`, [g, x, min, max]),
  ]);
}

/** A copy with its own buffer (differentiable). */
export const clone: (x: Tensor) => Tensor = defineOp('clone', (a) => a, [(g) => g]);
