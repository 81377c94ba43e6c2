/**
 * Element-wise kernels: `out[i] = f(in0[j0(i)], in1[j1(i)], …)` with NumPy broadcasting baked into the
 * index arithmetic. `expr` is a WGSL expression over `a`, `b`, `c` (the inputs, of type `T`) and
 * `u` (a `vec4<f32>` uniform of runtime scalars); `T` is `f32`, or `vec4<f32>` when every input has
 * the output's shape and the size divides by 4 (four elements per thread, vector loads).
 */
import { buffers, linearMain, stridedOffset } from './common.js';
import { chunkMain } from './movement.js';

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
  const vec4 = numel % 4 === 0 && inShapes.every((s) => sameShape(s, outShape));
  const T = vec4 ? 'vec4<f32>' : 'f32';
  const total = vec4 ? numel / 4 : numel;
  const uniform = hasUniform ? `@group(0) @binding(${inShapes.length + 1}) var<uniform> u: vec4<f32>;` : '';
  const loads = inShapes.map((s, k) => (vec4 ? `let ${NAMES[k]} = in${k}[i];` : operandLoad(k, s, outShape, 'i', '')));
  return {
    code: `${header(expr, T, inShapes, uniform, inPlace)}
${linearMain(total, body(loads, inPlace, 'i'))}`,
    workgroups: Math.ceil(total / 64),
  };
}

/** Uniforms of `splitMapKernel`: the scalars, the chunk's first output index and length, and each binding's element base. */
export const SPLIT_UNIFORM_WORDS = 12;

/**
 * `mapKernel` for one chunk of a large output, outputs [u.start, u.start + u.total), with operands
 * that broadcast: every binding is a sub-range, and an element at logical offset j of operand k
 * (or of the output) is read at j - u.o<k> (u.ob). One pipeline serves every chunk.
 */
export function splitMapKernel(expr: string, inShapes: number[][], outShape: number[], inPlace = false): string {
  const bases = inShapes.map((_, k) => `o${k}: u32`).join(', ');
  const uniform = `struct U { x: f32, y: f32, z: f32, w: f32, start: u32, total: u32, ob: u32${bases ? `, ${bases}` : ''} }
@group(0) @binding(${inShapes.length + 1}) var<uniform> u: U;`;
  const loads = inShapes.map((s, k) => operandLoad(k, s, outShape, 'g', ` - u.o${k}`));
  return `${header(expr, 'f32', inShapes, uniform, inPlace)}
${chunkMain(`  let g = u.start + i;\n${body(loads, inPlace, 'g - u.ob')}`)}`;
}

const sameShape = (s: number[], outShape: number[]) => s.length === outShape.length && s.every((d, i) => d === outShape[i]);

/** Reads operand k at output index `idx` (minus `base`, an offset expression) into `a`/`b`/`c`. */
function operandLoad(k: number, s: number[], outShape: number[], idx: string, base: string): string {
  if (s.reduce((x, y) => x * y, 1) === 1) return `let ${NAMES[k]} = in${k}[0];`;
  if (sameShape(s, outShape)) return `let ${NAMES[k]} = in${k}[${idx}${base}];`;
  return `${stridedOffset(`j${k}`, idx, outShape, broadcastStrides(s, outShape))}\n  let ${NAMES[k]} = in${k}[j${k}${base}];`;
}

function header(expr: string, T: string, inShapes: number[][], uniform: string, inPlace: boolean): string {
  const decls = buffers([
    ...inShapes.map((_, k) => [`in${k}`, 'read', T] as [string, 'read', string]),
    ['out', 'read_write', T],
  ]);
  const names = [...(inPlace ? ['t'] : []), ...inShapes.map((_, k) => NAMES[k])];
  return `alias T = ${T};
${decls}
${uniform}
fn op(${names.map((x) => `${x}: T`).join(', ')}) -> T { return ${expr}; }`;
}

function body(loads: string[], inPlace: boolean, outIdx: string): string {
  const names = [...(inPlace ? ['t'] : []), ...loads.map((_, k) => NAMES[k])];
  return `  ${[...(inPlace ? [`let t = out[${outIdx}];`] : []), ...loads].join('\n  ')}\n  out[${outIdx}] = op(${names.join(', ')});`;
}
