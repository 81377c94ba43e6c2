/**
 * Both libraries on one Dawn instance: we create the GPU object with `createGpu` (so the driver
 * settings apply to both) and expose it as `navigator.gpu`, which `init()` uses when present and
 * tfjs-backend-webgpu looks for when it is imported, so the two request their adapters from the
 * same place.
 */
import * as tf from '@tensorflow/tfjs';
import { createGpu, init, flush, synchronize, type DeviceInfo, type Tensor } from '@lib/nn';
import type { Pacer } from './harness.js';

export { tf };

export async function setup(): Promise<{ ours: DeviceInfo; tfjs: string }> {
  const gpu = await createGpu();
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  const ours = await init();
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs: the webgpu backend failed to initialise');
  await tf.ready();
  const info = (tf.backend() as unknown as { adapterInfo?: { vendor?: string; architecture?: string } }).adapterInfo;
  return { ours, tfjs: `${tf.version.tfjs} on ${[info?.vendor, info?.architecture].filter(Boolean).join(' ') || 'webgpu'}` };
}

/** Waits for our recorded work: submit, sleep as paced, then wait for the queue. */
export async function syncOurs(pacer: Pacer): Promise<void> {
  flush();
  await pacer.wait();
  await synchronize();
}

interface TfWebGpuBackend {
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** Waits for tfjs's work by reading back one element of `t`: its recorded batch is submitted (as its own read-back does), we sleep as paced, then map. */
export async function syncTf(t: tf.Tensor, pacer: Pacer): Promise<void> {
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  const b = tf.backend() as unknown as TfWebGpuBackend;
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
  await pacer.wait();
  await one.data();
  one.dispose();
}

/** A tfjs tensor from host data. */
export const tfTensor = (data: Float32Array, shape: number[]) => tf.tensor(data, shape, 'float32');

/** Host copy of one of our tensors. */
export const host = async (t: Tensor) => t.data();
