/**
 * Deterministic GPU memory management: `tidy(fn)` frees every tensor created inside `fn`
 * except those it returns and those marked with `keep` (parameters, gradients, optimiser state).
 */
import type { Tensor } from './tensor.js';

const scopes: Set<Tensor>[] = [];

/** Registers a new tensor with the innermost open scope. */
export function track(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Takes `t` out of every open scope so no `tidy` frees it; returns it. */
export function keep<T extends Tensor>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

function collect(value: unknown, out: Set<Tensor>, isTensor: (v: unknown) => v is Tensor): void {
  if (isTensor(value)) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, out, isTensor);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, isTensor);
  }
}

let isTensorFn: (v: unknown) => v is Tensor = (_v): _v is Tensor => false;
/** Called once by tensor.ts (avoids an import cycle at module load). */
export function setTensorCheck(f: (v: unknown) => v is Tensor): void {
  isTensorFn = f;
}

/**
 * Runs `fn` and disposes every tensor it created, except the tensors found in its result
 * (a tensor, or arrays / plain objects of tensors), which move to the enclosing scope.
 * `fn` must be synchronous: GPU work is recorded, not awaited, so a whole training step fits.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  if (result instanceof Promise) throw new Error('tidy(fn): fn must be synchronous (it returned a Promise)');
  const kept = new Set<Tensor>();
  collect(result, kept, isTensorFn);
  for (const t of scope) {
    if (kept.has(t)) track(t);
    else t.dispose();
  }
  return result;
}
