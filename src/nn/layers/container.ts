/** Containers: `Sequential` runs its children in order, `ModuleList` only holds them. Children are named "0", "1", …. */
import type { Tensor } from '../../tensor/tensor.js';
import { Module } from '../module.js';

/** An indexed list of modules whose parameters belong to the parent. */
export class ModuleList<M extends Module = Module> extends Module {
  protected readonly items: M[] = [];

  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.append(m);
  }

  get length(): number {
    return this.items.length;
  }

  /** The module at `index` (negative counts from the end). */
  get(index: number): M {
    const i = index < 0 ? this.items.length + index : index;
    const m = this.items[i];
    if (!m) throw new Error(`${this.constructor.name}: index ${index} out of range (length ${this.items.length})`);
    return m;
  }

  /** Replaces the module at `index`. */
  set(index: number, m: M): void {
    this.get(index);
    this.items[index < 0 ? this.items.length + index : index] = m;
  }

  append(m: M): this {
    if (!(m instanceof Module)) throw new Error(`${this.constructor.name}.append: expected a Module, got ${String(m)}`);
    this.items.push(m);
    return this;
  }

  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }

  override *namedChildren(): Generator<[string, Module]> {
    for (let i = 0; i < this.items.length; i++) yield [String(i), this.items[i]];
  }

  forward(_x: Tensor): Tensor {
    throw new Error(`${this.constructor.name} has no forward; iterate over it and call its modules`);
  }

  protected override isContainer(): boolean {
    return true;
  }
}

/** Runs its modules in order, each on the previous one's output. */
export class Sequential extends ModuleList {
  constructor(...modules: Module[]) {
    super(modules);
  }

  override forward(x: Tensor): Tensor {
    let y = x;
    for (const m of this.items) y = m.forward(y);
    return y;
  }
}
