/**
 * GPU-side test helpers: moving reference arrays to tensors, comparing, and the finite-difference
 * gradient check used on every op's backward rule.
 */
import { expect } from 'vitest';
import { Tensor, tensor, tidy, deviceInfo, type DeviceInfo } from '@lib/nn';
import { type Arr, allClose, arr, maxAbsDiff, numel, numericGrad, Rng, randArr } from './reference/index.js';

/**
 * Runs `fn` with fields of `deviceInfo()` overridden (kernels read them per call), e.g. to take the
 * paths of an adapter without subgroups, or of a GPU, on lavapipe; restores them afterwards.
 */
export async function withDeviceInfo(changes: Partial<DeviceInfo>, fn: () => Promise<void>): Promise<void> {
  const info = deviceInfo();
  const saved = { ...info };
  Object.assign(info, changes);
  try {
    await fn();
  } finally {
    Object.assign(info, saved);
  }
}

/** A GPU tensor holding a reference array's values. */
export function toTensor(a: Arr, requiresGrad = false): Tensor {
  return tensor(Float32Array.from(a.data), a.shape, { requiresGrad });
}

/** Asserts a tensor equals a reference array in shape and, within tolerance, in values. */
export async function expectClose(t: Tensor, ref: Arr, atol = 1e-5, rtol = 1e-4, what = ''): Promise<void> {
  expect(t.shape, `${what} shape`).toEqual(ref.shape);
  const got = await t.data();
  let worst = -1;
  let worstErr = 0;
  for (let i = 0; i < got.length; i++) {
    const err = Math.abs(got[i] - ref.data[i]) - (atol + rtol * Math.abs(ref.data[i]));
    if (!(err <= 0) && (worst < 0 || err > worstErr || Number.isNaN(got[i]))) {
      worst = i;
      worstErr = err;
    }
  }
  if (worst >= 0) {
    expect.fail(`${what} element ${worst}: got ${got[worst]}, expected ${ref.data[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/**
 * Checks the GPU backward of `gpuFn` against central finite differences of the float64 reference
 * `refFn` at the same inputs. The scalar probed is Σ out·W with a fixed random W, so every output
 * element's gradient path is exercised with a distinct weight.
 */
export async function gradcheck(
  gpuFn: (...xs: Tensor[]) => Tensor,
  refFn: (...xs: Arr[]) => Arr,
  inputs: Arr[],
  opts: { seed?: number; atol?: number; rtol?: number; eps?: number; wrt?: number[] } = {},
): Promise<void> {
  const { seed = 7, atol = 2e-3, rtol = 2e-2, eps = 1e-3 } = opts;
  const wrt = opts.wrt ?? inputs.map((_, i) => i);
  const outShape = refFn(...inputs).shape;
  const w = randArr(outShape, new Rng(seed));
  const grads = tidy(() => {
    const xs = inputs.map((a, i) => toTensor(a, wrt.includes(i)));
    const out = gpuFn(...xs);
    expect(out.shape).toEqual(outShape);
    out.mul(toTensor(w)).sum().backward();
    return xs.map((x) => x.grad);
  });
  for (const i of wrt) {
    const probe = (data: Float64Array) => {
      const args = inputs.map((a, k) => (k === i ? arr(a.shape, data) : a));
      const out = refFn(...args);
      let s = 0;
      for (let j = 0; j < numel(out.shape); j++) s += out.data[j] * w.data[j];
      return s;
    };
    const numeric = numericGrad(probe, Float64Array.from(inputs[i].data), eps);
    const g = grads[i];
    expect(g, `input ${i} received no gradient`).toBeTruthy();
    await expectClose(g!, arr(inputs[i].shape, numeric), atol, rtol, `d/dinput${i}`);
    g!.dispose();
  }
}

/** Host copy of a tensor as a reference array. */
export const toArr = async (t: Tensor): Promise<Arr> => arr(t.shape, await t.data());

/** Asserts two reference arrays are equal in shape and close in value. */
export function expectArrClose(got: Arr, want: Arr, what: string, atol = 1e-5, rtol = 1e-4): void {
  expect(got.shape, what).toEqual(want.shape);
  expect(allClose(got, want, rtol, atol), `${what}: max |diff| ${maxAbsDiff(got, want)}`).toBe(true);
}

/** Central differences of a scalar GPU function in float32, every evaluation recorded before one wait. */
export async function fdGrad(f: (x: Tensor) => Tensor, x0: Arr, eps = 1e-2): Promise<Arr> {
  const outs = tidy(() =>
    Array.from(x0.data).flatMap((_, i) =>
      [eps, -eps].map((step) => {
        const x = Float32Array.from(x0.data);
        x[i] += step;
        return f(tensor(x, x0.shape));
      }),
    ),
  );
  const v = await Promise.all(outs.map((t) => t.item()));
  outs.forEach((t) => t.dispose());
  return arr(x0.shape, x0.data.map((_, i) => (v[2 * i] - v[2 * i + 1]) / (2 * eps)));
}
