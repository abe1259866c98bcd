"""Run by tests/test_distributed.py on 2 ranks: the NCCL backend's code path on the stand-in GPU
(tests/standin.py, whose fake `cuda.nccl` runs NCCL's calls over mpi4py on host memory): the
collectives on 'cuda' tensors against their definition, staying on the device, and a DDP step
against one process on the global batch. The calls counted by the fake show NCCL carried them."""
import sys, numpy as np
import standin
from nbtorch import cuda
cuda._set_backend(standin.module, standin.extras)
import nbtorch as torch, nbtorch.nn as nn, nbtorch.distributed as dist
from nbtorch.distributed import ReduceOp
from nbtorch.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group('nccl')
r, n = dist.get_rank(), dist.get_world_size()
calls, fails = standin.nccl.NcclCommunicator.calls, []

def check(name, got, want):
    if type(got._data) is not standin.ndarray: fails.append(f"rank {r}: {name}: left the device")
    got = np.asarray(got.cpu().float().tolist(), float)
    if got.shape != np.shape(want) or not np.allclose(got, want):
        fails.append(f"rank {r}: {name}: got {got.tolist()}, want {np.asarray(want).tolist()}")

def data(k, dtype=torch.float32): return (torch.arange(6.).reshape(2, 3) + 10 * k).to(dtype).cuda()
every = np.stack([np.arange(6.).reshape(2, 3) + 10 * k for k in range(n)])
for op, f in [(ReduceOp.SUM, np.sum), (ReduceOp.AVG, np.mean), (ReduceOp.MAX, np.max),
              (ReduceOp.PRODUCT, np.prod)]:
    for dtype in (torch.float32, torch.float64, torch.int64):
        x = data(r, dtype)
        dist.all_reduce(x, op)
        check(f"all_reduce {op.name} {dtype}", x, np.floor(f(every, 0)) if op is ReduceOp.AVG and
              dtype is torch.int64 else f(every, 0))
x = data(r).t()  # a non-contiguous view: a contiguous copy goes through NCCL and is written back
dist.all_reduce(x, async_op=True).wait()
check("all_reduce of a transposed view, async", x, every.sum(0).T)
x = data(r); dist.reduce(x, dst=1); check("reduce", x, every.sum(0) if r == 1 else every[r])
x = data(r); dist.broadcast(x, src=1); check("broadcast", x, every[1])
outs = [torch.zeros(2, 3).cuda() for _ in range(n)]
dist.all_gather(outs, data(r)); check("all_gather", torch.stack(outs), every)
outs = [torch.zeros(k + 1).cuda() for k in range(n)]
dist.all_gather(outs, torch.full((r + 1,), float(r)).cuda())
check("all_gather uneven", torch.cat(outs), np.repeat(np.arange(n), np.arange(n) + 1))
out = torch.zeros(n * 2, 3).cuda()
dist.all_gather_into_tensor(out, data(r)); check("all_gather_into_tensor", out, every.reshape(-1, 3))
x = torch.zeros(2, 3).cuda()
dist.reduce_scatter_tensor(x, torch.cat([data(r) * (k + 1) for k in range(n)]))
check("reduce_scatter_tensor", x, every.sum(0) * (r + 1))
dist.reduce_scatter(x, [data(r) * (k + 1) for k in range(n)], op=ReduceOp.AVG)
check("reduce_scatter AVG", x, every.mean(0) * (r + 1))
x = torch.zeros(2, 3).cuda()
if r == 0: dist.send(data(0), 1)
elif r == 1: src = dist.recv(x, 0); check("recv", x, every[0])
# a sub-group of the first and last ranks: an NCCL communicator of its own
before, g = calls.get('allReduce', 0), dist.new_group([0, n - 1])
x = data(r)
dist.all_reduce(x, group=g)
check("all_reduce in new_group", x, every[0] + every[n - 1] if r in (0, n - 1) else every[r])
if r in (0, n - 1) and calls['allReduce'] != before + 1: fails.append("sub-group: not on NCCL")
for name in ('allReduce', 'reduce', 'broadcast', 'allGather', 'reduceScatter'):
    if not calls.get(name): fails.append(f"rank {r}: NCCL's {name} never ran")

# DDP, one step on 'cuda': the same as one process on the global batch (on the CPU)
def model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
torch.manual_seed(1)
X, Y = torch.randn(4 * n, 4), torch.randn(4 * n, 2)
before = dict(calls)
ddp, ref = DDP(model().cuda(), bucket_cap_mb=1e-4), model()  # several buckets
o1, o2 = torch.optim.SGD(ddp.parameters(), lr=0.5), torch.optim.SGD(ref.parameters(), lr=0.5)
mine = slice(4 * r, 4 * (r + 1))
((ddp(X[mine].cuda()) - Y[mine].cuda()) ** 2).mean().backward()
((ref(X) - Y) ** 2).mean().backward()
o1.step(); o2.step()
err = max(float((p.cpu() - q).abs().max()) for p, q in zip(ddp.module.parameters(), ref.parameters()))
on_dev = all(type(p._data) is standin.ndarray for p in ddp.module.parameters())
print(f"rank {r}: NCCL DDP step: max |DDP - one process| = {err:.1e}, parameters on the device: "
      f"{on_dev}, NCCL all-reduces in the step: {calls['allReduce'] - before['allReduce']}",
      flush=True)
if not (err <= 1e-6 and on_dev and calls['allReduce'] > before['allReduce']):
    fails.append(f"rank {r}: NCCL DDP step")
dist.destroy_process_group()
if fails: print('\n'.join(fails), flush=True); sys.exit(1)
print(f"rank {r}: NCCL path as defined ({sum(calls.values())} NCCL calls)", flush=True)
