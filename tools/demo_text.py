"""`make demo-text`: sequence models in nbtorch, offline, in under two minutes on two cores.

First an LSTM reads scikit-learn's digits row by row (8 steps of 8 pixels) and classifies them; then
two character-level language models, an LSTM and a small causal Transformer, learn the notebooks'
own prose (data/prose.txt, made by tools/make_corpus.py; the last 10% is held out). Each prints its
loss as it trains, a generated sample, and its bits per character on the held-out text; the last
line is the better model's: `bits per character: X.XX`. With a folder argument it also writes the
loss curves there (loss_curves.png). Everything is seeded: the numbers repeat run to run."""
import os
# Small matrices: one BLAS thread is faster than two fighting over busy cores, and repeatable.
for v in ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']:
    os.environ.setdefault(v, '1')
import math, sys, time
import numpy as np
import nbtorch as torch
import nbtorch.nn as nn
import nbtorch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, 'data', 'prose.txt')


def log(*a): print(*a, flush=True)


# ---- the digits, row by row ----
class RowLSTM(nn.Module):
    "An 8x8 image read as 8 steps of 8 pixels; the last hidden state picks the digit."
    def __init__(self, hidden=32):
        super().__init__()
        self.lstm, self.head = nn.LSTM(8, hidden, batch_first=True), nn.Linear(hidden, 10)
    def forward(self, x): return self.head(self.lstm(x)[1][0][-1])


def digits(seed=0):
    "sklearn's digits as (N, 8 rows, 8 pixels) in [0, 1], split 80/20 (train, test)."
    from sklearn.datasets import load_digits
    d = load_digits()
    x, y = (d.images / 16).astype(np.float32), d.target
    i = np.random.default_rng(seed).permutation(len(x))
    n = int(0.8 * len(x))
    return [(torch.tensor(x[j]), torch.tensor(y[j])) for j in (i[:n], i[n:])]


def train_digits(epochs=6, bs=64, lr=2e-2):
    "Train RowLSTM with Adam; return it and its test accuracy."
    torch.manual_seed(0)
    (xtr, ytr), (xte, yte) = digits()
    model, rng = RowLSTM(), np.random.default_rng(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for ep in range(epochs):
        perm = torch.tensor(rng.permutation(len(xtr)))
        for k in range(0, len(xtr), bs):
            j = perm[k:k + bs]
            loss = F.cross_entropy(model(xtr[j]), ytr[j])
            opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): acc = (model(xte).argmax(1) == yte).float().mean().item()
    return model, acc


# ---- the text ----
def load_text(path=CORPUS, frac=0.9):
    "The corpus, its characters (the vocabulary), and its ids split into train and held-out."
    text = open(path, encoding='ascii').read()
    chars = sorted(set(text))
    codes = np.frombuffer(text.encode('ascii'), np.uint8)
    ids = np.searchsorted(np.array([ord(c) for c in chars]), codes).astype(np.int64)
    n = int(frac * len(ids))
    return text, chars, ids[:n], ids[n:]


def get_batch(ids, T, B, rng):
    "B random windows of T characters (inputs) and the same shifted by one (targets)."
    s = rng.integers(0, len(ids) - T - 1, B)
    w = ids[s[:, None] + np.arange(T + 1)]
    return torch.tensor(w[:, :-1]), torch.tensor(w[:, 1:])


class CharLSTM(nn.Module):
    "Embedding, LSTM, and a linear read-out: the next character's logits at every step."
    def __init__(self, V, emb=32, hidden=128):
        super().__init__()
        self.emb, self.out = nn.Embedding(V, emb), nn.Linear(hidden, V)
        self.lstm = nn.LSTM(emb, hidden, batch_first=True)
    def forward(self, x, state=None):
        h, state = self.lstm(self.emb(x), state)
        return self.out(h), state


def positional_encoding(n, d):
    "The sinusoidal positional encodings of positions 0..n-1, (n, d)."
    pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(n, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe


class CharTransformer(nn.Module):
    "Embedding plus positional encoding, a causal Transformer encoder, and a linear read-out."
    def __init__(self, V, d=64, heads=4, layers=2, ff=128, T=64):
        super().__init__()
        self.emb, self.out, self.d = nn.Embedding(V, d), nn.Linear(d, V), d
        self.register_buffer('pe', positional_encoding(T, d))
        layer = nn.TransformerEncoderLayer(d, heads, ff, dropout=0.0, batch_first=True)
        self.enc = nn.TransformerEncoder(layer, layers)
    def embed(self, x): return self.emb(x) + self.pe[:x.shape[1]]
    def forward(self, x, state=None):
        mask = nn.Transformer.generate_square_subsequent_mask(x.shape[1])
        return self.out(self.enc(self.embed(x), mask=mask, is_causal=True)), None


def bits_per_char(model, ids, T=64, bs=256):
    "Mean cross-entropy, in bits, of each character given the ones before it in its window of T."
    n = (len(ids) - 1) // T
    x, y = ids[:n * T].reshape(n, T), ids[1:n * T + 1].reshape(n, T)
    model.eval()
    tot = 0.0
    with torch.no_grad():
        for k in range(0, n, bs):
            logits, _ = model(torch.tensor(x[k:k + bs]))
            tot += F.cross_entropy(logits.flatten(0, 1), torch.tensor(y[k:k + bs]).flatten(),
                                   reduction='sum').item()
    model.train()
    return tot / (n * T) / math.log(2)


def sample(model, chars, prompt, n=200, T=64, temperature=0.8, seed=0):
    "Continue `prompt` by n characters, each drawn from the model's softmax at `temperature`."
    g = torch.Generator().manual_seed(seed)
    ids = [chars.index(c) for c in prompt]
    model.eval()
    with torch.no_grad():
        logits, state = model(torch.tensor([ids[-T:]]))
        for _ in range(n):
            p = (logits[0, -1] / temperature).softmax(-1)
            ids.append(torch.multinomial(p, 1, generator=g).item())
            if state is None: logits, _ = model(torch.tensor([ids[-T:]]))  # re-read the window
            else: logits, state = model(torch.tensor([[ids[-1]]]), state)   # carry the state
    model.train()
    return ''.join(chars[i] for i in ids)


def train_lm(model, train_ids, valid_ids, steps, T=64, B=32, lr=3e-3, every=25, seed=0,
             quiet=False):
    "AdamW, one-cycle, clipped gradients; return the train losses and (step, held-out loss) pairs."
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    losses, valid, t0 = [], [], time.time()
    vx = valid_ids[:8 * T * 16 + 1]  # a fixed slice of the held-out text, for the curve
    for i in range(1, steps + 1):
        x, y = get_batch(train_ids, T, B, rng)
        logits, _ = model(x)
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        opt.zero_grad(); loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step(); sched.step()
        losses.append(loss.item())
        if i % every == 0 or i == steps:
            valid.append((i, bits_per_char(model, vx, T) * math.log(2)))
            if not quiet:
                log(f"  step {i:4d}/{steps}: train loss {np.mean(losses[-every:]):.3f}, "
                    f"held-out loss {valid[-1][1]:.3f} ({time.time() - t0:.1f} s)")
    return losses, valid


def plot_losses(runs, path):
    "Train (per step) and held-out (every few steps) losses of each model, on one plot."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for (name, (losses, valid)), c in zip(runs.items(), ['tab:blue', 'tab:orange']):
        ax.plot(np.arange(1, len(losses) + 1), losses, c=c, alpha=0.4, lw=0.8, label=f'{name} train')
        ax.plot(*zip(*valid), 'o-', c=c, label=f'{name} held-out')
    ax.set_xlabel('step'); ax.set_ylabel('cross-entropy (nats per character)'); ax.legend()
    fig.tight_layout(); fig.savefig(path, dpi=100); plt.close(fig)


def main():
    t00 = time.time()
    out = sys.argv[1] if len(sys.argv) > 1 else None
    log(f"nbtorch {torch.__version__}: sequence models on the CPU "
        f"({os.environ['OPENBLAS_NUM_THREADS']} BLAS thread(s))")
    t0 = time.time()
    _, acc = train_digits()
    log(f"digits read row by row by an LSTM (8 steps of 8 pixels): test accuracy {acc:.4f} "
        f"({time.time() - t0:.1f} s)")

    text, chars, tr, va = load_text()
    log(f"\ntext: {len(text):,} characters of the notebooks' prose ({CORPUS}), {len(chars)} "
        f"distinct; {len(tr):,} train, {len(va):,} held-out; uniform guessing: "
        f"{math.log2(len(chars)):.2f} bits per character")
    runs, bpc = {}, {}
    for name, make, lr in [('LSTM', CharLSTM, 1e-2), ('Transformer', CharTransformer, 5e-3)]:
        torch.manual_seed(0)
        model, steps = make(len(chars)), STEPS[name]
        log(f"\n{name}: {sum(p.numel() for p in model.parameters()):,} parameters, {steps} steps "
            f"of 32 windows of 64 characters")
        t0 = time.time()
        runs[name] = train_lm(model, tr, va, steps, lr=lr)
        t1 = time.time()
        bpc[name] = bits_per_char(model, va)
        log(f"{name}: trained in {t1 - t0:.1f} s; held-out bits per character {bpc[name]:.3f} "
            f"(evaluated in {time.time() - t1:.1f} s)")
        log(f"{name} sample:\n" + sample(model, chars, 'The ', 160) + '\n')
    if out:
        os.makedirs(out, exist_ok=True)
        plot_losses(runs, os.path.join(out, 'loss_curves.png'))
        log(f"wrote {os.path.join(out, 'loss_curves.png')}")
    best = min(bpc, key=bpc.get)
    log(f"total {time.time() - t00:.1f} s")
    log(f"best model: {best}")
    log(f"bits per character: {bpc[best]:.2f}")


STEPS = dict(LSTM=300, Transformer=300)  # ~75 s of training on two cores shared with other work (83 s in all)

if __name__ == '__main__': main()
