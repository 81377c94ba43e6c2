/**
 * Gradient of a scalar function by central differences,
 * (f(x + eps·e_i) - f(x - eps·e_i)) / (2·eps) for every coordinate i.
 * `x` is perturbed in place and restored exactly before returning.
 * With float64 and eps = 1e-3 the error is O(eps²·f''') — about 1e-6 for
 * smooth functions of O(1) values; functions with kinks (relu, max) need
 * inputs kept away from the kinks.
 */
export function numericGrad(f: (x: Float64Array) => number, x: Float64Array, eps = 1e-3): Float64Array {
  if (!(eps > 0)) throw new Error(`numericGrad: eps must be positive, got ${eps}`);
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + eps;
    const plus = f(x);
    x[i] = saved - eps;
    const minus = f(x);
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * eps);
  }
  return grad;
}
