"""The GPU check of nbtorch.distributed's NCCL backend (issue 17), for a session with a GPU.

    python tools/gpu_check_distributed.py              # world size 1, on GPU 0 (MPI's singleton start)
    python -m nbtorch.distributed.run --nproc-per-node=N tools/gpu_check_distributed.py  # N GPUs
    python tools/gpu_check_distributed.py --standin    # on a CPU: the stand-in GPU (timings mean nothing)

Needs CuPy with NCCL (`cupy.cuda.nccl`) and mpi4py with an MPI. It checks NCCL's all_reduce (SUM, AVG,
MAX) and broadcast on CUDA tensors against their definition, a DDP step on the GPU against one process
on the CPU on the global batch (1e-5: the GPU's float32 sums differ in order), and prints figures:
all_reduce of 4 MB float32 through NCCL and through MPI via the host (the 'gloo' path), and the DDP
step time of a 4-layer MLP with and without DDP. Exit status 0 when every check holds. Runs in well
under a minute.
"""
import os, sys, json, time
import numpy as np
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from nbtorch import cuda
if '--standin' in sys.argv:
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests'))
    import standin
    cuda._set_backend(standin.module, standin.extras)
import nbtorch as torch, nbtorch.nn as nn, nbtorch.distributed as dist
from nbtorch.nn.parallel import DistributedDataParallel as DDP

fails, figures = [], {}

def sync(): cuda._backend().cuda.get_current_stream().synchronize()

def timed(f, reps):
    "Median seconds of `f()` over `reps` runs, the GPU synchronised around each."
    f(); sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); sync(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def check(name, ok, detail=''):
    print(f"{'ok  ' if ok else 'FAIL'} {name} {detail}", flush=True)
    if not ok: fails.append(name)

if not cuda.is_available(): sys.exit("no GPU: CuPy with a CUDA device is needed (or --standin)")
dev = int(os.environ.get('LOCAL_RANK', 0)) % cuda.device_count()
nccl = dist._nccl()  # cupy.cuda.nccl, or None
print(f"CuPy {'stand-in' if '--standin' in sys.argv else cuda._backend().__version__}, NCCL "
      f"{nccl.get_version() if nccl else 'missing'}, {cuda.device_count()} GPU(s), this rank on "
      f"cuda:{dev}", flush=True)
dist.init_process_group('nccl', device_id=dev)
r, n = dist.get_rank(), dist.get_world_size()
check('NCCL communicator made', dist.GroupMember.WORLD._nccl is not None, f'(world size {n})')
for op, f in [('SUM', np.sum), ('AVG', np.mean), ('MAX', np.max)]:
    x = (torch.arange(1000.) * (r + 1)).cuda(dev)
    dist.all_reduce(x, getattr(dist.ReduceOp, op))
    want = f(np.stack([np.arange(1000.) * (k + 1) for k in range(n)]), 0)
    check(f'all_reduce {op} on the GPU', np.allclose(x.cpu().tolist(), want) and
          cuda._on_gpu(x._data))
x = torch.full((10,), float(r)).cuda(dev)
dist.broadcast(x, src=n - 1)
check('broadcast on the GPU', x.cpu().tolist() == [float(n - 1)] * 10)

big = torch.randn(2 ** 20).cuda(dev)  # 4 MB of float32
t = timed(lambda: dist.all_reduce(big), 50)
figures['nccl_all_reduce_4MB_ms'] = t * 1e3
figures['nccl_all_reduce_4MB_GBps'] = 4 * 2 ** 20 / t / 1e9

# DDP: one step on the GPU against one process on the CPU on the global batch
def mlp(width=1024):
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 10))
torch.manual_seed(1)
X, Y = torch.randn(32 * n, 64), torch.randn(32 * n, 10)
mine = slice(32 * r, 32 * (r + 1))
ddp, ref = DDP(mlp().cuda(dev)), mlp()
o1, o2 = torch.optim.SGD(ddp.parameters(), lr=0.1), torch.optim.SGD(ref.parameters(), lr=0.1)
xs, ys = X[mine].cuda(dev), Y[mine].cuda(dev)
((ddp(xs) - ys) ** 2).mean().backward(); o1.step()
((ref(X) - Y) ** 2).mean().backward(); o2.step()
err = max(float((p.cpu() - q).abs().max()) for p, q in zip(ddp.module.parameters(), ref.parameters()))
check('DDP step on the GPU equals one process on the global batch', err <= 1e-5, f'(max {err:.1e})')
figures['ddp_vs_one_process_max_err'] = err

def step(model, opt):
    opt.zero_grad(); ((model(xs) - ys) ** 2).mean().backward(); opt.step()
plain = mlp().cuda(dev)
o3 = torch.optim.SGD(plain.parameters(), lr=0.1)
figures['mlp_step_ms_plain'] = timed(lambda: step(plain, o3), 20) * 1e3
figures['mlp_step_ms_ddp'] = timed(lambda: step(ddp, o1), 20) * 1e3
dist.destroy_process_group()

# the same all_reduce through MPI and the host: what NCCL saves
dist.init_process_group('gloo')
t = timed(lambda: dist.all_reduce(big), 20)
figures['mpi_host_all_reduce_4MB_ms'] = t * 1e3
dist.destroy_process_group()
print(f"rank {r} figures: " + json.dumps({k: float(f"{v:.4g}") for k, v in figures.items()}), flush=True)
print(f"rank {r}: {'every check holds' if not fails else 'FAILED: ' + ', '.join(fails)}", flush=True)
sys.exit(1 if fails else 0)
