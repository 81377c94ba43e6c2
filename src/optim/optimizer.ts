/**
 * The optimiser base (torch.optim.Optimizer): parameter groups with their own hyper-parameters,
 * per-parameter state on the GPU, `zeroGrad`, and `stateDict` / `loadStateDict` in PyTorch's layout.
 */
import { copyBuffer, dispatch, maxBindingSize } from '../tensor/device.js';
import { mapInPlace } from '../tensor/ops/elementwise.js';
import { tensor } from '../tensor/ops/creation.js';
import { keep } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { OptimKernel } from '../shaders/optim.js';

/** Hyper-parameters every group has; `initialLr` is set by the first scheduler attached (as torch's `initial_lr`). */
export interface GroupOptions {
  lr: number;
  initialLr?: number;
}

/** A parameter group: its tensors and its own hyper-parameters. */
export type ParamGroup<O extends GroupOptions = GroupOptions> = O & { params: Tensor[] };

/** A group as passed in: options left out fall back to the optimiser's defaults. */
export type ParamGroupInput<O extends GroupOptions = GroupOptions> = Partial<O> & { params: Tensor[] };

/** Per-parameter state: GPU tensors (kept) and numbers such as a step count. */
export type ParamState = Record<string, Tensor | number>;

/**
 * The optimiser's state in PyTorch's layout: parameters become their indices in group order, state
 * tensors stay on the GPU. `stateDict()` returns the optimiser's own tensors (no copies, as in PyTorch):
 * save them before the next step changes them.
 */
export interface OptimizerStateDict {
  /** Keyed by the parameter's index in group order (only parameters that have state). */
  state: Record<string, Record<string, number | Tensor>>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

/** What `loadStateDict` accepts: state values may also be host arrays (e.g. a state dict kept as JSON). */
export interface OptimizerStateInput {
  state: Record<string, Record<string, number | Tensor | ArrayLike<number>>>;
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

/** Optimiser base. Subclasses implement `step()` as GPU kernels that never read back. */
export abstract class Optimizer<O extends GroupOptions = GroupOptions> {
  /** Options used for keys a group leaves out. */
  readonly defaults: O;
  readonly paramGroups: ParamGroup<O>[] = [];
  /** State of each parameter that has been stepped. */
  readonly state = new Map<Tensor, ParamState>();

  /** `params`: tensors (any iterable, e.g. `model.parameters()`) or parameter groups. */
  constructor(params: Iterable<Tensor> | ParamGroupInput<O>[], defaults: O) {
    this.defaults = defaults;
    this.validate(defaults, 'defaults');
    const list = [...params] as (Tensor | ParamGroupInput<O>)[];
    if (list.length === 0) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    const groups = list[0] instanceof Tensor ? [{ params: list as Tensor[] } as ParamGroupInput<O>] : (list as ParamGroupInput<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Checks hyper-parameter values; throws naming the bad one. */
  protected abstract validate(options: O, where: string): void;

  /** Applies one update to every parameter that has a gradient. Records GPU work only: no read-back, nothing awaited. */
  abstract step(): void;

  /** Adds a group; its missing options come from `defaults`. A parameter may belong to only one group. */
  addParamGroup(group: ParamGroupInput<O>): void {
    const name = this.constructor.name;
    if (!group || !Array.isArray(group.params)) throw new Error(`${name}: a parameter group needs a params array`);
    group.params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw new Error(`${name}: params[${i}] of group ${this.paramGroups.length} is not a Tensor`);
    });
    const seen = new Set(this.paramGroups.flatMap((g) => g.params));
    if (new Set(group.params).size !== group.params.length || group.params.some((p) => seen.has(p))) {
      throw new Error(`${name}: some parameters appear more than once (in one group or in several groups)`);
    }
    const full = { ...this.defaults, ...group, params: [...group.params] } as ParamGroup<O>;
    this.validate(full, `group ${this.paramGroups.length}`);
    this.paramGroups.push(full);
  }

  /** Clears gradients: by default disposes them and sets `grad = null` (torch's set_to_none); else zeroes them in place. */
  zeroGrad(setToNone = true): void {
    for (const g of this.paramGroups) {
      for (const p of g.params) {
        if (!p.grad) continue;
        if (setToNone) {
          p.grad.dispose();
          p.grad = null;
        } else mapInPlace('zero_grad', p.grad, () => 'T(0.0)', []);
      }
    }
  }

  /** The gradient of `p` when it has one of the right shape; null (skip) when it has none. */
  protected gradOf(p: Tensor, where: string): Tensor | null {
    const g = p.grad;
    if (!g) return null;
    if (g.shape.join() !== p.shape.join()) {
      throw new Error(`${this.constructor.name}.step: ${where} has a gradient of shape [${g.shape}] for a parameter of shape [${p.shape}]`);
    }
    return g;
  }

  /**
   * Records one fused update kernel over `tensors` (all of one length, the parameter first), split into
   * ranges when a tensor is larger than one storage binding may cover.
   */
  protected dispatchUpdate(name: string, tensors: Tensor[], kernel: (n: number) => OptimKernel, uniforms: Float32Array): void {
    const n = tensors[0].numel;
    // Range offsets must be multiples of 256 bytes, so chunks are multiples of 64 elements.
    const chunk = Math.max(64, Math.floor(maxBindingSize() / 256) * 64);
    for (let start = 0; start < n; start += chunk) {
      const len = Math.min(chunk, n - start);
      const k = kernel(len);
      dispatch({
        name,
        detail: `[${tensors[0].shape}] elements ${start}..${start + len}`,
        code: k.code,
        workgroups: k.workgroups,
        buffers: tensors.map((t) => ({ buffer: t.buffer, offset: start * 4, size: len * 4 })),
        uniforms,
      });
    }
  }

  /** Every parameter in group order: the indices used by `stateDict`. */
  private allParams(): Tensor[] {
    return this.paramGroups.flatMap((g) => g.params);
  }

  /** The state and the groups' options (see {@link OptimizerStateDict}); nothing is copied or read back. */
  stateDict(): OptimizerStateDict {
    const state: OptimizerStateDict['state'] = {};
    this.allParams().forEach((p, idx) => {
      const s = this.state.get(p);
      if (s) state[idx] = { ...s };
    });
    let next = 0;
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return { ...(structuredClone(options) as Record<string, unknown>), params: params.map(() => next++) };
    });
    return { state, paramGroups };
  }

  /**
   * Restores options and state saved by `stateDict`, copying the values (the dict stays the caller's);
   * the groups must hold the same numbers of parameters as when it was saved, and each state tensor
   * or array must have its parameter's number of elements.
   */
  loadStateDict(dict: OptimizerStateInput): void {
    const name = `${this.constructor.name}.loadStateDict`;
    if (!dict || typeof dict.state !== 'object' || !Array.isArray(dict.paramGroups)) {
      throw new Error(`${name}: expected { state, paramGroups }`);
    }
    if (dict.paramGroups.length !== this.paramGroups.length) {
      throw new Error(`${name}: the saved state has ${dict.paramGroups.length} parameter groups, this optimiser ${this.paramGroups.length}`);
    }
    const options = dict.paramGroups.map((g, i) => {
      if (g.params?.length !== this.paramGroups[i].params.length) {
        throw new Error(`${name}: saved group ${i} has ${g.params?.length} parameters, this optimiser's has ${this.paramGroups[i].params.length}`);
      }
      const { params: _indices, ...saved } = g;
      const rest = structuredClone(saved);
      const merged = { ...this.paramGroups[i], ...rest } as ParamGroup<O>;
      this.validate(merged, `saved group ${i}`);
      return rest;
    });
    const byIndex = new Map<number, Tensor>();
    dict.paramGroups.forEach((g, i) => g.params.forEach((idx, j) => byIndex.set(idx, this.paramGroups[i].params[j])));
    const loaded = new Map<Tensor, ParamState>();
    try {
      for (const [key, saved] of Object.entries(dict.state)) {
        const p = byIndex.get(Number(key));
        if (!p) throw new Error(`${name}: state for parameter ${key}, which no saved group lists`);
        const s: ParamState = {};
        loaded.set(p, s);
        for (const [k, v] of Object.entries(saved)) {
          if (typeof v === 'number') {
            s[k] = v;
            continue;
          }
          const count = v instanceof Tensor ? v.numel : v?.length;
          if (count !== p.numel) throw new Error(`${name}: state ${key}.${k} has ${count} values for a parameter of shape [${p.shape}]`);
          s[k] = keep(v instanceof Tensor ? copyOf(v, p.shape) : tensor(v, p.shape));
        }
      }
    } catch (e) {
      disposeState(loaded);
      throw e;
    }
    disposeState(this.state);
    for (const [p, s] of loaded) this.state.set(p, s);
    options.forEach((o, i) => Object.assign(this.paramGroups[i], o));
  }

  /** Frees the GPU state tensors (the parameters stay); the optimiser starts afresh on the next step. */
  dispose(): void {
    disposeState(this.state);
  }
}

/** A new tensor of `shape` holding `t`'s values (same number of elements). */
function copyOf(t: Tensor, shape: number[]): Tensor {
  const out = Tensor.empty(shape, 'optimizer state');
  if (t.numel) copyBuffer(t.buffer, 0, out.buffer, 0, t.numel * 4);
  return out;
}

function disposeState(state: Map<Tensor, ParamState>): void {
  for (const s of state.values()) for (const v of Object.values(s)) if (typeof v !== 'number') v.dispose();
  state.clear();
}
