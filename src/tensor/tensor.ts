/**
 * The Tensor: a shape, a reference-counted GPU buffer and, when it takes part in autograd, a `gradFn`.
 * Tensors are always contiguous (row-major, NCHW for images); view ops that keep the element order
 * (reshape, squeeze, unsqueeze, flatten) share the buffer, everything else writes a new one.
 */
import { allocBuffer, readBuffer, releaseBuffer } from './device.js';
import { backward as runBackward, type GradFn } from './autograd.js';
import { setTensorCheck, track } from './scope.js';
import type * as Ops from './ops/index.js';

export type DType = 'float32';

/** A GPU buffer shared by a tensor and its views; freed when the last one is disposed. */
export class Storage {
  refs = 1;
  constructor(readonly buffer: GPUBuffer) {}
}

export const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export function checkShape(shape: readonly number[], what = 'shape'): number[] {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${what}: invalid dimension ${d} in [${shape}]`);
  }
  return [...shape];
}

// The op functions are attached by ops/index.ts, so that tensor.ts does not import them at load time.
let ops: typeof Ops;
export function setOps(o: typeof Ops): void {
  ops = o;
}

export class Tensor {
  readonly shape: number[];
  readonly dtype: DType = 'float32';
  /** Whether gradients flow back to this tensor. Set it on leaves (parameters, inputs). */
  requiresGrad = false;
  /** Accumulated gradient after `backward()`, or null. */
  grad: Tensor | null = null;
  /** The op that produced this tensor, when it is part of an autograd graph. */
  gradFn: GradFn | null = null;
  private storage: Storage | null;

  /** Wraps a storage (taking one reference). Use the creation functions (`tensor`, `zeros`, …) instead. */
  constructor(storage: Storage, shape: readonly number[]) {
    this.shape = [...shape];
    this.storage = storage;
    track(this);
  }

  /** A new tensor with a fresh, uninitialised buffer. */
  static empty(shape: readonly number[], what = 'tensor'): Tensor {
    const s = checkShape(shape, what);
    return new Tensor(new Storage(allocBuffer(numelOf(s) * 4, `${what} [${s}]`)), s);
  }

  /** A tensor of a new shape sharing this tensor's buffer (same element count). */
  static view(of: Tensor, shape: readonly number[]): Tensor {
    const st = of.liveStorage();
    st.refs++;
    return new Tensor(st, shape);
  }

  get numel(): number {
    return numelOf(this.shape);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get isDisposed(): boolean {
    return this.storage === null;
  }

  private liveStorage(): Storage {
    if (!this.storage) throw new Error(`tensor [${this.shape}] was disposed and cannot be used`);
    return this.storage;
  }

  /** The underlying GPU buffer (may be larger than `numel * 4` bytes). */
  get buffer(): GPUBuffer {
    return this.liveStorage().buffer;
  }

  /** Frees the GPU buffer (once no view shares it). Idempotent. Does not free `.grad`. */
  dispose(): void {
    const st = this.storage;
    if (!st) return;
    this.storage = null;
    if (--st.refs === 0) releaseBuffer(st.buffer);
  }

  /** Copies the values to the host. */
  async data(): Promise<Float32Array> {
    const n = this.numel;
    if (n === 0) return new Float32Array(0);
    return new Float32Array(await readBuffer(this.buffer, n * 4));
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.numel !== 1) throw new Error(`item(): tensor has ${this.numel} elements, expected 1 (shape [${this.shape}])`);
    return (await this.data())[0];
  }

  /** The values as nested arrays of numbers (a number for a 0-d tensor). */
  async toArray(): Promise<unknown> {
    const d = await this.data();
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.shape.length) return d[offset];
      const stride = numelOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /**
   * Backpropagates from this tensor: a scalar gets a seed of 1, other tensors need `grad`.
   * Gradients accumulate into `.grad` of every leaf with `requiresGrad`.
   */
  backward(grad?: Tensor): void {
    if (!grad) {
      if (this.numel !== 1) throw new Error(`backward(): tensor of shape [${this.shape}] is not a scalar; pass a gradient`);
      const seed = ops.onesLike(this);
      try {
        runBackward(this, seed);
      } finally {
        seed.dispose();
      }
    } else runBackward(this, grad);
  }

  /** A new leaf sharing nothing with the graph: same values, no gradient history. */
  detach(): Tensor {
    return Tensor.view(this, this.shape);
  }

  /** Sets `requiresGrad` and returns this tensor. */
  requiresGrad_(flag = true): this {
    if (this.gradFn && !flag) throw new Error('requiresGrad_(false): only leaf tensors can stop requiring grad; use detach()');
    this.requiresGrad = flag;
    return this;
  }

  toString(): string {
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
  }

  // ---- methods mirroring the op functions (see ops/) ----
  clone(): Tensor { return ops.clone(this); }
  add(o: Tensor | number): Tensor { return ops.add(this, o); }
  sub(o: Tensor | number): Tensor { return ops.sub(this, o); }
  mul(o: Tensor | number): Tensor { return ops.mul(this, o); }
  div(o: Tensor | number): Tensor { return ops.div(this, o); }
  pow(o: Tensor | number): Tensor { return ops.pow(this, o); }
  maximum(o: Tensor | number): Tensor { return ops.maximum(this, o); }
  minimum(o: Tensor | number): Tensor { return ops.minimum(this, o); }
  gt(o: Tensor | number): Tensor { return ops.gt(this, o); }
  ge(o: Tensor | number): Tensor { return ops.ge(this, o); }
  lt(o: Tensor | number): Tensor { return ops.lt(this, o); }
  le(o: Tensor | number): Tensor { return ops.le(this, o); }
  eq(o: Tensor | number): Tensor { return ops.eq(this, o); }
  neg(): Tensor { return ops.neg(this); }
  exp(): Tensor { return ops.exp(this); }
  log(): Tensor { return ops.log(this); }
  sqrt(): Tensor { return ops.sqrt(this); }
  rsqrt(): Tensor { return ops.rsqrt(this); }
  abs(): Tensor { return ops.abs(this); }
  square(): Tensor { return ops.square(this); }
  relu(): Tensor { return ops.relu(this); }
  sigmoid(): Tensor { return ops.sigmoid(this); }
  tanh(): Tensor { return ops.tanh(this); }
  silu(): Tensor { return ops.silu(this); }
  clamp(min?: number, max?: number): Tensor { return ops.clamp(this, min, max); }
  sum(dim?: number | number[], keepdim = false): Tensor { return ops.sum(this, dim, keepdim); }
  mean(dim?: number | number[], keepdim = false): Tensor { return ops.mean(this, dim, keepdim); }
  max(dim?: number | number[], keepdim = false): Tensor { return ops.max(this, dim, keepdim); }
  min(dim?: number | number[], keepdim = false): Tensor { return ops.min(this, dim, keepdim); }
  var(dim?: number | number[], opts?: { unbiased?: boolean; keepdim?: boolean }): Tensor { return ops.variance(this, dim, opts); }
  argmax(dim?: number, keepdim = false): Tensor { return ops.argmax(this, dim, keepdim); }
  softmax(dim: number): Tensor { return ops.softmax(this, dim); }
  logSoftmax(dim: number): Tensor { return ops.logSoftmax(this, dim); }
  matmul(o: Tensor): Tensor { return ops.matmul(this, o); }
  reshape(...shape: number[] | [number[]]): Tensor { return ops.reshape(this, shape.flat()); }
  view(...shape: number[] | [number[]]): Tensor { return ops.reshape(this, shape.flat()); }
  flatten(startDim = 0, endDim = -1): Tensor { return ops.flatten(this, startDim, endDim); }
  permute(...dims: number[] | [number[]]): Tensor { return ops.permute(this, dims.flat()); }
  transpose(d0: number, d1: number): Tensor { return ops.transpose(this, d0, d1); }
  squeeze(dim?: number): Tensor { return ops.squeeze(this, dim); }
  unsqueeze(dim: number): Tensor { return ops.unsqueeze(this, dim); }
  expand(...shape: number[] | [number[]]): Tensor { return ops.expand(this, shape.flat()); }
  slice(dim: number, start: number, end?: number, step = 1): Tensor { return ops.slice(this, dim, start, end, step); }
  narrow(dim: number, start: number, length: number): Tensor { return ops.narrow(this, dim, start, length); }
  pad(pads: number[], value = 0): Tensor { return ops.pad(this, pads, value); }
}

setTensorCheck((v): v is Tensor => v instanceof Tensor);
