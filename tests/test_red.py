"""Reductions, scans, sorting and searching (issue 13): what the OpInfo measure does not pin.

`out=` (OpInfo's samples never pass it), the Tensor-method spellings the issue names, errors, and
every op run on the stand-in device, which refuses NumPy calls on device arrays."""
import math, warnings
import numpy as np
import pytest
import nbtorch
from helpers import torch, needs_torch, run_both, compare, same_error

pytestmark = needs_torch

rng = np.random.default_rng(0)
X = rng.standard_normal((4, 6))
INTS = rng.integers(-3, 4, (4, 6))
ZEROS = np.array([[2., 0., 3., 1.], [0., 0., 2., -1.]])

# (name, fn(lib, *tensors), arrays): each runs on nbtorch (CPU and the stand-in device) and PyTorch
OPS = [
    ('sum of a 0-d over dim 0', lambda t, x: x.sum(0), [np.array(2.5)]),
    ('amax of a 0-d, keepdim', lambda t, x: t.amax(x, 0, keepdim=True), [np.array(2.5)]),
    ('std(x, True): unbiased', lambda t, x: x.std(True), [X]),
    ('var_mean', lambda t, x: t.var_mean(x, 1, correction=0), [X]),
    ('aminmax', lambda t, x: tuple(t.aminmax(x, dim=1)), [X]),
    ('nansum, nanmean', lambda t, x: (x.nansum(1), x.nanmean(0)), [np.where(X > 1, np.nan, X)]),
    ('norm()', lambda t, x: x.norm(), [X]),
    ('norm p=3 over dim 1', lambda t, x: x.norm(3, 1), [X]),
    ('norm inf', lambda t, x: t.norm(x, float('inf'), 0), [X]),
    ('norm nuc', lambda t, x: x.norm('nuc'), [X]),
    ('dist', lambda t, x, y: t.dist(x, y, 1), [X, X[::-1].copy()]),
    ('renorm', lambda t, x: x.renorm(2, 0, 1.), [X]),
    ('cumsum of ints', lambda t, x: x.cumsum(1), [INTS]),
    ('cumprod with zeros', lambda t, x: t.cumprod(x, 1), [ZEROS]),
    ('cummax', lambda t, x: tuple(x.cummax(1)), [INTS]),
    ('cummin', lambda t, x: tuple(t.cummin(x, 0)), [np.array([3., np.nan, 1., 0.])]),
    ('logcumsumexp', lambda t, x: x.logcumsumexp(1), [X]),
    ('diff', lambda t, x: t.diff(x, 2, 0), [X]),
    ('gradient', lambda t, x: t.gradient(x, spacing=2., edge_order=2), [X]),
    ('trapezoid', lambda t, x, y: t.trapezoid(x, y[0]), [X, np.cumsum(np.ones((1, 6)), 1)]),
    ('cumulative_trapezoid', lambda t, x: t.cumulative_trapezoid(x, dx=.5), [X]),
    ('cov, corrcoef', lambda t, x: (t.cov(x), t.corrcoef(x)), [X]),
    ('nonzero of a 0-d', lambda t, x: (t.nonzero(x), t.argwhere(x)), [np.array(3.)]),
    ('sort descending', lambda t, x: tuple(x.sort(dim=1, descending=True, stable=True)), [INTS]),
    ('argsort', lambda t, x: t.argsort(x, dim=0, stable=True), [X]),
    ('topk', lambda t, x: tuple(x.topk(2, 1)), [X]),
    ('kthvalue', lambda t, x: tuple(t.kthvalue(x, 3, 0, True)), [X]),
    ('median', lambda t, x: (x.median(), tuple(x.median(1))), [X]),
    ('nanmedian', lambda t, x: tuple(x.nanmedian(0)), [np.where(X > 0, np.nan, X)]),
    ('mode', lambda t, x: tuple(x.mode(1)), [INTS]),
    ('quantile', lambda t, x, q: t.quantile(x, q, 1, interpolation='nearest'),
     [X, np.array([.2, .9])]),
    ('nanquantile', lambda t, x: x.nanquantile(.3, 0), [np.where(X > 1, np.nan, X)]),
    ('searchsorted rows', lambda t, s, v: t.searchsorted(s, v, right=True),
     [np.sort(X, 1), X[:, :2].copy()]),
    ('bucketize', lambda t, x, b: t.bucketize(x, b), [X, np.array([-1., 0., 1.])]),
    ('unique', lambda t, x: t.unique(x, return_inverse=True, return_counts=True), [INTS]),
    ('unique dim', lambda t, x: x.unique(dim=1), [INTS[:, :2].repeat(2, 1)]),
    ('unique_consecutive', lambda t, x: x.unique_consecutive(return_counts=True, dim=0),
     [np.array([[1, 2], [1, 2], [3, 4]])]),
    ('histc', lambda t, x: x.histc(5), [X]),
    ('histogram', lambda t, x: tuple(t.histogram(x, 4, density=True)), [X]),
    ('histogramdd', lambda t, x: t.histogramdd(x, [2, 3]).hist, [X[:, :2].copy()]),
    ('bincount', lambda t, x: x.bincount(minlength=9), [np.abs(INTS).ravel()]),
    ('count_nonzero', lambda t, x: t.count_nonzero(x, 1), [INTS]),
    ('isin', lambda t, x, y: t.isin(x, y, invert=True), [INTS, np.array([0, 1])]),
    ('nonzero_static', lambda t, x: x.nonzero_static(size=30, fill_value=7), [INTS]),
]


@pytest.mark.parametrize('name,fn,arrays', OPS, ids=[o[0] for o in OPS])
def test_op(name, fn, arrays, dev):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        run_both(fn, arrays, dev, atol=1e-6, rtol=1e-6)


# (name, fn(lib, x) -> a tensor whose sum is differentiated, input)
GRADS = [
    ('cumprod with zeros', lambda t, x: x.cumprod(1), ZEROS),
    ('logcumsumexp', lambda t, x: x.logcumsumexp(0), X),
    ('median shares ties', lambda t, x: x.median(), np.array([1., 2., 2., 3.])),
    ('norm at the zero vector', lambda t, x: x.norm(dim=1), np.array([[0., 0.], [3., 4.]])),
    ('norm inf with ties', lambda t, x: x.norm(float('inf')), np.array([1., -3., 3.])),
    ('renorm', lambda t, x: x.renorm(1, 1, 1.5), X),
    ('quantile', lambda t, x: x.quantile(t.tensor([.25, .5], dtype=x.dtype, device=x.device), 0), X),
    ('cummax', lambda t, x: x.cummax(1).values, INTS.astype(float)),
]


@pytest.mark.parametrize('name,fn,a', GRADS, ids=[g[0] for g in GRADS])
def test_gradient(name, fn, a, dev):
    ref = torch.tensor(a, requires_grad=True)
    (fn(torch, ref) * torch.arange(1., 1 + fn(torch, ref).numel()).reshape(fn(torch, ref).shape)
     ).sum().backward()
    ours = nbtorch.tensor(a, device=dev, requires_grad=True)
    y = fn(nbtorch, ours)
    (y * nbtorch.arange(1., 1 + y.numel(), device=dev).reshape(y.shape)).sum().backward()
    compare(ours.grad, ref.grad, dev, atol=1e-6, rtol=1e-6)


# --- out= ----------------------------------------------------------------------------------------

def test_matmul_out_is_written_and_returned(dev):
    "The issue's example: torch.matmul(a, b, out=c) writes c and returns it."
    a, b = nbtorch.tensor(X, device=dev), nbtorch.tensor(X.T.copy(), device=dev)
    c = nbtorch.zeros(4, 4, dtype=nbtorch.float64, device=dev)
    r = nbtorch.matmul(a, b, out=c)
    assert r is c
    compare(c, torch.matmul(torch.tensor(X), torch.tensor(X.T.copy())), dev)


def test_out_of_a_tuple_result():
    "sort(out=(values, indices)) fills both and returns them, as torch.return_types.sort."
    v, i = nbtorch.zeros(4, 6, dtype=nbtorch.float64), nbtorch.zeros(4, 6, dtype=nbtorch.int64)
    r = nbtorch.sort(nbtorch.tensor(X), 1, out=(v, i))
    assert r.values is v and r.indices is i
    compare((v, i), tuple(torch.sort(torch.tensor(X), 1)))


def test_out_resizes_with_pytorchs_warning():
    out, ref = nbtorch.zeros(2), torch.zeros(2)
    with pytest.warns(UserWarning, match='was resized since it had shape'):
        nbtorch.cumsum(nbtorch.tensor(INTS, dtype=nbtorch.float32), 1, out=out)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        torch.cumsum(torch.tensor(INTS, dtype=torch.float32), 1, out=ref)
    compare(out, ref)
    empty = nbtorch.zeros(0, dtype=nbtorch.int64)  # an empty out is resized without a warning
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        nbtorch.searchsorted(nbtorch.tensor([1., 2.]), nbtorch.tensor([1.5, 3.]), out=empty)
    assert empty.tolist() == [1, 2]


@pytest.mark.parametrize('call', [
    lambda t, x, o: t.matmul(x, x.t(), out=o),
    lambda t, x, o: t.cumsum(x, 0, out=o),
    lambda t, x, o: t.amax(x, 1, out=o),
])
def test_out_refuses_a_recorded_gradient(call):
    "PyTorch's error, word for word, when an input requires grad."
    def fn(t, x):
        return call(t, x.requires_grad_(), t.zeros(0, dtype=t.float64))
    same_error(fn, [X])


def test_out_is_only_where_pytorch_has_it():
    "argsort takes out= only with stable= (tests/test_out.py checks the overloads against PyTorch)."
    with pytest.raises(TypeError):
        nbtorch.argsort(nbtorch.tensor(X), out=nbtorch.zeros(0, dtype=nbtorch.int64))


# --- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize('fn,arrays', [
    (lambda t, x: x.bincount(), [np.array([1, -1])]),
    (lambda t, x: x.quantile(1.5), [X]),
    (lambda t, x: t.diff(x), [np.array(1.)]),
    (lambda t, x: x.kthvalue(7, 1), [X]),
    (lambda t, x: x.norm('bad'), [X]),
    (lambda t, x: t.nanmean(x), [INTS]),
    (lambda t, x: x.sum(1), [np.array(1.)]),
])
def test_errors_as_pytorchs(fn, arrays):
    same_error(fn, arrays)
