"""Around the core, against PyTorch: the deprecated `Variable` and `autograd.backward`, `torch.functional`,
`torch.backends`, `torch.autograd.functional`, the profiler, and saving a whole model with its optimizer."""
import io, warnings
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, compare, torch

pytestmark = needs_torch


def test_variable_is_a_detached_tensor_like_pytorchs():
    for lib in (nbtorch, torch):
        from importlib import import_module
        Variable = import_module(lib.__name__ + '.autograd').Variable
        t = lib.ones(2)
        v = Variable(t, requires_grad=True)
        assert type(v) is lib.Tensor and v.requires_grad and not t.requires_grad and v is not t
        assert isinstance(t, Variable) and not isinstance([1.], Variable)
        u = Variable(v * 2)                       # out of the graph: a leaf that asks for nothing
        assert (u.requires_grad, u.grad_fn, u.is_leaf) == (False, None, True)
        v.data[0] = 3.; assert t.tolist() == [3., 1.]
    with pytest.raises(TypeError, match='Variable data has to be a tensor, but got list'):
        nbtorch.autograd.Variable([1., 2.])
    with pytest.warns(UserWarning, match='volatile was removed'):
        nbtorch.autograd.Variable(nbtorch.ones(1), volatile=True)


def test_autograd_backward_of_several_outputs():
    def run(lib):
        a = lib.tensor([1., 2., 3.], requires_grad=True)
        b = a * a
        lib.autograd.backward([b.sum(), (b * a).sum()], retain_graph=True)
        first = a.grad.clone()
        lib.autograd.backward(b, grad_tensors=lib.tensor([1., 0., 2.]), inputs=[a])
        return first, a.grad
    compare(run(nbtorch), run(torch))
    with pytest.raises(RuntimeError, match='implicitly created only for scalar outputs'):
        nbtorch.autograd.backward(nbtorch.ones(2, requires_grad=True) * 2)


# torch.autograd.functional: the same functions, points and vectors through both libraries
def _vec_fns(lib):
    return {'single': (lambda x: (x ** 2).tanh() * x.sum(), (lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64),)),
            'tuples': (lambda a, b: (a * b.sum(), (a.exp() * b[:2]).sum()),
                       (lib.tensor([0.5, 1.5], dtype=lib.float64), lib.tensor([1., -2., 0.5], dtype=lib.float64)))}

def _scalar_fns(lib):
    return {'single': (lambda x: (x ** 3).sum() + x[0] * x[1] * x[2].sin(), (lib.tensor([0.3, -1.2, 2.0], dtype=lib.float64),)),
            'tuples': (lambda a, b: (a * a * b[:2]).sum() + b.exp().sum(),
                       (lib.tensor([0.5, 1.5], dtype=lib.float64), lib.tensor([1., -2., 0.5], dtype=lib.float64)))}


def _run_functional(lib, op, kind, create_graph):
    F = lib.autograd.functional
    fns = _vec_fns(lib) if op in ('jacobian', 'vjp', 'jvp') else _scalar_fns(lib)
    f, xs = fns[kind]
    xs = tuple(x.clone().requires_grad_(create_graph) for x in xs)
    arg = xs if kind == 'tuples' else xs[0]
    if op in ('jacobian', 'hessian'): res = getattr(F, op)(f, arg, create_graph=create_graph)
    else:
        like = xs if op != 'vjp' else ((f(*xs),) if kind == 'single' else f(*xs))
        v = tuple(lib.linspace(-1, 1, x.numel(), dtype=lib.float64).reshape(x.shape) for x in like)
        v = v if (kind == 'tuples' and (op != 'vjp' or isinstance(f(*xs), tuple))) else v[0]
        if op == 'jvp' and kind == 'tuples': v = tuple(lib.linspace(-1, 1, x.numel(), dtype=lib.float64) for x in xs)
        res = getattr(F, op)(f, arg, v, create_graph=create_graph)
    flat = _flatten(res)
    if create_graph and any(r.requires_grad for r in flat):  # the results are differentiable: their gradient against the inputs agrees too
        total = sum((r * r).sum() for r in flat if r.requires_grad)
        flat += list(lib.autograd.grad(total, xs, allow_unused=True, materialize_grads=True))
    return [r.detach() for r in flat], [r.requires_grad for r in _flatten(res)]


def _flatten(x):
    return [x] if not isinstance(x, (tuple, list)) else [t for el in x for t in _flatten(el)]


@pytest.mark.parametrize('create_graph', [False, True])
@pytest.mark.parametrize('kind', ['single', 'tuples'])
@pytest.mark.parametrize('op', ['jacobian', 'hessian', 'vjp', 'jvp', 'vhp', 'hvp'])
def test_autograd_functional_matches_pytorch(op, kind, create_graph):
    ours, ours_rg = _run_functional(nbtorch, op, kind, create_graph)
    ref, ref_rg = _run_functional(torch, op, kind, create_graph)
    assert ours_rg == ref_rg
    compare(ours, ref, atol=1e-10, rtol=1e-8)


def test_autograd_functional_strict_and_shape_errors_like_pytorchs():
    def cases(lib):
        F, x, y = lib.autograd.functional, lib.ones(2, dtype=lib.float64), lib.ones(3, dtype=lib.float64)
        return [lambda: F.jacobian(lambda a, b: a * 2, (x, y), strict=True),
                lambda: F.jacobian(lambda a: lib.ones(2), x, strict=True),
                lambda: F.vjp(lambda a: a * 2, x),
                lambda: F.vjp(lambda a: a * 2, x, y),
                lambda: F.jvp(lambda a, b: a * 2, (x, y), (x,)),
                lambda: F.hessian(lambda a: a * 2, x),
                lambda: F.hessian(lambda a: (a * 2).sum(), x, strict=True),
                lambda: F.hvp(lambda a: (a * 3).sum(), x, x, strict=True),
                lambda: F.vhp(lambda a: a, x, x),
                lambda: F.jacobian(lambda a: a, [x]),
                lambda: F.jacobian(lambda a: a, x, strict=True, vectorize=True)]
    for ours, ref in zip(cases(nbtorch), cases(torch)):
        with pytest.raises(Exception) as r: ref()
        with pytest.raises(type(r.value)) as o: ours()
        assert str(o.value) == str(r.value).replace('torch.Size', 'torch.Size')


def test_autograd_functional_leaves_the_callers_tensors_alone():
    x = nbtorch.tensor([1., 2.], requires_grad=True)
    J = nbtorch.autograd.functional.jacobian(lambda a: a * a, x)
    assert x.grad is None and not J.requires_grad and J.tolist() == [[2., 0.], [0., 4.]]


# the profiler
def _op_methods():
    from nbtorch.profiler import _ops
    return {(c, m): c.__dict__.get(m) for c in _ops() for m in ('forward', 'backward')}


def test_profiler_records_every_op_and_restores_them(tmp_path):
    before = _op_methods()
    x = nbtorch.ones(3, requires_grad=True)
    with nbtorch.profiler.profile(record_shapes=True) as prof:
        y = x
        for _ in range(3): y = y + 1
        with nbtorch.autograd.profiler.record_function('backward pass'):
            (y * y).sum().backward()
    avg = {a.key: a for a in prof.key_averages()}
    assert avg['aten::add'].count == 3 and avg['AddBackward0'].count == 3
    mb = next(e for e in prof.events() if e.name == 'MulBackward0')  # its formula is two products
    assert avg['aten::mul'].count == 3 and [c.name for c in mb.cpu_children] == ['aten::mul', 'aten::mul']
    assert avg['backward pass'].count == 1 and 'MulBackward0' in avg and 'SumBackward0' in avg
    bp = next(e for e in prof.events() if e.name == 'backward pass')
    assert {c.name for c in bp.cpu_children} >= {'SumBackward0', 'MulBackward0'}
    assert bp.self_cpu_time_total <= bp.cpu_time_total
    assert [e.input_shapes for e in prof.events() if e.name == 'aten::add'][0] == [[3], []]
    assert _op_methods() == before                       # nothing stays wrapped
    (x + 1).sum()
    assert len([e for e in prof.events() if e.name == 'aten::add']) == 3
    prof.export_chrome_trace(tmp_path / 'trace.json')
    import json
    evs = json.loads((tmp_path / 'trace.json').read_text())['traceEvents']
    assert len(evs) == len(prof.events()) and evs[0]['ph'] == 'X'


def test_profilers_nest_and_survive_errors():
    before = _op_methods()
    with nbtorch.profiler.profile() as outer:
        with nbtorch.profiler.profile() as inner: nbtorch.ones(2) * 2
        nbtorch.ones(2) - 1
    assert [e.name for e in inner.events()] == ['aten::mul']
    assert [e.name for e in outer.events()] == ['aten::mul', 'aten::sub']
    with pytest.raises(ZeroDivisionError):
        with nbtorch.profiler.profile(): 1 / 0
    assert _op_methods() == before
    with nbtorch.profiler.profile(enabled=False) as off: nbtorch.ones(2) * 2
    assert len(off.events()) == 0


def test_profiler_table_and_schedule_like_pytorchs():
    with nbtorch.profiler.profile() as ours: nbtorch.ones(4, 4) @ nbtorch.ones(4, 4)
    with torch.profiler.profile() as ref: torch.ones(4, 4) @ torch.ones(4, 4)
    o = ours.key_averages().table(sort_by='self_cpu_time_total').splitlines()
    r = ref.key_averages().table(sort_by='self_cpu_time_total').splitlines()
    assert o[1].split() == r[1].split() and o[-1].split(':')[0] == r[-1].split(':')[0] == 'Self CPU time total'
    for kw in [dict(wait=1, warmup=1, active=2), dict(wait=0, warmup=2, active=3, repeat=2, skip_first=3)]:
        s, t = nbtorch.profiler.schedule(**kw), torch.profiler.schedule(**kw)
        assert [s(i).name for i in range(20)] == [t(i).name for i in range(20)], kw


def test_torch_functional_names_what_nbtorch_has():
    import importlib
    F = importlib.import_module('nbtorch.functional')
    import torch.functional as TF
    assert F is nbtorch.functional and 'split' in F.__all__ and set(F.__all__) <= set(TF.__all__)
    for n in F.__all__: assert getattr(F, n) is getattr(nbtorch, n)
    ours = F.split(nbtorch.arange(5), 2)
    compare(list(ours), list(TF.split(torch.arange(5), 2)))


def test_torch_backends_flags_as_pytorchs_cpu_build():
    import importlib
    cudnn = importlib.import_module('nbtorch.backends.cudnn')
    assert cudnn is nbtorch.backends.cudnn
    for ours, ref in [(nbtorch.backends.cudnn, torch.backends.cudnn), (nbtorch.backends.mps, torch.backends.mps)]:
        for name in ['enabled', 'benchmark', 'deterministic', 'allow_tf32']:
            if hasattr(ref, name): assert getattr(ours, name) == getattr(ref, name), name
        for name in ['is_available', 'is_built', 'version']:
            if hasattr(ours, name): assert getattr(ours, name)() == getattr(ref, name)(), name
    assert nbtorch.backends.cuda.matmul.allow_tf32 == torch.backends.cuda.matmul.allow_tf32
    with cudnn.flags(enabled=False, benchmark=True):
        assert (cudnn.enabled, cudnn.benchmark) == (False, True)
    assert (cudnn.enabled, cudnn.benchmark) == (True, False)


class Net(nbtorch.nn.Module):
    "A model of one's own, saved whole (pickled by reference to this class)."
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nbtorch.nn.Linear(4, 8), nbtorch.nn.Linear(8, 2)
        self.register_buffer('scale', nbtorch.tensor(2.))
    def forward(self, x): return self.fc2(self.fc1(x).relu()) * self.scale


def test_save_a_whole_model_with_its_optimizer(tmp_path):
    """torch.save({'model': model, 'optimizer': opt}): refused by the default weights_only load, as in
    PyTorch; with weights_only=False both come back tied together, and training resumes identically."""
    nbtorch.manual_seed(0)
    model = Net()
    opt = nbtorch.optim.Adam(model.parameters(), lr=0.01)
    x = nbtorch.randn(5, 4)
    def step(m, o):
        o.zero_grad(); m(x).pow(2).mean().backward(); o.step()
    for _ in range(3): step(model, opt)
    nbtorch.save({'model': model, 'optimizer': opt}, tmp_path / 'ckpt.pt')
    with pytest.raises(Exception) as ref:
        torch.save(torch.nn.Linear(2, 2), tmp_path / 'ref.pt'); torch.load(tmp_path / 'ref.pt')
    with pytest.raises(type(ref.value), match='Weights only load failed'): nbtorch.load(tmp_path / 'ckpt.pt')
    got = nbtorch.load(tmp_path / 'ckpt.pt', weights_only=False)
    m2, o2 = got['model'], got['optimizer']
    assert type(m2) is Net and m2.scale.item() == 2. and o2.state_dict()['state'][0]['step'].item() == 3.
    assert all(a is b for a, b in zip(o2.param_groups[0]['params'], m2.parameters()))
    for _ in range(2): step(model, opt); step(m2, o2)
    np.testing.assert_array_equal(m2(x).detach().numpy(), model(x).detach().numpy())


def test_grad_mode_module_names_the_switches():
    import importlib
    gm, ref = importlib.import_module('nbtorch.autograd.grad_mode'), importlib.import_module('torch.autograd.grad_mode')
    for n in ['no_grad', 'enable_grad', 'set_grad_enabled', 'inference_mode']:
        assert hasattr(ref, n) and getattr(gm, n) is getattr(nbtorch.autograd, n)
    assert 'grad_mode' in nbtorch.autograd.__all__ and 'grad_mode' in torch.autograd.__all__


def test_functional_and_profiler_on_every_backend(dev):
    "Derivatives and profiling of device tensors stay on the device (the stand-in refuses NumPy mixing)."
    F = nbtorch.autograd.functional
    x = nbtorch.tensor([0.5, -1., 2.], device=dev)
    J = F.jacobian(lambda a: a.tanh() * a.sum(), x)
    _, hv = F.hvp(lambda a: (a ** 3).sum(), x, nbtorch.ones(3, device=dev))
    _, jv = F.jvp(lambda a: a * a, x, nbtorch.ones(3, device=dev))
    for r, ref in [(J, torch.autograd.functional.jacobian(lambda a: a.tanh() * a.sum(), torch.tensor([0.5, -1., 2.]))),
                   (hv, torch.tensor([3., -6., 12.])), (jv, torch.tensor([1., -2., 4.]))]:
        compare(r, ref, dev)
    with nbtorch.profiler.profile(record_shapes=True) as prof: (x * 2).sum()
    assert [e.name for e in prof.events()] == ['aten::mul', 'aten::sum']
