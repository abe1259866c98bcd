"""Pointwise math (nbs/00d_pointwise.ipynb) where PyTorch's OpInfo samples do not reach: every backend
(the stand-in device catches NumPy or SciPy called on device data), gradients through the in-place
forms, the edges of the domains, and PyTorch's errors."""
import math
import numpy as np
import pytest
import scipy.special
import nbtorch
from nbtorch import cuda
from helpers import needs_torch, run_both, same_error, compare, to_np
from conftest import torch
import standin

pytestmark = needs_torch

X = np.array([[-2.5, -0.75, 0.], [0.3, 1., 4.5]])  # inside and outside the domains (NaN, as in PyTorch)
P = np.array([0.05, 0.3, 0.5, 0.95])               # inside (0, 1): logit, erfinv
EDGES = np.array([0., -0., 1e-200, math.inf, -math.inf, math.nan, -1., 1., 2.])


def test_get_special_module(dev):
    x = nbtorch.tensor([0., 1.], device=dev)._data
    special = cuda.get_special_module(x)
    if dev == 'cpu': assert special is scipy.special
    else: assert special is not scipy.special
    assert type(special.erf(x)) is type(x)  # stays on the device


UNARY = ['tan', 'asin', 'acos', 'atan', 'sinh', 'cosh', 'asinh', 'acosh', 'atanh', 'exp2', 'expm1',
         'log2', 'log10', 'log1p', 'reciprocal', 'rsqrt', 'square', 'deg2rad', 'rad2deg', 'sinc',
         'frac', 'signbit', 'isnan', 'isinf', 'isposinf', 'isneginf', 'isfinite', 'nan_to_num',
         'erf', 'erfc', 'lgamma', 'digamma', 'i0', 'positive']


@pytest.mark.parametrize('fn', UNARY)
def test_unary_on_every_backend(dev, fn):
    run_both(lambda t, x: getattr(t, fn)(x), [X], dev, atol=1e-6, rtol=1e-6)
    run_both(lambda t, x: getattr(x, fn)(), [EDGES], dev, atol=1e-6, rtol=1e-6)


def test_functions_with_arguments(dev):
    run_both(lambda t, x: t.logit(x), [P], dev)
    run_both(lambda t, x: t.logit(x, eps=0.1), [np.array([0., 0.05, 0.5, 1.])], dev)
    run_both(lambda t, x: t.erfinv(x), [P], dev)
    run_both(lambda t, x: t.nan_to_num(x, nan=1., posinf=2., neginf=-2.), [EDGES], dev)
    run_both(lambda t, x: tuple(t.frexp(x)), [EDGES], dev)
    for n in range(4): run_both(lambda t, x: t.polygamma(n, x), [X + 5.25], dev, rtol=1e-9)
    run_both(lambda t, x: t.mvlgamma(x, 3), [X + 3], dev)


GRADS = ['tan', 'asin', 'acosh', 'atanh', 'exp2', 'log1p', 'rsqrt', 'sinc', 'erf', 'erfc', 'lgamma',
         'digamma', 'i0', 'nan_to_num']


@pytest.mark.parametrize('fn', GRADS)
def test_gradients_on_every_backend(dev, fn):
    x = X * 0.3 + 1.5 if fn != 'nan_to_num' else EDGES
    if fn in ('asin', 'atanh'): x = P
    xt = torch.tensor(x, requires_grad=True)
    getattr(xt, fn)().sum().backward()
    xn = nbtorch.tensor(x, device=dev, requires_grad=True)
    getattr(xn, fn)().sum().backward()
    compare(xn.grad, xt.grad, dev, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize('fn,args', [('sin', ()), ('log', ()), ('abs', ()), ('sqrt', ()),
                                     ('asin', ()), ('erf', ()), ('digamma', ()), ('logit', (0.1,)),
                                     ('polygamma', (2,)), ('mvlgamma', (2,)), ('nan_to_num', ())])
def test_inplace_inside_a_graph(fn, args):
    "y.f_() differentiates as y.f() does, though f saves its input and the in-place form overwrites it."
    grads = []
    for lib in (torch, nbtorch):
        x = lib.tensor(P * 2 + 1, requires_grad=True)
        y = x * 1
        out = getattr(y, fn + '_')(*args)
        assert out is y
        (y * lib.tensor([1., 2., 3., 4.], dtype=lib.float64)).sum().backward()
        grads.append(x.grad)
    # 1e-8: PyTorch's trigamma (digamma's derivative) is off by 5e-10; SciPy's is exact
    compare(grads[1], grads[0], atol=1e-8, rtol=1e-8)
    assert y.grad_fn.name() == out.grad_fn.name()


def test_grad_fn_names():
    x = nbtorch.tensor([0.5], requires_grad=True)
    names = {f: getattr(x, f)().grad_fn.name() for f in ['tan', 'acosh', 'expm1', 'erfinv', 'digamma',
                                                          'i0', 'sinc', 'nan_to_num', 'lgamma']}
    assert names == {f: getattr(torch.tensor([0.5], requires_grad=True), f)().grad_fn.name()
                     for f in names}
    assert x.polygamma(2).grad_fn.name() == 'PolygammaBackward0'
    assert x.frexp().mantissa.grad_fn.name() == 'FrexpBackward0'


def test_edges_agree_with_pytorch():
    "The values where NumPy, SciPy and PyTorch could part: poles, infinities, signed zeros."
    for fn in ['lgamma', 'digamma', 'sign', 'signbit', 'sinc', 'erfinv', 'i0', 'rsqrt', 'reciprocal']:
        run_both(lambda t, x: getattr(t, fn)(x), [EDGES])
    run_both(lambda t, x: t.isinf(x), [np.array([1, -2])])


def test_sign_of_bool():
    "NumPy has no sign of a bool; PyTorch's is the bool itself."
    run_both(lambda t, x: x.sign(), [np.array([True, False])])


def test_erf_is_exact_and_so_is_gelu():
    "erf was Abramowitz and Stegun's approximation (error 1e-7): wrong for float64."
    x = np.linspace(-4, 4, 101)
    run_both(lambda t, a: a.erf(), [x], atol=1e-15, rtol=1e-15)
    run_both(lambda t, a: t.nn.functional.gelu(a), [x], atol=1e-15, rtol=1e-14)
    run_both(lambda t, a: t.erf(a), [x], atol=1e-15, rtol=1e-15)


def test_sinc_and_logit_gradients_at_their_edges():
    for lib in (torch, nbtorch):
        x = lib.tensor([0., 1e-200, 0.5], dtype=lib.float64, requires_grad=True)
        lib.sinc(x).sum().backward()
        assert x.grad.tolist()[:2] == [0., 0.]
    run = lambda lib, eps: _grad(lib, lambda x: x.logit(eps), [-0.5, 0., 0.1, 1., 1.5])
    np.testing.assert_array_equal(run(nbtorch, None), run(torch, None))  # NaN outside [0, 1]
    np.testing.assert_array_equal(run(nbtorch, 0.2), run(torch, 0.2))    # 0 where clamped


def _grad(lib, f, values):
    x = lib.tensor(values, dtype=lib.float64, requires_grad=True)
    f(x).sum().backward()
    return to_np(x.grad)


@pytest.mark.parametrize('fn', [
    lambda t, x: t.frac(x.long()), lambda t, x: t.frac(x > 0), lambda t, x: t.frexp(x.long()),
    lambda t, x: t.positive(x > 0), lambda t, x: t.polygamma(-1, x), lambda t, x: t.mvlgamma(x, 0),
    lambda t, x: x.long().sqrt_(), lambda t, x: x.long().erf_(),
    lambda t, x: x.requires_grad_().sin_(), lambda t, x: x.requires_grad_().asin_()])
def test_errors(fn):
    same_error(fn, [P])


def test_complex_infinities_and_closeness():
    "isinf, isfinite, isclose and isposinf on complex numbers: either part counts, as in PyTorch."
    inf, nan = float('inf'), float('nan')
    v = [complex(inf, 0), complex(0, inf), complex(nan, 0), complex(0, nan), complex(inf, nan),
         complex(1, 2), complex(-inf, -inf), complex(1, 5)]
    a, b = torch.tensor(v), nbtorch.tensor(v)
    for f in ('isfinite', 'isinf', 'isnan'):
        assert getattr(nbtorch, f)(b).tolist() == getattr(torch, f)(a).tolist(), f
    for equal_nan in (False, True):
        for other in (a, a.flip(0), a.roll(1)):
            assert nbtorch.isclose(b, nbtorch.tensor(other.numpy()), equal_nan=equal_nan).tolist() \
                == torch.isclose(a, other, equal_nan=equal_nan).tolist()
    for f in ('isposinf', 'isneginf'):
        with pytest.raises(RuntimeError, match=f'{f} does not support complex inputs'):
            getattr(nbtorch, f)(b)


def test_log10_of_powers_of_ten_is_exact():
    "float32 log10 rounds once, from float64: NumPy's AVX-512 float32 log10 gives 3.0000002 for 1000"
    " (on the GPU, CuPy's log10 is CUDA's)."
    p = np.arange(-30, 31)
    x = nbtorch.tensor(np.float32(10.0) ** p.astype(np.float32))
    np.testing.assert_array_equal(x.log10().numpy(), torch.tensor(x.numpy()).log10())
    assert x[33:37].log10().tolist() == [3., 4., 5., 6.]
