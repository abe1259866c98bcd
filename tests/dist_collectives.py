"""Run by tests/test_distributed.py on 2 and 3 ranks (under mpiexec): every collective of
nbtorch.distributed against its definition. Each rank knows every rank's input (a function of the
rank), so it can compute what each collective must give; mismatches are printed, exit non-zero."""
import sys, numpy as np
import nbtorch as torch, nbtorch.distributed as dist
from nbtorch.distributed import ReduceOp

dist.init_process_group('gloo')
r, n = dist.get_rank(), dist.get_world_size()
fails = []

def data(k, dtype=torch.float32, shape=(2, 3)):
    "Rank k's input: different on every rank, exact in every dtype used."
    return (torch.arange(6, dtype=torch.float64).reshape(2, 3) % 3 + k + 1).to(dtype).reshape(shape)

def check(name, got, want):
    got = np.asarray(got.float().tolist() if isinstance(got, torch.Tensor) else got, float)
    want = np.asarray(want.float().tolist() if isinstance(want, torch.Tensor) else want, float)
    if got.shape != want.shape or not np.allclose(got, want):
        fails.append(f"rank {r}: {name}: got {got.tolist()}, want {want.tolist()}")

def every(dtype=torch.float32):
    "Every rank's input, stacked, as float64."
    return np.stack([np.asarray(data(k, dtype).float().tolist()) for k in range(n)])
defs = {ReduceOp.SUM: lambda a: a.sum(0), ReduceOp.PRODUCT: lambda a: a.prod(0),
        ReduceOp.MIN: lambda a: a.min(0), ReduceOp.MAX: lambda a: a.max(0),
        ReduceOp.AVG: lambda a: a.mean(0)}
for dtype in (torch.float32, torch.float64, torch.int64, torch.float16, torch.bfloat16):
    for op, f in defs.items():
        want = f(every(dtype))
        if op is ReduceOp.AVG and not dtype.is_floating_point: want = np.floor(want)
        x = data(r, dtype)
        v = x._version
        dist.all_reduce(x, op=op)
        check(f"all_reduce {op.name} {dtype}", x, want)
        if x._version == v: fails.append(f"all_reduce {dtype}: the version was not bumped")
        check(f"all_reduce dtype {dtype}", [x.dtype == dtype], [True])

x = data(r).t()  # a non-contiguous view: the result must reach the base tensor
base = x._base if x._base is not None else x
dist.all_reduce(x)
check("all_reduce of a transposed view", x, every().sum(0).T)
b = torch.tensor([r == 0, False, True])
dist.all_reduce(b)
check("all_reduce bool (logical or)", b, [True, False, True])

x = data(r)
w = dist.all_reduce(x, op=ReduceOp.MAX, async_op=True)
w.wait()
check("async all_reduce", x, every().max(0))
check("async is_completed", [w.is_completed()], [True])

x = data(r)
dist.reduce(x, dst=n - 1, op=ReduceOp.SUM)
check("reduce", x, every().sum(0) if r == n - 1 else every()[r])
x = data(r)
dist.broadcast(x, src=1)
check("broadcast", x, every()[1])
x = data(r, torch.bfloat16)
dist.broadcast(x, group_src=1, async_op=True).wait()
check("broadcast bfloat16 async", x, every()[1])

outs = [torch.zeros(2, 3) for _ in range(n)]
dist.all_gather(outs, data(r))
check("all_gather", torch.stack(outs), every())
# all_gather with uneven sizes: rank k's tensor has k + 1 rows of 2, all 10 k + column
outs = [torch.zeros(k + 1, 2, dtype=torch.float64) for k in range(n)]
dist.all_gather(outs, torch.tensor([[10. * r, 10. * r + 1]] * (r + 1), dtype=torch.float64))
for k in range(n): check(f"all_gather uneven from {k}", outs[k], [[10. * k, 10. * k + 1]] * (k + 1))
outs = [torch.zeros(k + 2, dtype=torch.bfloat16) for k in range(n)]
dist.all_gather(outs, torch.full((r + 2,), float(r), dtype=torch.bfloat16), async_op=True).wait()
check("all_gather uneven bfloat16 async", torch.cat(outs), np.repeat(np.arange(n), np.arange(n) + 2))
out = torch.zeros(n * 2, 3)
dist.all_gather_into_tensor(out, data(r))
check("all_gather_into_tensor (concatenated)", out, every().reshape(n * 2, 3))
out = torch.zeros(n, 2, 3)
dist.all_gather_into_tensor(out, data(r), async_op=True).wait()
check("all_gather_into_tensor (stacked, async)", out, every())

outs = [torch.zeros(2, 3) for _ in range(n)] if r == 1 else None
dist.gather(data(r), outs, dst=1)
if r == 1: check("gather", torch.stack(outs), every())
x = torch.zeros(2, 3)
dist.scatter(x, [data(k) * 10 for k in range(n)] if r == n - 1 else None, src=n - 1)
check("scatter", x, every()[r] * 10)

ins = [data(r) * (k + 1) for k in range(n)]  # rank r's k-th input
x = torch.zeros(2, 3)
dist.reduce_scatter(x, ins)
check("reduce_scatter", x, every().sum(0) * (r + 1))
x = torch.zeros(2, 3)
dist.reduce_scatter(x, ins, op=ReduceOp.AVG)
check("reduce_scatter AVG", x, every().mean(0) * (r + 1))
x = torch.zeros(2, 3)
dist.reduce_scatter_tensor(x, torch.cat(ins))
check("reduce_scatter_tensor", x, every().sum(0) * (r + 1))

# all_to_all with sizes that differ: rank s sends k + s + 1 values, all 100 s + k, to rank k
ins = [torch.full((k + r + 1,), 100. * r + k) for k in range(n)]
outs = [torch.zeros(r + s + 1) for s in range(n)]
dist.all_to_all(outs, ins)
for s in range(n): check(f"all_to_all from {s}", outs[s], np.full(r + s + 1, 100. * s + r))

# all_to_all_single: rank s sends rows k + s + 1 rows of (100 s + k, -k) to rank k
x = torch.tensor([[100. * r + k, -k] for k in range(n) for _ in range(k + r + 1)])
y = torch.zeros(sum(r + s + 1 for s in range(n)), 2)
dist.all_to_all_single(y, x, [r + s + 1 for s in range(n)], [k + r + 1 for k in range(n)])
check("all_to_all_single uneven", y, [[100. * s + r, -r] for s in range(n) for _ in range(r + s + 1)])
x = torch.arange(n * 2 * 3, dtype=torch.int64).reshape(n * 2, 3) + 1000 * r  # equal blocks
y = torch.zeros(n * 2, 3, dtype=torch.int64)
dist.all_to_all_single(y, x, async_op=True).wait()
check("all_to_all_single equal async", y,
      np.concatenate([(np.arange(n * 6).reshape(n * 2, 3) + 1000 * s)[2 * r:2 * r + 2]
                      for s in range(n)]))

# a ring of send/recv, then irecv from any source
right, left = (r + 1) % n, (r - 1) % n
x = torch.zeros(2, 3)
if r % 2 == 0: dist.send(data(r), right); src = dist.recv(x, left)
else: src = dist.recv(x, left); dist.send(data(r), right)
check("send/recv", x, every()[left])
check("recv's source", [src], [left])
if r == 0:
    got = {dist.recv(y := torch.zeros(1)): y.item() for _ in range(n - 1)}
    check("recv from any source", sorted(got.items()), [(s, float(s)) for s in range(1, n)])
else: dist.isend(torch.tensor([float(r)]), 0).wait()
dist.barrier()

g = dist.new_group([0, n - 1])
x = data(r)
dist.all_reduce(x, group=g)
if r in (0, n - 1):
    check("all_reduce in new_group", x, every()[0] + every()[n - 1])
    check("rank in new_group", [dist.get_rank(g), dist.get_world_size(g)], [0 if r == 0 else 1, 2])
else:
    check("non-member untouched", x, every()[r])
    check("non-member rank", [dist.get_rank(g), dist.get_world_size(g)], [-1, -1])

objs = [{'from': r}, 'x'] if r == 1 else [None, None]
dist.broadcast_object_list(objs, src=1)
check("broadcast_object_list", [objs == [{'from': 1}, 'x']], [True])
got = [None] * n
dist.all_gather_object(got, ('rank', r))
check("all_gather_object", [got == [('rank', k) for k in range(n)]], [True])
got = [None] * n if r == 0 else None
dist.gather_object(r * r, got, dst=0)
if r == 0: check("gather_object", got, [k * k for k in range(n)])
out = [None]
dist.scatter_object_list(out, [f"to {k}" for k in range(n)] if r == 0 else None, src=0)
check("scatter_object_list", [out == [f"to {r}"]], [True])

for bad, msg in [(lambda: dist.all_gather([torch.zeros(3)], data(r)), 'one for each'),
                 (lambda: dist.gather(data(r), [torch.zeros(2, 3)] * n, dst=(r + 1) % n),
                  'must NOT be specified'),
                 (lambda: dist.all_reduce(data(r), group=object()), 'Invalid process group'),
                 (lambda: dist.all_gather([torch.zeros(9)] * n, data(r)), 'receives'),
                 (lambda: dist.all_to_all_single(torch.zeros(n + 1), torch.zeros(n + 1)),
                  'equal parts'),
                 (lambda: dist.all_to_all_single(torch.zeros(n), torch.zeros(n), None, [n] * n),
                  'summing to dim 0'),
                 (lambda: dist.broadcast(data(r), src=n), 'does not contain global rank')]:
    try: bad(); fails.append(f"no error for {msg}")
    except (ValueError, TypeError) as e:
        if msg not in str(e): fails.append(f"error {e!r} does not say {msg!r}")

dist.destroy_process_group()
if fails: print('\n'.join(fails), flush=True); sys.exit(1)
print(f"rank {r} of {n}: every collective as defined", flush=True)
