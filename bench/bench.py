"""nbtorch against PyTorch (CPU) and hand-written NumPy, measured in one process, interleaved.

Each benchmark has up to three implementations of the same work. They run in rounds, one after the
other within a round, so that drift of the machine hits all alike; each round times many calls, and the
table shows the median per call and the ratios nbtorch/PyTorch and nbtorch/NumPy, paired per round.
Run with `make bench`; `--json FILE` also writes the figures."""
import os
THREADS = os.environ.setdefault('NBTORCH_BENCH_THREADS', '2')
for v in ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']: os.environ[v] = THREADS

import argparse, json, statistics, sys, time
import numpy as np
import nbtorch

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:
    torch = None


def timeit(f, number):
    t = time.perf_counter()
    for _ in range(number): f()
    return (time.perf_counter() - t) / number


def run(name, impls, number, rounds=7):
    "Median seconds per call of each implementation, and the ratios paired per round."
    impls = {k: v for k, v in impls.items() if v is not None}
    for f in impls.values(): f(); f()  # warm-up
    times = {k: [] for k in impls}
    for _ in range(rounds):
        for k, f in impls.items(): times[k].append(timeit(f, number))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {o: statistics.median(a / b for a, b in zip(times['nbtorch'], times[o]))
             for o in impls if o != 'nbtorch'}
    return dict(name=name, median_s=med, ratio=ratio)


def op_overhead():
    "`a + b` on shape (4,): nbtorch's own cost per op."
    a, b = nbtorch.ones(4), nbtorch.ones(4)
    na, nb = np.ones(4, np.float32), np.ones(4, np.float32)
    ta, tb = (torch.ones(4), torch.ones(4)) if torch else (None, None)
    return run('a + b, shape (4,), no grad', dict(nbtorch=lambda: a + b, numpy=lambda: na + nb,
               pytorch=(lambda: ta + tb) if torch else None), number=20000)


def scalar_overhead():
    "`a * 2.0`: an op with a Python number."
    a, na = nbtorch.ones(4), np.ones(4, np.float32)
    ta = torch.ones(4) if torch else None
    return run('a * 2.0, shape (4,), no grad', dict(nbtorch=lambda: a * 2.0, numpy=lambda: na * 2.0,
               pytorch=(lambda: ta * 2.0) if torch else None), number=20000)


def grad_chain():
    "`a + b` with requires_grad: a chain of 100 adds, then backward; the time is per op."
    def make(lib):
        a = lib.ones(4, requires_grad=True)
        b = lib.ones(4, requires_grad=True)
        def f():
            y = a
            for _ in range(100): y = y + b
            y.sum().backward()
            a.grad = b.grad = None
        return f
    def numpy_chain():  # the same arithmetic by hand: 100 adds forward, 100 gradient passes back
        a, b = np.ones(4, np.float32), np.ones(4, np.float32)
        y = a
        for _ in range(100): y = y + b
        g, gb = np.ones(4, np.float32), np.zeros(4, np.float32)
        for _ in range(100): gb = gb + g
    r = run('a + b with grad, chain of 100 + backward', dict(nbtorch=make(nbtorch), numpy=numpy_chain,
            pytorch=make(torch) if torch else None), number=200)
    r['median_s'] = {k: v / 100 for k, v in r['median_s'].items()}  # per op
    r['name'] += ' (per op)'
    return r


def _mlp_data(batch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    ws = [(rng.standard_normal((i, o)) / np.sqrt(i)).astype(np.float32) for i, o in [(784, 256), (256, 128), (128, 10)]]
    return x, y, ws


def mlp_step(batch=64):
    "An MLP 784-256-128-10 training step written with tensor ops: forward, cross-entropy, backward, SGD."
    x, y, ws = _mlp_data(batch)
    def make(lib):
        X, Y = lib.tensor(x), lib.tensor(y)
        W = [lib.tensor(w, requires_grad=True) for w in ws]
        B = [lib.zeros(w.shape[1], requires_grad=True) for w in ws]
        def step():
            h = X
            for i, (w, b) in enumerate(zip(W, B)):
                h = h @ w + b
                if i < 2: h = h.relu()
            loss = -h.log_softmax(1).gather(1, Y[:, None]).mean()
            loss.backward()
            with lib.no_grad():
                for p in W + B:
                    p -= 0.01 * p.grad
                    p.grad = None
        return step
    W = [w.copy() for w in ws]; B = [np.zeros(w.shape[1], np.float32) for w in ws]
    def numpy_step():
        hs = [x]
        for i, (w, b) in enumerate(zip(W, B)):
            z = hs[-1] @ w + b
            hs.append(np.maximum(z, 0) if i < 2 else z)
        z = hs[-1] - hs[-1].max(1, keepdims=True)
        p = np.exp(z); p /= p.sum(1, keepdims=True)
        p[np.arange(batch), y] -= 1
        g = p / batch
        for i in (2, 1, 0):
            gw, gb = hs[i].T @ g, g.sum(0)
            if i: g = (g @ W[i].T) * (hs[i] > 0)
            W[i] -= 0.01 * gw; B[i] -= 0.01 * gb
    return run(f'MLP 784-256-128-10 step, batch {batch}', dict(nbtorch=make(nbtorch), numpy=numpy_step,
               pytorch=make(torch) if torch else None), number=20)


def _np_conv(x, w, b):
    "3x3 convolution, padding 1, by im2col: the output and the rows (kept for backward)."
    N, C, H, W = x.shape
    win = np.lib.stride_tricks.sliding_window_view(np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))), (3, 3), axis=(2, 3))
    rows = win.transpose(0, 2, 3, 1, 4, 5).reshape(N * H * W, C * 9)
    y = (rows @ w.reshape(len(w), -1).T + b).reshape(N, H, W, -1).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(y), rows


def _np_conv_back(g, rows, w, xshape, need_gx):
    N, C, H, W = xshape
    g2 = g.transpose(0, 2, 3, 1).reshape(-1, len(w))
    gw, gb = (g2.T @ rows).reshape(w.shape), g2.sum(0)
    if not need_gx: return None, gw, gb
    cols = (g2 @ w.reshape(len(w), -1)).reshape(N, H, W, C, 3, 3)
    gx = np.zeros((N, C, H + 2, W + 2), np.float32)
    for i in range(3):
        for j in range(3): gx[:, :, i:i + H, j:j + W] += cols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return gx[:, :, 1:-1, 1:-1], gw, gb


def _np_pool(x):
    N, C, H, W = x.shape
    r = x.reshape(N, C, H // 2, 2, W // 2, 2)
    y = r.max((3, 5))
    return y, (r == y[:, :, :, None, :, None])


def cnn_step(batch=64):
    "CNN Conv2d(1,8,3,p1)-ReLU-MaxPool2-Conv2d(8,16,3,p1)-ReLU-MaxPool2-Linear(784,10), one SGD step."
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    def make(lib):
        lib.manual_seed(0)
        nn = lib.nn
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3, padding=1),
                              nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(784, 10))
        X, Y, loss_fn = lib.tensor(x), lib.tensor(y), nn.CrossEntropyLoss()
        params = list(model.parameters())
        def step():
            loss = loss_fn(model(X), Y)
            loss.backward()
            with lib.no_grad():
                for p in params:
                    p -= 0.01 * p.grad
                    p.grad = None
        return step
    w1, b1 = rng.standard_normal((8, 1, 3, 3)).astype(np.float32) / 3, np.zeros(8, np.float32)
    w2, b2 = rng.standard_normal((16, 8, 3, 3)).astype(np.float32) / 8, np.zeros(16, np.float32)
    w3, b3 = rng.standard_normal((784, 10)).astype(np.float32) / 28, np.zeros(10, np.float32)
    def numpy_step():
        z1, r1 = _np_conv(x, w1, b1); a1 = np.maximum(z1, 0); p1, m1 = _np_pool(a1)
        z2, r2 = _np_conv(p1, w2, b2); a2 = np.maximum(z2, 0); p2, m2 = _np_pool(a2)
        f = p2.reshape(batch, -1); logits = f @ w3 + b3
        e = np.exp(logits - logits.max(1, keepdims=True)); pr = e / e.sum(1, keepdims=True)
        pr[np.arange(batch), y] -= 1; g = pr / batch
        gw3, gb3, gf = f.T @ g, g.sum(0), g @ w3.T
        gp2 = gf.reshape(p2.shape)
        ga2 = (m2 * gp2[:, :, :, None, :, None]).reshape(a2.shape) * (z2 > 0)
        gp1, gw2, gb2 = _np_conv_back(ga2, r2, w2, p1.shape, True)
        ga1 = (m1 * gp1[:, :, :, None, :, None]).reshape(a1.shape) * (z1 > 0)
        _, gw1, gb1 = _np_conv_back(ga1, r1, w1, x.shape, False)
        for p, gp in [(w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2), (w3, gw3), (b3, gb3)]: p -= 0.01 * gp
    return run(f'CNN step, batch {batch}', dict(nbtorch=make(nbtorch), numpy=numpy_step,
               pytorch=make(torch) if torch else None), number=5)


BENCHMARKS = [op_overhead, scalar_overhead, grad_chain, mlp_step, cnn_step]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--json', help='also write the results to this JSON file')
    args = p.parse_args()
    print(f"threads: {THREADS} each (BLAS via env, torch.set_num_threads); "
          f"PyTorch {'%s' % torch.__version__ if torch else 'not installed'}; NumPy {np.__version__}")
    print(f"{'benchmark':<34}{'nbtorch':>11}{'PyTorch':>11}{'NumPy':>11}{'nb/PT':>8}{'nb/NP':>8}")
    results = []
    for b in BENCHMARKS:
        r = b(); results.append(r)
        m, q = r['median_s'], r['ratio']
        cell = lambda k: f"{m[k] * 1e6:9.2f}µs" if k in m else f"{'-':>11}"
        rat = lambda k: f"{q[k]:8.2f}" if k in q else f"{'-':>8}"
        print(f"{r['name']:<34}{cell('nbtorch')}{cell('pytorch')}{cell('numpy')}{rat('pytorch')}{rat('numpy')}")
    if args.json:
        with open(args.json, 'w') as f: json.dump(dict(threads=int(THREADS), results=results), f, indent=1)


if __name__ == '__main__': main()
