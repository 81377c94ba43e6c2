/** The README's library example runs as written, against the built package (`@lib/nn` → dist/). */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('the README example runs and prints what it says', () => {
  const readme = readFileSync('README.md', 'utf8');
  const code = /```js\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(code, 'README has a js example').toBeTruthy();
  // run from inside the repository so that '@lib/nn' resolves to this package (self-reference)
  mkdirSync('build', { recursive: true });
  const dir = mkdtempSync(join('build', 'readme-'));
  try {
    const file = join(dir, 'example.mjs');
    writeFileSync(file, code!);
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 540_000 });
    expect(out).toContain('[ [ 7, 11 ], [ 9, 13 ] ]');
    const loss = Number(/loss ([\d.eE+-]+)/.exec(out)?.[1]);
    expect(loss).toBeGreaterThan(0);
    expect(Number.isFinite(loss)).toBe(true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 600_000);
