/**
 * The X-ray example end to end, as a user runs it (the built CLI), on a handful of synthetic images:
 * outputs, resume that continues exactly, and clear errors on bad input.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticNih } from '../examples/xray/synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'xray-e2e-'));
const dataDir = join(root, 'data');
const MAIN = 'build/examples/xray/main.js';

function run(args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 600_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
/** Runs the CLI and kills it (like a crash or Ctrl-C) as soon as its output matches `when`. */
function runUntil(args: string[], when: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args]);
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (when.test(out)) child.kill('SIGKILL');
    });
    child.on('error', reject);
    child.on('close', () => resolve(out));
  });
}
const base = (out: string) => ['--data-dir', dataDir, '--image-size', '32', '--batch-size', '8', '--workers', '0', '--seed', '3', '--out', join(root, out), '--gradcam', '1', '--show', '3'];

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npm run build:examples\` (npm test does)`);
  generateSyntheticNih(dataDir, { patients: 16, imageSize: 48, seed: 5, boost: 0.2 });
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('example:xray end to end', () => {
  it('trains, evaluates and writes predictions, metrics and the report', () => {
    const r = run([...base('a'), '--epochs', '2']);
    expect(r.err + r.out).not.toMatch(/^error:/m);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Epoch 1\/2/);
    expect(r.out).toMatch(/Training Loss: [\d.]+, Training Accuracy: [\d.]+%, Training F1/);
    expect(r.out).toMatch(/Validation Loss: [\d.]+/);
    expect(r.out).toMatch(/checked: no patient is in two splits/);
    expect(r.out).toMatch(/^File: \d{8}_\d{3}\.png, Predicted classes: \[.*\], True classes: \[.*\]$/m);
    const out = join(root, 'a');
    for (const f of ['predictions.csv', 'metrics.json', 'index.html', 'best.safetensors', 'last.safetensors', 'roc-curves.png', 'training-curves.png']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8'));
    expect(metrics.test.perClass).toHaveLength(14);
    expect(metrics.test.meanAuroc === null || (metrics.test.meanAuroc >= 0 && metrics.test.meanAuroc <= 1)).toBe(true);
    const csv = readFileSync(join(out, 'predictions.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^Image Index,True Labels,Predicted Labels,Atelectasis,/);
    expect(csv.length - 1).toBe(metrics.test.n);
  }, 600_000);

  it('--resume continues exactly where a stopped run left off', async () => {
    const straight = run([...base('b'), '--epochs', '3', '--patience', '9']);
    expect(straight.code).toBe(0);
    const first = await runUntil([...base('c'), '--epochs', '3', '--patience', '9'], /Epoch 2\/3/);
    expect(first).toMatch(/Validation Loss/);
    const resumed = run([...base('c'), '--epochs', '3', '--patience', '9', '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/resumed from .*: 1 epoch\(s\) done/);
    expect(resumed.out).not.toMatch(/Epoch 1\/3/);
    const valLosses = (s: string) => [...s.matchAll(/Validation Loss: ([\d.]+)/g)].map((m) => m[1]);
    expect(valLosses(first + resumed.out)).toEqual(valLosses(straight.out));
    const a = readFileSync(join(root, 'b', 'last.safetensors'));
    const b = readFileSync(join(root, 'c', 'last.safetensors'));
    // the tensor data (after the JSON header) is identical
    const dataOf = (buf: Buffer) => buf.subarray(8 + Number(buf.readBigUInt64LE(0)));
    expect(dataOf(a).equals(dataOf(b))).toBe(true);
  }, 600_000);

  it('names the problem on bad input', () => {
    const missingDir = run([...base('d'), '--data-dir', join(root, 'nope')]);
    expect(missingDir.code).toBe(1);
    expect(missingDir.err).toMatch(/--data-dir .*nope does not exist/);

    const broken = join(root, 'broken');
    generateSyntheticNih(broken, { patients: 16, imageSize: 48, seed: 5, boost: 0.2 });
    const csvPath = join(broken, 'Data_Entry_2017.csv');
    const csv = readFileSync(csvPath, 'utf8').split('\n');
    csv.splice(2, 0, '99999999_000.png,Cardiomegaly,0,99999999,40,M,PA,2500,2048,0.143,0.143,');
    writeFileSync(csvPath, csv.join('\n'));
    const missingImage = run([...base('e'), '--data-dir', broken]);
    expect(missingImage.code).toBe(1);
    expect(missingImage.err).toMatch(/99999999_000\.png/);

    csv.splice(2, 1);
    csv[1] = csv[1].replace(/^([^,]+),[^,]+/, '$1,Brokenbone');
    writeFileSync(csvPath, csv.join('\n'));
    const unknown = run([...base('f'), '--data-dir', broken]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/Brokenbone/);
  }, 600_000);

  it('skips (and counts) a corrupt image with --on-unreadable skip, and fails on it by default', () => {
    const dir = join(root, 'corrupt');
    generateSyntheticNih(dir, { patients: 16, imageSize: 48, seed: 5, boost: 0.2 });
    const name = readFileSync(join(dir, 'Data_Entry_2017.csv'), 'utf8').split('\n')[1].split(',')[0];
    const file = join(dir, 'images_001', 'images', name);
    copyFileSync(file, `${file}.bak`);
    writeFileSync(file, readFileSync(`${file}.bak`).subarray(0, 60));
    const fatal = run([...base('g'), '--data-dir', dir, '--epochs', '1']);
    expect(fatal.code).toBe(1);
    expect(fatal.err).toMatch(new RegExp(`corrupt PNG.*${name.replace('.', '\\.')}`));
    const skipped = run([...base('h'), '--data-dir', dir, '--epochs', '1', '--on-unreadable', 'skip']);
    expect(skipped.code).toBe(0);
    expect(skipped.out).toMatch(/1 unreadable image\(s\) were skipped/);
  }, 600_000);
});
