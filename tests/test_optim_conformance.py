"""Optimizers and schedulers against PyTorch: same initial parameters, same sequence of gradients (with
sparse zeros, and a parameter that has no gradient on some steps), parameters equal after 20 steps; the
state_dict round trip resumes identically; every scheduler's learning rates equal PyTorch's."""
import math
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.optim as optim
from nbtorch.optim import lr_scheduler as sched
from nbtorch.nn.utils import clip_grad_norm_, clip_grad_value_, parameters_to_vector, vector_to_parameters
from helpers import needs_torch, compare, torch

pytestmark = needs_torch

OPTIMS = {
    'SGD': dict(lr=0.1), 'SGD_momentum': dict(lr=0.1, momentum=0.9), 'SGD_dampening': dict(lr=0.1, momentum=0.9, dampening=0.3),
    'SGD_nesterov': dict(lr=0.1, momentum=0.9, nesterov=True), 'SGD_wd': dict(lr=0.1, momentum=0.5, weight_decay=0.1),
    'SGD_maximize': dict(lr=0.1, momentum=0.9, maximize=True),
    'Adam': dict(lr=0.01), 'Adam_amsgrad': dict(lr=0.01, amsgrad=True), 'Adam_wd': dict(lr=0.01, weight_decay=0.1),
    'Adam_maximize': dict(lr=0.01, maximize=True, betas=(0.8, 0.99)),
    'AdamW': dict(lr=0.01), 'AdamW_amsgrad': dict(lr=0.01, weight_decay=0.05, amsgrad=True),
    'RMSprop': dict(lr=0.01), 'RMSprop_momentum': dict(lr=0.01, momentum=0.9), 'RMSprop_centered': dict(lr=0.01, centered=True, alpha=0.9),
    'RMSprop_all': dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.1, maximize=True),
    'Adagrad': dict(lr=0.1), 'Adagrad_decay': dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, weight_decay=0.1),
    'Adadelta': dict(lr=1.0), 'Adadelta_wd': dict(lr=0.5, rho=0.8, weight_decay=0.1),
    'Adamax': dict(lr=0.01), 'Adamax_wd': dict(lr=0.01, weight_decay=0.1),
    'NAdam': dict(lr=0.01), 'NAdam_wd': dict(lr=0.01, weight_decay=0.1), 'NAdam_decoupled': dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    'RAdam': dict(lr=0.01), 'RAdam_wd': dict(lr=0.01, weight_decay=0.1), 'RAdam_decoupled': dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
    'ASGD': dict(lr=0.01), 'ASGD_t0': dict(lr=0.05, lambd=0.01, alpha=0.5, t0=5, weight_decay=0.1),
    'ASGD_maximize': dict(lr=0.05, t0=0, maximize=True),
    'Rprop': dict(lr=0.01), 'Rprop_options': dict(lr=0.05, etas=(0.3, 1.5), step_sizes=(1e-3, 0.08), maximize=True),
    'Adafactor': dict(lr=0.01), 'Adafactor_options': dict(lr=0.05, beta2_decay=-0.5, eps=(1e-6, 1e-2), d=1.5, weight_decay=0.1),
    'Adafactor_maximize': dict(lr=0.5, maximize=True),
}


def gradient_sequence(steps, shapes, seed=0):
    "Random gradients, with sparse zeros, and None for the second parameter every third step."
    rng = np.random.default_rng(seed)
    seq = []
    for k in range(steps):
        gs = []
        for i, s in enumerate(shapes):
            g = rng.standard_normal(s).astype(np.float32)
            g[rng.random(s) < 0.3] = 0
            gs.append(None if (i == 1 and k % 3 == 2) else g)
        seq.append(gs)
    return seq


def run_optimizer(lib, name, kw, init, grads, dev='cpu', groups=False):
    cls = getattr(lib.optim, name.split('_')[0])
    ps = [lib.tensor(a, requires_grad=True) if lib is torch else nbtorch.tensor(a, device=dev, requires_grad=True) for a in init]
    params = [{'params': ps[:1]}, {'params': ps[1:], 'lr': kw['lr'] / 2}] if groups else ps
    opt = cls(params, **kw)
    for gs in grads:
        for p, g in zip(ps, gs):
            p.grad = None if g is None else (torch.tensor(g) if lib is torch else nbtorch.tensor(g, device=dev))
        opt.step()
    return ps, opt


@pytest.mark.parametrize('name', list(OPTIMS))
def test_optimizer_matches_pytorch(dev, name):
    shapes = [(3, 4), (4,), (2, 2, 2)]
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = gradient_sequence(20, shapes)
    ours, _ = run_optimizer(nbtorch, name, OPTIMS[name], init, grads, dev)
    ref, _ = run_optimizer(torch, name, OPTIMS[name], init, grads)
    for i, (a, b) in enumerate(zip(ours, ref)):
        compare(a.detach(), b.detach(), dev, atol=1e-5, rtol=1e-5, path=f'param {i}')


@pytest.mark.parametrize('name', ['ASGD_t0', 'Rprop_options', 'Adafactor_options'])
def test_optimizer_state_matches_pytorch(name):
    "The state the parameters do not show: ASGD's average `ax`, Rprop's step sizes, Adafactor's factors."
    shapes = [(3, 4), (4,), (2, 2, 2)]
    init = [np.random.default_rng(5).standard_normal(s).astype(np.float32) for s in shapes]
    grads = gradient_sequence(12, shapes, seed=6)
    ours, o = run_optimizer(nbtorch, name, OPTIMS[name], init, grads)
    ref, r = run_optimizer(torch, name, OPTIMS[name], init, grads)
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert sorted(o.state[a]) == sorted(r.state[b])
        for k in r.state[b]:
            compare(o.state[a][k], r.state[b][k], atol=1e-5, rtol=1e-5, path=f'param {i} {k}')


@pytest.mark.parametrize('name', ['SGD_momentum', 'Adam', 'RMSprop_centered', 'Adagrad', 'NAdam'])
def test_param_groups_match(name):
    shapes = [(3,), (4,)]
    init = [np.ones(s, np.float32) for s in shapes]
    grads = gradient_sequence(10, shapes, seed=3)
    ours, _ = run_optimizer(nbtorch, name, OPTIMS[name], init, grads, groups=True)
    ref, _ = run_optimizer(torch, name, OPTIMS[name], init, grads, groups=True)
    for a, b in zip(ours, ref): compare(a.detach(), b.detach(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('name', ['SGD_nesterov', 'Adam_amsgrad', 'RMSprop_all', 'Adagrad_decay', 'Adadelta',
                                  'Adamax', 'NAdam', 'RAdam', 'AdamW', 'ASGD_t0', 'Rprop', 'Adafactor'])
def test_state_dict_round_trip_resumes_identically(dev, name):
    "10 steps, save, load into a fresh optimizer (over copies of the parameters), 10 more: same as 20 straight."
    shapes = [(3, 4), (4,)]
    init = [np.random.default_rng(2).standard_normal(s).astype(np.float32) for s in shapes]
    grads = gradient_sequence(20, shapes, seed=4)
    straight, _ = run_optimizer(nbtorch, name, OPTIMS[name], init, grads, dev)
    first, opt = run_optimizer(nbtorch, name, OPTIMS[name], init, grads[:10], dev)
    sd = opt.state_dict()
    ps = [nbtorch.tensor(p.detach().cpu().numpy(), device=dev, requires_grad=True) for p in first]
    opt2 = getattr(optim, name.split('_')[0])(ps, **OPTIMS[name])
    opt2.load_state_dict(sd)
    for gs in grads[10:]:
        for p, g in zip(ps, gs): p.grad = None if g is None else nbtorch.tensor(g, device=dev)
        opt2.step()
    for a, b in zip(ps, straight): np.testing.assert_array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
    assert sd['param_groups'][0]['params'] == [0, 1] and set(sd['state']) == {0, 1}


def test_state_follows_device():
    p = nbtorch.ones(3, requires_grad=True)
    opt = optim.Adam([p]); p.grad = nbtorch.ones(3); opt.step()
    q = nbtorch.ones(3, dtype=nbtorch.float64, requires_grad=True)
    opt2 = optim.Adam([q]); opt2.load_state_dict(opt.state_dict())
    assert opt2.state[q]['exp_avg'].dtype is nbtorch.float64 and opt2.state[q]['step'].dtype is nbtorch.float32


def test_lbfgs_matches_pytorch():
    """Step for step on a quadratic and on Rosenbrock's valley (where 20 inner iterations at a fixed step
    amplify float32 rounding differences of the sums, so it runs 5)."""
    ros = lambda x: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
    quad = lambda x: (x[0] - 1) ** 2 + 3 * (x[1] + 0.5) ** 2 + x[0] * x[1]
    def run(lib, f, **kw):
        x = lib.tensor([-1.5, 2.0], requires_grad=True)
        opt = lib.optim.LBFGS([x], **kw)
        def closure():
            opt.zero_grad(); loss = f(x); loss.backward(); return loss
        out = []
        for _ in range(3): opt.step(closure); out.append(x.detach().clone())
        return out
    for f, kw in [(ros, dict(lr=0.5, max_iter=5, history_size=5)), (quad, dict(lr=1, max_iter=20))]:
        for a, b in zip(run(nbtorch, f, **kw), run(torch, f, **kw)): compare(a, b, atol=1e-6, rtol=1e-6)


def test_optimizer_errors_like_pytorch():
    p = nbtorch.ones(2, requires_grad=True); q = torch.ones(2, requires_grad=True)
    for f in [lambda o, x: o.SGD([x], lr=-0.1), lambda o, x: o.SGD([], lr=0.1), lambda o, x: o.SGD([x], lr=0.1, momentum=-1),
              lambda o, x: o.SGD([x], lr=0.1, nesterov=True), lambda o, x: o.Adam([x], betas=(1.0, 0.9)),
              lambda o, x: o.Adam([x], eps=-1), lambda o, x: o.SGD([{'params': [x]}, {'params': [x]}], lr=0.1),
              lambda o, x: o.SGD([x * 2], lr=0.1), lambda o, x: o.Adam([x], weight_decay=-1)]:
        with pytest.raises(Exception) as r: f(torch.optim, q)
        with pytest.raises(type(r.value)) as o: f(optim, p)
        assert str(o.value) == str(r.value)


def test_repr_and_zero_grad():
    p, q = nbtorch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    o, r = optim.SGD([p], lr=0.1, momentum=0.9), torch.optim.SGD([q], lr=0.1, momentum=0.9)
    assert repr(o) == repr(r)
    p.grad = nbtorch.ones(2)
    o.zero_grad(set_to_none=False); assert p.grad.tolist() == [0., 0.]
    o.zero_grad(); assert p.grad is None


def test_add_param_group():
    p, q = nbtorch.ones(2, requires_grad=True), nbtorch.ones(3, requires_grad=True)
    opt = optim.SGD([p], lr=0.1)
    opt.add_param_group({'params': q, 'lr': 0.01, 'momentum': 0.5})
    assert [g['lr'] for g in opt.param_groups] == [0.1, 0.01] and opt.param_groups[1]['momentum'] == 0.5


SCHEDS = {
    'LambdaLR': lambda s, o: s.LambdaLR(o, lambda e: 0.95 ** e),
    'LambdaLR_list': lambda s, o: s.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (e + 1)]),
    'MultiplicativeLR': lambda s, o: s.MultiplicativeLR(o, lambda e: 0.9),
    'StepLR': lambda s, o: s.StepLR(o, 7, 0.5), 'MultiStepLR': lambda s, o: s.MultiStepLR(o, [5, 12, 12, 30], 0.3),
    'ConstantLR': lambda s, o: s.ConstantLR(o, 0.25, 8), 'LinearLR': lambda s, o: s.LinearLR(o, 0.2, 0.9, 12),
    'ExponentialLR': lambda s, o: s.ExponentialLR(o, 0.93), 'PolynomialLR': lambda s, o: s.PolynomialLR(o, 25, 1.5),
    'CosineAnnealingLR': lambda s, o: s.CosineAnnealingLR(o, 10, 0.001),
    'CosineAnnealingWarmRestarts': lambda s, o: s.CosineAnnealingWarmRestarts(o, 5, 2, 0.001),
    'CyclicLR': lambda s, o: s.CyclicLR(o, 0.01, 0.1, 4, 6, mode='triangular2'),
    'CyclicLR_exp': lambda s, o: s.CyclicLR(o, 0.01, 0.1, 5, mode='exp_range', gamma=0.97),
    'OneCycleLR': lambda s, o: s.OneCycleLR(o, 0.5, total_steps=41),
    'OneCycleLR_3': lambda s, o: s.OneCycleLR(o, [0.5, 0.2], epochs=4, steps_per_epoch=10, three_phase=True, anneal_strategy='linear'),
    'SequentialLR': lambda s, o: s.SequentialLR(o, [s.LinearLR(o, 0.1, 1.0, 5), s.ExponentialLR(o, 0.9)], [5]),
    'SequentialLR_3': lambda s, o: s.SequentialLR(o, [s.ConstantLR(o, 0.5, 3), s.StepLR(o, 4), s.CosineAnnealingLR(o, 8)], [3, 15]),
    'ChainedScheduler': lambda s, o: s.ChainedScheduler([s.ConstantLR(o, 0.1, 20), s.ExponentialLR(o, 0.9)]),
    'ChainedScheduler_3': lambda s, o: s.ChainedScheduler([s.LinearLR(o, 0.2, 1.0, 6), s.StepLR(o, 5, 0.5),
                                                           s.CosineAnnealingLR(o, 15, 0.001)], optimizer=o),
}


def lr_sequence(lib, name, steps=40):
    ps = [lib.zeros(2, requires_grad=True), lib.zeros(3, requires_grad=True)]
    o = lib.optim.SGD([{'params': ps[:1]}, {'params': ps[1:], 'lr': 0.05}], lr=0.1, momentum=0.9)
    s = SCHEDS[name](lib.optim.lr_scheduler, o)
    out = []
    for _ in range(steps):
        o.step(); s.step()
        out.append((list(s.get_last_lr()), [g['lr'] for g in o.param_groups], [g['momentum'] for g in o.param_groups]))
    return out, s


@pytest.mark.parametrize('name', list(SCHEDS))
def test_scheduler_matches_pytorch(name):
    ours, s = lr_sequence(nbtorch, name)
    ref, _ = lr_sequence(torch, name)
    np.testing.assert_allclose(np.array([sum(x, []) for x in ours], float),
                               np.array([sum(x, []) for x in ref], float), rtol=1e-12, atol=1e-15)
    sd = s.state_dict()
    assert 'optimizer' not in sd and sd.get('last_epoch') == getattr(s, 'last_epoch', None)  # none in Chained


def test_reduce_on_plateau_matches_pytorch():
    metrics = [1.0, 0.9, 0.9, 0.91, 0.95, 0.9, 0.89, 0.89, 0.9, 0.92, 0.93, 0.94, 0.5, 0.5, 0.5, 0.5, 0.5]
    def run(lib, **kw):
        o = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=1.0)
        s = lib.optim.lr_scheduler.ReduceLROnPlateau(o, **kw)
        out = []
        for m in metrics: s.step(m); out.append(o.param_groups[0]['lr'])
        return out
    for kw in [dict(patience=2), dict(patience=1, cooldown=2, factor=0.5), dict(mode='max', patience=1, threshold_mode='abs'),
               dict(patience=0, min_lr=0.05, factor=0.3)]:
        assert run(nbtorch, **kw) == run(torch, **kw), kw


def test_scheduler_state_dict_resumes():
    o = optim.SGD([nbtorch.zeros(1, requires_grad=True)], lr=0.1)
    s = sched.CosineAnnealingLR(o, 10)
    for _ in range(4): o.step(); s.step()
    sd = s.state_dict()
    o2 = optim.SGD([nbtorch.zeros(1, requires_grad=True)], lr=0.1)
    o2.param_groups[0]['initial_lr'] = 0.1
    s2 = sched.CosineAnnealingLR(o2, 10); s2.load_state_dict(sd); o2.param_groups[0]['lr'] = s.get_last_lr()[0]
    for _ in range(3): o.step(); s.step(); o2.step(); s2.step()
    assert s.get_last_lr() == s2.get_last_lr()


def test_clip_and_vectors_match_pytorch():
    rng = np.random.default_rng(5)
    gs = [rng.standard_normal(s).astype(np.float32) * 3 for s in [(3, 4), (5,)]]
    for kind in [('norm', 1.0, 2.0), ('norm', 2.0, math.inf), ('norm', 0.5, 1.0), ('value', 0.7)]:
        res = []
        for lib, clipn, clipv in [(nbtorch, clip_grad_norm_, clip_grad_value_),
                                  (torch, torch.nn.utils.clip_grad_norm_, torch.nn.utils.clip_grad_value_)]:
            ps = [lib.zeros(*g.shape, requires_grad=True) for g in gs]
            for p, g in zip(ps, gs): p.grad = lib.tensor(g)
            n = clipn(ps, kind[1], kind[2]) if kind[0] == 'norm' else clipv(ps, kind[1])
            res.append((n, [p.grad for p in ps]))
        if kind[0] == 'norm': compare(res[0][0], res[1][0], rtol=1e-5)
        for a, b in zip(res[0][1], res[1][1]): compare(a, b, rtol=1e-5, atol=1e-6)
    ps = [nbtorch.ones(2, 3), nbtorch.zeros(4)]
    v = parameters_to_vector(ps)
    compare(v, torch.nn.utils.parameters_to_vector([torch.ones(2, 3), torch.zeros(4)]))
    vector_to_parameters(nbtorch.arange(10.), ps)
    assert ps[0].tolist() == [[0., 1., 2.], [3., 4., 5.]] and ps[1].tolist() == [6., 7., 8., 9.]


def test_training_with_optimizer_matches_pytorch():
    "A small MLP trained 30 steps with Adam, from PyTorch's initial weights: the same losses."
    def make(n):
        return n.Sequential(n.Linear(6, 16), n.Tanh(), n.Linear(16, 3))
    ref = make(torch.nn); ours = make(nn)
    ours.load_state_dict({k: nbtorch.tensor(v.detach().numpy())
                          for k, v in ref.state_dict().items()})
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((32, 6)).astype(np.float32), rng.integers(0, 3, 32)
    losses = {}
    for lib, m in [(nbtorch, ours), (torch, ref)]:
        opt, lf, out = lib.optim.Adam(m.parameters(), lr=0.01), lib.nn.CrossEntropyLoss(), []
        X, Y = lib.tensor(x), lib.tensor(y)
        for _ in range(30):
            opt.zero_grad(); loss = lf(m(X), Y); loss.backward(); opt.step(); out.append(loss.item())
        losses[lib.__name__] = out
    np.testing.assert_allclose(losses['nbtorch'], losses['torch'], rtol=1e-4)


def test_chained_scheduler_errors_and_state_like_pytorch():
    def make(lib):
        o = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1)
        o2 = lib.optim.SGD([lib.zeros(1, requires_grad=True)], lr=0.1)
        s = lib.optim.lr_scheduler
        return o, [lambda: s.ChainedScheduler([]), lambda: s.ChainedScheduler([s.ReduceLROnPlateau(o)]),
                   lambda: s.ChainedScheduler([s.StepLR(o, 2)], optimizer=o2), lambda: s.ChainedScheduler([o])]
    (_, ours), (_, refs) = make(nbtorch), make(torch)
    for f, g in zip(ours, refs):
        with pytest.raises(Exception) as r: g()
        with pytest.raises(type(r.value)) as e: f()
        assert str(e.value).split(' has ')[0] == str(r.value).split(' has ')[0]
    o = optim.SGD([nbtorch.zeros(1, requires_grad=True)], lr=0.1)
    s = sched.ChainedScheduler([sched.StepLR(o, 2, 0.5), sched.ExponentialLR(o, 0.9)])
    for _ in range(3): s.step()
    sd = s.state_dict()
    assert [d['last_epoch'] for d in sd['_schedulers']] == [3, 3]
    o2 = optim.SGD([nbtorch.zeros(1, requires_grad=True)], lr=0.1)
    s2 = sched.ChainedScheduler([sched.StepLR(o2, 2, 0.5), sched.ExponentialLR(o2, 0.9)])
    s2.load_state_dict(sd)
    assert [x.last_epoch for x in s2._schedulers] == [3, 3] and s2.get_last_lr() == s.get_last_lr()
