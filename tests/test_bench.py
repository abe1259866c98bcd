"""The benchmark suite runs end to end, every benchmark once (`--quick`), on the CPU and along the
GPU path (on the stand-in device), and writes its JSON and chart; with MPI, the DDP rows too. Its timings are measured on
purpose, never here."""
import json, subprocess, sys
from pathlib import Path
import pytest

BENCH = Path(__file__).parent.parent / 'bench' / 'bench.py'
try:
    import mpi4py  # noqa: F401
    from nbtorch.distributed import _mpiexec
    MPI = bool(_mpiexec(1))
except (ImportError, RuntimeError):
    MPI = False
try:
    import jax
    JAX = jax.__version__
except ImportError:
    JAX = None


@pytest.mark.parametrize('args, device', [([], 'cpu'), (['--device', 'cuda', '--standin'], 'cuda')],
                         ids=['cpu', 'standin'])
def test_bench_runs_every_benchmark(tmp_path, args, device):
    r = subprocess.run([sys.executable, str(BENCH), '--quick', '--out', str(tmp_path), *args],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (out,) = tmp_path.glob('results*.json')
    res = json.loads(out.read_text())
    assert res['device'] == device and res['baseline'] == ('NumPy' if device == 'cpu' else 'CuPy')
    # the GPU's name for the performance page's heading (the stand-in says what it is)
    assert (res['gpu'] is None) == (device == 'cpu') and (device == 'cpu' or 'stand-in' in res['gpu'])
    names = [b['name'] for b in res['results']]
    for want in ['a + b, shape (4,)', 'chain of 100', 'batch 64', 'batch 512', 'CNN', 'Conv2d(32, 32',
                 'Conv2d(64, 64', 'antialias', '1024x1024', 'LSTM', 'Transformer']:
        assert any(want in n for n in names), f"no benchmark named like {want!r} in {names}"
    assert any('memory' in n for n in names) == (device == 'cpu')  # resident memory is the CPU's
    # nbtorch.compile's rows (the MLP and the CNN) on the CPU, where it replays
    assert sum(n.endswith(', compiled') for n in names) == (2 if device == 'cpu' else 0), names
    if device == 'cpu' and MPI:  # DDP on 1 and 2 processes, the all-reduce against mpi4py's
        ddp = {n: b for b in res['results'] for n in ['DDP MLP', 'DDP CNN', 'all_reduce'] if n in b['name']}
        assert len(ddp) == 3, names
        assert all(t > 0 for k in ('DDP MLP', 'DDP CNN') for t in ddp[k]['processes'].values())
        assert ddp['all_reduce']['median_s']['mpi4py'] > 0 and ddp['all_reduce']['ratio']['mpi4py'] > 0
    for b in res['results']:
        assert b['median_s']['nbtorch'] > 0, b
        # the LSTM and the Transformer have no hand-written baseline; the DDP rows compare processes
        if not any(k in b['name'] for k in ('memory', 'LSTM', 'Transformer', 'DDP', 'all_reduce')):
            assert b['median_s']['numpy'] > 0 and b['ratio']['numpy'] > 0, b
    # JAX's column (the bench extra), on the CPU only: its jitted MLP and CNN steps, when it imports
    steps = [b for b in res['results'] if 'step, batch' in b['name'] and 'DDP' not in b['name']]
    assert res['jax'] == (JAX if device == 'cpu' else None)
    assert all(('jax' in b['median_s']) == bool(res['jax']) for b in steps), steps
    png = tmp_path / out.name.replace('results', 'ratios').replace('.json', '.png')
    assert png.stat().st_size > 1000


def test_performance_page_names_the_gpu(tmp_path, monkeypatch):
    "The docs' performance page gives each results file a section; the GPU's is headed by its name."
    sys.path.insert(0, str(BENCH.parent.parent / 'docs'))
    import build
    row = dict(name='a + b, shape (4,), no grad', median_s=dict(nbtorch=2e-5, pytorch=1e-5, numpy=1e-5),
               ratio=dict(pytorch=2.0, numpy=2.0))
    cpu = dict(threads=2, rounds=21, numpy='2.4', pytorch='2.13', jax=None, device='cpu', gpu=None,
               baseline='NumPy', results=[row])
    gpu = dict(cpu, device='cuda', gpu='NVIDIA H200', cupy='14.2.0', baseline='CuPy', pytorch='2.11+cu130')
    (tmp_path / 'bench' / 'results').mkdir(parents=True)
    for suffix, r in [('', cpu), ('_cuda', gpu)]:
        (tmp_path / 'bench' / 'results' / f'results{suffix}.json').write_text(json.dumps(r))
        (tmp_path / 'bench' / 'results' / f'ratios{suffix}.png').write_bytes(b'png')
    (tmp_path / 'src').mkdir()
    monkeypatch.setattr(build, 'ROOT', tmp_path); monkeypatch.setattr(build, 'SRC', tmp_path / 'src')
    assert build.performance_page() == 'performance'
    page = (tmp_path / 'src' / 'performance.md').read_text()
    print(page)
    assert '## On the CPU' in page and '2 CPU threads each' in page
    assert '## On a GPU: NVIDIA H200' in page and 'CuPy 14.2.0' in page and 'TF32 off' in page
    assert page.count('| a + b, shape (4,), no grad | 20.00 µs') == 2 and '| CuPy |' in page
