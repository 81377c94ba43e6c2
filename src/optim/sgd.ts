/** Stochastic gradient descent with momentum, dampening, Nesterov, weight decay and maximize (torch.optim.SGD). */
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { packUniforms, sgdKernel, SGD_UNIFORMS } from '../shaders/optim.js';
import { Optimizer, type GroupOptions, type ParamGroupInput } from './optimizer.js';
import { checkBool, checkNumber } from './validate.js';

/** SGD's per-group hyper-parameters (PyTorch names). */
export interface SgdOptions extends GroupOptions {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  /** L2 penalty added to the gradient. */
  weightDecay: number;
  maximize: boolean;
}

/**
 * torch.optim.SGD: g = ±grad + wd·θ; with momentum μ the buffer b is g on a parameter's first step and
 * μ·b + (1 − dampening)·g after; g = b, or g + μ·b with Nesterov; θ −= lr·g.
 * Each parameter is updated by one fused kernel; parameters without a gradient are skipped.
 */
export class SGD extends Optimizer<SgdOptions> {
  constructor(params: Iterable<Tensor> | ParamGroupInput<SgdOptions>[], options: { lr: number } & Partial<Omit<SgdOptions, 'lr'>>) {
    super(params, { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0, maximize: false, ...options });
  }

  protected validate(o: SgdOptions, where: string): void {
    checkNumber('SGD', 'lr', o.lr, where);
    checkNumber('SGD', 'momentum', o.momentum, where);
    checkNumber('SGD', 'dampening', o.dampening, where, -Infinity);
    checkNumber('SGD', 'weightDecay', o.weightDecay, where);
    checkBool('SGD', 'nesterov', o.nesterov, where);
    checkBool('SGD', 'maximize', o.maximize, where);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0)) {
      throw new Error(`SGD: Nesterov momentum requires momentum > 0 and dampening 0 (got momentum ${o.momentum}, dampening ${o.dampening} in ${where})`);
    }
  }

  step(): void {
    this.paramGroups.forEach((group, gi) => {
      const useMomentum = group.momentum !== 0;
      const flags = { momentum: useMomentum, nesterov: group.nesterov, weightDecay: group.weightDecay !== 0, maximize: group.maximize };
      group.params.forEach((p, pi) => {
        const grad = this.gradOf(p, `group ${gi} param ${pi}`);
        if (!grad || p.numel === 0) return;
        const tensors = [p, grad];
        let first = false;
        if (useMomentum) {
          let state = this.state.get(p);
          if (!state) this.state.set(p, (state = {}));
          if (!(state.momentumBuffer instanceof Tensor)) {
            // Left uninitialised: the kernel copies the gradient into it on this first step.
            state.momentumBuffer = keep(Tensor.empty(p.shape, 'momentum_buffer'));
            first = true;
          }
          tensors.push(state.momentumBuffer);
        }
        const uniforms = packUniforms(SGD_UNIFORMS, {
          lr: group.lr,
          momentum: group.momentum,
          oneMinusDampening: 1 - group.dampening,
          weightDecay: group.weightDecay,
          first: first ? 1 : 0,
        });
        this.dispatchUpdate('sgd', tensors, (n) => sgdKernel(n, flags), uniforms);
      });
    });
  }
}
