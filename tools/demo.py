"""`make demo`: train an MLP and a CNN on scikit-learn's digits with nbtorch, on the best device available.

Splits the data 70/15/15, trains with a progress bar, keeps the best CNN by validation loss, evaluates it on
the test set, saves it, reloads it and predicts a few test images, and writes the loss curves, the confusion
matrix and the model's autograd graph as images into the folder it names. Its last two lines name the model and
give its test accuracy (`test accuracy: X`). Where the output is not a terminal (a log file, a pipe, CI), it
logs one plain line per epoch instead of progress bars."""
import os, sys, time
from functools import partial
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
import nbtorch as torch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from nbtorch import optim
from nbtorch.utils.data import DataLoader, Generator
from nbtorch.learner import (Learner, MetricsCB, ProgressCB, DeviceCB, SaveBestCB, SchedulerCB, digits_datasets,
                             digits_cnn, get_preds, confusion_matrix, default_device)
from nbtorch.viz import make_dot

out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else 'demo_out')
os.makedirs(out, exist_ok=True)
t0 = time.time()
dev = default_device()
print(f"nbtorch {torch.__version__}: training on {dev}"
      f"{'' if dev.type == 'cuda' else ' (no CUDA GPU with CuPy found; NumPy on the CPU)'}", flush=True)

torch.manual_seed(0)
train_ds, valid_ds, test_ds = digits_datasets()
print(f"digits: {len(train_ds)} train, {len(valid_ds)} valid, {len(test_ds)} test images of 8x8", flush=True)
dls = (DataLoader(train_ds, batch_size=64, shuffle=True, generator=Generator().manual_seed(0)),
       DataLoader(valid_ds, batch_size=256))
test_dl = DataLoader(test_ds, batch_size=256)

class LogProgressCB(ProgressCB):
    "ProgressCB, with its bars only on a terminal: a bar's carriage returns are garbage in a log file."
    def before_fit(self, learn):
        super().before_fit(learn)
        self.live = self.live and sys.stdout.isatty() and sys.stderr.isatty()

def train(name, model, epochs, lr, opt_func):
    print(f"\n{name}: {sum(p.numel() for p in model.parameters()):,} parameters", flush=True)
    ckpt = os.path.join(out, f'{name.lower()}_best.nbt')
    progress = LogProgressCB(leave=False)
    learn = Learner(model, dls, F.cross_entropy, lr=lr, opt_func=opt_func, cbs=[DeviceCB(dev), MetricsCB(), progress])
    learn.fit(epochs, cbs=[SaveBestCB(ckpt), SchedulerCB(lambda o: optim.lr_scheduler.OneCycleLR(
        o, max_lr=lr, total_steps=epochs * len(dls[0])))])
    return learn, progress, ckpt

mlp_learn, mlp_prog, _ = train('MLP', nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)),
                               10, 0.1, partial(optim.SGD, momentum=0.9))
cnn = digits_cnn()
cnn_learn, cnn_prog, ckpt = train('CNN', cnn, 12, 3e-3, partial(optim.AdamW, weight_decay=1e-2))

# the loss curves of both models
fig, axs = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, (name, p) in zip(axs, [('MLP', mlp_prog), ('CNN', cnn_prog)]):
    ax.plot(p.train_losses, label='train (per batch)'); ax.plot(*zip(*p.valid_losses), 'o-', label='valid (per epoch)')
    ax.set_title(f'{name} loss'); ax.set_xlabel('batch'); ax.set_yscale('log'); ax.legend()
plt.tight_layout(); fig.savefig(os.path.join(out, 'loss_curves.png'), dpi=100); plt.close(fig)

# the test set, once: reload the best checkpoint into a fresh model, then evaluate
model = digits_cnn()
cnn_params = sum(p.numel() for p in model.parameters())
model.load_state_dict(torch.load(ckpt))
model.to(dev)
preds, targets = get_preds(model, test_dl, dev)
acc = (preds.argmax(1) == targets).float().mean().item()
mlp_preds, _ = get_preds(mlp_learn.model, test_dl, dev)
print(f"\nMLP test accuracy {(mlp_preds.argmax(1) == targets).float().mean().item():.4f}")

cm = confusion_matrix(preds, targets, 10)
fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(cm.numpy(), cmap='Blues')
for i in range(10):
    for j in range(10):
        if cm[i, j].item(): ax.text(j, i, cm[i, j].item(), ha='center', va='center', fontsize=8)
ax.set_xlabel('predicted'); ax.set_ylabel('true'); ax.set_xticks(range(10)); ax.set_yticks(range(10))
ax.set_title(f'CNN confusion matrix, test accuracy {acc:.4f}')
fig.savefig(os.path.join(out, 'confusion_matrix.png'), dpi=100); plt.close(fig)

x1 = test_ds[0][0].unsqueeze(0).to(dev)
graph = make_dot(F.cross_entropy(model(x1), test_ds[0][1].unsqueeze(0).to(dev)), params=dict(model.named_parameters()))
for fmt in ('svg', 'png'):
    with open(os.path.join(out, f'model_graph.{fmt}'), 'wb') as f: f.write(graph.pipe(format=fmt))

model.eval()
with torch.no_grad(): few = model(torch.stack([test_ds[i][0] for i in range(8)]).to(dev)).argmax(1).tolist()
print("reloaded model predicts", few, "for test digits", [test_ds[i][1].item() for i in range(8)])
print(f"wrote {', '.join(sorted(os.listdir(out)))} to {out} ({time.time() - t0:.1f} s)")
print(f"\nCNN ({cnn_params:,} parameters; its best epoch by validation loss, reloaded from {os.path.basename(ckpt)}):")
print(f"test accuracy: {acc:.4f}")
