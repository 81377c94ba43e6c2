/**
 * Element-wise kernels: `out[i] = f(in0[j0(i)], in1[j1(i)], …)` with NumPy broadcasting baked into the
 * index arithmetic. `expr` is a WGSL expression over `a`, `b`, `c` (the inputs, of type `T`) and
 * `u` (a `vec4<f32>` uniform of runtime scalars); `T` is `f32`, or `vec4<f32>` when every input has
 * the output's shape and the size divides by 4 (four elements per thread, vector loads).
 */
import { buffers, linearMain, stridedOffset } from './common.js';

const NAMES = ['a', 'b', 'c'];

/** Strides of `inShape` (right-aligned) over the dims of `outShape`; 0 where the input broadcasts. */
export function broadcastStrides(inShape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let stride = 1;
  for (let k = 1; k <= inShape.length; k++) {
    const d = outShape.length - k;
    const size = inShape[inShape.length - k];
    strides[d] = size === 1 ? 0 : stride;
    stride *= size;
  }
  return strides;
}

/**
 * With `inPlace`, `out` is read as well: `expr` also sees `t`, the current value of `out[i]`
 * (optimiser updates, gradient accumulation).
 */
export function mapKernel(expr: string, inShapes: number[][], outShape: number[], hasUniform: boolean, inPlace = false) {
  const numel = outShape.reduce((x, y) => x * y, 1);
  const same = (s: number[]) => s.length === outShape.length && s.every((d, i) => d === outShape[i]);
  const vec4 = numel % 4 === 0 && inShapes.every(same);
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const total = vec4 ? numel / 4 : numel;
  const decls = buffers([
    ...inShapes.map((_, k) => [`in${k}`, 'read', T] as [string, 'read', string]),
    ['out', 'read_write', T],
  ]);
  const uniform = hasUniform ? `@group(0) @binding(${inShapes.length + 1}) var<uniform> u: vec4<f32>;` : '';
  const names = [...(inPlace ? ['t'] : []), ...inShapes.map((_, k) => NAMES[k])];
  const params = names.map((x) => `${x}: T`).join(', ');
  const body = inShapes.map((s, k): string => {
    const n = s.reduce((x, y) => x * y, 1);
    if (vec4 || same(s)) return `let ${NAMES[k]} = in${k}[i];`;
    if (n === 1) return `let ${NAMES[k]} = in${k}[0];`;
    return `${stridedOffset(`j${k}`, 'i', outShape, broadcastStrides(s, outShape))}\n  let ${NAMES[k]} = in${k}[j${k}];`;
  });
  const code = `alias T = ${T};
${decls}
${uniform}
fn op(${params}) -> T { return ${expr}; }
${linearMain(total, `  ${[...(inPlace ? ['let t = out[i];'] : []), ...body].join('\n  ')}\n  out[i] = op(${names.join(', ')});`)}`;
  return { code, workgroups: Math.ceil(total / 64) };
}
