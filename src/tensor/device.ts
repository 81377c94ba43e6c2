/**
 * The WebGPU runtime: one device, a buffer pool, a pipeline cache and a batched command encoder.
 *
 * Every op records its dispatch into one open compute pass; the work is submitted in batches
 * (when a read-back needs it, before an upload into a recycled buffer, or every
 * `maxDispatchesPerSubmit` dispatches so the device starts early). Nothing here awaits the GPU
 * except `readBuffer`.
 */
import { setStorageTexels, TEXEL_ROW } from '../shaders/common.js';

/** What the runtime asked for and got; `init()` returns it. */
export interface DeviceInfo {
  adapter: string;
  /** A CPU driver (lavapipe, SwiftShader): waits sleep instead of polling, GEMMs take the CPU tiling (`pickTile`). */
  isCpu: boolean;
  subgroups: boolean;
  /** WGSL offers read-only storage textures: texel operands are bound as those (see `setStorageTexels`). */
  storageTexels: boolean;
  limits: {
    maxStorageBufferBindingSize: number;
    maxBufferSize: number;
    maxComputeWorkgroupsPerDimension: number;
    maxComputeInvocationsPerWorkgroup: number;
    maxComputeWorkgroupStorageSize: number;
    maxStorageBuffersPerShaderStage: number;
    maxTextureDimension2D: number;
    maxTextureArrayLayers: number;
  };
}

/** One compute dispatch, described as data. */
export interface Dispatch {
  /** Op name, used in pipeline labels and error messages. */
  name: string;
  /** Shapes or other context for error messages, e.g. `a=[2,3] b=[3,4]`. */
  detail?: string;
  /** The whole WGSL module; it is also the pipeline cache key, so every parameter that shapes the code is in the key. */
  code: string;
  /** Linear workgroup count; folded into a 2-D grid when above the per-dimension limit (see `wgslIndex`). */
  workgroups: number;
  /**
   * Storage buffers at `@group(0) @binding(0..n-1)`, in order; a `{ buffer, offset, size }` binds a
   * sub-range (offsets a multiple of 256), for work split under `maxBindingSize()`. A `Texels`
   * (from `toTexels`) binds its texture instead.
   */
  buffers: (GPUBuffer | GPUBufferBinding | Texels)[];
  /** Runtime scalars (4-byte words) bound as a uniform at `@binding(n)`: values that change between steps (lr, seeds) without recompiling. */
  uniforms?: Uint32Array | Float32Array;
}

interface Runtime {
  /** Held so the Dawn instance outlives the device (a collected instance crashes the process). */
  gpu: GPU;
  device: GPUDevice;
  info: DeviceInfo;
  pipelines: Map<string, GPUComputePipeline>;
  pool: Map<number, GPUBuffer[]>;
  stagingPool: Map<number, GPUBuffer[]>;
  encoder: GPUCommandEncoder | null;
  pass: GPUComputePassEncoder | null;
  pending: number;
  uniformChunks: GPUBuffer[];
  uniformStaging: Uint8Array;
  uniformUsed: number;
  errors: string[];
  lost: string | null;
  liveBytes: number;
  liveBuffers: number;
  pooledBytes: number;
  pooledBuffers: number;
  /**
   * Dispatches recorded since the last read-back, the smoothed device time per dispatch, and when
   * (performance.now()) the work submitted before the last read-back should be mostly done (80 %
   * of its estimate): read-backs sleep until then.
   */
  dispatchesSinceRead: number;
  msPerDispatch: number;
  readyAt: number;
  bindingLimit: number;
  /** Free texel textures by size (`textureKey`), their bytes, and those to destroy once the batch using them is submitted. */
  texturePool: Map<string, GPUTexture[]>;
  pooledTextureBytes: number;
  texturesToDestroy: GPUTexture[];
}

const UNIFORM_ALIGN = 256;
const UNIFORM_CHUNK = 64 * 1024;
const BUFFER_USAGE = 0x80 /* STORAGE */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

let rt: Runtime | null = null;
let initializing: Promise<DeviceInfo> | null = null;

/** Dispatches recorded before the batch is submitted on its own, so the device starts working early. */
let maxDispatchesPerSubmit = 256;

const SETUP_HINT =
  'No WebGPU adapter found. On Debian/Ubuntu without a GPU run `bash scripts/setup-webgpu.sh` ' +
  '(installs Mesa lavapipe from bookworm-backports), and make sure XDG_RUNTIME_DIR points to a writable directory.';

/**
 * Creates Dawn's `GPU` object for Node (what `init()` uses when there is no `navigator.gpu`), after
 * setting what the Vulkan driver reads at start-up unless already set: `XDG_RUNTIME_DIR`, which Mesa
 * wants (any writable directory), and lavapipe's `LP_NUM_THREADS`, two workers more than cores so
 * that the cores stay busy while this process's thread polls the device (on 2 cores: matmul and
 * training steps 20-40 % faster than one worker per core). Expose it as `navigator.gpu` to share one
 * instance with another WebGPU library.
 */
export async function createGpu(): Promise<GPU> {
  const { mkdirSync } = await import('node:fs');
  const { availableParallelism, tmpdir } = await import('node:os');
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = `${tmpdir()}/xdg-runtime-${process.getuid?.() ?? 0}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = dir;
  }
  process.env.LP_NUM_THREADS ??= String(availableParallelism() + 2);
  const webgpu = await import('webgpu');
  Object.assign(globalThis, webgpu.globals);
  return webgpu.create([]) as GPU;
}

async function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  return nav?.gpu ?? createGpu();
}

/**
 * Acquires the WebGPU device (once; later calls return the same info).
 * Requests the adapter's maximum buffer and workgroup limits and the `subgroups` feature when offered
 * (and its subgroups have at least 8 lanes).
 */
export function init(): Promise<DeviceInfo> {
  if (rt) return Promise.resolve(rt.info);
  initializing ??= createRuntime().catch((e) => {
    initializing = null;
    throw e;
  });
  return initializing;
}

async function createRuntime(): Promise<DeviceInfo> {
  let adapter: GPUAdapter | null = null;
  let gpu: GPU;
  try {
    gpu = await getGpu();
    adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch (e) {
    throw new Error(`${SETUP_HINT} (${(e as Error).message})`);
  }
  if (!adapter) throw new Error(SETUP_HINT);
  const a = adapter.limits;
  const limits = {
    maxStorageBufferBindingSize: a.maxStorageBufferBindingSize,
    maxBufferSize: a.maxBufferSize,
    maxComputeWorkgroupsPerDimension: a.maxComputeWorkgroupsPerDimension,
    maxComputeInvocationsPerWorkgroup: a.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupStorageSize: a.maxComputeWorkgroupStorageSize,
    maxStorageBuffersPerShaderStage: a.maxStorageBuffersPerShaderStage,
    maxTextureDimension2D: a.maxTextureDimension2D,
    maxTextureArrayLayers: a.maxTextureArrayLayers,
  };
  // The GEMMs share values among 8 lanes of one subgroup: smaller subgroups (some mobile GPUs) take the plain kernels.
  const subgroups = adapter.features.has('subgroups') && (adapter.info?.subgroupMinSize ?? 8) >= 8;
  const device = await adapter.requestDevice({
    requiredLimits: limits,
    requiredFeatures: subgroups ? ['subgroups' as GPUFeatureName] : [],
  });
  const ai = adapter.info;
  const name = [ai?.vendor, ai?.architecture, ai?.device, ai?.description].filter(Boolean).join(' ') || 'unknown adapter';
  const isCpu = /llvmpipe|lavapipe|swiftshader|cpu/i.test(name) || (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
  const storageTexels = gpu.wgslLanguageFeatures?.has('readonly_and_readwrite_storage_textures') ?? false;
  setStorageTexels(storageTexels);
  const info: DeviceInfo = { adapter: name, isCpu, subgroups, storageTexels, limits };
  const r: Runtime = {
    gpu,
    device, info, pipelines: new Map(), pool: new Map(), stagingPool: new Map(),
    encoder: null, pass: null, pending: 0, uniformChunks: [], uniformStaging: new Uint8Array(UNIFORM_CHUNK),
    uniformUsed: 0, errors: [], lost: null, liveBytes: 0, liveBuffers: 0, pooledBytes: 0, pooledBuffers: 0, dispatchesSinceRead: 0, msPerDispatch: 0, readyAt: 0,
    bindingLimit: deviceBindingLimit(limits),
    texturePool: new Map(), pooledTextureBytes: 0, texturesToDestroy: [],
  };
  device.addEventListener('uncapturederror', (ev) => {
    r.errors.push((ev as GPUUncapturedErrorEvent).error.message);
  });
  void device.lost.then((l) => {
    r.lost = `${l.reason}: ${l.message}`;
  });
  rt = r;
  return info;
}

function runtime(): Runtime {
  if (!rt) throw new Error('WebGPU is not initialised: call `await init()` (from @lib/nn) before creating tensors');
  if (rt.lost) throw new Error(`WebGPU device was lost (${rt.lost}); restart the process`);
  return rt;
}

/** The device info; throws if `init()` has not completed. */
export function deviceInfo(): DeviceInfo {
  return runtime().info;
}

/** Throws the first WebGPU error reported since the last check, naming the ops involved (their labels). */
export function checkErrors(): void {
  const r = runtime();
  if (r.errors.length) {
    const msg = r.errors.splice(0).join('\n');
    throw new Error(`WebGPU error: ${msg}`);
  }
}

// ---------------------------------------------------------------- buffers

const align = (n: number, a: number) => Math.ceil(n / a) * a;

/** A storage buffer of at least `bytes` bytes, recycled from the pool when one of that size is free. */
export function allocBuffer(bytes: number, what = 'tensor'): GPUBuffer {
  const r = runtime();
  const size = Math.max(16, align(bytes, 16));
  if (size > r.info.limits.maxBufferSize) {
    throw new Error(`${what}: ${bytes} bytes exceeds the device's maxBufferSize (${r.info.limits.maxBufferSize})`);
  }
  r.liveBytes += size;
  r.liveBuffers++;
  const free = r.pool.get(size);
  if (free?.length) {
    r.pooledBytes -= size;
    r.pooledBuffers--;
    return free.pop()!;
  }
  return r.device.createBuffer({ size, usage: BUFFER_USAGE, label: what });
}

/** Returns a buffer to the pool. Safe while recorded work still uses it: later dispatches are ordered after earlier ones. */
export function releaseBuffer(buf: GPUBuffer): void {
  const r = rt;
  if (!r) return;
  const size = buf.size;
  r.liveBytes -= size;
  r.liveBuffers--;
  let list = r.pool.get(size);
  if (!list) r.pool.set(size, (list = []));
  list.push(buf);
  r.pooledBytes += size;
  r.pooledBuffers++;
}

/** Destroys every pooled (free) buffer and texture, like `torch.cuda.empty_cache()`. */
export function emptyCache(): void {
  const r = runtime();
  flush();
  for (const list of r.pool.values()) for (const b of list) b.destroy();
  r.pool.clear();
  r.pooledBuffers = 0;
  for (const list of r.texturePool.values()) for (const t of list) t.destroy();
  r.texturePool.clear();
  r.pooledBytes = 0;
  r.pooledTextureBytes = 0;
}

/** Bytes and buffers held by live tensors (and texel textures in use), and by the pool of free buffers (and textures) kept for reuse. */
export function memoryInfo(): { liveBytes: number; liveBuffers: number; pooledBytes: number; pooledBuffers: number } {
  const r = runtime();
  return { liveBytes: r.liveBytes, liveBuffers: r.liveBuffers, pooledBytes: r.pooledBytes, pooledBuffers: r.pooledBuffers };
}

/** Copies host data into a buffer. Submits recorded work first, because a queue write runs before unsubmitted commands that may still read the (recycled) buffer. */
export function writeBuffer(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
  const r = runtime();
  if (r.pending) flush();
  r.device.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
}

// ---------------------------------------------------------------- texels

/*
 * Lavapipe turns every storage-buffer load into a bounds-checked, branching loop over the lanes and
 * components (about 9 instructions per value), while a `textureLoad` of rgba32float fetches all 8
 * lanes' vec4s in one call of 57-87 instructions; so the register-tiled GEMMs read their operands
 * as textures: a vec4 array laid out in rows of TEXEL_ROW texels, read by `texel()`.
 */
const TEXEL_BYTES = 16;
/** Texture bytes held by the pool before released textures are destroyed instead of kept. */
const TEXTURE_POOL_BYTES = 256 * 1024 * 1024;

/** A copy of a vec4 buffer range in a texture, bound in place of that range (see `toTexels`). */
export interface Texels {
  texture: GPUTexture;
  view: GPUTextureView;
}

/** The binding limit: the storage limit, and no more than a texel texture holds. */
function deviceBindingLimit(l: DeviceInfo['limits']): number {
  return Math.min(l.maxStorageBufferBindingSize, TEXEL_ROW * l.maxTextureDimension2D * TEXEL_BYTES);
}

/** A texel texture's extent (a `GPUTexture` is one). */
type TexelExtent = { width: number; height: number; depthOrArrayLayers: number };
const textureKey = (t: TexelExtent) => `${t.width}x${t.height}x${t.depthOrArrayLayers}`;
const textureBytes = (t: TexelExtent) => t.width * t.height * t.depthOrArrayLayers * TEXEL_BYTES;

/** An rgba32float texture of `size` texels from the pool or a new one, counted as live. */
function takeTexture(r: Runtime, size: TexelExtent, label: string): GPUTexture {
  const bytes = textureBytes(size);
  const pooled = r.texturePool.get(textureKey(size))?.pop();
  if (pooled) {
    r.pooledBytes -= bytes;
    r.pooledTextureBytes -= bytes;
  }
  r.liveBytes += bytes;
  return (
    pooled ??
    r.device.createTexture({
      size, format: 'rgba32float', label,
      usage: 0x04 /* TEXTURE_BINDING */ | 0x02 /* COPY_DST */ | (r.info.storageTexels ? 0x08 /* STORAGE_BINDING */ : 0),
    })
  );
}

/**
 * Records a copy of a buffer range (a whole number of vec4s, at most `maxBindingSize()` bytes) into a
 * texture for kernels that read it with `texel()`. Give it back with `releaseTexels` once the
 * dispatches that read it are recorded.
 */
export function toTexels(src: GPUBuffer | GPUBufferBinding): Texels {
  const r = runtime();
  const b = 'buffer' in src ? src : { buffer: src };
  const offset = b.offset ?? 0;
  const bytes = b.size ?? b.buffer.size - offset;
  const count = Math.ceil(bytes / TEXEL_BYTES);
  if (offset % TEXEL_BYTES || offset + count * TEXEL_BYTES > b.buffer.size) throw new Error(`toTexels: range ${offset}+${bytes} of a ${b.buffer.size}-byte buffer is not whole vec4s`);
  const rows = Math.max(1, Math.ceil(count / TEXEL_ROW));
  if (rows > r.info.limits.maxTextureDimension2D) throw new Error(`toTexels: ${bytes} bytes exceed a texel texture (split the work under maxBindingSize())`);
  const texture = takeTexture(r, { width: TEXEL_ROW, height: rows, depthOrArrayLayers: 1 }, 'texels');
  const full = Math.floor(count / TEXEL_ROW);
  const rest = count - full * TEXEL_ROW;
  const encoder = openEncoder(r);
  const layout = { buffer: b.buffer, bytesPerRow: TEXEL_ROW * TEXEL_BYTES };
  if (full) encoder.copyBufferToTexture({ ...layout, offset }, { texture }, [TEXEL_ROW, full]);
  if (rest) encoder.copyBufferToTexture({ ...layout, offset: offset + full * TEXEL_ROW * TEXEL_BYTES }, { texture, origin: [0, full] }, [rest, 1]);
  return { texture, view: texture.createView() };
}

/** Whether `toPanels` can hold a stack of `matrices` matrices of `rows` x `rowTexels` vec4s cut into panels `width` vec4s wide. */
export function panelsFit(rowTexels: number, rows: number, width: number, matrices: number): boolean {
  const l = runtime().info.limits;
  return (rowTexels * TEXEL_BYTES) % 256 === 0 && rowTexels % width === 0 && rows <= l.maxTextureDimension2D && (matrices * rowTexels) / width <= l.maxTextureArrayLayers;
}

/**
 * Records copies of a stack of row-major matrices (`rows` rows of `rowTexels` vec4s each) into a
 * 2-D array texture of panels, read with `panelTexel()`: layer `matrix · (rowTexels / width) + p`
 * holds columns p·width .. p·width + width − 1 of every row, so that the rows of one panel lie
 * one after another (one copy per panel; see `panelsFit` for what it needs). Released with `releaseTexels`.
 */
export function toPanels(src: GPUBuffer | GPUBufferBinding, rowTexels: number, rows: number, width: number, matrices: number): Texels {
  const r = runtime();
  const b = 'buffer' in src ? src : { buffer: src };
  if (!panelsFit(rowTexels, rows, width, matrices)) throw new Error(`toPanels: ${matrices} matrices of ${rows}x${rowTexels} vec4s do not fit panels ${width} wide (check panelsFit first)`);
  const perMatrix = rowTexels / width;
  const texture = takeTexture(r, { width, height: rows, depthOrArrayLayers: matrices * perMatrix }, 'panels');
  const encoder = openEncoder(r);
  for (let m = 0; m < matrices; m++) {
    for (let p = 0; p < perMatrix; p++) {
      const offset = (b.offset ?? 0) + (m * rows * rowTexels + p * width) * TEXEL_BYTES;
      encoder.copyBufferToTexture({ buffer: b.buffer, offset, bytesPerRow: rowTexels * TEXEL_BYTES }, { texture, origin: [0, 0, m * perMatrix + p] }, [width, rows, 1]);
    }
  }
  return { texture, view: texture.createView({ dimension: '2d-array' }) };
}

/** Returns a texel or panel texture to the pool; safe while recorded work still reads it (later copies are ordered after it). */
export function releaseTexels(t: Texels): void {
  const r = rt;
  if (!r) return;
  const bytes = textureBytes(t.texture);
  r.liveBytes -= bytes;
  if (r.pooledTextureBytes + bytes > TEXTURE_POOL_BYTES) {
    r.texturesToDestroy.push(t.texture);
    return;
  }
  const key = textureKey(t.texture);
  let list = r.texturePool.get(key);
  if (!list) r.texturePool.set(key, (list = []));
  list.push(t.texture);
  r.pooledBytes += bytes;
  r.pooledTextureBytes += bytes;
}

// ---------------------------------------------------------------- pipelines and dispatch

function pipeline(r: Runtime, d: Dispatch): GPUComputePipeline {
  let p = r.pipelines.get(d.code);
  if (!p) {
    const module = r.device.createShaderModule({ code: d.code, label: d.name });
    p = r.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: d.name });
    r.pipelines.set(d.code, p);
  }
  return p;
}

/** Number of compiled pipelines (for tests of the cache). */
export function pipelineCount(): number {
  return runtime().pipelines.size;
}

function uniformSlot(r: Runtime, words: Uint32Array | Float32Array): GPUBufferBinding {
  const bytes = words.byteLength;
  if (bytes > UNIFORM_ALIGN) throw new Error('uniform block larger than 256 bytes');
  const chunk = Math.floor(r.uniformUsed / UNIFORM_CHUNK);
  let offset = r.uniformUsed % UNIFORM_CHUNK;
  if (offset + UNIFORM_ALIGN > UNIFORM_CHUNK) throw new Error('unreachable: uniform chunk overflow');
  while (r.uniformChunks.length <= chunk) {
    r.uniformChunks.push(r.device.createBuffer({ size: UNIFORM_CHUNK, usage: 0x40 /* UNIFORM */ | 0x08, label: 'uniforms' }));
  }
  const need = (chunk + 1) * UNIFORM_CHUNK;
  if (r.uniformStaging.length < need) {
    const grown = new Uint8Array(need * 2);
    grown.set(r.uniformStaging);
    r.uniformStaging = grown;
  }
  r.uniformStaging.set(new Uint8Array(words.buffer, words.byteOffset, bytes), chunk * UNIFORM_CHUNK + offset);
  r.uniformUsed += UNIFORM_ALIGN;
  return { buffer: r.uniformChunks[chunk], offset, size: align(bytes, 16) };
}

/** Splits a linear workgroup count into an (x, y) grid within the per-dimension limit. */
export function foldWorkgroups(n: number, maxPerDim: number): [number, number] {
  if (n <= maxPerDim) return [Math.max(1, n), 1];
  const y = Math.ceil(n / maxPerDim);
  if (y > maxPerDim) throw new Error(`dispatch of ${n} workgroups exceeds ${maxPerDim}^2`);
  return [Math.ceil(n / y), y];
}

/** Records one dispatch into the open batch. */
export function dispatch(d: Dispatch): void {
  const r = runtime();
  for (const b of d.buffers) {
    if ('view' in b) continue;
    const size = 'buffer' in b ? (b.size ?? b.buffer.size - (b.offset ?? 0)) : b.size;
    if (size > r.info.limits.maxStorageBufferBindingSize) {
      throw new Error(`${d.name} ${d.detail ?? ''}: a binding of ${size} bytes exceeds the device's storage binding limit (${r.info.limits.maxStorageBufferBindingSize} bytes); the op must split its work into ranges (tensor/split.ts)`);
    }
  }
  const p = pipeline(r, d);
  const entries: GPUBindGroupEntry[] = d.buffers.map((b, binding) => ({ binding, resource: 'view' in b ? b.view : 'buffer' in b ? b : { buffer: b } }));
  if (d.uniforms) entries.push({ binding: d.buffers.length, resource: uniformSlot(r, d.uniforms) });
  const label = d.detail ? `${d.name} ${d.detail}` : d.name;
  const bindGroup = r.device.createBindGroup({ layout: p.getBindGroupLayout(0), entries, label });
  r.pass ??= (r.encoder ??= r.device.createCommandEncoder()).beginComputePass();
  r.pass.setPipeline(p);
  r.pass.setBindGroup(0, bindGroup);
  const [x, y] = foldWorkgroups(d.workgroups, r.info.limits.maxComputeWorkgroupsPerDimension);
  r.pass.dispatchWorkgroups(x, y);
  r.pending++;
  r.dispatchesSinceRead++;
  if (r.pending >= maxDispatchesPerSubmit) flush();
}

/** The batch's encoder with no compute pass open, for recording a copy (counted as pending work). */
function openEncoder(r: Runtime): GPUCommandEncoder {
  r.encoder ??= r.device.createCommandEncoder();
  if (r.pass) {
    r.pass.end();
    r.pass = null;
  }
  r.pending++;
  return r.encoder;
}

/** Records a buffer-to-buffer copy into the open batch. */
export function copyBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
  openEncoder(runtime()).copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
}

/** Submits all recorded work (does not wait for it). */
export function flush(): void {
  const r = rt;
  if (!r || !r.encoder) return;
  if (r.pass) r.pass.end();
  const commands = r.encoder.finish();
  const used = Math.ceil(r.uniformUsed / UNIFORM_CHUNK);
  for (let i = 0; i < used; i++) {
    const bytes = Math.min(UNIFORM_CHUNK, r.uniformUsed - i * UNIFORM_CHUNK);
    r.device.queue.writeBuffer(r.uniformChunks[i], 0, r.uniformStaging.buffer, i * UNIFORM_CHUNK, bytes);
  }
  r.device.queue.submit([commands]);
  for (const t of r.texturesToDestroy.splice(0)) t.destroy();
  r.encoder = null;
  r.pass = null;
  r.pending = 0;
  r.uniformUsed = 0;
}

const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

/** Blocked on with `Atomics.wait` and never notified: a sleep that holds the thread off the CPU. */
let idleCell: Int32Array | null = null;

/**
 * Awaits a device promise. While one is pending, Dawn's Node bindings poll for events on every
 * event-loop turn, which keeps a core busy that a CPU adapter's workers need. So on a CPU adapter
 * (in Node), after a first millisecond of plain turns (small work is done by then), the thread
 * sleeps 1 ms between turns (`Atomics.wait` blocks without spinning) and Dawn polls about once a
 * millisecond. Paired runs: a 1024 matmul waited for this way was 18 % faster after the usual
 * sleep and 13 % faster without one (0.5-3 ms slices: within a few %); the test suite took 149 s
 * instead of 170.
 */
async function settle<T>(r: Runtime, p: Promise<T>): Promise<T> {
  if (!r.info.isCpu || typeof setImmediate !== 'function') return p;
  idleCell ??= new Int32Array(new SharedArrayBuffer(4));
  let done = false;
  const mark = () => {
    done = true;
  };
  p.then(mark, mark);
  const t0 = performance.now();
  while (!done) {
    if (performance.now() - t0 > 1) Atomics.wait(idleCell, 0, 0, 1);
    await new Promise((res) => setImmediate(res));
  }
  return p;
}

/**
 * Reads `bytes` bytes of a buffer back to the host. On a CPU adapter an awaited map request
 * polls (see `settle`), so a read-back first sleeps until most of the work submitted so far should
 * be done (every read-back, so that a second one issued beside the first does not poll while the
 * first sleeps), estimated from the device time per dispatch seen so far. A read-back that ends
 * just after its sleep timed the sleep, not the work, so the estimate is then halved rather than
 * smoothed.
 */
export async function readBuffer(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
  const r = runtime();
  const size = align(Math.max(bytes, 4), 4);
  let list = r.stagingPool.get(size);
  if (!list) r.stagingPool.set(size, (list = []));
  const staging = list.pop() ?? r.device.createBuffer({ size, usage: 0x01 /* MAP_READ */ | 0x08, label: 'read-back' });
  copyBuffer(buf, offset, staging, 0, size);
  flush();
  const t0 = performance.now();
  const work = r.dispatchesSinceRead;
  r.dispatchesSinceRead = 0;
  if (r.info.isCpu && work >= 32) r.readyAt = t0 + Math.min(2000, 0.8 * r.msPerDispatch * work);
  let slept = 0;
  if (r.readyAt - t0 > 1) {
    await sleep(r.readyAt - t0);
    slept = performance.now() - t0;
  }
  try {
    await settle(r, staging.mapAsync(0x01 /* READ */));
  } catch (e) {
    checkErrors();
    if (r.lost) throw new Error(`WebGPU device was lost (${r.lost})`);
    throw e;
  }
  const ms = performance.now() - t0;
  if (work >= 32) r.msPerDispatch = slept && ms < 1.1 * slept + 1 ? (0.5 * ms) / work : 0.5 * r.msPerDispatch + (0.5 * ms) / work;
  const out = staging.getMappedRange(0, size).slice(0, bytes);
  staging.unmap();
  list.push(staging);
  checkErrors();
  return out;
}

/** Waits until all submitted work has finished (and reports errors). */
export async function synchronize(): Promise<void> {
  const r = runtime();
  flush();
  await settle(r, r.device.queue.onSubmittedWorkDone());
  checkErrors();
}

/**
 * Lowers the storage-binding size that kernels plan for (never raises it above the device's):
 * lets tests exercise the code paths that split work too large for one binding.
 * Pass `undefined` to restore the device limit.
 */
export function setMaxBindingSizeForTesting(bytes: number | undefined): void {
  const r = runtime();
  const limit = deviceBindingLimit(r.info.limits);
  r.bindingLimit = bytes === undefined ? limit : Math.min(bytes, limit);
}

/** The largest buffer range one binding may cover; kernels split work beyond it. */
export function maxBindingSize(): number {
  return runtime().bindingLimit;
}

/** Sets how many dispatches are recorded before a batch is submitted on its own. */
export function setMaxDispatchesPerSubmit(n: number): void {
  maxDispatchesPerSubmit = Math.max(1, n);
}
