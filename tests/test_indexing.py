"""Shapes, views, indexing and scattering (issue 13) beyond what the OpInfo harness covers: each op on
every backend (the stand-in device catches NumPy calls on device arrays, and runs the rounds of
`_reduce_at` that CuPy needs), PyTorch's errors, and views that share memory and version counter."""
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, run_both, same_error, torch, compare
from test_autograd_conformance import grad_both

pytestmark = [needs_torch, pytest.mark.filterwarnings("ignore::UserWarning")]  # deprecations, betas
R = np.random.default_rng(0)
f64 = lambda *s: R.standard_normal(s)
i64 = lambda *v: np.array(v, dtype=np.int64)
mask = lambda *v: np.array(v, dtype=bool)

# (name, fn(lib, *tensors), arrays): forward on every backend, and the gradient of the float inputs
OPS = [
    ('diagonal', lambda t, x: t.diagonal(x, 1, 0, 2), [f64(3, 2, 4)]),
    ('unfold', lambda t, x: x.unfold(1, 3, 2), [f64(2, 7)]),
    ('as_strided', lambda t, x: t.as_strided(x, (3, 2), (1, 3), 1), [f64(3, 3)]),
    ('flip', lambda t, x: t.flip(x, (0, 2)), [f64(2, 3, 4)]),
    ('roll', lambda t, x: t.roll(x, (1, -2), (0, 1)), [f64(3, 4)]),
    ('roll_flat', lambda t, x: t.roll(x, 5), [f64(3, 4)]),
    ('rot90', lambda t, x: t.rot90(x, 3, (1, 0)), [f64(3, 4)]),
    ('tril', lambda t, x: t.tril(x, -1), [f64(2, 4, 3)]),
    ('triu', lambda t, x: x.triu(1), [f64(4, 3)]),
    ('trace', lambda t, x: t.trace(x), [f64(3, 4)]),
    ('diag', lambda t, x: t.diag(x, -1), [f64(3)]),
    ('diag_embed', lambda t, x: t.diag_embed(x, 1, 0, 2), [f64(2, 3)]),
    ('diagflat', lambda t, x: t.diagflat(x), [f64(2, 2)]),
    ('diagonal_scatter', lambda t, x, s: t.diagonal_scatter(x, s, -1), [f64(3, 3), f64(2)]),
    ('select_scatter', lambda t, x, s: t.select_scatter(x, s, 1, -1), [f64(3, 3), f64(3)]),
    ('slice_scatter', lambda t, x, s: t.slice_scatter(x, s, 0, 1, None, 2), [f64(5, 2), f64(2, 2)]),
    ('movedim', lambda t, x: t.movedim(x, (0, 2), (1, 0)), [f64(2, 3, 4)]),
    ('broadcast_tensors', lambda t, x, y: t.broadcast_tensors(x, y), [f64(3, 1), f64(4)]),
    ('tile', lambda t, x: t.tile(x, (2, 1, 2)), [f64(2, 3)]),
    ('repeat_interleave', lambda t, x, r: t.repeat_interleave(x, r, 1), [f64(2, 3), i64(2, 0, 1)]),
    ('sum_to_size', lambda t, x: x.sum_to_size(3, 1), [f64(2, 3, 4)]),
    ('cat_legacy_empty', lambda t, x, y: t.cat([x, y], 1), [f64(0), f64(2, 2)]),
    ('hstack', lambda t, x, y: t.hstack([x, y]), [f64(3), f64(2)]),
    ('dstack', lambda t, x, y: t.dstack([x, y]), [f64(2, 3), f64(2, 3)]),
    ('tensor_split', lambda t, x: t.tensor_split(x, 3, 1), [f64(2, 7)]),
    ('meshgrid_xy', lambda t, x, y: t.meshgrid(x, y, indexing='xy'), [f64(3), f64(2)]),
    ('cartesian_prod', lambda t, x, y: t.cartesian_prod(x, y), [f64(3), f64(2)]),
    ('combinations', lambda t, x: t.combinations(x, 2, True), [f64(3)]),
    ('take', lambda t, x, i: t.take(x, i), [f64(3, 4), i64(0, -1, 5, 5)]),
    ('take_along_dim', lambda t, x, i: t.take_along_dim(x, i, 0), [f64(3, 4), i64(2, 0, -1)[:, None]]),
    ('index_select', lambda t, x, i: t.index_select(x, 1, i), [f64(3, 4), i64(3, 3, 0)]),
    ('index_add', lambda t, x, i, s: t.index_add(x, 0, i, s, alpha=2),
     [f64(3, 2), i64(2, 2, 0), f64(3, 2)]),
    ('index_copy', lambda t, x, i, s: t.index_copy(x, 1, i, s), [f64(2, 4), i64(3, 0), f64(2, 2)]),
    ('index_fill', lambda t, x, i: t.index_fill(x, 0, i, 2.5), [f64(3, 2), i64(-1, 0)]),
    ('index_put', lambda t, x, i, v: t.index_put(x, (i,), v, accumulate=True),
     [f64(4, 2), i64(1, 1, 3), f64(2)]),
    ('masked_fill', lambda t, x, m: t.masked_fill(x, m, -1.), [f64(2, 3), mask(1, 0, 1)]),
    ('masked_scatter', lambda t, x, m, s: t.masked_scatter(x, m, s),
     [f64(2, 3), mask(1, 0, 1), f64(5)]),
    ('masked_select', lambda t, x, m: t.masked_select(x, m), [f64(2, 3), mask(0, 1, 1)]),
    ('put', lambda t, x, i, s: t.put(x, i, s, accumulate=True), [f64(2, 2), i64(-1, 3, 0), f64(3)]),
    ('gather_int32', lambda t, x, i: t.gather(x, 1, i.int()), [f64(2, 3), i64([2, 0], [1, 1])]),
    ('scatter_reduce_multiply', lambda t, x, i, s: x.scatter(0, i, s, reduce='multiply'),
     [f64(3), i64(0, 0, 2), f64(3)]),
    ('index_reduce_amin', lambda t, x, i, s: t.index_reduce(x, 0, i, s, 'amin', include_self=False),
     [f64(3, 2), i64(2, 2, 0, 2), f64(4, 2)]),
]
# every reduction, with a place reached three times (three rounds of `_reduce_at` on a device)
for _r in ('sum', 'prod', 'mean', 'amax', 'amin'):
    for _inc in (True, False):
        OPS.append((f'scatter_reduce_{_r}_{_inc}',
                    (lambda r, inc: lambda t, x, i, s: t.scatter_reduce(x, 1, i, s, r,
                                                                         include_self=inc))(_r, _inc),
                    [f64(2, 4), i64([3, 3, 0, 3], [1, 0, 0, 2]), f64(2, 4)]))


@pytest.mark.parametrize('name, fn, arrays', OPS, ids=[o[0] for o in OPS])
def test_op(dev, name, fn, arrays):
    run_both(fn, arrays, dev, atol=1e-6, rtol=1e-6)
    grad_both(fn, arrays, dev, atol=1e-6, rtol=1e-6)


def test_as_strided_scatter(dev):
    """PyTorch's gradient of `input` is `g` *inside* the written view (its as_strided_scatter_backward);
    nbtorch's is the derivative, `g` outside it: the values there were overwritten. `src`'s agree."""
    fn = lambda t, x, s: t.as_strided_scatter(x, s, (2,), (3,), 1)
    run_both(fn, [f64(3, 3), f64(2)], dev)
    x = nbtorch.ones(3, 3, requires_grad=True, device=dev)
    s = nbtorch.ones(2, requires_grad=True, device=dev)
    g = nbtorch.arange(9., device=dev).reshape(3, 3)
    fn(nbtorch, x, s).backward(g)
    assert x.grad.tolist() == [[0., 0., 2.], [3., 0., 5.], [6., 7., 8.]]
    assert s.grad.tolist() == [1., 4.]


def test_integer_scatter_reduce(dev):
    "Integer and bool reductions at repeated places (the rounds of `_reduce_at` on a device)."
    i = i64(0, 1, 0, 0)
    for dt, src in (('int64', i64(3, -2, 5, 4)), ('bool', mask(1, 0, 1, 0))):
        for r in ('sum', 'prod', 'amax', 'amin') + (('mean',) if dt == 'int64' else ()):
            run_both(lambda t, x, i, s: t.scatter_reduce(x, 0, i, s, r, include_self=False),
                     [np.ones(3, dtype=src.dtype), i, src], dev)


ERRORS = [
    (lambda t, x: t.gather(x, 0, t.zeros(2, dtype=t.int16)), [f64(3)]),
    (lambda t, x, i: x.scatter(0, i, 1., reduce='max'), [f64(3), i64(0)]),
    (lambda t, x, i, s: t.scatter_reduce(x, 0, i, s, 'maximum'), [f64(3), i64(0), f64(1)]),
    (lambda t, x, i, s: t.index_reduce(x, 0, i, s, 'sum'), [f64(3), i64(0), f64(1)]),
    (lambda t, x, i: t.index_select(x, 0, i), [f64(3), i64(3)]),
    (lambda t, x, i: t.take(x, i), [f64(3), i64(-4)]),
    (lambda t, x, i, s: t.index_copy(x, 0, i.int(), s), [f64(3), i64(0), f64(1)]),
    (lambda t, x, m: t.masked_fill(x, m, 1.), [f64(3), i64(1, 0, 1)]),
    (lambda t, x, m: t.masked_select(x, m), [f64(3), i64(1, 0, 1)]),
    (lambda t, x, m, s: t.masked_scatter(x, m, s), [f64(3), mask(1, 1, 1), f64(2)]),
    (lambda t, x, i: t.take_along_dim(x, i, 0), [f64(2, 2), i64(0)]),
    (lambda t, x: t.hsplit(x, 2), [f64(5)]),
    (lambda t, x: t.vsplit(x, 2), [f64(5)]),
    (lambda t, x: t.diag(x), [np.float64(1.)]),
    (lambda t, x: t.tril(x), [f64(3)]),
    (lambda t, x: t.rot90(x, 1, (0, 0)), [f64(2, 2)]),
    (lambda t, x: t.diagonal(x, 0, 1, 1), [f64(2, 2)]),
    (lambda t, x: x.unfold(0, 4, 1), [f64(3)]),
    (lambda t, x: x.narrow(0, -4, 1), [f64(3)]),
    (lambda t, x: x.narrow(0, 2, 2), [f64(3)]),
    (lambda t, x: t.as_strided(x, (4, 4), (4, 1)), [f64(3, 3)]),
    (lambda t, x: x.sum_to_size(2, 2), [f64(3)]),
    (lambda t, x: t.broadcast_shapes((2, 3), (4,)), [f64(1)]),
    (lambda t, x: t.diagonal_scatter(x, t.ones(2, dtype=x.dtype)), [f64(3, 3)]),
    (lambda t, x: t.unravel_index(x, (2, 2)), [f64(2)]),
    (lambda t, x: t.combinations(x), [f64(2, 2)]),
    (lambda t, x: x.H, [f64(2, 2, 2)]),
]


@pytest.mark.parametrize('fn, arrays', ERRORS, ids=range(len(ERRORS)))
def test_errors(fn, arrays):
    same_error(fn, arrays)


def test_scatter_with_reduce_has_no_derivative():
    x, s = nbtorch.ones(3, requires_grad=True), nbtorch.ones(2, requires_grad=True)
    y = x.scatter(0, nbtorch.tensor([0, 0]), s, reduce='add')
    assert y.tolist() == [3., 1., 1.] and y.grad_fn.name() == 'NotImplemented'
    with pytest.raises(RuntimeError, match='derivative for aten::scatter is not implemented'):
        y.sum().backward()


def test_strided_views_share_memory_and_version(dev):
    x = nbtorch.arange(12., device=dev).reshape(3, 4)
    for v in (x.diagonal(1), x.as_strided((2, 2), (1, 4), 1), x[1:].diagonal(), x.unfold(1, 2, 2)):
        assert v._base is x._base  # x is a view of arange's result, and so are they
        before = x._version
        if v.ndim == 3: assert x.tolist() == [[0., 0., 0., 3.], [0., 0., 0., 7.], [8., 0., 10., 0.]]
        v.mul_(0)
        assert x._version == before + 1
    assert not x.any()
    assert x[1:].storage_offset() == 4 and x.t().storage_offset() == 0


def test_inplace_shape_ops_keep_memory_and_autograd():
    x = nbtorch.arange(6.).reshape(2, 3)
    v = x[0]
    v.unsqueeze_(0)
    assert v.shape == (1, 3) and v._base is x._base
    v[0, 0] = 7.
    assert x[0, 0].item() == 7.
    w = nbtorch.ones(2, 3, requires_grad=True)
    y = w * nbtorch.arange(6.).reshape(2, 3)
    y.t_()
    assert y.shape == (3, 2) and y.grad_fn.name() == 'TransposeBackward0'
    y[:, 0].sum().backward()
    assert w.grad.tolist() == [[0., 1., 2.], [0., 0., 0.]]
    with pytest.raises(RuntimeError, match='leaf Variable that requires grad'):
        nbtorch.ones(2, 1, requires_grad=True).squeeze_()


def test_resize_and_resize_as():
    x = nbtorch.arange(6.)
    assert x.resize_(2, 2).tolist() == [[0., 1.], [2., 3.]]
    assert nbtorch.resize_as_(nbtorch.arange(2), nbtorch.zeros(3)).tolist() == [0, 1, 0]
    with pytest.raises(RuntimeError, match='cannot resize variables that require grad'):
        nbtorch.ones(2, requires_grad=True).resize_(4)


def test_reductions_at_repeats_on_the_device_take_rounds():
    "The stand-in's ufuncs have no `.at`: `_reduce_at` must still combine every repeated value."
    from nbtorch import cuda
    import standin
    from nbtorch.indexing import _reduce_at
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    try:
        a = standin.asarray(np.ones(3))
        _reduce_at(a, standin.asarray(np.array([2, 0, 2, 2])), standin.asarray(np.array([2., 3, 4, 5])),
                   'prod')
        assert a.tolist() == [3., 1., 40.]
    finally: cuda._set_backend(*saved)


def test_the_smaller_fixes_of_issue_13(dev):
    "narrow with a tensor start, the swapaxes/swapdims/moveaxis functions, fill and zero_ functions."
    run_both(lambda t, x: x.narrow(1, t.tensor(-3), 2), [f64(2, 4)], dev)
    run_both(lambda t, x: (t.swapaxes(x, 0, 2), t.swapdims(x, 1, 0), t.moveaxis(x, 0, -1)),
             [f64(2, 3, 4)], dev)
    run_both(lambda t, x: (t.fill(x, 2.), t.zero_(x.clone()), x.clone().fill_(t.tensor(3.))),
             [f64(2)], dev)
    run_both(lambda t, x, y: t.cat([x, y]), [np.zeros(0, dtype=np.int64), f64(2, 2)], dev)


EDGE_CALLS = {  # valid calls at the edges of gather's and scatter's shape rules, as PyTorch takes them
    'gather, 0-d index into 1-D': lambda t: t.arange(3.).gather(0, t.tensor(1)),
    'gather, 1-D index into 0-d': lambda t: t.tensor(5.).gather(0, t.tensor([0, 0])),
    'gather, empty index into 2-D': lambda t: t.ones(2, 3).gather(1, t.zeros(0, dtype=t.long)),
    'scatter_add, empty index': lambda t: t.ones(2, 3).scatter_add(0, t.zeros(0, dtype=t.long),
                                                                  t.ones(2, 3)),
    'scatter_reduce, empty index': lambda t: t.ones(2, 3).scatter_reduce(
        1, t.zeros(0, 2, dtype=t.long), t.ones(2, 3), 'amax'),
}


@pytest.mark.parametrize('name', list(EDGE_CALLS))
def test_gather_and_scatter_edges(name):
    compare(EDGE_CALLS[name](nbtorch), EDGE_CALLS[name](torch))


FILLS = {  # index_fill's value, converted as masked_fill's and PyTorch's: wrapped, truncated or refused
    '300 into uint8': (lambda t: t.zeros(3, dtype=t.uint8), 300),
    '-1 into uint8': (lambda t: t.zeros(3, dtype=t.uint8), -1),
    '1e40 into float32': (lambda t: t.zeros(3), 1e40),
    '2.7 into int64': (lambda t: t.zeros(3, dtype=t.long), 2.7),
    '1+2j into complex64': (lambda t: t.zeros(3, dtype=t.complex64), 1 + 2j),
}


@pytest.mark.parametrize('name', list(FILLS))
def test_index_fill_values_as_pytorch(name):
    make, value = FILLS[name]
    def call(t): return make(t).index_fill(0, t.tensor([0, 2]), value)
    try: ref = call(torch)
    except RuntimeError as e:
        with pytest.raises(RuntimeError, match=str(e)): call(nbtorch)
    else: compare(call(nbtorch), ref)


def test_indexing_one_dim_gives_a_contiguous_tensor(dev):
    "x[:, i] as PyTorch's: contiguous, PyTorch's strides (NumPy's fancy indexing put dim 1 first)."
    a = np.arange(120.).reshape(2, 3, 4, 5)
    for key in [(slice(None), [2, 0, -1]), (Ellipsis, [4, 0]), (slice(None),) * 2 + ([[1, 3]],)]:
        x, t = nbtorch.tensor(a, device=dev), torch.tensor(a)
        y, r = x[key], t[key]
        assert (y.shape, y.stride(), y.is_contiguous()) == (r.shape, r.stride(), r.is_contiguous())
        np.testing.assert_array_equal(y.cpu().numpy(), r.numpy())
    y = nbtorch.tensor(a, device=dev).index_select(2, nbtorch.tensor([3, 1], device=dev))
    assert y.stride() == torch.tensor(a).index_select(2, torch.tensor([3, 1])).stride()
    with pytest.raises(IndexError, match='index 7 is out of bounds for dimension 2 with size 4'):
        nbtorch.tensor(a)[:, :, [7]]
