"""Run by bench.py under `mpiexec -n P`: DDP training steps of the bench's MLP or CNN (batch 64 per
process, one BLAS thread per process), or the all-reduce of a 4 MB float32 tensor through
nbtorch.distributed against mpi4py's Allreduce on a NumPy buffer. Rank 0 prints one JSON line.

    python bench/ddp_step.py mlp|cnn|allreduce ROUNDS NUMBER"""
import os
for v in ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']: os.environ[v] = '1'
import json, statistics, sys, time
import numpy as np
import nbtorch, nbtorch.nn as nn, nbtorch.distributed as dist
from nbtorch.nn.parallel import DistributedDataParallel as DDP


def model(kind):
    nbtorch.manual_seed(0)
    if kind == 'mlp':
        return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                             nn.Linear(128, 10)), (64, 784)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(784, 10)), (64, 1, 28, 28)


def train_step(kind):
    "One DDP step on this rank's batch of 64: forward, backward (gradients averaged), plain SGD."
    net, shape = model(kind)
    ddp = DDP(net)
    rng = np.random.default_rng(dist.get_rank())
    x, y = nbtorch.tensor(rng.standard_normal(shape).astype(np.float32)), \
        nbtorch.tensor(rng.integers(0, 10, shape[0]))
    opt, loss_fn = nbtorch.optim.SGD(ddp.parameters(), lr=0.01), nn.CrossEntropyLoss()
    def step():
        opt.zero_grad()
        loss_fn(ddp(x), y).backward()
        opt.step()
    return {'nbtorch': step}


def allreduce():
    "4 MB of float32 summed over the ranks: nbtorch.distributed, and mpi4py on a NumPy buffer."
    from mpi4py import MPI
    t, a = nbtorch.ones(2 ** 20), np.ones(2 ** 20, np.float32)
    return {'nbtorch': lambda: dist.all_reduce(t),
            'mpi4py': lambda: MPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)}


def main():
    kind, rounds, number = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    dist.init_process_group('gloo')
    impls = allreduce() if kind == 'allreduce' else train_step(kind)
    for f in impls.values(): f(); f()  # warm-up
    times = {k: [] for k in impls}
    for _ in range(rounds):  # interleaved rounds, every rank in step (the barrier)
        for k, f in impls.items():
            dist.barrier()
            t = time.perf_counter()
            for _ in range(number): f()
            times[k].append((time.perf_counter() - t) / number)
    if dist.get_rank() == 0:
        print(json.dumps(dict(world_size=dist.get_world_size(),
                              median_s={k: statistics.median(v) for k, v in times.items()})),
              flush=True)
    dist.destroy_process_group()


if __name__ == '__main__': main()
