"""nbtorch.distributed (issue 17): every collective on 2 and 3 ranks started by mpiexec, compared with
its definition (tests/dist_collectives.py); a rank that dies ends the job with an error, not a hang."""
import os, sys, signal, subprocess, textwrap
import pytest

pytest.importorskip('mpi4py')
from nbtorch.distributed import _mpiexec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
try: _mpiexec(1)
except RuntimeError: pytest.skip('mpiexec is missing', allow_module_level=True)


def launch(n, script, *args, timeout=180):
    "Run `script` on `n` ranks; the job's (returncode, output). Killed whole if it outlives `timeout`."
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
