/**
 * Fused optimiser updates: one kernel per parameter reads the gradient, the state buffers and the
 * parameter and writes the parameter and the state in place. Structural choices (momentum buffer
 * present, Nesterov, amsgrad, decoupled decay, maximize) are baked into the code; every number that
 * may change between steps (lr, betas, bias corrections) arrives in a uniform block, so a scheduler
 * changing lr never recompiles. Four elements per thread when the length divides by 4.
 */
import { buffers, linearMain, WG } from './common.js';

/** A kernel to dispatch: the WGSL module and its linear workgroup count. */
export interface OptimKernel {
  code: string;
  workgroups: number;
}

/** Uniform fields of the SGD kernel, in binding order (the host packs them by these names). */
export const SGD_UNIFORMS = ['lr', 'momentum', 'oneMinusDampening', 'weightDecay', 'first'] as const;
/** Uniform fields of the Adam/AdamW kernel, in binding order. */
export const ADAM_UNIFORMS = ['stepSize', 'oneMinusBeta1', 'beta2', 'oneMinusBeta2', 'eps', 'weightDecay', 'bc2Sqrt', 'decay'] as const;

/** Packs named scalars into a Float32Array in the order of `fields`; throws on a missing or non-finite one. */
export function packUniforms(fields: readonly string[], values: Record<string, number>): Float32Array {
  const out = new Float32Array(Math.ceil(fields.length / 4) * 4);
  fields.forEach((f, k) => {
    const v = values[f];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`optimiser uniform ${f} = ${v} is not a finite number`);
    out[k] = v;
  });
  return out;
}

function struct(fields: readonly string[], binding: number): string {
  return `struct U { ${fields.map((f) => `${f}: f32,`).join(' ')} }
@group(0) @binding(${binding}) var<uniform> u: U;`;
}

function layout(n: number) {
  const vec4 = n % 4 === 0;
  const total = vec4 ? n / 4 : n;
  return { T: vec4 ? 'vec4<f32>' : 'f32', total, workgroups: Math.ceil(total / WG) };
}

/** Structure of an SGD update. */
export interface SgdFlags {
  momentum: boolean;
  nesterov: boolean;
  weightDecay: boolean;
  maximize: boolean;
}

/**
 * SGD over `n` elements; bindings: param (rw), grad, [momentum buffer (rw)], uniforms.
 * On the first step (`u.first` ≠ 0) the momentum buffer is set to the gradient, as torch does.
 */
export function sgdKernel(n: number, f: SgdFlags): OptimKernel {
  const { T, total, workgroups } = layout(n);
  const decls: [string, 'read' | 'read_write', string][] = [['param', 'read_write', T], ['grad', 'read', T]];
  if (f.momentum) decls.push(['buf', 'read_write', T]);
  const body = [
    '  let p = param[i];',
    `  var g = ${f.maximize ? '-grad[i]' : 'grad[i]'};`,
    ...(f.weightDecay ? ['  g = g + u.weightDecay * p;'] : []),
    ...(f.momentum
      ? [
          '  let b = select(u.momentum * buf[i] + u.oneMinusDampening * g, g, u.first != 0.0);',
          '  buf[i] = b;',
          f.nesterov ? '  g = g + u.momentum * b;' : '  g = b;',
        ]
      : []),
    '  param[i] = p - u.lr * g;',
  ].join('\n');
  return { code: `${buffers(decls)}\n${struct(SGD_UNIFORMS, decls.length)}\n${linearMain(total, body)}`, workgroups };
}

/** Structure of an Adam/AdamW update. */
export interface AdamFlags {
  amsgrad: boolean;
  /** AdamW: param *= 1 − lr·wd before the update, instead of L2 added to the gradient. */
  decoupled: boolean;
  weightDecay: boolean;
  maximize: boolean;
}

/**
 * Adam over `n` elements; bindings: param (rw), grad, expAvg (rw), expAvgSq (rw), [maxExpAvgSq (rw)], uniforms.
 * param −= stepSize · m / (sqrt(v) / sqrt(1 − β2ᵗ) + eps) with stepSize = lr / (1 − β1ᵗ), torch's order of operations.
 */
export function adamKernel(n: number, f: AdamFlags): OptimKernel {
  const { T, total, workgroups } = layout(n);
  const decls: [string, 'read' | 'read_write', string][] = [
    ['param', 'read_write', T],
    ['grad', 'read', T],
    ['expAvg', 'read_write', T],
    ['expAvgSq', 'read_write', T],
  ];
  if (f.amsgrad) decls.push(['maxExpAvgSq', 'read_write', T]);
  const decay = !f.weightDecay ? [] : f.decoupled ? ['  p = p * u.decay;'] : ['  g = g + u.weightDecay * p;'];
  const body = [
    '  var p = param[i];',
    `  var g = ${f.maximize ? '-grad[i]' : 'grad[i]'};`,
    ...decay,
    '  let m = mix(expAvg[i], g, u.oneMinusBeta1);',
    '  let v = u.beta2 * expAvgSq[i] + u.oneMinusBeta2 * g * g;',
    '  expAvg[i] = m;',
    '  expAvgSq[i] = v;',
    ...(f.amsgrad ? ['  let vmax = max(maxExpAvgSq[i], v);', '  maxExpAvgSq[i] = vmax;'] : ['  let vmax = v;']),
    '  param[i] = p - u.stepSize * m / (sqrt(vmax) / u.bc2Sqrt + u.eps);',
  ].join('\n');
  return { code: `${buffers(decls)}\n${struct(ADAM_UNIFORMS, decls.length)}\n${linearMain(total, body)}`, workgroups };
}
