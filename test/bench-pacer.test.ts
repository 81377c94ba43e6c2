// The bench's pacer: its sleeps must fit the work, or the bench times its own sleeps.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Pacer } from '../bench/harness.js';

/**
 * One iteration on fake timers whose device work ends `workMs` after it starts: the pacer's sleep,
 * then (like the awaited read-back) until the work is done. Returns [slept, total] in ms.
 */
async function iteration(pacer: Pacer, workMs: number): Promise<[number, number]> {
  const t0 = performance.now();
  pacer.start();
  const waiting = pacer.wait();
  await vi.runAllTimersAsync();
  await waiting;
  const slept = performance.now() - t0;
  if (slept < workMs) vi.advanceTimersByTime(workMs - slept);
  pacer.end();
  return [slept, performance.now() - t0];
}

describe('bench Pacer', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['setTimeout', 'performance'] }));
  afterEach(() => vi.useRealTimers());

  it('once settled, sleeps 80 % of the fastest iteration', async () => {
    const p = new Pacer();
    expect(await iteration(p, 100)).toEqual([0, 100]);
    expect(p.settled).toBe(false);
    expect(await iteration(p, 100)).toEqual([50, 100]);
    expect(p.settled).toBe(true);
    expect(await iteration(p, 110)).toEqual([80, 110]);
    expect(await iteration(p, 90)).toEqual([80, 90]);
    expect(await iteration(p, 95)).toEqual([72, 95]);
    expect(p.settled).toBe(true);
  });

  it('halves the sleep after an iteration that ended as it woke, until the sleep fits the work', async () => {
    const p = new Pacer();
    // An unpaced first iteration 5x slower than the work (Dawn's busy poll). Sleeping 0.8 of it
    // next, every later iteration would time its own sleep (320, 256, 205, ... ms for 80 ms of
    // work); halving, 200 and 100 end as they wake, then 50 fits.
    expect(await iteration(p, 400)).toEqual([0, 400]);
    expect(await iteration(p, 80)).toEqual([200, 200]);
    expect(p.settled).toBe(false);
    expect(await iteration(p, 80)).toEqual([100, 100]);
    expect(p.settled).toBe(false);
    expect(await iteration(p, 80)).toEqual([50, 80]);
    expect(p.settled).toBe(true);
    expect(await iteration(p, 80)).toEqual([64, 80]);
    expect(p.settled).toBe(true);
  });

  it('settles on work too short to sleep for (a sleep under 1 ms is skipped, so it cannot be timed)', async () => {
    const p = new Pacer();
    expect(await iteration(p, 0.6)).toEqual([0, 0.6]);
    expect(p.settled).toBe(false);
    expect(await iteration(p, 0.6)).toEqual([0, 0.6]);
    expect(p.settled).toBe(true);
  });
});
