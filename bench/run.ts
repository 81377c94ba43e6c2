/**
 * `npm run bench [-- --quick] [-- --json FILE] [-- --only REGEX]`: kernel and training throughput of
 * @lib/nn side by side with TensorFlow.js's WebGPU backend, in one process on one Dawn instance.
 * Every case first runs both libraries on the same inputs and compares the results; a case whose
 * results differ is reported as failed and not timed.
 */
import { writeFileSync } from 'node:fs';
import { firstCalls, measurePair, type Case, type Row } from './harness.js';
import { setup } from './setup.js';
import { matmulCases } from './cases/matmul.js';
import { convCases } from './cases/conv.js';
import { normCases } from './cases/norm.js';
import { trainCases } from './cases/train.js';

interface Args {
  quick: boolean;
  json: string | null;
  only: RegExp | null;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, json: null, only: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') args.quick = true;
    else if (a === '--json' || a === '--only') {
      const v = argv[++i];
      if (!v) throw new Error(`bench: ${a} needs a value`);
      if (a === '--json') args.json = v;
      else args.only = new RegExp(v, 'i');
    } else throw new Error(`bench: unknown argument '${a}' (expected --quick, --json FILE, --only REGEX)`);
  }
  return args;
}

const fmtMs = (ms: number) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));
const fmtRate = (r: number) => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2));

function tableOf(rows: Row[]): string {
  const head = ['kernel', 'case', 'shape', 'ours ms', 'ours', 'tfjs ms', 'tfjs', 'ours/tfjs', 'first call ours / tfjs', 'check'];
  const lines = rows.map((r) => [
    r.group,
    r.name,
    r.shape,
    r.ours ? fmtMs(r.ours.medianMs) : '–',
    r.ours ? `${fmtRate(r.ours.rate)} ${r.unit}` : '–',
    r.tfjs ? fmtMs(r.tfjs.medianMs) : '–',
    r.tfjs ? `${fmtRate(r.tfjs.rate)} ${r.unit}` : '–',
    r.speedup ? `${r.speedup.toFixed(2)}x` : '–',
    r.firstMs ? r.firstMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' / ') : '–',
    r.error ? `FAILED: ${r.error}` : r.check,
  ]);
  const md = (cells: string[]) => `| ${cells.join(' | ')} |`;
  return [md(head), md(head.map(() => '---')), ...lines.map(md)].join('\n');
}

async function runCase(c: Case, quick: boolean): Promise<Row> {
  const row: Row = { group: c.group, name: c.name, shape: c.shape, unit: c.unit, note: c.note, ours: null, tfjs: null, firstMs: null, speedup: null, check: '' };
  const iterations = quick ? 1 : c.unit === 'images/s' ? 4 : 7;
  try {
    const p = await c.prepare();
    try {
      row.check = await p.check();
      row.firstMs = quick ? null : await firstCalls([p.ours, p.theirs]);
      [row.ours, row.tfjs] = await measurePair([p.ours, p.theirs], c.unit, c.work, iterations);
      row.speedup = row.ours.rate / row.tfjs.rate;
    } finally {
      p.dispose();
    }
  } catch (e) {
    row.error = (e as Error).message.split('\n')[0];
  }
  return row;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = new Date();
  const { ours, tfjs } = await setup();
  const threads = process.env.LP_NUM_THREADS ?? 'default';
  console.log(`@lib/nn on ${ours.adapter} (subgroups: ${ours.subgroups}); TensorFlow.js ${tfjs}; LP_NUM_THREADS=${threads}`);
  const cases = [...matmulCases(), ...convCases(), ...normCases(), ...trainCases()]
    .filter((c) => !args.quick || c.quick)
    .filter((c) => !args.only || args.only.test(`${c.group} ${c.name} ${c.shape}`));
  const rows: Row[] = [];
  for (const c of cases) {
    const t0 = performance.now();
    const row = await runCase(c, args.quick);
    rows.push(row);
    const speed = row.speedup ? `${row.speedup.toFixed(2)}x tfjs` : (row.error ?? '');
    const rate = row.ours && row.tfjs ? `${fmtRate(row.ours.rate)} vs ${fmtRate(row.tfjs.rate)} ${c.unit}` : '';
    console.log(`${c.group} ${c.name} ${c.shape}: ${rate} ${speed} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  const seconds = (Date.now() - started.getTime()) / 1000;
  console.log(`\n${tableOf(rows)}\n\n${started.toISOString()}, ${seconds.toFixed(0)} s in all`);
  if (args.json) {
    const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
    writeFileSync(args.json, JSON.stringify({ date: started.toISOString(), command, seconds, adapter: ours.adapter, tfjs, lpNumThreads: threads, rows }, null, 2));
  }
  const failed = rows.filter((r) => r.error).length;
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
