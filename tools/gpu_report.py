"""The reports of the GPU run (tools/gpu_run.sh): what the machine is, where a step's time goes, the summary.

    python tools/gpu_report.py env [--standin]        the GPU, CuPy and PyTorch that nbtorch sees
    python tools/gpu_report.py profile [--standin]    where a training step's time goes on the GPU
    python tools/gpu_report.py summary LOG SUFFIX     the run's logs in LOG, summed up

`profile` answers "what bounds it" for the issue's speed goal with figures any machine gives: the
benchmark's MLP and CNN steps at growing batch sizes (a step whose time does not grow with the batch
is bound by launching kernels, not by the GPU's arithmetic), the array operations in a step (each a
kernel launch or more; counted by nbtorch.compile's recording on the CPU), the memory pool's growth
over 20 steps (churn), and
`a + b`'s time on the host and on the GPU (CuPy's `cupyx.profiler.benchmark`). With `--standin` it
runs on the CPU's stand-in GPU (tests/standin.py): a check that it runs; its figures mean nothing.
"""
import os, sys, json, re
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.join(ROOT, 'bench'), os.path.join(ROOT, 'tests')]
import numpy as np
import nbtorch


def _use_standin():
    import standin
    nbtorch.cuda._set_backend(standin.module, standin.extras)


def env():
    xp = nbtorch.cuda._backend() if nbtorch.cuda.is_available() else None
    name = getattr(xp, '__name__', None)
    if name == 'cupy':
        rt = xp.cuda.runtime
        name += (f" {xp.__version__}, CUDA runtime {rt.runtimeGetVersion()}, "
                 f"{rt.getDeviceProperties(0)['name'].decode()}")
    print('nbtorch', nbtorch.__version__, '| GPU backend:', name, '| numpy', np.__version__)
    try:
        import torch
        print('torch', torch.__version__, '| torch.cuda.is_available():', torch.cuda.is_available())
    except ImportError: print('torch: not installed')


class _Counter:
    "Counts calls of `name` in `module` while in a `with` block."
    def __init__(self, module, name): self.module, self.name, self.n = module, name, 0
    def __enter__(self):
        f = self.f = getattr(self.module, self.name)
        def counted(*a, **kw):
            self.n += 1
            return f(*a, **kw)
        setattr(self.module, self.name, counted if not isinstance(f, classmethod) else classmethod(counted))
        return self
    def __exit__(self, *a): setattr(self.module, self.name, self.f)


def profile(standin):
    import bench
    bench.select_device('cuda', standin)
    bench.ROUNDS, bench.QUICK = 5, standin
    xp = bench.xp
    print("step time by batch size (medians of 5 rounds; a time flat in the batch means launch-bound):")
    for name, f in [('MLP', bench.mlp_step), ('CNN', bench.cnn_step)]:
        for batch in ([64] if standin else [64, 256, 1024, 4096]):
            r = f(batch)
            print(f"  {name} batch {batch:5d}: " + ', '.join(f"{k} {v * 1e3:.2f} ms" for k, v in r['median_s'].items())
                  + ' | nbtorch/' + ', '.join(f"{k} {v:.2f}x" for k, v in r['ratio'].items()))
    # the MLP step's array operations, as nbtorch.compile records them on the CPU: on the GPU each one
    # is a kernel launch or more, so their number times a launch's cost is the step's floor
    nn = nbtorch.nn
    def mlp_step(dev):
        nbtorch.manual_seed(0)
        model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                              nn.Linear(128, 10)).to(dev)
        x, y = nbtorch.randn(64, 784, device=dev), nbtorch.randint(0, 10, (64,), device=dev)
        opt, loss_fn = nbtorch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9), nn.CrossEntropyLoss()
        def step():
            opt.zero_grad(); loss_fn(model(x), y).backward(); opt.step()
        return step
    cstep = nbtorch.compile(mlp_step('cpu'))
    for _ in range(3): cstep()
    n = len(cstep.programs[next(reversed(cstep.programs))][0].steps)
    print(f"MLP step (batch 64, SGD with momentum): {n} array operations, each a kernel launch or more")
    step = mlp_step('cuda')
    step(); step()
    pool = getattr(xp, 'get_default_memory_pool', None)
    if pool:
        before = pool().total_bytes()
        for _ in range(20): step()
        xp.cuda.Device().synchronize()
        print(f"memory pool: {before / 2**20:.1f} MiB after 2 steps, {pool().total_bytes() / 2**20:.1f} MiB "
              f"after 22 ({pool().n_free_blocks()} free blocks)")
    try:
        from cupyx.profiler import benchmark
    except ImportError:
        return print("cupyx.profiler: not here (the stand-in)")
    a, b = nbtorch.ones(4, device='cuda'), nbtorch.ones(4, device='cuda')
    for label, f in [('nbtorch a + b', lambda: a + b), ('CuPy a + b', lambda: a._data + b._data)]:
        r = benchmark(f, n_repeat=2000, n_warmup=50)
        print(f"{label}, shape (4,): host {np.mean(r.cpu_times) * 1e6:.1f} µs, GPU {np.mean(r.gpu_times) * 1e6:.1f} µs per call")


def summary(log, suffix):
    def last(name, n=1):
        p = os.path.join(log, name)
        return open(p).read().strip().splitlines()[-n:] if os.path.exists(p) else ['(no log)']
    print(*last('env.txt', 10), sep='\n')
    j = os.path.join(log, 'junit.xml')
    if os.path.exists(j):
        import xml.etree.ElementTree as ET
        cases = list(ET.parse(j).getroot().iter('testcase'))
        bad = [c for c in cases if c.find('failure') is not None or c.find('error') is not None]
        skipped = sum(c.find('skipped') is not None for c in cases)
        gpu = lambda c: re.search(r'\[(.*-)?cuda(-.*)?\]$', c.get('name', '')) is not None
        print(f"tests: {len(cases)} run, {len(cases) - len(bad) - skipped} passed, {skipped} skipped, "
              f"{len(bad)} failed ({sum(map(gpu, bad))} of them on the real GPU, where "
              f"{sum(map(gpu, cases))} ran)")
        for c in bad:
            e = c.find('failure') if c.find('failure') is not None else c.find('error')
            print(f"  {'GPU  ' if gpu(c) else 'other'} {c.get('classname')}::{c.get('name')}: "
                  f"{(e.get('message') or '')[:200]!r}")
    elif os.path.exists(os.path.join(log, 'tests.log')):  # stopped at its limit: count its lines
        lines = open(os.path.join(log, 'tests.log')).read().splitlines()
        seen = {k: [l for l in lines if re.search(rf'\b{k}\b', l) and '::' in l]
               for k in ('PASSED', 'FAILED', 'ERROR', 'SKIPPED')}
        print('tests (no junit.xml: cut short):', ', '.join(f'{len(v)} {k.lower()}' for k, v in seen.items()))
        for l in seen["FAILED"] + seen["ERROR"]: print('  ', l.strip()[:200])
    for name, n in [('tests.log', 2), ('notebooks.log', 4), ('demo.log', 3), ('nccl.log', 6), ('profile.log', 16)]:
        print(f"{name}:", *last(name, n), sep='\n  ')
    r = os.path.join(log, f'results{suffix}.json')
    if os.path.exists(r):
        for b in json.load(open(r))['results']:
            print(f"bench {b['name']}: " + ', '.join(f"{k} {v * 1e3:.3f} ms" for k, v in b['median_s'].items())
                  + ' | ' + ', '.join(f'nb/{k} {v:.2f}x' for k, v in b['ratio'].items()))
    else: print('bench.log:', *last('bench.log', 4), sep='\n  ')


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    if '--standin' in args: _use_standin() if cmd == 'env' else None
    if cmd == 'env': env()
    elif cmd == 'profile': profile('--standin' in args)
    elif cmd == 'summary': summary(*args)
    else: sys.exit(__doc__)
