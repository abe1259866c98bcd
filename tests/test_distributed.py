"""nbtorch.distributed (issue 17): every collective on 2 and 3 ranks started by mpiexec, compared
with its definition (tests/dist_collectives.py); DDP against one process (tests/dist_ddp.py);
SyncBatchNorm against BatchNorm on the global batch (tests/dist_syncbn.py); the Learner's
DistributedCB (tests/dist_learner.py) and with EarlyStoppingCB (tests/dist_early.py); the NCCL
backend's code path on the stand-in GPU (tests/dist_nccl.py); timeouts; the launcher; a rank that
dies ends the job with an error, not a hang."""
import os, sys, signal, subprocess, textwrap
import pytest

pytest.importorskip('mpi4py')
from nbtorch.distributed import _mpiexec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
try: _mpiexec(1)
except RuntimeError: pytest.skip('mpiexec is missing', allow_module_level=True)


def launch(n, script, *args, timeout=180):
    "Run `script` on `n` ranks: the job's (returncode, output); killed if it outlives `timeout`."
    cmd, env = _mpiexec(n)
    env['PYTHONPATH'] = os.pathsep.join([ROOT, env.get('PYTHONPATH', '')])
    p = subprocess.Popen(cmd + [sys.executable, str(script), *map(str, args)], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try: out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # mpiexec and every rank it started
        p.communicate()
        pytest.fail(f"{n} ranks of {script} still ran after {timeout} s: a hang")
    return p.returncode, out


@pytest.mark.parametrize('n', [2, 3])
def test_every_collective_matches_its_definition(n):
    rc, out = launch(n, os.path.join(HERE, 'dist_collectives.py'))
    assert rc == 0, out
    assert out.count('every collective as defined') == n, out


@pytest.mark.parametrize('n', [2, 3])
def test_ddp_matches_one_process_on_the_global_batch(n):
    rc, out = launch(n, os.path.join(HERE, 'dist_ddp.py'))
    assert rc == 0, out
    assert out.count('max |DDP - one process|') == 3 * n, out


@pytest.mark.parametrize('n', [2, 3])
def test_syncbatchnorm_matches_batchnorm_on_the_global_batch(n):
    rc, out = launch(n, os.path.join(HERE, 'dist_syncbn.py'))
    assert rc == 0, out
    assert out.count('max |SyncBatchNorm - BatchNorm on the global batch|') == 2 * n, out
    assert out.count('large mean: relative error') == n, out


def test_learner_with_distributedcb_on_two_ranks(tmp_path):
    rc, out = launch(2, os.path.join(HERE, 'dist_learner.py'), tmp_path)
    assert rc == 0, out
    assert out.count('epoch 2: train loss') == 1, out  # rank 0 alone prints the epochs
    assert 'rank 0 saved 3 checkpoints' in out and 'rank 1 saved 0 checkpoints' in out, out
    assert out.count('before fit') == 2 and (tmp_path / 'best.pt').exists(), out


@pytest.mark.parametrize('n', [2, 3])
def test_nccl_backend_code_path_on_the_standin_gpu(n):
    # tests/standin.py's fake cuda.nccl carries NCCL's calls over mpi4py on host memory
    rc, out = launch(n, os.path.join(HERE, 'dist_nccl.py'))
    assert rc == 0 and out.count('NCCL path as defined') == n, out
    assert out.count('parameters on the device: True') == n, out


def test_gpu_check_script_runs_on_the_standin():
    # tools/gpu_check_distributed.py is what a session with a GPU runs; here it must at least run
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'gpu_check_distributed.py'),
                          '--standin'], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and 'every check holds' in out.stdout, out.stdout + out.stderr
    assert 'nccl_all_reduce_4MB_ms' in out.stdout, out.stdout


@pytest.mark.parametrize('n', [2, 3])
def test_early_stopping_cancels_the_fit_on_every_rank_at_the_same_epoch(n):
    rc, out = launch(n, os.path.join(HERE, 'dist_early.py'), timeout=120)
    assert rc == 0 and out.count('early stop agreed') == n, out
    assert out.count('stopped after 3 epochs of 20') == n, out


DIES = '''
import os, signal, time, nbtorch as torch, nbtorch.distributed as dist
dist.init_process_group('gloo')
x = torch.ones(1000)
dist.all_reduce(x)                  # everybody is up and connected
if dist.get_rank() == 1:
    time.sleep(0.5)                 # the others are waiting inside the next all_reduce
    if '{how}' == 'exit': os._exit(1)
    os.kill(os.getpid(), signal.SIGKILL)
dist.all_reduce(x)
dist.barrier()
print('should not finish', flush=True)
'''

@pytest.mark.parametrize('how', ['exit', 'kill'])
def test_a_dead_rank_fails_the_job_without_hanging(tmp_path, how):
    script = tmp_path / 'dies.py'
    script.write_text(textwrap.dedent(DIES.format(how=how)))
    rc, out = launch(3, script, timeout=90)
    assert rc != 0 and 'should not finish' not in out, out


SKIPS = '''
import sys, time, datetime, nbtorch as torch, nbtorch.distributed as dist
two = datetime.timedelta(seconds=2)
dist.init_process_group('gloo', timeout=two if sys.argv[1] == 'world' else None)
g = dist.new_group([0, 1], timeout=two) if sys.argv[1] == 'group' else None
x = torch.ones(10)
dist.all_reduce(x, group=g)          # everybody joins this one
if dist.get_rank() == 1: time.sleep(60)  # ... and rank 1 skips the next
t = time.monotonic()
try: dist.all_reduce(x, group=g)
except dist.DistBackendError as e:
    print(f'rank 0 gave up after {time.monotonic() - t:.1f} s:', isinstance(e, RuntimeError), e,
          flush=True)
    raise
print('should not finish', flush=True)
'''

@pytest.mark.parametrize('where', ['world', 'group'])
def test_a_collective_a_rank_skips_times_out(tmp_path, where):
    import time
    script = tmp_path / 'skips.py'
    script.write_text(SKIPS)
    t = time.monotonic()
    rc, out = launch(2, script, where, timeout=50)
    assert rc != 0 and 'should not finish' not in out and time.monotonic() - t < 40, out
    assert 'rank 0 gave up after 2.' in out and 'True [Rank 0] collective operation timeout: ' \
        'ALLREDUCE (Timeout(ms)=2000)' in out, out


def test_an_exception_on_one_rank_fails_the_job_under_plain_mpiexec(tmp_path):
    # without the abort, rank 1 would wait in MPI_Finalize and the others in all_reduce, forever
    script = tmp_path / 'raises.py'
    script.write_text(textwrap.dedent('''
        import nbtorch as torch, nbtorch.distributed as dist
        dist.init_process_group('gloo')
        if dist.get_rank() == 1: raise RuntimeError('rank 1 raises')
        dist.all_reduce(torch.ones(1))'''))
    rc, out = launch(2, script, timeout=90)
    assert rc != 0 and 'rank 1 raises' in out, out


def test_world_of_one_without_a_launcher(tmp_path):
    # plain `python script.py`: MPI's singleton start, a world of one
    script = tmp_path / 'one.py'
    script.write_text(textwrap.dedent('''
        import nbtorch as torch, nbtorch.distributed as dist
        dist.init_process_group()
        x = torch.ones(3)
        dist.all_reduce(x, op=dist.ReduceOp.AVG)
        print(dist.get_rank(), dist.get_world_size(), x.tolist())'''))
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.split('\n')[0] == '0 1 [1.0, 1.0, 1.0]', out.stderr


RANKED = '''
import os, sys, time, nbtorch as torch, nbtorch.distributed as dist
dist.init_process_group('gloo')
e, r = os.environ, dist.get_rank()
assert (int(e['RANK']), int(e['WORLD_SIZE'])) == (r, dist.get_world_size()), dict(e)
assert (e['LOCAL_RANK'], e['LOCAL_WORLD_SIZE'], e['MASTER_ADDR']) == (str(r), '3', '127.0.0.1')
open(os.path.join(sys.argv[2], f'{os.getpid()}.pid'), 'w').close()
if sys.argv[1] == 'fail' and r == 1: raise SystemExit('rank 1 fails')
if sys.argv[1] == 'sleep': time.sleep(120)
dist.all_reduce(torch.ones(1))
print(f'rank {r} done', flush=True)
'''

def run_launcher(tmp_path, mode, on_start=None, timeout=120):
    script = tmp_path / 'ranked.py'
    script.write_text(RANKED)
    env = dict(os.environ, PYTHONPATH=ROOT)
    p = subprocess.Popen([sys.executable, '-m', 'nbtorch.distributed.run', '--nproc-per-node=3',
                          str(script), mode, str(tmp_path)], env=env, text=True,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    if on_start: on_start(p)
    try: out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.terminate()  # the launcher forwards it to mpiexec, which ends the ranks
        try: p.wait(15)
        finally: os.killpg(p.pid, signal.SIGKILL)
        pytest.fail(f"the launcher still ran after {timeout} s: a hang")
    return p.returncode, out


def test_launcher_sets_torchruns_variables_and_passes_arguments(tmp_path):
    rc, out = run_launcher(tmp_path, 'ok')
    assert rc == 0 and sorted(l for l in out.splitlines() if 'done' in l) == [
        f'rank {r} done' for r in range(3)], out


def test_launcher_fails_when_a_rank_fails(tmp_path):
    rc, out = run_launcher(tmp_path, 'fail', timeout=90)
    assert rc != 0 and 'rank 1 fails' in out, out


def test_launcher_forwards_sigterm_and_the_ranks_end(tmp_path):
    import time
    def terminate_when_up(p):
        for _ in range(600):  # wait until the three ranks have started
            if len(list(tmp_path.glob('*.pid'))) == 3: break
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
    t = time.monotonic()
    rc, out = run_launcher(tmp_path, 'sleep', terminate_when_up, timeout=90)
    assert rc != 0 and time.monotonic() - t < 80, out
    pids = [int(f.stem) for f in tmp_path.glob('*.pid')]
    for _ in range(100):  # no rank is left running (a zombie waiting for its reaper has ended)
        if not any(running(pid) for pid in pids): break
        time.sleep(0.1)
    assert not [pid for pid in pids if running(pid)]


def running(pid):
    try:
        with open(f'/proc/{pid}/stat') as f: return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError: return False
    except OSError:  # no /proc: ask the kernel
        try: os.kill(pid, 0)
        except ProcessLookupError: return False
        return True
