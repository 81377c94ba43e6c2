/**
 * Convolutions (dense and depthwise): forward, gradient w.r.t. the input and w.r.t. the weight.
 * Ours run through autograd — `y.backward(r)` for a fixed random r, the forward done untimed before
 * each iteration — so the timed part is the backward alone (plus one copy of r, which the engine
 * takes as the seed gradient). tfjs runs the kernels its own autograd would
 * (Conv2DBackpropInput/Filter, DepthwiseConv2dNativeBackpropInput/Filter) with dy = r.
 */
import { nn, synchronize, tensor, tidy, type Tensor } from '@lib/nn';
import { expectClose, nchwToNhwc, nhwcToNchw, oihwToHwio, permuteData, randomData, type Case, type Prepared } from '../harness.js';
import { syncOurs, syncTf, tf, tfTensor } from '../setup.js';

const { conv2d } = nn.functional;

interface ConvSpec {
  n: number;
  c: number;
  o: number;
  h: number;
  k: number;
  stride: number;
  pad: number;
  depthwise: boolean;
  quick: boolean;
}

type Pass = 'forward' | 'backward-data' | 'backward-weight';

const DENSE: ConvSpec[] = [
  { n: 8, c: 64, o: 64, h: 56, k: 3, stride: 1, pad: 1, depthwise: false, quick: true },
  { n: 8, c: 256, o: 64, h: 56, k: 1, stride: 1, pad: 0, depthwise: false, quick: false },
  { n: 2, c: 3, o: 64, h: 224, k: 7, stride: 2, pad: 3, depthwise: false, quick: false },
];

const DEPTHWISE: ConvSpec[] = [
  { n: 8, c: 144, o: 144, h: 56, k: 3, stride: 1, pad: 1, depthwise: true, quick: true },
  { n: 8, c: 240, o: 240, h: 28, k: 5, stride: 1, pad: 2, depthwise: true, quick: false },
];

export function convCases(): Case[] {
  const passes: Pass[] = ['forward', 'backward-data', 'backward-weight'];
  return [...DENSE, ...DEPTHWISE].flatMap((s) => passes.map((pass) => convCase(s, pass)));
}

function convCase(s: ConvSpec, pass: Pass): Case {
  const oh = Math.floor((s.h + 2 * s.pad - s.k) / s.stride) + 1;
  const cin = s.depthwise ? 1 : s.c;
  const flops = 2 * s.n * s.o * oh * oh * cin * s.k * s.k;
  const shape = s.depthwise
    ? `${s.n}x${s.c}x${s.h}x${s.h} k${s.k}`
    : `${s.n}x${s.c}x${s.h}x${s.h} → ${s.o} k${s.k}${s.stride > 1 ? `/${s.stride}` : ''}`;
  return {
    group: s.depthwise ? 'depthwise' : 'conv2d',
    name: pass,
    shape,
    unit: 'GFLOP/s',
    work: flops,
    quick: s.quick,
    note: pass === 'forward' ? undefined : 'backward alone (forward untimed)',
    prepare: async () => prepareConv(s, pass, oh),
  };
}

async function prepareConv(s: ConvSpec, pass: Pass, oh: number): Promise<Prepared> {
  const xShape = [s.n, s.c, s.h, s.h];
  const wShape = [s.o, cinOf(s), s.k, s.k];
  const yShape = [s.n, s.o, oh, oh];
  const xd = randomData(xShape.reduce((a, b) => a * b), 11);
  const wd = randomData(wShape.reduce((a, b) => a * b), 12, Math.sqrt(2 / (cinOf(s) * s.k * s.k)));
  const rd = randomData(yShape.reduce((a, b) => a * b), 13);
  const x = tensor(xd, xShape, { requiresGrad: pass === 'backward-data' });
  const w = tensor(wd, wShape, { requiresGrad: pass === 'backward-weight' });
  const r = tensor(rd, yShape);
  const opts = { stride: s.stride, padding: s.pad, groups: s.depthwise ? s.c : 1 };

  // tfjs: NHWC input, filters [kh, kw, in, out] (depthwise: [kh, kw, C, 1]).
  const tx = tfTensor(nchwToNhwc(xd, xShape), [s.n, s.h, s.h, s.c]);
  const twShape = s.depthwise ? [s.k, s.k, s.c, 1] : [s.k, s.k, s.c, s.o];
  const tw = tfTensor(s.depthwise ? permuteData(wd, wShape, [2, 3, 0, 1]) : oihwToHwio(wd, wShape), twShape);
  const tr = tfTensor(nchwToNhwc(rd, yShape), [s.n, oh, oh, s.o]);
  const pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] =
    s.pad === 0 ? 'valid' : [[0, 0], [s.pad, s.pad], [s.pad, s.pad], [0, 0]];
  const strides: [number, number] = [s.stride, s.stride];
  const theirsRun = (): tf.Tensor => {
    if (pass === 'forward') {
      return s.depthwise ? tf.depthwiseConv2d(tx as tf.Tensor4D, tw as tf.Tensor4D, strides, pad) : tf.conv2d(tx as tf.Tensor4D, tw as tf.Tensor4D, strides, pad);
    }
    const kernel = s.depthwise
      ? (pass === 'backward-data' ? 'DepthwiseConv2dNativeBackpropInput' : 'DepthwiseConv2dNativeBackpropFilter')
      : (pass === 'backward-data' ? 'Conv2DBackpropInput' : 'Conv2DBackpropFilter');
    const inputs: tf.NamedTensorMap = pass === 'backward-data' ? { dy: tr, filter: tw } : { x: tx, dy: tr };
    const attrs = {
      strides, pad, dataFormat: 'NHWC', dilations: [1, 1],
      ...(pass === 'backward-data' ? { inputShape: [s.n, s.h, s.h, s.c] } : { filterShape: tw.shape }),
    };
    return tf.engine().runKernel(kernel, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;
  };

  // Ours: y = conv(x, w), built before each timed backward with output gradient r.
  let y: Tensor | null = null;
  const build = () => {
    y = conv2d(x, w, null, opts);
  };
  const leaf = pass === 'backward-data' ? x : w;
  const release = () => {
    y?.dispose();
    y = null;
    leaf.grad?.dispose();
    leaf.grad = null;
  };
  const oursResult = async (): Promise<Float32Array> => {
    if (pass === 'forward') {
      const y = conv2d(x, w, null, opts);
      const out = await y.data();
      y.dispose();
      return out;
    }
    build();
    y!.backward(r);
    const out = await leaf.grad!.data();
    release();
    return out;
  };

  return {
    ours: pass === 'forward'
      ? { fn: async (pacer) => { tidy(() => { conv2d(x, w, null, opts); }); await syncOurs(pacer); } }
      : {
        beforeEach: async () => { build(); await synchronize(); },
        fn: async (pacer) => { y!.backward(r); await syncOurs(pacer); },
        afterEach: release,
      },
    theirs: { fn: async (pacer) => { const y = theirsRun(); await syncTf(y, pacer); y.dispose(); } },
    check: async () => {
      const got = await oursResult();
      const t = theirsRun();
      const raw = await t.data();
      t.dispose();
      // Bring tfjs's layout to ours: NHWC → NCHW for activations, [kh, kw, in, out] → [out, in, kh, kw] for weights.
      const want = pass === 'backward-weight'
        ? hwioToOihw(raw, twShape, s.depthwise)
        : nhwcToNchw(raw, pass === 'forward' ? [s.n, oh, oh, s.o] : [s.n, s.h, s.h, s.c]);
      // Weight gradients sum over N·OH·OW products.
      const terms = pass === 'backward-weight' ? s.n * oh * oh : cinOf(s) * s.k * s.k;
      return expectClose(`${pass}`, got, want, 1e-3, 2e-5 * Math.sqrt(terms));
    },
    dispose: () => {
      release();
      [x, w, r].forEach((t) => t.dispose());
      [tx, tw, tr].forEach((t) => t.dispose());
    },
  };
}

const cinOf = (s: ConvSpec) => (s.depthwise ? 1 : s.c);

/** [kh, kw, in, out] → [out, in, kh, kw]; a depthwise filter [kh, kw, C, 1] → [C, 1, kh, kw]. */
function hwioToOihw(d: ArrayLike<number>, hwio: number[], depthwise: boolean): Float32Array {
  const [kh, kw, i, o] = hwio;
  const out = new Float32Array(d.length);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      for (let c = 0; c < i; c++) {
        for (let e = 0; e < o; e++) {
          const src = ((a * kw + b) * i + c) * o + e;
          const dst = depthwise ? (c * kh + a) * kw + b : ((e * i + c) * kh + a) * kw + b;
          out[dst] = d[src];
        }
      }
    }
  }
  return out;
}
