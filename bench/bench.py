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


BENCHMARKS = [op_overhead, scalar_overhead]


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
