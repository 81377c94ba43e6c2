import { sameShape, type Arr } from './array.js';

// Transcriptions of the torch.optim algorithms (SGD, Adam, AdamW) for one
// parameter group. Parameters are updated in place; all state is explicit.
// Where the documentation's pseudo-code and torch's implementation differ
// (SGD's `maximize` with weight decay), the implementation is followed: the
// gradient is negated first, then everything proceeds as for minimisation.

function checkPairs(params: readonly Arr[], grads: readonly Arr[], what: string): void {
  if (params.length !== grads.length) throw new Error(`${what}: ${params.length} params but ${grads.length} grads`);
  params.forEach((p, i) => {
    if (!sameShape(p.shape, grads[i].shape)) {
      throw new Error(`${what}: grad ${i} has shape [${grads[i].shape.join(', ')}] but its param has [${p.shape.join(', ')}]`);
    }
  });
}

function checkState(buffers: readonly unknown[], params: readonly Arr[], what: string): void {
  if (buffers.length !== params.length) throw new Error(`${what}: state holds ${buffers.length} buffers for ${params.length} params`);
}

/** Hyper-parameters of SGD (PyTorch names and defaults, lr required). */
export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  maximize?: boolean;
}

/** SGD state: one momentum buffer per param, absent until the first step with momentum. */
export interface SgdState {
  step: number;
  momentumBuffer: (Float64Array | undefined)[];
}

/** Fresh SGD state for `params`. */
export function sgdState(params: readonly Arr[]): SgdState {
  return { step: 0, momentumBuffer: params.map(() => undefined) };
}

/**
 * One SGD step: g += wd·θ; with momentum μ, b = g on the first step and
 * b = μ·b + (1 - dampening)·g after, then g = b (or g + μ·b for Nesterov);
 * θ -= lr·g.
 */
export function sgdStep(params: readonly Arr[], grads: readonly Arr[], state: SgdState, opts: SgdOptions): void {
  const { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0, maximize = false } = opts;
  checkPairs(params, grads, 'sgdStep');
  checkState(state.momentumBuffer, params, 'sgdStep');
  if (nesterov && (momentum <= 0 || dampening !== 0)) throw new Error('sgdStep: Nesterov momentum requires momentum > 0 and dampening 0');
  params.forEach((p, k) => {
    const g = grads[k].data.map((v) => (maximize ? -v : v));
    for (let i = 0; i < g.length; i++) g[i] += weightDecay * p.data[i];
    if (momentum !== 0) {
      let buf = state.momentumBuffer[k];
      if (buf === undefined) {
        buf = Float64Array.from(g);
        state.momentumBuffer[k] = buf;
      } else {
        for (let i = 0; i < g.length; i++) buf[i] = momentum * buf[i] + (1 - dampening) * g[i];
      }
      for (let i = 0; i < g.length; i++) g[i] = nesterov ? g[i] + momentum * buf[i] : buf[i];
    }
    for (let i = 0; i < g.length; i++) p.data[i] -= lr * g[i];
  });
  state.step++;
}

/** Hyper-parameters of Adam / AdamW (PyTorch names and defaults). */
export interface AdamOptions {
  /** Default 1e-3. */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: readonly [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Default 0 for Adam (L2 added to the gradient), 1e-2 for AdamW (decoupled). */
  weightDecay?: number;
  /** Default false. */
  amsgrad?: boolean;
  /** Default false. */
  maximize?: boolean;
}

/** Adam state: step count t and per-param moment buffers. */
export interface AdamState {
  step: number;
  expAvg: Float64Array[];
  expAvgSq: Float64Array[];
  /** Running max of expAvgSq, used only with amsgrad. */
  maxExpAvgSq: Float64Array[];
}

/** Fresh (all-zero) Adam/AdamW state for `params`. */
export function adamState(params: readonly Arr[]): AdamState {
  const zeros = (): Float64Array[] => params.map((p) => new Float64Array(p.data.length));
  return { step: 0, expAvg: zeros(), expAvgSq: zeros(), maxExpAvgSq: zeros() };
}

function adamLike(params: readonly Arr[], grads: readonly Arr[], state: AdamState, opts: AdamOptions, decoupled: boolean): void {
  const what = decoupled ? 'adamwStep' : 'adamStep';
  const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, amsgrad = false, maximize = false } = opts;
  const weightDecay = opts.weightDecay ?? (decoupled ? 1e-2 : 0);
  const [beta1, beta2] = betas;
  checkPairs(params, grads, what);
  checkState(state.expAvg, params, what);
  state.step++;
  const t = state.step;
  const biasCorrection1 = 1 - beta1 ** t;
  const biasCorrection2 = 1 - beta2 ** t;
  params.forEach((p, k) => {
    const m = state.expAvg[k];
    const v = state.expAvgSq[k];
    const vMax = state.maxExpAvgSq[k];
    if (decoupled) for (let i = 0; i < p.data.length; i++) p.data[i] *= 1 - lr * weightDecay;
    for (let i = 0; i < p.data.length; i++) {
      let g = maximize ? -grads[k].data[i] : grads[k].data[i];
      if (!decoupled) g += weightDecay * p.data[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      let second = v[i];
      if (amsgrad) {
        vMax[i] = Math.max(vMax[i], v[i]);
        second = vMax[i];
      }
      const denom = Math.sqrt(second) / Math.sqrt(biasCorrection2) + eps;
      p.data[i] -= (lr / biasCorrection1) * (m[i] / denom);
    }
  });
}

/**
 * One Adam step (t += 1): g += wd·θ; m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²;
 * with amsgrad v̂ = max(v̂, v) replaces v below;
 * θ -= lr/(1-β1ᵗ) · m / (sqrt(v) / sqrt(1-β2ᵗ) + eps).
 */
export function adamStep(params: readonly Arr[], grads: readonly Arr[], state: AdamState, opts: AdamOptions = {}): void {
  adamLike(params, grads, state, opts, false);
}

/** One AdamW step: θ *= 1 - lr·wd first (decoupled decay), then Adam without L2. */
export function adamwStep(params: readonly Arr[], grads: readonly Arr[], state: AdamState, opts: AdamOptions = {}): void {
  adamLike(params, grads, state, opts, true);
}
