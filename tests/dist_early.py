"""Run by tests/test_distributed.py on 2 and 3 ranks: EarlyStoppingCB with DistributedCB cancels the
fit on every rank at the same epoch (the decision rests on metrics every rank holds bit for bit),
so no rank is left waiting in a collective; the ranks end with the same parameters."""
import sys, datetime
import nbtorch as torch, nbtorch.nn as nn, nbtorch.distributed as dist, nbtorch.learner as L
from nbtorch.utils.data import DataLoader, TensorDataset
from nbtorch.nn.parallel import DistributedCB

dist.init_process_group('gloo', timeout=datetime.timedelta(seconds=30))  # a hang fails, not waits
r, n = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
X = torch.randn(90, 4)
Y = (X[:, 0] + X[:, 1] > 0).long()
dls = [DataLoader(TensorDataset(X[:60], Y[:60]), batch_size=8, shuffle=True),
       DataLoader(TensorDataset(X[60:], Y[60:]), batch_size=7)]  # 30 samples: padded shards
model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
# lr 2 and patience 2: the validation loss wanders, and the fit stops early (at epoch 3 of 20)
learn = L.Learner(model, dls, lr=2., cbs=[L.MetricsCB(), L.EarlyStoppingCB(patience=2),
                                          DistributedCB()])
learn.fit(20)
epochs = sum(not h['train'] for h in learn.history)
losses = [h['loss'] for h in learn.history if not h['train']]
print(f"rank {r}: stopped after {epochs} epochs of 20, validation losses {losses}", flush=True)
got = [None] * n
dist.all_gather_object(got, (epochs, losses))
fails = [] if all(g == got[0] for g in got) else [f"rank {r}: the ranks disagree: {got}"]
if epochs >= 20: fails.append(f"rank {r}: no early stop")
w = torch.cat([q.reshape(-1) for q in learn.model.module.parameters()])
ws = [torch.zeros_like(w) for _ in range(n)]
dist.all_gather(ws, w)
if float((ws[0] - ws[-1]).abs().max()) != 0: fails.append(f"rank {r}: ranks differ")
dist.barrier()
dist.destroy_process_group()
if fails: print('\n'.join(fails), flush=True); sys.exit(1)
print(f"rank {r}: early stop agreed", flush=True)
