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
    names = [b['name'] for b in res['results']]
    for want in ['a + b, shape (4,)', 'chain of 100', 'batch 64', 'batch 512', 'CNN', 'Conv2d(32, 32',
                 'Conv2d(64, 64', '1024x1024', 'LSTM', 'Transformer']:
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
