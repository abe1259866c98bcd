"""Run by tests/test_distributed.py on 2 ranks: a Learner with DistributedCB trains under DDP on a
DistributedSampler; only rank 0 prints and saves checkpoints; the reported validation metrics are the
global ones (those of the final model on the whole validation set); the ranks end equal."""
import os, sys, tempfile
import nbtorch as torch, nbtorch.nn as nn, nbtorch.distributed as dist, nbtorch.learner as L
from nbtorch.utils.data import DataLoader, TensorDataset
from nbtorch.nn.parallel import DistributedCB

dist.init_process_group('gloo')
r = dist.get_rank()
torch.manual_seed(0)
X = torch.randn(96, 4)
Y = (X[:, 0] + X[:, 1] > 0).long()
train, valid = TensorDataset(X[:64], Y[:64]), TensorDataset(X[64:], Y[64:])
dls = [DataLoader(train, batch_size=8, shuffle=True), DataLoader(valid, batch_size=8)]
torch.manual_seed(1 + r)  # different starts: DDP's broadcast makes them equal
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))

saves, real_save = [], L.save
L.save = lambda obj, path: (saves.append(path), real_save(obj, path))
path = os.path.join(sys.argv[1], 'best.pt')
learn = L.Learner(model, dls, lr=0.3, cbs=[L.MetricsCB(), L.ProgressCB(), L.SaveBestCB(path),
                                           DistributedCB()])
print(f"rank {r} says this before fit", flush=True)
learn.fit(3)
print(f"rank {r} saved {len(saves)} checkpoints", flush=True)

net, fails = learn.model.module, []
with torch.no_grad():
    p = net(X[64:])
    want = dict(loss=float(nn.functional.cross_entropy(p, Y[64:])),
                accuracy=float((p.argmax(-1) == Y[64:]).float().mean()))
got = learn.history[-1]
print(f"rank {r} reported valid {got}; on the whole validation set {want}", flush=True)
# SaveBestCB reloads the best epoch: compare with the epoch it was
best = min((h for h in learn.history if not h['train']), key=lambda h: h['loss'])
if not (abs(best['loss'] - want['loss']) < 1e-6 and abs(best['accuracy'] - want['accuracy']) < 1e-6):
    fails.append(f"rank {r}: reported {best}, global {want}")
w = torch.cat([q.reshape(-1) for q in net.parameters()])
ws = [torch.zeros_like(w) for _ in range(dist.get_world_size())]
dist.all_gather(ws, w)
if float((ws[0] - ws[-1]).abs().max()) != 0: fails.append(f"rank {r}: ranks differ")
dist.destroy_process_group()
if fails: print('\n'.join(fails), flush=True); sys.exit(1)
