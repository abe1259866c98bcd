"""nbtorch.compile (issue 18): a step recorded once and replayed on raw arrays gives eager mode's bits;
guards make new recordings; what cannot be recorded runs eagerly, and says why."""
import warnings
import numpy as np
import pytest
import nbtorch as torch
from nbtorch import compiler

nn = torch.nn


def mlp(): return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
def cnn(): return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                nn.Flatten(), nn.Linear(8 * 4 * 4, 3))
def bn_dropout(): return nn.Sequential(nn.Linear(20, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.3),
                                       nn.Linear(32, 3))


def batches(kind, n=20, dev='cpu', seed=1):
    rng = np.random.default_rng(seed)
    shape = (8, 1, 16, 16) if kind == 'cnn' else (8, 20)
    return [(torch.tensor(rng.standard_normal(shape).astype(np.float32), device=dev),
             torch.tensor(rng.integers(0, 3, 8), device=dev)) for _ in range(n)]


def setup(make, dev='cpu', branch=False, momentum=0.9):
    torch.manual_seed(0)
    model = make().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=momentum)
    def step(x, y):
        opt.zero_grad()
        out = model(x)
        if branch and x.mean() > 0: out = out * 2  # data-dependent control flow
        loss = nn.functional.cross_entropy(out, y)
        loss.backward()
        opt.step()
        return loss.detach()
    return model, opt, step


def train(make, kind, dev='cpu', compiled=False, **kw):
    model, opt, step = setup(make, dev, **kw)
    f = torch.compile(step) if compiled else step
    torch.manual_seed(5)  # dropout's draws
    losses = [f(x, y) for x, y in batches(kind, dev=dev)]
    return model, opt, [l.item() for l in losses], f


def same_state(m1, m2):
    return all(np.array_equal(a.detach().cpu().numpy(), b.detach().cpu().numpy())
               for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


@pytest.mark.parametrize('make,kind,branch', [(mlp, 'mlp', False), (cnn, 'cnn', False),
                                              (bn_dropout, 'mlp', False), (bn_dropout, 'mlp', True)],
                         ids=['mlp', 'cnn', 'bn+dropout', 'branch'])
def test_twenty_steps_as_eager_mode(dev, make, kind, branch):
    m1, o1, l1, _ = train(make, kind, dev, branch=branch)
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a replay that differed from eager mode would warn
        m2, o2, l2, f = train(make, kind, dev, compiled=True, branch=branch)
    assert l1 == l2 and same_state(m1, m2)  # bitwise: parameters, buffers (running stats)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(o1.state[p]['momentum_buffer'].cpu().numpy(),
                              o2.state[q]['momentum_buffer'].cpu().numpy())
    if dev == 'cpu':  # replayed (on a GPU or its stand-in the step runs eagerly)
        assert f.replays >= 16 and f.traces <= 4 and not f.breaks
    else: assert f.replays == 0


def test_branch_makes_a_recording_per_way():
    _, _, _, f = train(bn_dropout, 'mlp', compiled=True, branch=True)
    # one recording before any gradient exists, then one for each way the branch goes
    assert f.traces == 3 and sorted(len(ps) for ps in f.programs.values()) == [1, 2]


def test_replay_makes_no_tensors_and_returns_fresh_ones():
    model, opt, step = setup(mlp)
    f = torch.compile(step)
    data = batches('mlp', 4)
    outs = [f(x, y) for x, y in data]
    assert len({id(o) for o in outs}) == 4 and len({o.item() for o in outs}) == 4  # not one buffer
    P = [p for ps in f.programs.values() for p in ps][0]
    assert not any(isinstance(a, torch.Tensor) for _, args, kw in P.steps for a in list(args) + list(kw.values()))
    assert all(p.grad is not None for p in model.parameters())  # bound after a replay, as eagerly


def test_item_is_a_graph_break():
    model, opt, step = setup(mlp)
    seen = []
    def logged(x, y):
        loss = step(x, y)
        seen.append(loss.item())
        return loss
    f = torch.compile(logged)
    for x, y in batches('mlp', 5): f(x, y)
    assert len(seen) == 5 and f.replays == 0 and '.item()' in f.breaks[0]
    with pytest.raises(RuntimeError, match='graph break'):
        torch.compile(logged, fullgraph=True)(*batches('mlp', 1)[0])


def test_hooks_are_a_graph_break():
    model, opt, step = setup(mlp)
    calls = []
    model[0].weight.register_hook(lambda g: calls.append(1) or g * 0.5)
    m2, _, s2 = setup(mlp)
    m2[0].weight.register_hook(lambda g: g * 0.5)
    f = torch.compile(step)
    for x, y in batches('mlp', 6): f(x, y); s2(x, y)
    assert len(calls) == 6 and 'hook' in f.breaks[0] and same_state(model, m2)
    fwd, (m3, _, s3) = [], setup(mlp)
    m3[2].register_forward_hook(lambda m, a, o: fwd.append(1))
    g = torch.compile(s3)
    for x, y in batches('mlp', 3): g(x, y)
    assert len(fwd) == 3 and 'forward hooks' in g.breaks[0]


def test_requires_grad_change_makes_a_new_recording():
    m1, _, s1 = setup(mlp); m2, _, s2 = setup(mlp)
    f = torch.compile(s2)
    for i, (x, y) in enumerate(batches('mlp', 12)):
        if i == 6:
            m1[0].weight.requires_grad_(False); m2[0].weight.requires_grad_(False)
        s1(x, y); f(x, y)
    assert same_state(m1, m2) and f.traces == 4
    assert m2[0].weight.grad is None and m2[2].weight.grad is not None


def test_learning_rate_and_batch_size_are_guarded():
    m1, o1, s1 = setup(mlp); m2, o2, s2 = setup(mlp)
    f = torch.compile(s2)
    for i, (x, y) in enumerate(batches('mlp', 12)):
        if i == 4: o1.param_groups[0]['lr'] = o2.param_groups[0]['lr'] = 0.001
        if i >= 8: x, y = x[:5], y[:5]
        assert s1(x, y).item() == f(x, y).item()
    assert same_state(m1, m2) and f.traces == 4


def test_a_replay_that_differs_runs_eagerly_with_a_warning():
    # the step reads a tensor's values into NumPy by a way the recorder cannot see (np.ndarray.view
    # on the array itself): the recording would replay stale numbers; the first replay is checked
    model, opt, step = setup(mlp)
    scale = torch.ones(1)
    def sneaky(x, y):
        s = np.ndarray.view(scale._data, np.ndarray) * 1.0  # untraced: a constant to the recorder
        with torch.no_grad(): model[0].bias.add_(torch.tensor(s.astype(np.float32)))
        return step(x, y)
    m2, o2, s2 = setup(mlp)
    f = torch.compile(sneaky)
    data = batches('mlp', 5)
    with pytest.warns(UserWarning, match='differed from eager mode'):
        for i, (x, y) in enumerate(data):
            scale._data[...] = i
            out = f(x, y)
    scale2 = torch.ones(1)
    for i, (x, y) in enumerate(data):
        with torch.no_grad(): m2[0].bias.add_(torch.full((1,), float(i)))
        ref = s2(x, y)
    assert same_state(model, m2) and out.item() == ref.item()


def test_compiled_module_replays_for_inference_and_keeps_its_names():
    torch.manual_seed(0)
    model = mlp()
    cm = torch.compile(model)
    assert isinstance(cm, nn.Module) and cm._orig_mod is model
    assert list(cm.state_dict())[0] == '_orig_mod.0.weight' and cm.training
    with pytest.raises(TypeError): cm[0]  # as PyTorch's OptimizedModule: dunders are not passed on
    x = batches('mlp', 1)[0][0]
    with torch.no_grad():
        outs = [cm(x) for _ in range(4)]
        ref = model(x)
    assert all(np.array_equal(o.numpy(), ref.numpy()) for o in outs) and cm._compiled_call.replays == 3
    loss = cm(x).sum()  # needs its graph: runs eagerly, and backward works
    loss.backward()
    assert model[0].weight.grad is not None and 'graph' in cm._compiled_call.breaks[0]


def test_reset_forgets_and_is_compiling():
    model, opt, step = setup(mlp)
    inside = []
    def f(x, y):
        inside.append(compiler.is_compiling())
        return step(x, y)
    cf = torch.compile(f)
    for x, y in batches('mlp', 3): cf(x, y)
    assert cf.traces == 2 and inside[:2] == [True, True]
    compiler.reset()
    assert cf.traces == 0 and not cf.programs
    assert torch.compile(step, disable=True) is step and compiler.disable(step) is step


def test_cache_size_limit():
    model, opt, step = setup(mlp)
    f = torch.compile(step)
    with pytest.warns(UserWarning, match='cache_size_limit'):
        for n in range(1, 12):  # a new batch size every call
            x, y = batches('mlp', 1, seed=n)[0]
            f(x[:n % 8 + 1], y[:n % 8 + 1])
    assert f.traces == 8


def test_adam_compiles():
    # Adam reads its step count as an array (no .item()): its step is recorded, and replays bitwise
    def run(compiled):
        torch.manual_seed(0)
        model = bn_dropout()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2, amsgrad=True)
        def step(x, y):
            opt.zero_grad(); loss = nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step()
            return loss.detach()
        f = torch.compile(step) if compiled else step
        torch.manual_seed(5)
        return model, [f(x, y).item() for x, y in batches('mlp')], f
    m1, l1, _ = run(False)
    m2, l2, f = run(True)
    assert l1 == l2 and same_state(m1, m2) and f.replays >= 16 and not f.breaks


def test_a_new_model_is_a_new_recording():
    # the step finds its model through a dict: a model put there later must be the one trained
    def run(compiled):
        torch.manual_seed(0)
        held = {}
        def fresh():
            held['model'] = mlp(); held['opt'] = torch.optim.SGD(held['model'].parameters(), lr=0.1)
        def step(x, y):
            held['opt'].zero_grad()
            loss = nn.functional.cross_entropy(held['model'](x), y)
            loss.backward(); held['opt'].step()
            return loss.detach()
        f = torch.compile(step) if compiled else step
        fresh(); first = held['model']
        data = batches('mlp', 8)
        for x, y in data[:4]: f(x, y)
        fresh()
        for x, y in data[4:]: f(x, y)
        return first, held['model'], f
    a1, b1, _ = run(False)
    a2, b2, f = run(True)
    assert same_state(a1, a2) and same_state(b1, b2) and f.traces == 4


def test_compiled_inside_compiled_is_one_recording():
    model, opt, step = setup(mlp)
    inner = torch.compile(step)
    outer = torch.compile(lambda x, y: inner(x, y))
    m2, _, s2 = setup(mlp)
    for x, y in batches('mlp', 5):
        assert outer(x, y).item() == s2(x, y).item()
    assert outer.replays == 3 and inner.traces == 0 and same_state(model, m2)


def test_a_loss_returned_after_its_backward():
    # the usual step returns the loss it backpropagated: that is recorded, and the replayed loss says
    # where it came from; a second backward fails as eagerly
    model, opt, _ = setup(mlp)
    def step(x, y):
        opt.zero_grad(); loss = nn.functional.cross_entropy(model(x), y); loss.backward(); opt.step()
        return loss
    f = torch.compile(step)
    outs = [f(x, y) for x, y in batches('mlp', 4)]
    assert f.replays == 2 and not f.breaks
    assert outs[-1].requires_grad and type(outs[-1].grad_fn).__name__ == 'NllLossBackward0'
    with pytest.raises(RuntimeError, match='second time'): outs[-1].backward()
