"""Activations at their corners, against PyTorch: the kinks, the tails, +-inf and NaN as inputs, an
incoming gradient of 1, inf or NaN (an overflow upstream), and the dtypes PyTorch's kernels refuse."""
import math
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch, compare, run_both

pytestmark = needs_torch

CORNERS = [-math.inf, -100., -30., -20., -6., -3., -1., -0.5, -0., 0., 0.5, 1., 3., 6., 20., 30.,
           100., math.inf, math.nan]


def F(lib): return lib.nn.functional


ACTS = {  # name: f(lib, x)
    'relu': lambda t, x: F(t).relu(x),
    'relu6': lambda t, x: F(t).relu6(x),
    'hardtanh': lambda t, x: F(t).hardtanh(x),
    'hardtanh_wide': lambda t, x: F(t).hardtanh(x, -3., 6.),
    'hardsigmoid': lambda t, x: F(t).hardsigmoid(x),
    'hardswish': lambda t, x: F(t).hardswish(x),
    'silu': lambda t, x: F(t).silu(x),
    'gelu': lambda t, x: F(t).gelu(x),
    'gelu_tanh': lambda t, x: F(t).gelu(x, approximate='tanh'),
    'mish': lambda t, x: F(t).mish(x),
    'elu': lambda t, x: F(t).elu(x, 0.5),
    'celu': lambda t, x: F(t).celu(x, 2.),
    'selu': lambda t, x: F(t).selu(x),
    'leaky_relu': lambda t, x: F(t).leaky_relu(x, 0.1),
    'softplus': lambda t, x: F(t).softplus(x, 2., 10.),
    'logsigmoid': lambda t, x: F(t).logsigmoid(x),
    'hardshrink': lambda t, x: F(t).hardshrink(x, 1.),
    'softshrink': lambda t, x: F(t).softshrink(x, 1.),
    'threshold': lambda t, x: F(t).threshold(x, 1., -2.),
    'sigmoid': lambda t, x: x.sigmoid(),
    'tanh': lambda t, x: x.tanh(),
    'softsign': lambda t, x: F(t).softsign(x),
    'tanhshrink': lambda t, x: F(t).tanhshrink(x),
    'rrelu_eval': lambda t, x: F(t).rrelu(x),
}


@pytest.mark.parametrize('incoming', [1., math.inf, -math.inf, math.nan])
@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('name', list(ACTS))
def test_corners(dev, name, dtype, incoming):
    "Values and gradients at every corner, to the last inf and NaN, as PyTorch's kernels give them."
    def run(lib, d, dt):
        x = lib.tensor(CORNERS, dtype=getattr(lib, dt), device=d, requires_grad=True)
        y = ACTS[name](lib, x)
        y.backward(lib.full_like(y, incoming))
        return y.detach(), x.grad
    ours, ref = run(nbtorch, dev, dtype), run(torch, 'cpu', dtype)
    if dtype == 'float32':  # PyTorch's float32 kernels depend on the CPU: its AVX-512 gelu gives
        # gelu(inf) = NaN and gelu(-3) = -0.0040502 (-0.0040497 in float64; AVX2: both right).
        # Where its float32 value differs from its float64 one, rounded, the float64 is the
        # reference (not for gradients: an incoming inf times a gradient that float32 underflows
        # to 0 is NaN in float32, inf in float64)
        wide = run(torch, 'cpu', 'float64')[0].float()
        close = torch.isclose(ref[0], wide, rtol=1e-5, atol=1e-6, equal_nan=True)
        ref = (torch.where(close, ref[0], wide), ref[1])
    compare(ours, ref, dev, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize('dtype', ['bool', 'uint8', 'int32', 'int64', 'complex64'])
@pytest.mark.parametrize('name', list(ACTS) + ['glu', 'prelu', 'softmax', 'log_softmax',
                                               'softmax_dim0', 'rrelu_train'])
def test_dtypes_refused_as_pytorch(name, dtype):
    "Where PyTorch's kernel refuses a dtype, nbtorch raises the same error; elsewhere the same result."
    fns = dict(ACTS, glu=lambda t, x: F(t).glu(x), softmax=lambda t, x: x.softmax(-1),
               prelu=lambda t, x: F(t).prelu(x, t.tensor([0.25]).to(x.dtype)),
               log_softmax=lambda t, x: x.log_softmax(-1), softmax_dim0=lambda t, x: x.softmax(0),
               rrelu_train=lambda t, x: F(t).rrelu(x, 0.2, 0.2, training=True))
    a = np.array([[2, 0], [1, 3]]).astype(dtype)
    run_both(lambda t, x: fns[name](t, x), [a])


def test_hardtanh_unsigned_negative_limits():
    "PyTorch refuses a negative limit on uint8 (the clamp would wrap around); relu6's are fine."
    a = np.array([0, 7, 200], np.uint8)
    run_both(lambda t, x: F(t).hardtanh(x), [a])
    run_both(lambda t, x: F(t).relu6(x), [a])


def test_prelu_refuses_mixed_dtypes():
    run_both(lambda t, x: F(t).prelu(x, t.tensor([0.25])), [np.array([1., -2.], np.float64)])


def test_complex_silu_has_no_gradient():
    "silu takes complex numbers, but PyTorch refuses to record it for autograd, at the call."
    a = np.array([1 + 2j, -1 + .5j], np.complex64)
    run_both(lambda t, x: F(t).silu(x), [a])
    run_both(lambda t, x: F(t).silu(x.requires_grad_()), [a])


@pytest.mark.parametrize('name', ['relu', 'hardtanh', 'silu', 'gelu', 'gelu_tanh', 'mish', 'hardswish'])
def test_second_derivative(dev, name):
    """The gates and the one-node activations differentiate twice, as PyTorch does. (For the gates
    PyTorch's x.grad is zeros, where ours is None: its backward names x as an input, ours reads only
    x's mask, which has no gradient.)"""
    fn = dict(ACTS)[name]
    out = {}
    for lib, d in ((torch, 'cpu'), (nbtorch, dev)):
        x = lib.tensor([-2., -0.5, 0.25, 1.5, 4.], dtype=lib.float64, device=d, requires_grad=True)
        w = lib.tensor([1., -2., 3., 0.5, 2.], dtype=lib.float64, device=d, requires_grad=True)
        g, = lib.autograd.grad((fn(lib, x) * w).sum(), x, create_graph=True)
        (g * g).sum().backward()
        out[lib] = [g.detach(), x.grad, w.grad]
    if out[nbtorch][1] is None and name in ('relu', 'hardtanh'):
        assert not out[torch][1].any()
        out[nbtorch][1] = nbtorch.zeros_like(out[nbtorch][0])
    compare(out[nbtorch], out[torch], dev)


def test_node_names():
    "One node each, named as PyTorch names it, so a drawn graph matches."
    x = nbtorch.ones(2, requires_grad=True)
    names = {n: ACTS[n](nbtorch, x).grad_fn.name() for n in
             ['silu', 'gelu', 'gelu_tanh', 'mish', 'hardsigmoid', 'hardswish', 'relu']}
    ref = {n: ACTS[n](torch, torch.ones(2, requires_grad=True)).grad_fn.name() for n in names}
    assert names == ref


INPLACE = ['silu', 'mish', 'hardswish', 'hardsigmoid', 'relu', 'relu6', 'hardtanh', 'elu', 'selu',
           'celu', 'leaky_relu', 'rrelu']


@pytest.mark.parametrize('name', INPLACE)
def test_inplace_on_a_computed_tensor(dev, name):
    """`inplace=True` on a tensor autograd computed (nn.Hardswish(inplace=True) after a conv): the
    gradient flows, as in PyTorch, though the backward needs the overwritten input."""
    out = {}
    for lib, d in ((torch, 'cpu'), (nbtorch, dev)):
        w = lib.tensor([-4., -3., -2., -0.5, 0.5, 3., 5.], device=d, requires_grad=True)
        x = w * 1.5
        y = getattr(F(lib), name)(x, inplace=True)
        assert y is x
        y.backward(lib.arange(7., device=d))
        out[lib] = (y.detach(), w.grad)
    compare(out[nbtorch], out[torch], dev)
