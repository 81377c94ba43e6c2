/** Adam (with L2 weight decay) and AdamW (decoupled weight decay), as torch.optim.Adam / AdamW. */
import { zeros } from '../tensor/ops/creation.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { adamKernel, ADAM_UNIFORMS, packUniforms } from '../shaders/optim.js';
import { Optimizer, type GroupOptions, type ParamGroupInput, type ParamState } from './optimizer.js';
import { checkBool, checkNumber } from './validate.js';

/** Adam's per-group hyper-parameters (PyTorch names). */
export interface AdamOptions extends GroupOptions {
  betas: [number, number];
  eps: number;
  /** Adam: L2 penalty added to the gradient; AdamW: decoupled decay θ *= 1 − lr·wd. */
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
}

const ADAM_DEFAULTS = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, amsgrad: false, maximize: false };

/** The state buffer `key` of `p`, created as zeros (and kept) on first use. */
function buffer(state: ParamState, key: string, p: Tensor): Tensor {
  const t = state[key];
  if (t instanceof Tensor) return t;
  return (state[key] = keep(zeros(p.shape)));
}

/**
 * torch.optim.Adam. Per parameter (t = its own step count): g = ±grad (+ wd·θ);
 * m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²; with amsgrad v̂ = max(v̂, v) replaces v;
 * θ −= lr / (1 − β1ᵗ) · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps). One fused kernel per parameter;
 * parameters without a gradient are skipped (their step count does not advance).
 */
export class Adam extends Optimizer<AdamOptions> {
  constructor(params: Iterable<Tensor> | ParamGroupInput<AdamOptions>[], options: Partial<AdamOptions> = {}) {
    super(params, { ...ADAM_DEFAULTS, weightDecay: 0, ...options });
  }

  /** Whether weight decay is decoupled from the gradient (AdamW). */
  protected get decoupled(): boolean {
    return false;
  }

  protected validate(o: AdamOptions, where: string): void {
    const name = this.constructor.name;
    checkNumber(name, 'lr', o.lr, where);
    if (!Array.isArray(o.betas) || o.betas.length !== 2) throw new Error(`${name}: betas must be a pair [beta1, beta2], got ${String(o.betas)} in ${where}`);
    checkNumber(name, 'beta1', o.betas[0], where, 0, 1);
    checkNumber(name, 'beta2', o.betas[1], where, 0, 1);
    checkNumber(name, 'eps', o.eps, where);
    checkNumber(name, 'weightDecay', o.weightDecay, where);
    checkBool(name, 'amsgrad', o.amsgrad, where);
    checkBool(name, 'maximize', o.maximize, where);
  }

  step(): void {
    const decoupled = this.decoupled;
    const name = decoupled ? 'adamw' : 'adam';
    this.paramGroups.forEach((group, gi) => {
      const [beta1, beta2] = group.betas;
      const flags = { amsgrad: group.amsgrad, decoupled, weightDecay: group.weightDecay !== 0, maximize: group.maximize };
      group.params.forEach((p, pi) => {
        const grad = this.gradOf(p, `group ${gi} param ${pi}`);
        if (!grad) return;
        let state = this.state.get(p);
        if (!state) this.state.set(p, (state = { step: 0 }));
        const t = (state.step as number) + 1;
        state.step = t;
        if (p.numel === 0) return;
        const tensors = [p, grad, buffer(state, 'expAvg', p), buffer(state, 'expAvgSq', p)];
        if (group.amsgrad) tensors.push(buffer(state, 'maxExpAvgSq', p));
        // Bias corrections in float64 on the host, as torch computes them from a Python float step.
        const uniforms = packUniforms(ADAM_UNIFORMS, {
          stepSize: group.lr / (1 - beta1 ** t),
          oneMinusBeta1: 1 - beta1,
          beta2,
          oneMinusBeta2: 1 - beta2,
          eps: group.eps,
          weightDecay: group.weightDecay,
          bc2Sqrt: Math.sqrt(1 - beta2 ** t),
          decay: 1 - group.lr * group.weightDecay,
        });
        this.dispatchUpdate(name, tensors, (n) => adamKernel(n, flags), uniforms);
      });
    });
  }
}

/** torch.optim.AdamW: Adam whose weight decay (default 1e-2) scales the parameter by 1 − lr·wd before the update. */
export class AdamW extends Adam {
  constructor(params: Iterable<Tensor> | ParamGroupInput<AdamOptions>[], options: Partial<AdamOptions> = {}) {
    super(params, { weightDecay: 1e-2, ...options });
  }

  protected override get decoupled(): boolean {
    return true;
  }
}
