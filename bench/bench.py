"""nbtorch against PyTorch (CPU) and hand-written NumPy, measured in one process, interleaved.

Each benchmark has up to three implementations of the same work. They run in rounds, one after
the other within a round, so that drift of the machine hits all alike; each round times many
calls, and the table shows the median per call and the ratios nbtorch/PyTorch and nbtorch/NumPy,
paired per round. Run with `make bench`; it writes results.json and a bar chart of the ratios
(ratios.png) into bench/results/, which the docs site shows on its performance page.
The DDP rows run bench/ddp_step.py under mpiexec on 1 and 2 processes (step times of the MLP and the
CNN), and time a 4 MB all-reduce through nbtorch.distributed and through mpi4py on NumPy buffers:
they are in the table and the JSON, not in the chart.
The MLP and CNN steps are plain SGD (lr 0.01) from the same weights (nbtorch's initial ones, copied
into PyTorch's model and the hand-written arrays): their first losses and the weights after one step
are checked equal before timing. With JAX installed (the `bench` extra), a JAX column times
`jax.jit` of the same steps. `--only cnn_step,conv` runs the benchmarks whose names contain a part.
`--device cuda` runs the same suite on a GPU: nbtorch on CuPy against PyTorch on CUDA and the
hand-written baseline in CuPy (results_cuda.json, ratios_cuda.png)."""
import os
THREADS = os.environ.setdefault('NBTORCH_BENCH_THREADS', '2')
for v in ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS']: os.environ[v] = THREADS
# Idle OpenMP threads must sleep, not spin: interleaved, one library's spinning threads would
# otherwise take the two cores from the next library's work (and blur every ratio).
os.environ.setdefault('OMP_WAIT_POLICY', 'PASSIVE')

import argparse, json, statistics, sys, time
import numpy as np
import nbtorch

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:
    torch = None

# JAX (the `bench` extra) adds a column: jax.jit of the same MLP and CNN steps, on the CPU
# its CPU thread pool is XLA's own: as many threads as the others get
os.environ.setdefault('XLA_FLAGS', f'--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={THREADS}')
try:
    import jax
    jax.config.update('jax_platforms', 'cpu')
except ImportError:
    jax = None


DEV = TDEV = 'cpu'  # nbtorch's and PyTorch's device (both 'cuda' with --device cuda)
xp = np              # the hand-written baseline's array module: NumPy, or CuPy on a GPU


def sync():
    "Wait for the GPU's queued work (none on the CPU): a timed batch must include it."
    if xp is not np: getattr(xp.cuda.Device(), 'synchronize', lambda: None)()
    if torch is not None and TDEV == 'cuda': torch.cuda.synchronize()


def timeit(f, number):
    sync()
    t = time.perf_counter()
    for _ in range(number): f()
    sync()
    return (time.perf_counter() - t) / number


# Many short rounds: this VM's speed drifts by 10-30% within seconds, and paired ratios cancel it.
ROUNDS = 21
QUICK = False  # --quick: one call, one round (a check that every benchmark runs, no measurement)


def run(name, impls, number, rounds=None):
    "Median seconds per call of each implementation, and the ratios paired per round."
    impls = {k: v for k, v in impls.items() if v is not None}
    rounds = rounds or ROUNDS
    if QUICK: number, rounds = 1, 1
    for f in impls.values(): f(); f()  # warm-up
    times = {k: [] for k in impls}
    for _ in range(rounds):
        for k, f in impls.items(): times[k].append(timeit(f, number))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = {o: statistics.median(a / b for a, b in zip(times['nbtorch'], times[o]))
             for o in impls if o != 'nbtorch'}
    return dict(name=name, median_s=med, ratio=ratio)


def op_overhead():
    "`a + b` on shape (4,): nbtorch's own cost per op."
    a, b = nbtorch.ones(4, device=DEV), nbtorch.ones(4, device=DEV)
    na, nb = xp.ones(4, np.float32), xp.ones(4, np.float32)
    ta, tb = (torch.ones(4, device=TDEV), torch.ones(4, device=TDEV)) if torch else (None, None)
    return run('a + b, shape (4,), no grad', dict(nbtorch=lambda: a + b, numpy=lambda: na + nb,
               pytorch=(lambda: ta + tb) if torch else None), number=20000)


def scalar_overhead():
    "`a * 2.0`: an op with a Python number."
    a, na = nbtorch.ones(4, device=DEV), xp.ones(4, np.float32)
    ta = torch.ones(4, device=TDEV) if torch else None
    return run('a * 2.0, shape (4,), no grad', dict(nbtorch=lambda: a * 2.0, numpy=lambda: na * 2.0,
               pytorch=(lambda: ta * 2.0) if torch else None), number=20000)


def grad_chain():
    "`a + b` with requires_grad: a chain of 100 adds, then backward; the time is per op."
    def make(lib):
        dev = DEV if lib is nbtorch else TDEV
        a = lib.ones(4, requires_grad=True, device=dev)
        b = lib.ones(4, requires_grad=True, device=dev)
        def f():
            y = a
            for _ in range(100): y = y + b
            y.sum().backward()
            a.grad = b.grad = None
        return f
    def numpy_chain():  # the same arithmetic by hand: 100 adds forward, 100 gradient passes back
        a, b = xp.ones(4, np.float32), xp.ones(4, np.float32)
        y = a
        for _ in range(100): y = y + b
        g, gb = xp.ones(4, np.float32), xp.zeros(4, np.float32)
        for _ in range(100): gb = gb + g
    impls = dict(nbtorch=make(nbtorch), numpy=numpy_chain, pytorch=make(torch) if torch else None)
    r = run('a + b with grad, chain of 100 + backward', impls, number=200)
    r['median_s'] = {k: v / 100 for k, v in r['median_s'].items()}  # per op
    r['name'] += ' (per op)'
    return r


def _train_step(lib, model, x, y):
    "One training step as a user writes it, on the device: cross-entropy, plain SGD (lr 0.01)."
    dev = DEV if lib is nbtorch else TDEV
    model = model.to(dev)
    X, Y, loss_fn = lib.tensor(x, device=dev), lib.tensor(y, device=dev), lib.nn.CrossEntropyLoss()
    opt = lib.optim.SGD(model.parameters(), lr=0.01)
    def step():
        opt.zero_grad()
        loss = loss_fn(model(X), Y)
        loss.backward()
        opt.step()
        return loss
    step.params = lambda: [_host(p) for p in model.parameters()]
    return step


def _host(t):
    "An nbtorch or PyTorch tensor's values as a NumPy array, from any device."
    return np.asarray(t.detach().cpu().numpy())


def _same_start(layers, x, y):
    "nbtorch's model at its initial weights (seed 0), PyTorch's given the same, and the arrays."
    nbtorch.manual_seed(0)
    model = nbtorch.nn.Sequential(*layers(nbtorch.nn))
    ps = [_host(p).copy() for p in model.parameters()]
    impls = dict(nbtorch=_train_step(nbtorch, model, x, y))
    if torch is not None:
        tmodel = torch.nn.Sequential(*layers(torch.nn))
        with torch.no_grad():
            for p, a in zip(tmodel.parameters(), ps): p.copy_(torch.from_numpy(a))
        impls['pytorch'] = _train_step(torch, tmodel, x, y)
    return impls, ps


def _float(loss): return float(loss.detach() if hasattr(loss, 'detach') else loss)


def _agree(name, impls):
    "One step of each implementation from the same weights: first losses and new weights agree."
    ref = impls['numpy']
    l0, p0 = _float(ref()), ref.params()
    for k, f in impls.items():
        if k == 'numpy': continue
        loss, ps = _float(f()), f.params()
        assert abs(loss - l0) <= 1e-5 * max(1, abs(l0)), f"{name}: {k}'s first loss {loss} != {l0}"
        for i, (a, b) in enumerate(zip(ps, p0)):
            a, b = np.asarray(a), xp.asnumpy(b) if xp is not np else b
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5), \
                f"{name}: {k}'s parameter {i} after one step differs by {np.abs(a - b).max()}"


def _sgd(ps, gs, lr=0.01):
    "Plain SGD, in place; the gradients are fresh arrays, so scaling them in place costs no copy."
    for p, g in zip(ps, gs):
        g *= lr
        p -= g


def _np_cross_entropy(logits, y):
    "Mean cross-entropy of `logits` (N, K) and its gradient, float32 throughout."
    n = len(logits)
    z = logits - logits.max(1, keepdims=True)
    e = xp.exp(z)
    s = e.sum(1, keepdims=True)
    loss = (xp.log(s[:, 0]) - z[xp.arange(n), y]).mean()
    e /= s
    e[xp.arange(n), y] -= 1
    e /= np.float32(n)
    return loss, e


def _compile(impls):
    "nbtorch's step compiled by nbtorch.compile, in place of the eager one."
    step, c = impls['nbtorch'], nbtorch.compile(impls['nbtorch'])
    f = lambda: c()
    f.params, f.compiled = step.params, c
    impls['nbtorch'] = f


def _recorded(impls):
    "After the agreement check: the compiled step's recordings made and checked, before timing."
    if hasattr(impls['nbtorch'], 'compiled'):
        for _ in range(3): impls['nbtorch']()
        assert impls['nbtorch'].compiled.replays, 'nbtorch.compile did not replay the step'


def _timed(name, impls, numpy_step, P, jax_loss, ps, x, y, compiled, number):
    "A training step's row: the hand-written step (on arrays P) and JAX's beside nbtorch's and PyTorch's."
    numpy_step.params = lambda: P
    impls['numpy'] = numpy_step
    if jax is not None: impls['jax'] = _jax_step(jax_loss, ps, x, y)
    name += ', compiled' if compiled else ''
    _agree(name, impls)
    _recorded(impls)
    return run(name, impls, number=number)


def mlp_step(batch=64, compiled=False):
    "MLP 784-256-128-10, ReLU, cross-entropy, plain SGD: one training step (compiled: nbtorch.compile)."
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    def layers(nn): return [nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                            nn.Linear(128, 10)]
    impls, ps = _same_start(layers, x, y)
    if compiled: _compile(impls)
    P = [xp.asarray(p) for p in ps]  # w1, b1, w2, b2, w3, b3; each weight (out, in) as PyTorch's
    X, Y = xp.asarray(x), xp.asarray(y)
    def numpy_step():
        hs, W, B = [X], P[0::2], P[1::2]
        for i, (w, b) in enumerate(zip(W, B)):
            z = hs[-1] @ w.T
            z += b
            hs.append(xp.maximum(z, 0, out=z) if i < 2 else z)
        loss, g = _np_cross_entropy(hs[-1], Y)
        grads = [None] * 6
        for i in (2, 1, 0):
            grads[2 * i], grads[2 * i + 1] = g.T @ hs[i], g.sum(0)
            if i: g = (g @ W[i]) * (hs[i] > 0)
        _sgd(P, grads)
        return loss
    return _timed(f'MLP 784-256-128-10 step, batch {batch}', impls, numpy_step, P, _jax_mlp, ps, x, y,
                  compiled, number=20 if batch < 256 else 5)


def _np_conv(x, w, b):
    """3x3 convolution, padding 1, of x (N, C, H, W), by im2col filled one kernel position at a time.
    The columns are (C, 3, 3, N, H, W): each position's copy is a block of whole images, and the
    product's result (O, N*H*W) is the output in (C, N, H, W) memory order, returned as an (N, C, H, W)
    view (no copy: ReLU and pooling below do not care about the memory order)."""
    N, C, H, W = x.shape
    padded = xp.zeros((C, N, H + 2, W + 2), np.float32)
    padded[:, :, 1:-1, 1:-1] = x.transpose(1, 0, 2, 3)
    cols = xp.empty((C, 3, 3, N, H, W), np.float32)
    for i in range(3):
        for j in range(3): cols[:, i, j] = padded[:, :, i:i + H, j:j + W]
    cols = cols.reshape(C * 9, N * H * W)
    y = w.reshape(len(w), -1) @ cols
    y += b[:, None]
    return y.reshape(len(w), N, H, W).transpose(1, 0, 2, 3), cols


def _np_conv_infer(x, w, b, n=4):
    """3x3 convolution, padding 1, for inference: im2col as _np_conv's, n images at a time into one
    reused buffer (4 MB for 32 channels: it stays in the cache), the output written in (N, C, H, W)
    order with the bias added on the way."""
    N, C, H, W = x.shape
    padded = xp.zeros((C, N, H + 2, W + 2), np.float32)
    padded[:, :, 1:-1, 1:-1] = x.transpose(1, 0, 2, 3)
    cols = xp.empty((C, 3, 3, n, H, W), np.float32)
    prod = xp.empty((len(w), n * H * W), np.float32)
    y, w2, b3 = xp.empty((N, len(w), H, W), np.float32), w.reshape(len(w), -1), b[:, None, None]
    for s in range(0, N, n):  # N=64 is a multiple of n
        for i in range(3):
            for j in range(3): cols[:, i, j] = padded[:, s:s + n, i:i + H, j:j + W]
        xp.matmul(w2, cols.reshape(C * 9, -1), out=prod)
        xp.add(prod.reshape(len(w), n, H, W).transpose(1, 0, 2, 3), b3, out=y[s:s + n])
    return y


def _np_conv_back(g, cols, w, xshape, need_gx):
    "The gradients of _np_conv: weight and bias from the columns, input by col2im (optional)."
    N, C, H, W = xshape
    g2 = g.transpose(1, 0, 2, 3).reshape(len(w), -1)  # a view when g is in (C, N, H, W) order
    gw, gb = (g2 @ cols.T).reshape(w.shape), g2.sum(1)
    if not need_gx: return None, gw, gb
    gc = (w.reshape(len(w), -1).T @ g2).reshape(C, 3, 3, N, H, W)
    gx = xp.zeros((C, N, H + 2, W + 2), np.float32)
    for i in range(3):
        for j in range(3): gx[:, :, i:i + H, j:j + W] += gc[:, i, j]
    return gx[:, :, 1:-1, 1:-1].transpose(1, 0, 2, 3), gw, gb


def _np_pool(x):
    "2x2 max pooling by its four strided views: the maximum, and the views for the backward."
    q = [x[:, :, i::2, j::2] for i in (0, 1) for j in (0, 1)]
    return xp.maximum(xp.maximum(q[0], q[1]), xp.maximum(q[2], q[3])), q


def _np_unpool(g, m, q, shape):
    "Route g to the first maximum of each window (PyTorch's choice among ties), as its gradient does."
    gx = xp.empty(shape, np.float32)
    left = xp.ones(m.shape, bool)
    for k, (i, j) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        hit = q[k] == m
        hit &= left
        left &= ~hit
        xp.multiply(g, hit, out=gx[:, :, i::2, j::2])
    return gx


def _cnn_layers(nn):
    return [nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(784, 10)]


def cnn_step(batch=64, compiled=False):
    "CNN Conv(1,8,3,p1)-ReLU-MaxPool2-Conv(8,16,3,p1)-ReLU-MaxPool2-Linear(784,10): one SGD step."
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    impls, ps = _same_start(_cnn_layers, x, y)
    if compiled: _compile(impls)
    P = [xp.asarray(p) for p in ps]
    X, Y = xp.asarray(x), xp.asarray(y)
    def numpy_step():
        w1, b1, w2, b2, w3, b3 = P
        z1, c1 = _np_conv(X, w1, b1); a1 = xp.maximum(z1, 0); p1, q1 = _np_pool(a1)
        z2, c2 = _np_conv(p1, w2, b2); a2 = xp.maximum(z2, 0); p2, q2 = _np_pool(a2)
        f = p2.reshape(batch, -1)
        logits = f @ w3.T
        logits += b3
        loss, g = _np_cross_entropy(logits, Y)
        gw3, gb3, gf = g.T @ f, g.sum(0), g @ w3
        ga2 = _np_unpool(gf.reshape(p2.shape), p2, q2, a2.shape)
        ga2 *= z2 > 0
        gp1, gw2, gb2 = _np_conv_back(ga2, c2, w2, p1.shape, True)
        ga1 = _np_unpool(gp1, p1, q1, a1.shape)
        ga1 *= z1 > 0
        _, gw1, gb1 = _np_conv_back(ga1, c1, w1, X.shape, False)
        _sgd(P, [gw1, gb1, gw2, gb2, gw3, gb3])
        return loss
    return _timed(f'CNN step, batch {batch}', impls, numpy_step, P, _jax_cnn, ps, x, y, compiled,
                  number=5)


def conv_forward(channels):
    "Conv2d(C, C, 3, padding=1) forward alone on (64, C, 28, 28), no grad (inference)."
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, channels, 28, 28)).astype(np.float32)
    nbtorch.manual_seed(0)
    conv = nbtorch.nn.Conv2d(channels, channels, 3, padding=1).to(DEV)
    w, b = _host(conv.weight), _host(conv.bias)
    X = nbtorch.tensor(x, device=DEV)
    def nb():
        with nbtorch.no_grad(): return conv(X)
    impls = dict(nbtorch=nb)
    if torch is not None:
        tconv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(TDEV)
        with torch.no_grad(): tconv.weight.copy_(torch.from_numpy(w)); tconv.bias.copy_(torch.from_numpy(b))
        TX = torch.from_numpy(x).to(TDEV)
        def pt():
            with torch.no_grad(): return tconv(TX)
        impls['pytorch'] = pt
    XA, WA, BA = xp.asarray(x), xp.asarray(w), xp.asarray(b)
    impls['numpy'] = lambda: _np_conv_infer(XA, WA, BA)
    ref = _np_conv_infer(XA, WA, BA)
    ref = xp.asnumpy(ref) if xp is not np else ref
    for k, f in impls.items():
        out = f()
        out = _host(out) if k == 'nbtorch' else out.cpu().numpy() if k == 'pytorch' else ref
        assert np.allclose(out, ref, rtol=1e-4, atol=1e-4), f"conv forward: {k} differs"
    return run(f'Conv2d({channels}, {channels}, 3, p1) forward, (64, {channels}, 28, 28)', impls,
               number=3 if channels > 32 else 5)


def _np_resize_matrix(n, o):
    "Pillow's triangle stretched n / o times when shrinking, as an (o, n) matrix of rows summing to 1."
    s = n / o
    d = (np.arange(n) + 0.5 - (np.arange(o)[:, None] + 0.5) * s) / max(s, 1)
    m = np.maximum(1 - np.abs(d), 0)
    return (m / m.sum(1, keepdims=True)).astype(np.float32)


def resize_antialias():
    "interpolate(mode='bilinear', antialias=True), no grad: (32, 3, 256, 256) images to 112 x 112."
    x = np.random.default_rng(0).standard_normal((32, 3, 256, 256)).astype(np.float32)
    kw = dict(size=(112, 112), mode='bilinear', antialias=True)
    X = nbtorch.tensor(x, device=DEV)
    impls = dict(nbtorch=lambda: nbtorch.nn.functional.interpolate(X, **kw))
    if torch is not None:
        TX = torch.from_numpy(x).to(TDEV)
        impls['pytorch'] = lambda: torch.nn.functional.interpolate(TX, **kw)
    M, XA = xp.asarray(_np_resize_matrix(256, 112)), xp.asarray(x)
    impls['numpy'] = lambda: M @ (XA @ M.T)  # the width, then the height: a matrix product each
    ref = impls['numpy']()
    ref = xp.asnumpy(ref) if xp is not np else ref
    for k, f in impls.items():
        out = f()
        out = _host(out) if k == 'nbtorch' else out.cpu().numpy() if k == 'pytorch' else ref
        assert np.allclose(out, ref, rtol=1e-4, atol=1e-4), f"resize: {k} differs"
    return run('interpolate bilinear antialias, 256 to 112 (x96)', impls, number=3)


def conv32(): return conv_forward(32)
def conv64(): return conv_forward(64)


def _jax_cross_entropy(logits, y):
    return -jax.numpy.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1).mean()


def _jax_mlp(ps, x, y):
    h = x
    for i in range(3):
        h = h @ ps[2 * i].T + ps[2 * i + 1]
        if i < 2: h = jax.nn.relu(h)
    return _jax_cross_entropy(h, y)


def _jax_cnn(ps, x, y):
    lax = jax.lax
    def conv(h, w, b):
        return lax.conv_general_dilated(h, w, (1, 1), ((1, 1), (1, 1))) + b[:, None, None]
    def pool(h): return lax.reduce_window(h, -jax.numpy.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), 'VALID')
    h = pool(jax.nn.relu(conv(x, ps[0], ps[1])))
    h = pool(jax.nn.relu(conv(h, ps[2], ps[3])))
    return _jax_cross_entropy(h.reshape(len(x), -1) @ ps[4].T + ps[5], y)


def _jax_step(loss_fn, ps, x, y):
    "jax.jit of loss, gradient and the plain SGD update, from the same weights (CPU only)."
    @jax.jit
    def update(ps, x, y):
        loss, gs = jax.value_and_grad(loss_fn)(ps, x, y)
        return loss, [p - 0.01 * g for p, g in zip(ps, gs)]
    state = dict(ps=[jax.numpy.asarray(p) for p in ps])
    X, Y = jax.numpy.asarray(x), jax.numpy.asarray(y)
    def step():
        loss, state['ps'] = update(state['ps'], X, Y)
        return loss.block_until_ready()  # JAX dispatches asynchronously: the step ends here
    step.params = lambda: [np.asarray(p) for p in state['ps']]
    return step


def matmul_1024():
    "A 1024x1024 matrix product forward and backward: BLAS-bound, the framework should add nothing."
    rng = np.random.default_rng(0)
    a, b = [rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(2)]
    g = np.ones((1024, 1024), np.float32)
    def make(lib):
        dev = DEV if lib is nbtorch else TDEV
        A = lib.tensor(a, requires_grad=True, device=dev)
        B = lib.tensor(b, requires_grad=True, device=dev)
        G = lib.tensor(g, device=dev)
        def f():
            (A @ B).backward(G)
            A.grad = B.grad = None
        return f
    xa, xb, xg = xp.asarray(a), xp.asarray(b), xp.asarray(g)
    def numpy_mm():
        xa @ xb; xg @ xb.T; xa.T @ xg
    return run('1024x1024 matmul, forward + backward', dict(nbtorch=make(nbtorch), numpy=numpy_mm,
               pytorch=make(torch) if torch else None), number=3)


MEMORY = """
import os, sys
os.environ.update(OMP_NUM_THREADS='2', OPENBLAS_NUM_THREADS='2', MKL_NUM_THREADS='2')
import numpy as np
lib = __import__(sys.argv[1])
if sys.argv[1] == 'torch': lib.set_num_threads(2)
def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
rng = np.random.default_rng(0)
x, y = rng.standard_normal((512, 784)).astype(np.float32), rng.integers(0, 10, 512)
nn = lib.nn
model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                      nn.Linear(128, 10))
X, Y, lf = lib.tensor(x), lib.tensor(y), nn.CrossEntropyLoss()
opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
base, peak = rss(), 0
for _ in range(50):
    opt.zero_grad(); loss = lf(model(X), Y); peak = max(peak, rss()); loss.backward(); opt.step()
    peak = max(peak, rss())
print(peak - base)
"""


def peak_memory():
    "Peak resident memory a training run adds (MLP, batch 512, 50 steps), each in a fresh process."
    import subprocess
    out = {}
    for lib in ['nbtorch'] + (['torch'] if torch else []):
        r = subprocess.run([sys.executable, '-c', MEMORY, lib], capture_output=True, text=True,
                           check=True)
        out['pytorch' if lib == 'torch' else lib] = int(r.stdout.strip()) / 2 ** 20  # MiB
    ratio = {'pytorch': out['nbtorch'] / out['pytorch']} if 'pytorch' in out else {}
    return dict(name='peak memory of a training run (MiB)', median_s=out, ratio=ratio, unit='MiB')


def lstm_step():
    "LSTM, 2 layers, input 64, hidden 128, 50 steps, batch 32: forward, backward, SGD step."
    x = np.random.default_rng(0).standard_normal((50, 32, 64)).astype(np.float32)
    def make(lib):
        lib.manual_seed(0)
        dev = DEV if lib is nbtorch else TDEV
        model = lib.nn.LSTM(64, 128, num_layers=2).to(dev)
        X, opt = lib.tensor(x, device=dev), lib.optim.SGD(model.parameters(), lr=0.01)
        def step():
            opt.zero_grad()
            model(X)[0].square().mean().backward()
            opt.step()
        return step
    impls = dict(nbtorch=make(nbtorch), pytorch=make(torch) if torch else None)
    return run('LSTM 2x128 step, 50 steps, batch 32', impls, number=2, rounds=7)


def transformer_step():
    "Transformer encoder, 2 layers, d_model 128, 4 heads, feed-forward 256, batch 32, 50 positions."
    x = np.random.default_rng(0).standard_normal((32, 50, 128)).astype(np.float32)
    def make(lib):
        lib.manual_seed(0)
        dev, nn = DEV if lib is nbtorch else TDEV, lib.nn
        # dropout 0: both libraries do the same arithmetic (no random masks to draw)
        layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=256, dropout=0.0,
                                           batch_first=True)
        model = nn.TransformerEncoder(layer, 2).to(dev)
        X, opt = lib.tensor(x, device=dev), lib.optim.SGD(model.parameters(), lr=0.01)
        def step():
            opt.zero_grad()
            model(X).square().mean().backward()
            opt.step()
        return step
    impls = dict(nbtorch=make(nbtorch), pytorch=make(torch) if torch else None)
    return run('Transformer encoder 2x128 step, 50 positions, batch 32', impls, number=2, rounds=7)


DDP_STEP = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'ddp_step.py')


def _ranks(n, *args):
    "Rank 0's JSON line of `ddp_step.py args` run on `n` processes by mpiexec (None without MPI)."
    import subprocess
    try:
        import mpi4py  # noqa: F401
        from nbtorch.distributed import _mpiexec
        cmd, env = _mpiexec(n)
    except (ImportError, RuntimeError) as e:
        print(f"(skipped: no MPI: {e})"); return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env['PYTHONPATH'] = os.pathsep.join([root, env.get('PYTHONPATH', '')])
    r = subprocess.run(cmd + [sys.executable, DDP_STEP, *map(str, args)], env=env, text=True,
                       capture_output=True, timeout=600)
    if r.returncode: raise RuntimeError(f"{DDP_STEP} {args} on {n} processes:\n{r.stdout}{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])['median_s']


def ddp_step(kind):
    "DDP training step of the MLP or the CNN above, batch 64 per process, on 1 and on 2 processes."
    rounds, number = (1, 1) if QUICK else (7, 10 if kind == 'mlp' else 3)
    t = {n: _ranks(n, kind, rounds, number) for n in (1, 2)}
    if None in t.values(): return None
    t1, t2 = t[1]['nbtorch'], t[2]['nbtorch']
    name = f"DDP {kind.upper()} step, batch 64 per process, 2 processes"
    # weak scaling: 2 processes train on twice the samples per step
    note = (f"1 process {t1 * 1e3:.2f} ms, 2 processes {t2 * 1e3:.2f} ms per step (one BLAS thread "
            f"per process): {2 * t1 / t2:.2f}x the samples per second of one process")
    return dict(name=name, median_s={'nbtorch': t2}, ratio={}, processes={'1': t1, '2': t2},
                kind='distributed', note=note)


def ddp_mlp(): return ddp_step('mlp')
def ddp_cnn(): return ddp_step('cnn')


def allreduce_bandwidth():
    "all_reduce of 4 MB of float32 on 2 processes: nbtorch.distributed against mpi4py on NumPy."
    rounds, number = (1, 1) if QUICK else (11, 20)
    m = _ranks(2, 'allreduce', rounds, number)
    if m is None: return None
    gbps = {k: 4 * 2 ** 20 / v / 1e9 for k, v in m.items()}  # the tensor's bytes per second
    note = (f"{gbps['nbtorch']:.2f} GB/s through nbtorch.distributed, {gbps['mpi4py']:.2f} GB/s "
            f"through mpi4py: nbtorch takes {m['nbtorch'] / m['mpi4py']:.2f}x MPI's own time")
    return dict(name='all_reduce 4 MB float32, 2 processes', median_s=m,
                ratio={'mpi4py': m['nbtorch'] / m['mpi4py']}, bandwidth_GBps=gbps,
                kind='distributed', note=note)


def mlp_step_512(): return mlp_step(512)
def mlp_compiled(): return mlp_step(64, compiled=True)
def cnn_compiled(): return cnn_step(64, compiled=True)


BENCHMARKS = [op_overhead, scalar_overhead, grad_chain, mlp_step, mlp_compiled, mlp_step_512, cnn_step,
              cnn_compiled, conv32,
              conv64, resize_antialias, matmul_1024, lstm_step, transformer_step, ddp_mlp, ddp_cnn, allreduce_bandwidth,
              peak_memory]
# DDP's processes and the resident set are measured on the CPU; nbtorch.compile runs CuPy eagerly
CPU_ONLY = {ddp_mlp, ddp_cnn, allreduce_bandwidth, peak_memory, mlp_compiled, cnn_compiled}


def plot(results, path, baseline='NumPy'):
    "Bars of the ratios nbtorch/PyTorch and nbtorch/NumPy per benchmark (below 1: nbtorch faster)."
    import math
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FixedFormatter, NullLocator
    y = np.arange(len(results)) * 1.3
    # drawn at the docs' text column width (640 px at 100 dpi), so that nothing is scaled down:
    # each benchmark's name stands above its two bars instead of taking the left half as a tick label
    fig, ax = plt.subplots(figsize=(6.4, 0.62 * len(results) + 1.3))
    seen = []
    for k, (other, c) in enumerate([('pytorch', 'tab:red'), ('numpy', 'tab:blue')]):
        label = 'nbtorch / ' + ('PyTorch' if other == 'pytorch' else 'hand-written ' + baseline)
        vals = [r['ratio'].get(other) for r in results]
        yk = y + k * 0.36
        ax.barh(yk, [v if v else np.nan for v in vals], 0.34, color=c, label=label)
        for yy, v in zip(yk, vals):  # each ratio written at its bar's end; a missing one said so
            ax.text(v * 1.04 if v else 1.04, yy, f'{v:.2f}' if v else f'no {baseline} baseline' if other == 'numpy'
                    else 'not measured', va='center', fontsize=10, color='k' if v else 'gray')
        seen += [v for v in vals if v]
    # log scale, ticks at powers of two only (the default minor labels 2x10^-1, 3x10^-1... overlap)
    ax.set_xscale('log')
    lo = math.floor(math.log2(min(seen + [1]))); hi = math.ceil(math.log2(max(seen + [1]) * 1.5))
    ax.set_xlim(2.0 ** lo, 2.0 ** hi)
    for yy, r in zip(y, results):
        ax.text(2.0 ** lo * 1.03, yy - 0.33, r['name'], fontsize=10.5, va='bottom', zorder=3,
                bbox=dict(fc='white', ec='none', pad=0.5))
    ax.axvline(1, c='k', lw=.8)
    ax.set_yticks([]); ax.set_ylim(y[-1] + 0.7, y[0] - 0.8)
    ax.xaxis.set_major_locator(FixedLocator([2.0 ** e for e in range(lo, hi + 1)]))
    ax.xaxis.set_major_formatter(FixedFormatter([f'1/{2 ** -e}' if e < 0 else f'{2 ** e}' for e in range(lo, hi + 1)]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.tick_params(axis='x', labelsize=10.5)
    ax.set_xlabel('ratio, log scale (below 1: nbtorch is faster or smaller)', fontsize=10.5)
    fig.legend(*ax.get_legend_handles_labels(), fontsize=10.5, loc='upper center', ncol=2, frameon=False)
    plt.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    fig.savefig(path, dpi=100); plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    here = os.path.dirname(os.path.abspath(__file__))
    p.add_argument('--out', default=os.path.join(here, 'results'),
                   help='folder for results.json and ratios.png')
    p.add_argument('--device', choices=['cpu', 'cuda'], default='cpu',
                   help='cuda: nbtorch on CuPy, PyTorch on CUDA, the hand-written baseline in CuPy')
    p.add_argument('--standin', action='store_true',
                   help="with --device cuda: the test suite's stand-in GPU (checks the GPU path)")
    p.add_argument('--quick', action='store_true',
                   help='one call of each benchmark: checks that it runs, measures nothing')
    p.add_argument('--rounds', type=int, default=21,
                   help='rounds per benchmark (default 21; a GPU drifts less than this VM)')
    p.add_argument('--only', default='',
                   help='comma-separated parts of benchmark names to run, e.g. cnn_step,conv32 '
                        f"(names: {', '.join(b.__name__ for b in BENCHMARKS)})")
    args = p.parse_args()
    global QUICK, ROUNDS
    QUICK, ROUNDS = args.quick, args.rounds
    suffix = select_device(args.device, args.standin) + ('_quick' if QUICK else '')
    base = 'NumPy' if xp is np else 'CuPy'
    benchmarks = [b for b in BENCHMARKS if args.device == 'cpu' or b not in CPU_ONLY]
    if args.only: benchmarks = [b for b in benchmarks if any(k in b.__name__ for k in args.only.split(','))]
    import threadpoolctl
    blas = threadpoolctl.threadpool_info()
    api, n = (blas[0]['internal_api'], blas[0]['num_threads']) if blas else ('?', '?')
    print(f"threads: {THREADS} each (OMP/OPENBLAS/MKL_NUM_THREADS set before import; "
          f"torch.set_num_threads; OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}); "
          f"BLAS {api} with {n} threads")
    print(f"PyTorch {torch.__version__ if torch else 'not installed'}; NumPy {np.__version__}; "
          f"medians of {ROUNDS} rounds, ratios paired per round; "
          f"device: nbtorch {DEV}{f' ({gpu_name()})' if DEV == 'cuda' else ''}, PyTorch {TDEV}, baseline {base}; "
          f"JAX {jax.__version__ + ' (jit, CPU)' if jax else 'not installed (the bench extra)'}")
    head = ['nbtorch', 'PyTorch', base] + ['JAX'] * bool(jax)
    head += ['nb/PT', 'nb/NP' if base == 'NumPy' else 'nb/CP'] + ['nb/JAX'] * bool(jax)
    n = 3 + bool(jax)
    print(f"{'benchmark':<46}" + ''.join(f'{h:>11}' for h in head[:n]) + ''.join(f'{h:>8}' for h in head[n:]))
    results = []
    for b in benchmarks:
        r = b()
        if r is None: continue
        results.append(r)
        m, q, unit = r['median_s'], r['ratio'], r.get('unit')
        def cell(k):
            if k not in m: return f"{'-':>11}"
            if unit: return f"{m[k]:9.1f}MB"
            return f"{m[k] * 1e6:9.2f}µs" if m[k] < 1e-3 else f"{m[k] * 1e3:9.2f}ms"
        rat = lambda k: f"{q[k]:8.2f}" if k in q else f"{'-':>8}"
        cols = ['pytorch', 'numpy'] + ['jax'] * bool(jax)
        print(f"{r['name']:<46}{cell('nbtorch')}" + ''.join(cell(k) for k in cols)
              + ''.join(rat(k) for k in cols), flush=True)
        if 'note' in r: print(f"    {r['note']}", flush=True)
        write(args.out, suffix, base, results)  # after each row: a run cut short keeps what it measured
    # the distributed rows compare processes and transports, not libraries: they stay off the chart
    plot([r for r in results if r.get('kind') != 'distributed'], os.path.join(args.out, f'ratios{suffix}.png'), base)
    print(f"wrote {args.out}/results{suffix}.json and ratios{suffix}.png")


def write(out, suffix, base, results):
    "The results so far, with what they were measured on, as results{suffix}.json in `out`."
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f'results{suffix}.json'), 'w') as f:
        json.dump(dict(threads=int(THREADS), rounds=ROUNDS, numpy=np.__version__,
                       pytorch=torch.__version__ if torch else None,
                       jax=jax.__version__ if jax else None, device=DEV, gpu=gpu_name(),
                       cupy=getattr(xp, '__version__', None) if DEV == 'cuda' else None, baseline=base,
                       results=results), f, indent=1)


def gpu_name():
    "The GPU's name (`NVIDIA H200`), or None on the CPU; the stand-in says so."
    if DEV == 'cpu': return None
    if getattr(xp, '__name__', '') != 'cupy': return 'stand-in GPU (tests/standin.py, on the CPU)'
    return xp.cuda.runtime.getDeviceProperties(xp.cuda.Device().id)['name'].decode()


def select_device(device, standin=False):
    "Point nbtorch, PyTorch and the baseline at `device`; return the result files' suffix."
    global DEV, TDEV, xp, jax
    if device == 'cpu': return ''
    jax = None  # JAX runs on the CPU here: its column would compare a CPU with a GPU
    if standin:  # tests/standin.py's CuPy look-alike: checks the GPU path; its timings mean nothing
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests'))
        import standin
        nbtorch.cuda._set_backend(standin.module, standin.extras)
    if not nbtorch.cuda.is_available():
        sys.exit("--device cuda: no GPU (CuPy with a CUDA device) is available")
    DEV, xp = 'cuda', nbtorch.cuda._backend()
    TDEV = 'cuda' if torch is not None and torch.cuda.is_available() else 'cpu'
    if TDEV == 'cuda':  # float32 products in float32 for all three: PyTorch's cuDNN would take TF32
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return '_standin' if standin else '_cuda'


if __name__ == '__main__': main()
