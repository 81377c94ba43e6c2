/** Hyper-parameter checks shared by the optimisers; each throws naming the option, its value and where it was given. */

/** Throws unless `value` is a finite number ≥ `min` (and < `below` when given). */
export function checkNumber(opt: string, name: string, value: unknown, where: string, min = 0, below?: number): void {
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= min && (below === undefined || value < below);
  if (!ok) {
    const range = below === undefined ? `a finite number >= ${min}` : `in [${min}, ${below})`;
    throw new Error(`${opt}: invalid ${name} ${String(value)} in ${where} (expected ${range})`);
  }
}

/** Throws unless `value` is a boolean. */
export function checkBool(opt: string, name: string, value: unknown, where: string): void {
  if (typeof value !== 'boolean') throw new Error(`${opt}: invalid ${name} ${String(value)} in ${where} (expected true or false)`);
}
