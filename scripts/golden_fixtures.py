"""Writes the golden fixtures of test/golden.test.ts: what the reference models compute in PyTorch.

The reference models are torchvision's ResNets and EfficientNet-PyTorch's `EfficientNet.from_name`
(pip package `efficientnet_pytorch`, or its source on PYTHONPATH). Weights, inputs and targets come
from the same integer hash as test/golden/golden.ts, so no weight file is stored; every model runs
in float64 so the fixtures hold the exact math that our float32 kernels are compared against.

    python3 scripts/golden_fixtures.py test/fixtures/golden.json

--large adds EfficientNet-B6 training at 528 px and its eval at 1024 px, too slow for the CPU
driver; check them on a GPU with `GOLDEN_FIXTURES=OUT.json npx vitest run test/golden.test.ts`.
"""
import json
import math
import sys

import numpy as np
import torch
import torchvision
import efficientnet_pytorch
from efficientnet_pytorch import EfficientNet

HEAD = 8
M32 = 0xFFFFFFFF

# Adam's eps is 1e-6, not 1e-8: some gradients are zero in exact arithmetic (a bias followed by
# batch norm) and hold float32 rounding noise of about 1e-9 here, which eps 1e-8 would turn into
# full-size steps. seed and frozenBn: see golden.ts.
ADAM = dict(name='adam', lr=1e-3, eps=1e-6, weightDecay=1e-5)
SPECS = [
    dict(model='resnet18', seed=1, numClasses=14, input=[2, 3, 64, 64], steps=2, optimizer=ADAM),
    dict(model='resnet50', seed=2, numClasses=14, input=[2, 3, 64, 64], steps=2, frozenBn=True,
         optimizer=dict(name='sgd', lr=0.01, momentum=0.9, weightDecay=1e-4, nesterov=False)),
    dict(model='efficientnet-b0', seed=1, numClasses=14, input=[2, 3, 64, 64], steps=2, optimizer=ADAM),
    # odd sizes: TF "same" padding is asymmetric at every stride-2 layer
    dict(model='efficientnet-b3', seed=1, numClasses=14, input=[1, 3, 75, 75], steps=2,
         optimizer=dict(name='sgd', lr=0.01, momentum=0.9, weightDecay=0, nesterov=True)),
    dict(model='efficientnet-b6', seed=1, numClasses=14, input=[1, 3, 64, 64], steps=1, frozenBn=True, optimizer=ADAM),
]
LARGE = [
    dict(model='efficientnet-b6', seed=1, numClasses=14, input=[2, 3, 528, 528], steps=1, optimizer=ADAM),
    dict(model='efficientnet-b6', seed=1, numClasses=14, input=[1, 3, 1024, 1024], evalOnly=True),
]


def fnv1a(name):
    h = 0x811C9DC5
    for c in name.encode('ascii'):
        h = ((h ^ c) * 0x01000193) & M32
    return h


def hash_uniform(name, n):
    """n values in [-1, 1): the lowbias32 hash of (i xor seed), as golden.ts's hashUniform."""
    x = np.arange(n, dtype=np.uint64) ^ np.uint64(fnv1a(name))
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x7FEB352D)) & np.uint64(M32)
    x ^= x >> np.uint64(15)
    x = (x * np.uint64(0x846CA68B)) & np.uint64(M32)
    x ^= x >> np.uint64(16)
    return x.astype(np.float64) / 2.0**31 - 1.0


def golden_values(name, shape):
    """golden.ts's goldenValues: float64 arithmetic, then rounded to float32."""
    n = int(np.prod(shape)) if len(shape) else 1
    if name.endswith('num_batches_tracked'):
        return np.zeros(shape, dtype=np.int64)
    u = hash_uniform(name, n)
    if name.endswith('running_var'):
        v = 0.75 + 0.25 * u
    elif name.endswith('running_mean') or name.endswith('bias'):
        v = 0.1 * u
    elif len(shape) == 1:
        v = 0.5 + 0.1 * u
    else:
        v = u * math.sqrt(6 / (n / shape[0]))
    return v.astype(np.float32).reshape(shape)


def build(spec):
    if spec['model'].startswith('resnet'):
        return getattr(torchvision.models, spec['model'])(num_classes=spec['numClasses'])
    return EfficientNet.from_name(spec['model'], num_classes=spec['numClasses'],
                                  image_size=spec.get('imageSize', spec['input'][2]),
                                  dropout_rate=0.0, drop_connect_rate=0.0)


def summary(t):
    d = t.detach().double().flatten().cpu()
    return dict(head=d[:HEAD].tolist(), norm=float(d.norm()), sum=float(d.sum()), numel=d.numel())


def record(spec, device):
    model = build(spec)
    sd = {k: torch.from_numpy(golden_values(k, list(t.shape))) for k, t in model.state_dict().items()}
    model.load_state_dict(sd)
    model = model.double().to(device)
    n = int(np.prod(spec['input']))
    x = torch.from_numpy(hash_uniform(f"input:{spec['seed']}", n).astype(np.float32)).double().reshape(spec['input']).to(device)
    ts = [spec['input'][0], spec['numClasses']]
    y = torch.from_numpy((hash_uniform(f"target:{spec['seed']}", ts[0] * ts[1]) >= 0).astype(np.float64)).reshape(ts).to(device)
    model.eval()
    with torch.no_grad():
        out = dict(spec=spec, evalLogits=model(x).flatten().tolist())
    if spec.get('evalOnly'):
        return out
    o = spec['optimizer']
    if o['name'] == 'adam':
        opt = torch.optim.Adam(model.parameters(), lr=o['lr'], eps=o['eps'], weight_decay=o['weightDecay'])
    else:
        opt = torch.optim.SGD(model.parameters(), lr=o['lr'], momentum=o['momentum'],
                              weight_decay=o['weightDecay'], nesterov=o['nesterov'])
    model.train(not spec.get('frozenBn', False))
    out['losses'] = []
    for step in range(spec.get('steps', 1)):
        opt.zero_grad()
        logits = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss.backward()
        out['losses'].append(loss.item())
        if step == 0:
            out['trainLogits'] = logits.flatten().tolist()
            out['grads'] = {k: summary(p.grad) for k, p in model.named_parameters()}
        opt.step()
    out['after'] = {k: summary(t) for k, t in model.state_dict().items()}
    return out


def main():
    path = sys.argv[1]
    specs = SPECS + (LARGE if '--large' in sys.argv else [])
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    torch.backends.cudnn.deterministic = True
    records = []
    for spec in specs:
        records.append(record(spec, device))
        print(spec['model'], spec['input'], 'eval logits', records[-1]['evalLogits'][:3],
              'losses', records[-1].get('losses'), flush=True)
        with open(path, 'w') as f:
            json.dump(dict(generator='scripts/golden_fixtures.py', torch=torch.__version__,
                           torchvision=torchvision.__version__,
                           efficientnet_pytorch=efficientnet_pytorch.__version__, records=records),
                      f, separators=(',', ':'))


if __name__ == '__main__':
    main()
