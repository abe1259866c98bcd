"""A training step on the GPU reads nothing back to the host, as PyTorch's reads nothing.

Each read (`x.item()`, `float(x)`, `if x:`, a boolean mask's size, printing) waits for every kernel
queued on the GPU, then copies: one per step leaves the GPU idle while Python catches up. These
tests count the reads on the stand-in GPU (`standin.transfers()`), so a sync slipped into an
optimizer, a scheduler, a loss or the Learner fails here, on the CPU. The reads PyTorch makes too
are pinned with their count, and each says why it cannot go.
"""
import contextlib
import time
import types
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from nbtorch import cuda, optim
from nbtorch.optim import lr_scheduler as sched
from nbtorch.nn.utils import clip_grad_norm_, clip_grad_value_
from nbtorch.learner import Learner, Callback, MetricsCB, ProgressCB, DeviceCB, GradNormCB
from nbtorch.utils.data import TensorDataset, DataLoader, Generator
import standin


@contextlib.contextmanager
def _watch():
    """The stand-in's count of host reads; on a real GPU, CuPy's own detector, which raises
    `cupyx.DeviceSynchronized` at a synchronisation (the count it gives is then 0)."""
    if cuda._backend() is standin.module:
        with standin.transfers() as t: yield t
        return
    import cupyx
    if not hasattr(cupyx, 'allow_synchronize'): pytest.skip("this CuPy has no allow_synchronize")
    with cupyx.allow_synchronize(False): yield types.SimpleNamespace(count=0, log=[], uploads=0)


def _model():
    "Convolution, batch norm (2d and 1d), pooling, layer norm, both dropouts: train mode, on a GPU."
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Dropout2d(0.1), nn.Flatten(), nn.Linear(16, 16),
                         nn.BatchNorm1d(16), nn.LayerNorm(16), nn.GELU(), nn.Dropout(0.2),
                         nn.Linear(16, 3)).cuda()


def _step_reads(make_opt, make_sched=lambda o: sched.StepLR(o, 2),
                clip=lambda ps: clip_grad_norm_(ps, 1.)):
    "The reads of the third training step (the first ones create the optimizer's state)."
    nbtorch.manual_seed(0)
    m = _model()
    x, y = nbtorch.randn(8, 1, 4, 4, device='cuda'), nbtorch.randint(0, 3, (8,), device='cuda')
    opt = make_opt(m.parameters())
    s = make_sched(opt)
    def step():
        opt.zero_grad()
        loss = F.cross_entropy(m(x), y)
        loss.backward()
        clip(m.parameters())
        opt.step()
        s.step()
        return loss
    step(); step()
    with _watch() as t: loss = step()
    assert m.training and loss.is_cuda and all(p.is_cuda for p in m.parameters())
    return t


OPTIMIZERS = [('SGD', dict(lr=0.1, momentum=0.9)),
              ('SGD', dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-2)),
              ('SGD', dict(lr=0.1, momentum=0.9, dampening=0.1, maximize=True)),
              ('Adam', {}), ('Adam', dict(amsgrad=True, weight_decay=0.1)),
              ('Adam', dict(capturable=True)),
              ('Adam', dict(foreach=True)), ('AdamW', {}), ('AdamW', dict(amsgrad=True)),
              ('RMSprop', {}), ('RMSprop', dict(centered=True, momentum=0.9, weight_decay=0.1)),
              ('Adagrad', {}),
              ('Adagrad', dict(lr_decay=0.1, weight_decay=0.1, initial_accumulator_value=0.1)),
              ('Adamax', {}), ('NAdam', {}),
              ('NAdam', dict(decoupled_weight_decay=True, weight_decay=0.1)),
              ('RAdam', {}), ('RAdam', dict(decoupled_weight_decay=True, weight_decay=0.1)),
              ('Adadelta', {}), ('ASGD', {}), ('Rprop', {}),
              # PyTorch's Adafactor reads two norms per parameter (.item()); ours keeps them there
              ('Adafactor', {}), ('Adafactor', dict(weight_decay=0.1))]


@pytest.mark.parametrize('name,kw', OPTIMIZERS, ids=[f'{n}-{"-".join(k)}' for n, k in OPTIMIZERS])
def test_a_training_step_reads_nothing(any_gpu, name, kw):
    "forward, cross-entropy, backward, clip_grad_norm_, step, scheduler step, zero_grad: no read."
    t = _step_reads(lambda ps: getattr(optim, name)(ps, **({'lr': 1e-2} | kw)))
    assert t.count == 0, t
    assert t.uploads == 0, t  # nor copies anything up: dropout's masks are drawn on the GPU


SCHEDULERS = {
    'StepLR': lambda o: sched.StepLR(o, 2), 'MultiStepLR': lambda o: sched.MultiStepLR(o, [1, 3]),
    'ExponentialLR': lambda o: sched.ExponentialLR(o, 0.9),
    'CosineAnnealingLR': lambda o: sched.CosineAnnealingLR(o, 10),
    'OneCycleLR': lambda o: sched.OneCycleLR(o, 0.1, total_steps=100),
    'CyclicLR': lambda o: sched.CyclicLR(o, 0.01, 0.1), 'LinearLR': lambda o: sched.LinearLR(o),
    'LambdaLR': lambda o: sched.LambdaLR(o, lambda e: 0.9 ** e),
    'PolynomialLR': lambda o: sched.PolynomialLR(o, 10),
    'ConstantLR': lambda o: sched.ConstantLR(o),
    'CosineAnnealingWarmRestarts': lambda o: sched.CosineAnnealingWarmRestarts(o, 3),
    'SequentialLR': lambda o: sched.SequentialLR(o, [sched.LinearLR(o),
                                                     sched.ExponentialLR(o, 0.9)], [2]),
    'ChainedScheduler': lambda o: sched.ChainedScheduler([sched.LinearLR(o),
                                                          sched.ExponentialLR(o, 0.9)])}
CLIPS = {'norm-2': lambda ps: clip_grad_norm_(ps, 1.),
         'norm-inf': lambda ps: clip_grad_norm_(ps, 1., 'inf'),
         'norm-1-foreach': lambda ps: clip_grad_norm_(ps, 1., 1, foreach=True),
         'value': lambda ps: clip_grad_value_(ps, 0.1)}


@pytest.mark.parametrize('name', SCHEDULERS)
def test_every_scheduler_steps_without_a_read(any_gpu, name):
    t = _step_reads(lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9), SCHEDULERS[name])
    assert t.count == 0, t


@pytest.mark.parametrize('name', CLIPS)
def test_clipping_reads_nothing(any_gpu, name):
    "The total norm and the scale stay on the GPU (the scale is min(1, max_norm / norm) there)."
    t = _step_reads(lambda ps: optim.SGD(ps, lr=0.1), clip=CLIPS[name])
    assert t.count == 0, t


def test_the_reads_pytorch_makes_too(gpu):
    "Each of these asks the host a question about device values: PyTorch synchronises on each too."
    x = nbtorch.randn(64, device='cuda')
    # .item() and float(): the value itself, to the host
    with standin.transfers() as t: x.sum().item()
    assert t.count == 1
    # a boolean mask or nonzero: the result's size depends on the values, read before allocating it
    with standin.transfers() as t: x[x > 0]
    assert t.count == 1 and t.log[0][0] == 'sync:mask'
    with standin.transfers() as t: (x > 0).nonzero()
    assert t.count >= 1 and all(k.startswith('sync:') for k, *_ in t.log)
    # error_if_nonfinite=True: raising needs the norm on the host (PyTorch: .item() as well)
    w = nn.Linear(4, 2).cuda()
    w(nbtorch.randn(3, 4, device='cuda')).sum().backward()
    with standin.transfers() as t: clip_grad_norm_(w.parameters(), 1., error_if_nonfinite=True)
    assert t.count == 1, t
    # ReduceLROnPlateau compares the metric with the best on the host (PyTorch: float(metrics))
    opt = optim.SGD(w.parameters(), lr=0.1)
    plateau = sched.ReduceLROnPlateau(opt)
    with standin.transfers() as t: plateau.step(x.sum())
    assert t.count == 1, t
    with standin.transfers() as t: plateau.step(0.5)  # a Python number: nothing to read
    assert t.count == 0, t


def test_lbfgs_reads_by_design(gpu):
    "L-BFGS decides on the host when to stop (tolerances, the curvature test): PyTorch's reads too."
    w = nn.Linear(4, 1).cuda()
    x, y = nbtorch.randn(16, 4, device='cuda'), nbtorch.randn(16, 1, device='cuda')
    opt = optim.LBFGS(w.parameters(), max_iter=3)
    def closure():
        opt.zero_grad(); loss = F.mse_loss(w(x), y); loss.backward(); return loss
    with standin.transfers() as t: opt.step(closure)
    assert t.count > 0


def test_cross_entropy_on_the_gpu_takes_the_masked_path(gpu):
    """The CPU checks the targets' range on the host and takes a fast path; the GPU cannot read them
    without stopping, so it masks: the same losses and gradients, and NaN where the CPU raises."""
    rng = np.random.default_rng(0)
    x0 = rng.standard_normal((6, 4)).astype(np.float32)
    for t0, kw in [([0, 3, 1, 1, 2, 2], {}), ([0, 3, -100, 1, 2, 2], {}),
                   ([0, 3, 1, 1, 2, 2], dict(ignore_index=2)),
                   ([0, 3, 1, 1, 2, 2], dict(reduction='sum')),
                   ([0, 3, -100, 1, 2, 2], dict(reduction='none'))]:
        out = {}
        for d in ['cpu', 'cuda']:
            x = nbtorch.tensor(x0, device=d, requires_grad=True)
            with standin.transfers() as t:
                loss = F.cross_entropy(x, nbtorch.tensor(t0, device=d), **kw)
                loss.sum().backward()
            assert t.count == 0, t
            out[d] = loss.detach().cpu().numpy(), x.grad.cpu().numpy()
        for a, b in zip(out['cpu'], out['cuda']):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    bad = [0, 4, 1, 1, 2, 2]  # class 4 of 4
    with pytest.raises(IndexError, match='out of bounds'):
        F.cross_entropy(nbtorch.tensor(x0), nbtorch.tensor(bad))
    with standin.transfers() as t:
        loss = F.cross_entropy(nbtorch.tensor(x0, device='cuda'),
                               nbtorch.tensor(bad, device='cuda'))
    assert t.count == 0  # checked on the device; reported at the next read, as PyTorch's CUDA kernels
    with pytest.raises(RuntimeError, match=r'device-side assert triggered: nll_loss/cross_entropy: a '
                                           r'target is out of bounds \(below 0, or 4 classes or more\)'):
        loss.item()
    assert not nbtorch.cuda._pending and np.isnan(loss.item())  # reported once; the value is NaN
    F.cross_entropy(nbtorch.tensor(x0, device='cuda'), nbtorch.tensor(bad, device='cuda'))
    with pytest.raises(RuntimeError, match='device-side assert'):
        nbtorch.ones(2, device='cuda').tolist()  # any read of the GPU reports it, as CUDA's error
    good = F.cross_entropy(nbtorch.tensor(x0, device='cuda'), nbtorch.tensor([0, 3, 1, 1, 2, 2], device='cuda'))
    assert np.isfinite(good.item()) and not nbtorch.cuda._pending


def _ints(*v, d): return nbtorch.tensor(list(v), device=d)


NO_WAIT = {  # op on device d: each used to read the GPU (tools/standin_sweep.py --reads found them)
    'binary_cross_entropy': lambda d: F.binary_cross_entropy(
        nbtorch.full((4,), .3, device=d, requires_grad=True), nbtorch.ones(4, device=d)),
    'avg_pool2d(padding)': lambda d: F.avg_pool2d(
        nbtorch.arange(32., device=d).reshape(1, 2, 4, 4), 3, 2, padding=1, count_include_pad=False),
    'max_unpool2d': lambda d: F.max_unpool2d(
        *F.max_pool2d(nbtorch.arange(32., device=d).reshape(1, 2, 4, 4), 2, return_indices=True), 2),
    'adaptive_max_pool2d(indices)': lambda d: F.adaptive_max_pool2d(
        nbtorch.arange(50., device=d).reshape(1, 2, 5, 5).cos(), 3, return_indices=True),
    'grid_sample(bilinear)': lambda d: F.grid_sample(
        nbtorch.arange(32., device=d).reshape(1, 2, 4, 4), nbtorch.linspace(-1.2, 1.2, 12, device=d
        ).reshape(1, 2, 3, 2), align_corners=False),
    'grid_sample(nearest)': lambda d: F.grid_sample(
        nbtorch.arange(32., device=d).reshape(1, 2, 4, 4), nbtorch.linspace(-1, 1, 12, device=d
        ).reshape(1, 2, 3, 2), mode='nearest', align_corners=True),
    'grid_sample(bicubic)': lambda d: F.grid_sample(
        nbtorch.arange(32., device=d).reshape(1, 2, 4, 4), nbtorch.linspace(-.9, .9, 12, device=d
        ).reshape(1, 2, 3, 2), mode='bicubic', padding_mode='border', align_corners=False),
    'index_fill': lambda d: nbtorch.zeros(3, 4, device=d).index_fill(1, _ints(0, 2, 2, d=d), 5.),
    'int //': lambda d: _ints(7, -7, 9, d=d) // _ints(2, 2, -4, d=d),
    'int %': lambda d: _ints(7, -7, 9, d=d) % _ints(2, 3, -4, d=d),
    'int fmod': lambda d: nbtorch.fmod(_ints(7, -7, 9, d=d), _ints(2, 3, -4, d=d)),
    'int div(floor)': lambda d: nbtorch.div(_ints(7, -7, d=d), _ints(2, 2, d=d), rounding_mode='floor'),
    'masked_scatter': lambda d: nbtorch.zeros(3, 4, device=d).masked_scatter(
        nbtorch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]], device=d).bool(), nbtorch.arange(12., device=d)),
    'nonzero_static': lambda d: nbtorch.tensor([[0, 1], [2, 0], [3, 3]], device=d).nonzero_static(size=5),
    'int ** tensor': lambda d: _ints(2, -1, 3, 1, d=d) ** _ints(3, -3, -1, -2, d=d),
    **{f'scatter_reduce({r}, {dt})': (lambda r, dt: lambda d: nbtorch.zeros(5, dtype=dt, device=d).scatter_reduce(
        0, _ints(*[3, 0, 3, 3, 1, 0, 3, 4, 3, 1] * 7, d=d),
        nbtorch.tensor(np.r_[np.tile([2.5, -1, 7, 3, -4, 1.5, 9, 1, 8, -2], 7)[:-1], np.nan]
                       if dt.is_floating_point else np.tile([3, -1, 2, 5, -4, 1, 2, 7, 1, 3], 7),
                       dtype=dt, device=d), r, include_self=False))(r, dt)
       for r in ('amax', 'amin', 'prod') for dt in (nbtorch.float64, nbtorch.int64)},
    'index_reduce(amax, include_self)': lambda d: nbtorch.arange(6., device=d).reshape(3, 2).index_reduce(
        0, _ints(2, 0, 2, 2, d=d), nbtorch.tensor([[9., -1], [4, 4], [1, 8], [3, 3]], device=d), 'amax'),
}


@pytest.mark.parametrize('name', NO_WAIT)
def test_ops_that_no_longer_wait_for_the_gpu(any_gpu, name):
    "The same results as on the CPU, with no read by the host: checks wait on the device instead."
    with _watch() as t: out = NO_WAIT[name]('cuda')
    assert t.count == 0, t
    ref = NO_WAIT[name]('cpu')
    for a, b in zip(out if isinstance(out, tuple) else (out,), ref if isinstance(ref, tuple) else (ref,)):
        assert a.is_cuda and a.dtype == b.dtype
        np.testing.assert_allclose(a.detach().cpu().numpy(), b.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize('make, match', [
    (lambda: F.binary_cross_entropy(nbtorch.full((3,), 1.5, device='cuda'), nbtorch.ones(3, device='cuda')),
     'all elements of input should be between 0 and 1'),
    (lambda: _ints(4, 5, d='cuda') // _ints(2, 0, d='cuda'), 'ZeroDivisionError'),
    (lambda: _ints(4, 5, d='cuda') % _ints(0, 1, d='cuda'), 'ZeroDivisionError'),
    (lambda: F.max_unpool1d(nbtorch.ones(1, 1, 2, device='cuda'), _ints(0, 9, d='cuda').reshape(1, 1, 2), 2),
     'Found an invalid max index'),
    (lambda: nbtorch.zeros(3, device='cuda').masked_scatter(nbtorch.ones(3, dtype=nbtorch.bool, device='cuda'),
                                                            nbtorch.ones(2, device='cuda')),
     'Number of elements of source < number of ones in mask'),
], ids=['bce', 'int //', 'int %', 'max_unpool', 'masked_scatter'])
def test_bad_input_on_the_gpu_is_reported_at_the_next_read(gpu, make, match):
    "As PyTorch's CUDA kernels assert: the call returns, and the next read raises, naming the check."
    with standin.transfers() as t: y = make()
    assert t.count == 0, t
    with pytest.raises(RuntimeError, match='device-side assert triggered: ' + match): y.sum().item()
    assert not nbtorch.cuda._pending


class _Reads(Callback):
    "Count the host reads of every batch, from before_batch to the end of its callbacks."
    order = -100
    def __init__(self): self.batches, self.epochs = [], []
    def before_epoch(self, learn): self.t0 = time.monotonic()
    def after_epoch(self, learn): self.epochs.append(time.monotonic() - self.t0)
    def before_batch(self, learn):
        self.block = _watch(); self.t = self.block.__enter__()
    def cleanup_batch(self, learn):
        self.block.__exit__(None, None, None)
        self.batches.append((learn.epoch, learn.training, _waits(self.t)))


def _waits(t):
    """The reads in `t` that wait for the GPU: the flags of the checks made there (`cuda._assert_later`,
    cross_entropy's targets) are read just before the value that waits, in the same wait."""
    return sum('_raise_pending' not in where for *_, where in t.log)


def _data(n=96):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    ds = TensorDataset(nbtorch.tensor(x), nbtorch.tensor((x[:, 0] > 0).astype(np.int64)))
    train = DataLoader(ds, batch_size=16, shuffle=True, generator=Generator().manual_seed(0))
    return train, DataLoader(ds, 32)


@pytest.mark.parametrize('opt_func', [optim.SGD, optim.Adam, optim.AdamW])
def test_the_learner_reads_once_an_epoch(gpu, opt_func):
    """MetricsCB sums the losses and metrics on the GPU and reads them after the epoch; ProgressCB
    reads its losses then, and the bar's loss at most twice a second (tqdm redraws no faster)."""
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(8, 2))
    reads, prog = _Reads(), ProgressCB()
    learn = Learner(model, _data(), lr=1e-2, opt_func=opt_func,
                    cbs=[reads, DeviceCB('cuda'), MetricsCB(), prog])
    learn.fit(2)
    assert next(model.parameters()).is_cuda and len(reads.batches) == 2 * (6 + 3)
    for e, secs in enumerate(reads.epochs):  # (train, valid) per epoch
        n = sum(c for ep, tr, c in reads.batches if ep == e // 2 and tr == (e % 2 == 0))
        assert n <= 1 + int(secs / 0.5), (n, secs, reads.batches)
    assert len(prog.train_losses) == 2 * 6 and all(isinstance(v, float) for v in prog.train_losses)
    h = learn.history
    assert [r['train'] for r in h] == [True, False] * 2
    assert all(isinstance(r['loss'], float) for r in h)
    assert 0 <= h[-1]['accuracy'] <= 1


def test_the_learner_without_a_progress_bar_reads_no_batch(any_gpu):
    "GradNormCB too keeps its norms on the GPU, and reads them once an epoch, all at once."
    reads = _Reads()
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = Learner(model, _data(), lr=0.1,
                    cbs=[reads, DeviceCB('cuda'), MetricsCB(), GradNormCB()])
    learn.fit(1)
    assert [c for _, _, c in reads.batches] == [0] * 9
    assert [len(v) for v in learn.grad_norms.values()] == [6] * 4
    assert all(isinstance(x, float) and x > 0 for v in learn.grad_norms.values() for x in v)
