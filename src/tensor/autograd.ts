/**
 * Reverse-mode automatic differentiation. Each op attaches a `GradFn` (its inputs and a closure that
 * maps the output gradient to input gradients); `backward` walks the graph in an iterative
 * topological order, so graphs thousands of ops deep (ResNet-152) do not overflow the stack.
 */
import type { Tensor } from './tensor.js';
import { keep } from './scope.js';

/** The backward half of an op, attached to its output as `t.gradFn`. */
export interface GradFn {
  name: string;
  inputs: Tensor[];
  /** Input gradients (shaped like the op's broadcast output or like each input), `null` where none flows. */
  backward(grad: Tensor): (Tensor | null)[];
}

let gradEnabled = true;

/** Whether ops record the graph now. */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs `fn` without recording the graph (inference, optimiser updates). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Marks `out` as produced by `name` from `inputs` when any input needs a gradient; returns `out`. */
export function record(name: string, inputs: Tensor[], out: Tensor, backward: GradFn['backward']): Tensor {
  if (gradEnabled && inputs.some((t) => t.requiresGrad)) {
    out.requiresGrad = true;
    out.gradFn = { name, inputs, backward };
  }
  return out;
}

// Supplied by the ops layer (avoids an import cycle): sums a gradient down to a shape, and adds in place.
let sumToShape: (g: Tensor, shape: number[]) => Tensor;
let accumulate: (into: Tensor, g: Tensor) => void;
export function setGradHelpers(sum: typeof sumToShape, acc: typeof accumulate): void {
  sumToShape = sum;
  accumulate = acc;
}

function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>([root]);
  const stack: [Tensor, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const inputs = top[0].gradFn?.inputs ?? [];
    if (top[1] < inputs.length) {
      const next = inputs[top[1]++];
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push([next, 0]);
      }
    } else {
      order.push(top[0]);
      stack.pop();
    }
  }
  return order.reverse();
}

/**
 * Computes gradients of `root` with respect to every leaf that requires them, accumulating into `.grad`.
 * Every gradient in flight is owned by this walk (a tensor handed back twice is cloned), so in-place
 * accumulation never aliases, and each is freed as soon as it has been used.
 */
export function backward(root: Tensor, grad: Tensor): void {
  if (!root.requiresGrad) throw new Error('backward(): tensor does not require grad (no input had requiresGrad=true)');
  if (grad.shape.join() !== root.shape.join()) {
    throw new Error(`backward(): gradient shape [${grad.shape}] does not match tensor shape [${root.shape}]`);
  }
  noGrad(() => {
    const grads = new Map<Tensor, Tensor>([[root, grad.clone()]]);
    for (const t of topoOrder(root)) {
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      const fn = t.gradFn;
      if (!fn) {
        if (t.grad) {
          accumulate(t.grad, g);
          g.dispose();
        } else t.grad = keep(g);
        continue;
      }
      let inGrads: (Tensor | null)[];
      try {
        inGrads = fn.backward(g);
      } catch (e) {
        throw new Error(`backward through ${fn.name}: ${(e as Error).message}`);
      }
      // One tensor (or views of one buffer) may be the gradient of several inputs: add hands back g
      // twice. So whatever this step received or made is freed only at its end, unless `grads` now
      // holds it, and a gradient whose buffer `grads` already holds from this step is cloned first.
      const made = new Set<Tensor>([g]);
      for (const gi of inGrads) if (gi) made.add(gi);
      const kept = new Set<Tensor>();
      const keptBuffers = new Set<GPUBuffer>();
      fn.inputs.forEach((x, i) => {
        const raw = inGrads[i];
        if (!raw || !x.requiresGrad) return;
        let gi = sumToShape(raw, x.shape);
        if (keptBuffers.has(gi.buffer)) gi = gi.clone();
        made.add(gi);
        const prev = grads.get(x);
        if (prev) accumulate(prev, gi);
        else {
          grads.set(x, gi);
          kept.add(gi);
          keptBuffers.add(gi.buffer);
        }
      });
      for (const t of made) if (!kept.has(t)) t.dispose();
    }
  });
}
