/** Tensor creation: from host data, constants, ranges and seeded random numbers. */
import { dispatch, writeBuffer } from '../device.js';
import { Tensor, checkShape, numelOf } from '../tensor.js';
import { WG } from '../../shaders/common.js';
import { fillKernel, randomKernel } from '../../shaders/movement.js';
import { forRanges, rangeBinding } from '../split.js';

type Nested = number | Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let d: Nested = data;
  while (Array.isArray(d)) {
    shape.push(d.length);
    d = d[0];
  }
  return shape;
}

/**
 * A tensor from nested arrays, a typed array or a number. `shape` is required for a flat array
 * that is not 1-D; ragged nested arrays are rejected.
 */
export function tensor(data: Nested | ArrayLike<number>, shape?: number[], opts: { requiresGrad?: boolean } = {}): Tensor {
  let values: Float32Array;
  let inferred: number[];
  if (typeof data === 'number') {
    values = new Float32Array([data]);
    inferred = [];
  } else if (Array.isArray(data)) {
    inferred = inferShape(data as Nested);
    values = new Float32Array(numelOf(inferred));
    let k = 0;
    const walk = (d: Nested, dim: number) => {
      if (dim === inferred.length) {
        if (typeof d !== 'number') throw new Error(`tensor(): ragged nested array (expected a number at depth ${dim})`);
        values[k++] = d;
        return;
      }
      if (!Array.isArray(d) || d.length !== inferred[dim]) {
        throw new Error(`tensor(): ragged nested array at depth ${dim} (expected length ${inferred[dim]})`);
      }
      for (const v of d) walk(v, dim + 1);
    };
    walk(data as Nested, 0);
  } else {
    values = data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>);
    inferred = [values.length];
  }
  const s = shape ? checkShape(shape, 'tensor()') : inferred;
  if (numelOf(s) !== values.length) {
    throw new Error(`tensor(): ${values.length} values do not fill shape [${s}] (${numelOf(s)} elements)`);
  }
  const t = Tensor.empty(s, 'tensor');
  if (values.length) writeBuffer(t.buffer, values);
  t.requiresGrad = opts.requiresGrad ?? false;
  return t;
}

/** A tensor filled with `value`. */
export function full(shape: number[], value: number): Tensor {
  const t = Tensor.empty(shape, 'full');
  const code = fillKernel();
  forRanges(t.numel, (start, count) => {
    const u = new Float32Array([value, 0]);
    new Uint32Array(u.buffer)[1] = count;
    dispatch({ name: 'fill', detail: `[${shape}]`, code, workgroups: Math.ceil(count / WG), buffers: [rangeBinding(t, start, count)], uniforms: u });
  });
  return t;
}
export const zeros = (shape: number[]) => full(shape, 0);
export const ones = (shape: number[]) => full(shape, 1);
export const zerosLike = (t: Tensor) => full(t.shape, 0);
export const onesLike = (t: Tensor) => full(t.shape, 1);
export const fullLike = (t: Tensor, value: number) => full(t.shape, value);

/** Values start, start+step, … below end (like `torch.arange`). */
export function arange(start: number, end?: number, step = 1): Tensor {
  if (end === undefined) [start, end] = [0, start];
  if (step === 0) throw new Error('arange(): step must not be 0');
  const n = Math.max(0, Math.ceil((end - start) / step));
  return tensor(Float32Array.from({ length: n }, (_, i) => start + i * step));
}

// ---- the seeded generator behind rand/randn (and dropout masks) ----
let seedState = (Date.now() ^ 0x9e3779b9) >>> 0;

/** Seeds every random op, making runs reproducible (like `torch.manual_seed`). */
export function manualSeed(seed: number): void {
  seedState = seed >>> 0;
}

/** The next 32-bit seed from the global generator (splitmix32). */
export function nextSeed(): number {
  seedState = (seedState + 0x9e3779b9) >>> 0;
  let z = seedState;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

function random(shape: number[], normal: boolean, a: number, b: number): Tensor {
  const t = Tensor.empty(shape, normal ? 'randn' : 'rand');
  if (!t.numel) return t;
  const code = randomKernel(normal);
  const seed = nextSeed();
  forRanges(t.numel, (start, count) => {
    const u = new Float32Array(5);
    const w = new Uint32Array(u.buffer);
    [w[0], u[1], u[2], w[3], w[4]] = [seed, a, b, start, count];
    dispatch({ name: normal ? 'randn' : 'rand', detail: `[${shape}]`, code, workgroups: Math.ceil(count / WG), buffers: [rangeBinding(t, start, count)], uniforms: u });
  });
  return t;
}

/** Uniform random values in [low, high). */
export const rand = (shape: number[], low = 0, high = 1) => random(shape, false, low, high);
/** Normal random values with the given mean and standard deviation. */
export const randn = (shape: number[], mean = 0, std = 1) => random(shape, true, mean, std);
export const randLike = (t: Tensor) => rand(t.shape);
export const randnLike = (t: Tensor) => randn(t.shape);
