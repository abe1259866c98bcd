"""Run by tests/test_distributed.py on 2 and 3 ranks: DistributedDataParallel with
DistributedSampler must give, on every rank, the parameters of one process training on the global
batch (same order), to 1e-6; also with no_sync() gradient accumulation and several buckets; buffers
are broadcast; find_unused_parameters averages with zeros and leaves globally unused grads alone."""
import sys, contextlib, numpy as np
import nbtorch as torch, nbtorch.nn as nn, nbtorch.distributed as dist
from nbtorch.nn.parallel import DistributedDataParallel as DDP
from nbtorch.utils.data import DataLoader, TensorDataset, DistributedSampler

dist.init_process_group('gloo')
r, n = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
X, Y = torch.randn(48, 5), torch.randn(48, 2)
data = TensorDataset(X, Y)
per_rank = 12 // n  # the global batch is 12 samples, whatever the number of ranks

def model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 2))

def step(net, opt, x, y, accumulate=1):
    opt.zero_grad()
    for xs, ys in zip(x.chunk(accumulate), y.chunk(accumulate)):
        (nn.functional.mse_loss(net(xs), ys) / accumulate).backward()
    opt.step()

def ddp_run(accumulate, cap):
    net = DDP(model(seed=100 + r), bucket_cap_mb=cap)  # different seeds: the broadcast must fix it
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    sampler = DistributedSampler(data, n, r, shuffle=True, seed=3)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        for x, y in DataLoader(data, batch_size=per_rank, sampler=sampler):
            opt.zero_grad()
            for i, (xs, ys) in enumerate(zip(x.chunk(accumulate), y.chunk(accumulate))):
                last = i == accumulate - 1
                with net.no_sync() if not last else contextlib.nullcontext():
                    (nn.functional.mse_loss(net(xs), ys) / accumulate).backward()
            opt.step()
    return net.module

def reference(accumulate):
    "One process, the global batch: rank k's s-th batch, for every k, at step s."
    net = model(seed=100)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    samplers = [DistributedSampler(data, n, k, shuffle=True, seed=3) for k in range(n)]
    for epoch in range(2):
        for s in samplers: s.set_epoch(epoch)
        orders = [list(s) for s in samplers]
        for b in range(0, len(orders[0]), per_rank):
            # micro-batch m of the global batch: every rank's m-th chunk of its batch
            chunks = [np.array_split(np.array(o[b:b + per_rank]), accumulate) for o in orders]
            opt.zero_grad()
            for m in range(accumulate):
                ids = torch.tensor(np.concatenate([c[m] for c in chunks]).tolist())
                nn.functional.mse_loss(net(X[ids]), Y[ids]).div(accumulate).backward()
            opt.step()
    return net

fails = []
for accumulate, cap in [(1, 25), (1, 1e-4), (2, 2e-4)]:
    ours, want = ddp_run(accumulate, cap), reference(accumulate)
    err = max(float((a - b).abs().max()) for a, b in zip(ours.parameters(), want.parameters()))
    if not err <= 1e-6: fails.append(f"rank {r}: accumulate={accumulate}, cap={cap}: {err:.2e}")
    print(f"rank {r}: accumulate={accumulate} bucket_cap_mb={cap}: "
          f"max |DDP - one process| = {err:.1e}", flush=True)

bn = nn.BatchNorm1d(3)
bn.running_mean.fill_(float(r))
DDP(nn.Sequential(nn.Linear(3, 3), bn))
if bn.running_mean.tolist() != [0., 0., 0.]: fails.append(f"rank {r}: buffers not broadcast")

class Branches(nn.Module):  # b is used on rank 0 only, c on none
    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Linear(2, 1), nn.Linear(2, 1), nn.Linear(2, 1)
    def forward(self, x, use_b): return self.a(x) + (self.b(x) if use_b else 0)
m = DDP(Branches(), find_unused_parameters=True)
m(torch.ones(1, 2), r == 0).sum().backward()
got = (m.module.a.weight.grad.tolist(), m.module.b.weight.grad.tolist(), m.module.c.weight.grad)
if not (np.allclose(got[0], 1) and np.allclose(got[1], 1 / n) and got[2] is None):
    fails.append(f"rank {r}: find_unused_parameters: {got}")  # b: rank 0's 1 averaged with zeros

dist.destroy_process_group()
if fails: print('\n'.join(fails), flush=True); sys.exit(1)
