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


BENCHMARKS = [op_overhead, scalar_overhead, grad_chain, mlp_step]


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
