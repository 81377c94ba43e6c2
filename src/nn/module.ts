/**
 * `Module`: the base of every layer and model, shaped like PyTorch's `nn.Module`.
 *
 * Parameters, buffers and child modules are discovered from the module's own properties, so
 * replacing a child (`model._fc = new Linear(n, 14)`) or a parameter is plain property assignment.
 * State-dict keys and layouts are PyTorch's, so weights move between the two by name.
 */
import { Tensor } from '../tensor/tensor.js';
import { keep, tidy } from '../tensor/scope.js';
import { noGrad } from '../tensor/autograd.js';
import { copyBuffer } from '../tensor/device.js';
import { zeros } from '../tensor/ops/index.js';

const parameterSet = new WeakSet<Tensor>();

/**
 * Marks `t` as a trainable parameter (like wrapping it in `nn.Parameter`): it is kept out of every
 * `tidy` scope, requires a gradient, and a module that holds it in a property lists it in `parameters()`.
 */
export function parameter(t: Tensor): Tensor {
  if (t.gradFn) throw new Error(`parameter(): tensor [${t.shape}] is the result of an op; pass a leaf (use detach())`);
  keep(t);
  t.requiresGrad = true;
  parameterSet.add(t);
  return t;
}

/** A new parameter with uninitialised values, for a layer to fill with an `init` function. */
export function emptyParameter(shape: number[]): Tensor {
  return parameter(Tensor.empty(shape, 'parameter'));
}

/** Whether `t` was marked with `parameter()`. */
export function isParameter(t: unknown): t is Tensor {
  return t instanceof Tensor && parameterSet.has(t);
}

interface BufferSpec {
  /** State-dict name (PyTorch's, e.g. `running_mean` for the property `runningMean`). */
  key: string;
  persistent: boolean;
}

/** What `loadStateDict` found when it was not strict. */
export interface LoadResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

export type StateDict = Map<string, Tensor> | Record<string, Tensor>;

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

export abstract class Module {
  /** Training mode (batch statistics, dropout) versus evaluation mode; set with `train()` / `eval()`. */
  training = true;
  /** Buffer registrations by property name. A Map, so property discovery skips it. */
  private readonly bufferSpecs = new Map<string, BufferSpec>();

  /** The computation. Call it directly: `model.forward(x)`. */
  abstract forward(input: Tensor): Tensor;

  /** Alias of `forward`. */
  call(input: Tensor): Tensor {
    return this.forward(input);
  }

  /**
   * Registers the tensor property `name` as a buffer (state that is not trained: running statistics).
   * `key` is its state-dict name (default `name`); a non-persistent buffer stays out of the state dict.
   * The tensor is kept out of every `tidy` scope; assigning a new tensor to the property later replaces it.
   */
  protected registerBuffer(name: string, t: Tensor | null, opts: { key?: string; persistent?: boolean } = {}): void {
    if (t) keep(t);
    (this as unknown as Record<string, unknown>)[name] = t;
    this.bufferSpecs.set(name, { key: opts.key ?? name, persistent: opts.persistent ?? true });
  }

  /** Own parameters (not children's) as [state-dict name, tensor], in property order. */
  private ownParameters(): [string, Tensor][] {
    return Object.entries(this).filter((e): e is [string, Tensor] => !this.bufferSpecs.has(e[0]) && isParameter(e[1]));
  }

  /** Own buffers as [state-dict name, tensor, persistent]. */
  private ownBuffers(): [string, Tensor, boolean][] {
    const out: [string, Tensor, boolean][] = [];
    for (const [prop, spec] of this.bufferSpecs) {
      const t = (this as unknown as Record<string, unknown>)[prop];
      if (t instanceof Tensor) out.push([spec.key, t, spec.persistent]);
    }
    return out;
  }

  /** Direct children as [name, module], in property order (containers name them "0", "1", …). */
  *namedChildren(): Generator<[string, Module]> {
    for (const [k, v] of Object.entries(this)) if (v instanceof Module) yield [k, v];
  }

  *children(): Generator<Module> {
    for (const [, m] of this.namedChildren()) yield m;
  }

  /** This module and every descendant with its dotted name ('' for this one); each module once. */
  *namedModules(prefix = '', seen = new Set<Module>()): Generator<[string, Module]> {
    if (seen.has(this)) return;
    seen.add(this);
    yield [prefix, this];
    for (const [name, child] of this.namedChildren()) yield* child.namedModules(prefix ? `${prefix}.${name}` : name, seen);
  }

  *modules(): Generator<Module> {
    for (const [, m] of this.namedModules()) yield m;
  }

  /** Every parameter with its dotted name; a parameter shared by several modules appears once. */
  *namedParameters(): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, p] of m.ownParameters()) {
        if (seen.has(p)) continue;
        seen.add(p);
        yield [prefix ? `${prefix}.${name}` : name, p];
      }
    }
  }

  *parameters(): Generator<Tensor> {
    for (const [, p] of this.namedParameters()) yield p;
  }

  /** Every buffer (persistent or not) with its dotted state-dict name. */
  *namedBuffers(): Generator<[string, Tensor]> {
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, b] of m.ownBuffers()) {
        if (seen.has(b)) continue;
        seen.add(b);
        yield [prefix ? `${prefix}.${name}` : name, b];
      }
    }
  }

  *buffers(): Generator<Tensor> {
    for (const [, b] of this.namedBuffers()) yield b;
  }

  /** Number of parameter elements (shared parameters counted once). */
  numParameters(): number {
    let n = 0;
    for (const p of this.parameters()) n += p.numel;
    return n;
  }

  /** Sets training mode on this module and every descendant; returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** `train(false)`. */
  eval(): this {
    return this.train(false);
  }

  /** Disposes and clears every parameter's gradient. */
  zeroGrad(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Frees the GPU memory of every parameter, gradient and buffer; the module is unusable afterwards. */
  dispose(): void {
    for (const p of this.parameters()) {
      p.grad?.dispose();
      p.grad = null;
      p.dispose();
    }
    for (const b of this.buffers()) b.dispose();
  }

  /** Calls `fn` on every descendant (children first) and then on this module; returns this. */
  apply(fn: (m: Module) => void): this {
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  /**
   * The state as PyTorch names it: parameters, then persistent buffers, of each module before its
   * children (`conv1.weight`, `bn1.running_mean`, `layer1.0.conv1.weight`, …). The tensors are the
   * module's own (no copies).
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    const visit = (m: Module, prefix: string, seen: Set<Module>) => {
      if (seen.has(m)) return;
      seen.add(m);
      for (const [k, p] of m.ownParameters()) out.set(prefix + k, p);
      for (const [k, b, persistent] of m.ownBuffers()) if (persistent) out.set(prefix + k, b);
      for (const [name, child] of m.namedChildren()) visit(child, `${prefix}${name}.`, seen);
    };
    visit(this, '', new Set());
    return out;
  }

  /**
   * Copies the values of `sd` into this module's tensors (on the GPU). Size mismatches always throw;
   * with `strict` (the default) missing and unexpected keys throw too, all named in one error, and
   * nothing is copied. Without `strict` the keys that matched are copied and the others reported.
   */
  loadStateDict(sd: StateDict, opts: { strict?: boolean } = {}): LoadResult {
    const strict = opts.strict ?? true;
    const source = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missingKeys = [...own.keys()].filter((k) => !source.has(k));
    const unexpectedKeys = [...source.keys()].filter((k) => !own.has(k));
    const mismatches: string[] = [];
    for (const [k, dst] of own) {
      const src = source.get(k);
      if (src && !sameShape(src.shape, dst.shape)) {
        mismatches.push(`size mismatch for ${k}: copying a tensor of shape [${src.shape}], the shape in this model is [${dst.shape}]`);
      }
    }
    const quoted = (keys: string[]) => keys.map((k) => `"${k}"`).join(', ');
    const problems = [
      ...(strict && missingKeys.length ? [`Missing key(s): ${quoted(missingKeys)}`] : []),
      ...(strict && unexpectedKeys.length ? [`Unexpected key(s): ${quoted(unexpectedKeys)}`] : []),
      ...mismatches,
    ];
    if (problems.length) {
      throw new Error(`Error(s) in loading state dict for ${this.constructor.name}:\n  ${problems.join('\n  ')}`);
    }
    for (const [k, dst] of own) {
      const src = source.get(k);
      if (src && src !== dst && dst.numel > 0) copyBuffer(src.buffer, 0, dst.buffer, 0, dst.numel * 4);
    }
    return { missingKeys, unexpectedKeys };
  }

  /**
   * A table of the layers a forward pass on zeros of `inputShape` (batch included) goes through:
   * name, type, output shape and the layer's own parameter count, with the total at the bottom.
   * Runs in eval mode under `noGrad` (running statistics do not change) and frees what it made.
   */
  summary(inputShape: number[]): string {
    const rows: [string, string, string, string][] = [];
    const modes = new Map<Module, boolean>();
    const patched: Module[] = [];
    for (const [name, m] of this.namedModules()) {
      modes.set(m, m.training);
      if (m === this || m.isContainer()) continue;
      const forward = m.forward;
      const own = m.ownParameters().reduce((n, [, p]) => n + p.numel, 0);
      m.forward = (x: Tensor) => {
        const y = forward.call(m, x);
        rows.push([name, m.constructor.name, `[${y.shape}]`, own.toLocaleString('en-US')]);
        return y;
      };
      patched.push(m);
    }
    let outShape: number[];
    try {
      this.eval();
      outShape = tidy(() => noGrad(() => this.forward(zeros(inputShape)).shape));
    } finally {
      for (const m of patched) delete (m as { forward?: unknown }).forward;
      for (const [m, mode] of modes) m.training = mode;
    }
    rows.push(['(output)', this.constructor.name, `[${outShape}]`, '']);
    const head: [string, string, string, string] = ['Layer', 'Type', 'Output shape', 'Params'];
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const line = (r: string[]) => r.map((c, i) => (i === 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
    const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
    const total = this.numParameters();
    const trainable = [...this.parameters()].filter((p) => p.requiresGrad).reduce((n, p) => n + p.numel, 0);
    return [line(head), rule, ...rows.map(line), rule,
      `Total params: ${total.toLocaleString('en-US')}`, `Trainable params: ${trainable.toLocaleString('en-US')}`].join('\n');
  }

  /** Containers (Sequential, ModuleList) are left out of `summary` rows: their children are listed. */
  protected isContainer(): boolean {
    return false;
  }

  toString(): string {
    return `${this.constructor.name}(${this.numParameters()} parameters)`;
  }
}
