"""The chapters that look for a GPU run top to bottom where they find one. With tests/fake_gpu on the path,
`import cupy` answers with the stand-in GPU (tests/standin.py), so `torch.cuda.is_available()` is True and
a chapter that picks its device takes the GPU, as on a machine with one. (Found so: 08_distributed asked
for NCCL before defining what finds it, and pinned NCCL's absence.)"""
import json, os, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).parent.parent
ASKS = re.compile(r"is_available\(\)|default_device\(|device_count\(\)")


def _asks_for_a_gpu(p):
    return any(c['cell_type'] == 'code' and ASKS.search(''.join(c['source']))
               for c in json.loads(p.read_text())['cells'])


def _env():
    "This environment, with the fake `cupy` first on the path (and what the path held kept after it)."
    paths = [str(ROOT / 'tests' / 'fake_gpu'), str(ROOT), os.environ.get('PYTHONPATH', '')]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))


NOTEBOOKS = [p for p in sorted((ROOT / 'nbs').glob('*.ipynb')) if _asks_for_a_gpu(p)]


def test_the_fake_cupy_is_the_standin():
    code = "import nbtorch as torch; print(torch.cuda.is_available(), type(torch.ones(2, device='cuda')._data))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=_env(),
                       timeout=120)
    assert r.stdout.strip() == "True <class 'standin.ndarray'>", r.stderr[-2000:]


@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_where_a_gpu_is_found(nb):
    assert len(NOTEBOOKS) >= 6  # 00_cuda, 00_tensor, 00a_ops, 04_training, 08_distributed, 99_package...
    nbdev_test = Path(sys.executable).parent / 'nbdev-test'  # the venv's, else the PATH's
    nbdev_test = str(nbdev_test) if nbdev_test.exists() else shutil.which('nbdev-test')
    r = subprocess.run([nbdev_test, str(nb)], capture_output=True, text=True, env=_env(), cwd=ROOT,
                       timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
