"""Conformance of the Tensor with PyTorch: each op on the same inputs, values, dtypes and shapes compared,
on every backend (the CPU, the stand-in device, and a real GPU where there is one)."""
import math, re
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, run_both, same_error, compare, torch

pytestmark = needs_torch
R = np.random.default_rng(0)


def f32(*shape): return R.standard_normal(shape).astype(np.float32)
def pos(*shape): return (R.random(shape) + 0.5).astype(np.float32)
def i64(*shape, lo=-5, hi=6): return R.integers(lo, hi, shape).astype(np.int64)


# Each case: (name, fn(lib, *tensors), inputs). Inputs cover 0-d, broadcasting, empty and
# non-contiguous (transposed inside fn) tensors.
BINARY = {'add': lambda a, b: a + b, 'sub': lambda a, b: a - b, 'mul': lambda a, b: a * b,
          'div': lambda a, b: a / b, 'pow': lambda a, b: a.abs() ** b if a.is_floating_point() else a ** b.abs(),
          'floordiv': lambda a, b: a // b, 'mod': lambda a, b: a % b,
          'eq': lambda a, b: a == b, 'lt': lambda a, b: a < b, 'ge': lambda a, b: a >= b,
          'maximum': lambda a, b: a.maximum(b), 'minimum': lambda a, b: a.minimum(b)}
SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((), (2, 3)), ((4, 1, 3), (2, 3)),
          ((0, 3), (3,)), ((2, 0), (2, 1))]


@pytest.mark.parametrize('op', list(BINARY))
@pytest.mark.parametrize('shapes', SHAPES, ids=str)
def test_binary_float(dev, op, shapes):
    a, b = f32(*shapes[0]), pos(*shapes[1])
    run_both(lambda t, x, y: BINARY[op](x, y), [a, b], dev)


@pytest.mark.parametrize('op', list(BINARY))
def test_binary_int(dev, op):
    a, b = i64(2, 3), i64(3, lo=1, hi=4)
    run_both(lambda t, x, y: BINARY[op](x, y), [a, b], dev)


@pytest.mark.parametrize('op', ['add', 'sub', 'mul', 'div', 'pow', 'floordiv', 'mod', 'lt'])
@pytest.mark.parametrize('scalar', [2, 2.5, True, -3])
def test_scalar_both_sides(dev, op, scalar):
    f = BINARY[op]
    if op == 'pow' and scalar == -3: scalar = 3
    for a in [f32(2, 3), i64(2, 3, lo=1, hi=5), np.array([True, False])]:
        if op in ('floordiv', 'mod') and a.dtype == bool: continue
        run_both(lambda t, x: f(x, scalar), [a], dev)
        if op != 'pow' or a.dtype != bool:
            run_both(lambda t, x: f(scalar, x.abs() + 1 if x.dtype != t.bool else x), [a], dev)


DTYPES = ['float16', 'float32', 'float64', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool']


@pytest.mark.parametrize('da', DTYPES)
@pytest.mark.parametrize('db', DTYPES)
def test_promotion(dev, da, db):
    a = np.array([1, 2, 0]).astype(da)
    for b in [np.array([3, 1, 1]).astype(db), np.array(1).astype(db)]:  # dimensioned and 0-d
        run_both(lambda t, x, y: x + y, [a, b], dev)
        run_both(lambda t, x, y: x * y, [a, b], dev)
        run_both(lambda t, x, y: x / (y + 1), [a, b], dev) if db != 'bool' else None
        run_both(lambda t, x, y: t.where(x > 0, x, y), [a, b], dev)
        run_both(lambda t, x, y: t.cat([x, y.reshape(-1)]), [a, b], dev)


UNARY = ['exp', 'log', 'sqrt', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'abs', 'neg', 'sign', 'floor',
         'ceil', 'round', 'trunc']


@pytest.mark.parametrize('fn', UNARY)
@pytest.mark.parametrize('shape', [(), (5,), (3, 4), (0, 2)], ids=str)
def test_unary(dev, fn, shape):
    x = (pos if fn in ('log', 'sqrt') else f32)(*shape) * 3
    run_both(lambda t, a: getattr(a, fn)(), [x], dev)
    run_both(lambda t, a: getattr(t, fn)(a), [x], dev)
    if len(shape) == 2: run_both(lambda t, a: getattr(a.t(), fn)(), [x], dev)  # non-contiguous


@pytest.mark.parametrize('fn', ['exp', 'sqrt', 'sigmoid', 'tanh', 'abs', 'neg', 'sign', 'relu', 'floor'])
def test_unary_int(dev, fn):
    run_both(lambda t, a: getattr(a, fn)(), [i64(2, 3, lo=0)], dev)


def test_unary_extremes(dev):
    x = np.array([-1000., -88., -20., 0., 20., 88., 1000.], np.float32)
    run_both(lambda t, a: a.sigmoid(), [x], dev)
    run_both(lambda t, a: a.tanh(), [x], dev)
    run_both(lambda t, a: a.softmax(0), [x], dev)
    run_both(lambda t, a: a.log_softmax(0), [x], dev)
    run_both(lambda t, a: a.logsumexp(0), [x], dev)


def test_clamp(dev):
    x = f32(3, 4)
    run_both(lambda t, a: a.clamp(-0.5, 0.5), [x], dev)
    run_both(lambda t, a: a.clamp(min=0), [x], dev)
    run_both(lambda t, a: a.clamp(max=0.1), [x], dev)
    run_both(lambda t, a: t.clamp(a, -1, 1), [x], dev)
    run_both(lambda t, a: a.clamp(-2, 2), [i64(5)], dev)


REDUCE = [('sum', {}), ('mean', {}), ('prod', {}), ('std', {}), ('var', {}), ('amax', {}),
          ('amin', {}), ('logsumexp', {'dim': 1})]


@pytest.mark.parametrize('fn,kw', REDUCE, ids=[r[0] for r in REDUCE])
@pytest.mark.parametrize('dim', [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize('keepdim', [False, True])
def test_reductions(dev, fn, kw, dim, keepdim):
    x = f32(2, 3, 4)
    if fn == 'prod' and isinstance(dim, tuple): return
    if dim is None:
        if fn == 'logsumexp': return
        run_both(lambda t, a: getattr(a, fn)(), [x], dev)
        run_both(lambda t, a: getattr(t, fn)(a) if fn not in ('amax', 'amin') else a.amax(), [x], dev)
    else:
        run_both(lambda t, a: getattr(a, fn)(dim, keepdim=keepdim), [x], dev)
        run_both(lambda t, a: getattr(a.transpose(0, 2), fn)(dim, keepdim=keepdim), [x], dev)


def test_reductions_dtypes(dev):
    for x in [i64(3, 4), np.array([[True, False], [True, True]]), np.arange(6, dtype=np.int8)]:
        run_both(lambda t, a: a.sum(), [x], dev)
        run_both(lambda t, a: a.sum(0), [x], dev)
        run_both(lambda t, a: a.prod(), [x], dev)
        run_both(lambda t, a: a.all(), [x], dev)
        run_both(lambda t, a: a.any(), [x], dev)
    run_both(lambda t, a: a.mean(), [f32(0)], dev)
    run_both(lambda t, a: a.sum(), [f32(0, 3)], dev)
    run_both(lambda t, a: a.sum(dtype=t.float64), [f32(3)], dev)
    run_both(lambda t, a: a.std(unbiased=False), [f32(5)], dev)
    run_both(lambda t, a: a.var(0, correction=0), [f32(5, 2)], dev)
    same_error(lambda t, a: a.mean(), [i64(3)], dev)
    same_error(lambda t, a: a.sum(3), [f32(2, 2)], dev)


def test_prod_with_zeros(dev):
    run_both(lambda t, a: a.prod(1), [np.array([[1., 0., 3.], [2., 2., 2.]], np.float32)], dev)


@pytest.mark.parametrize('fn', ['max', 'min'])
def test_max_min(dev, fn):
    x = f32(3, 4)
    run_both(lambda t, a: getattr(a, fn)(), [x], dev)
    run_both(lambda t, a: tuple(getattr(a, fn)(1)), [x], dev)
    run_both(lambda t, a: tuple(getattr(a, fn)(0, keepdim=True)), [x], dev)
    run_both(lambda t, a: getattr(a, fn)(dim=-1).values, [x], dev)
    run_both(lambda t, a: getattr(a, fn)(dim=-1).indices, [x], dev)
    run_both(lambda t, a: getattr(t, fn)(a, a.flip(0) if hasattr(a, 'flip') else a * 0.5), [x], dev) \
        if False else None
    run_both(lambda t, a: getattr(a, 'arg' + fn)(), [x], dev)
    run_both(lambda t, a: getattr(a, 'arg' + fn)(1), [x], dev)
    run_both(lambda t, a: getattr(a, 'arg' + fn)(0, keepdim=True), [x], dev)
    run_both(lambda t, a: getattr(a, fn)(), [i64(5)], dev)


def test_max_repr():
    x = np.array([[1., 5.], [4., 2.]], np.float32)
    assert repr(nbtorch.tensor(x).max(1)) == repr(torch.tensor(x).max(1))


@pytest.mark.parametrize('dim', [0, 1, -1])
def test_softmax(dev, dim):
    x = f32(3, 4) * 10
    run_both(lambda t, a: a.softmax(dim), [x], dev)
    run_both(lambda t, a: a.log_softmax(dim), [x], dev)
    run_both(lambda t, a: a.logsumexp(dim, keepdim=True), [x], dev)


@pytest.mark.parametrize('sa,sb', [((2, 3), (3, 4)), ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                    ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2)),
                                    ((0, 3), (3, 2))], ids=str)
def test_matmul(dev, sa, sb):
    run_both(lambda t, a, b: a @ b, [f32(*sa), f32(*sb)], dev)
    run_both(lambda t, a, b: t.matmul(a, b), [f32(*sa), f32(*sb)], dev)


def test_mm_bmm(dev):
    run_both(lambda t, a, b: t.mm(a, b), [f32(2, 3), f32(3, 4)], dev)
    run_both(lambda t, a, b: a.mm(b.t().contiguous().t()), [f32(2, 3), f32(3, 4)], dev)
    run_both(lambda t, a, b: t.bmm(a, b), [f32(4, 2, 3), f32(4, 3, 5)], dev)
    run_both(lambda t, a, b: a.dot(b), [f32(3), f32(3)], dev)
    run_both(lambda t, a, b: a @ b, [i64(2, 3), i64(3, 2)], dev)
    same_error(lambda t, a, b: a @ b, [f32(2, 3), f32(2, 3)], dev)
    same_error(lambda t, a, b: t.mm(a, b), [f32(3), f32(3, 2)], dev)
    same_error(lambda t, a, b: t.bmm(a, b), [f32(2, 2, 3), f32(3, 3, 4)], dev)
    same_error(lambda t, a, b: a @ b, [f32(2, 3), f32(3, 2).astype(np.float64)], dev)
    same_error(lambda t, a, b: a.mm(b), [f32(2, 3), i64(3, 2)], dev)


SHAPE_OPS = {
    'reshape': lambda t, a: a.reshape(4, -1), 'view': lambda t, a: a.view(-1, 6),
    'reshape_t': lambda t, a: a.t().reshape(-1), 'transpose': lambda t, a: a.transpose(0, 1),
    'permute': lambda t, a: a.reshape(2, 2, 6).permute(2, 0, 1), 'T': lambda t, a: a.T,
    't': lambda t, a: a.t(), 'squeeze': lambda t, a: a.reshape(1, 4, 1, 6).squeeze(),
    'squeeze_dim': lambda t, a: a.reshape(1, 4, 1, 6).squeeze(2), 'unsqueeze': lambda t, a: a.unsqueeze(1),
    'unsqueeze_neg': lambda t, a: a.unsqueeze(-1), 'flatten': lambda t, a: a.reshape(2, 2, 6).flatten(1),
    'flatten_all': lambda t, a: t.flatten(a), 'unflatten': lambda t, a: a.unflatten(1, (2, 3)),
    'expand': lambda t, a: a[:1].expand(3, -1, -1), 'expand_as': lambda t, a: a[:, :1].expand_as(a),
    'repeat': lambda t, a: a.repeat(2, 1, 3), 'contiguous': lambda t, a: a.t().contiguous(),
    'narrow': lambda t, a: a.narrow(1, 2, 3), 'select': lambda t, a: a.select(1, -1),
    'split': lambda t, a: a.split(4, 1), 'split_sizes': lambda t, a: a.split([1, 2, 3], 1),
    'chunk': lambda t, a: a.chunk(4, 1), 'unbind': lambda t, a: a.unbind(0),
    'cat': lambda t, a: t.cat([a, a * 2], 1), 'cat_neg': lambda t, a: t.cat([a, a], -2),
    'stack': lambda t, a: t.stack([a, a + 1], 1), 'stack_end': lambda t, a: t.stack([a, a], -1),
}


@pytest.mark.parametrize('op', list(SHAPE_OPS))
def test_shape_ops(dev, op):
    run_both(SHAPE_OPS[op], [f32(4, 6)], dev)


def test_shape_errors(dev):
    same_error(lambda t, a: a.view(5, 5), [f32(4, 6)], dev)
    same_error(lambda t, a: a.t().view(-1), [f32(4, 6)], dev)
    same_error(lambda t, a: a.reshape(-1, -1), [f32(4, 6)], dev)
    same_error(lambda t, a: a.t().t().transpose(0, 2), [f32(4, 6)], dev)
    same_error(lambda t, a: t.cat([a, a.t()], 0), [f32(4, 6)], dev)
    same_error(lambda t, a: t.stack([a, a.t()]), [f32(4, 6)], dev)
    same_error(lambda t, a: a.expand(3, 5), [f32(4, 6)], dev)
    same_error(lambda t, a, b: a + b, [f32(2, 3), f32(2, 4)], dev)


def test_gather_scatter(dev):
    x = f32(3, 4)
    idx = np.array([[0, 1], [3, 3], [2, 0]])
    run_both(lambda t, a, i: a.gather(1, i), [x, idx], dev)
    run_both(lambda t, a, i: t.gather(a, 0, i[:2].clamp(0, 2)), [x, idx], dev)
    run_both(lambda t, a, i: a.scatter(1, i[:, :1], 9.), [x, idx], dev)
    run_both(lambda t, a, i, s: a.scatter(1, i[:, :1], s), [x, idx, f32(3, 2)], dev)
    run_both(lambda t, a, i: a.clone().scatter_(0, i[:2].clamp(0, 2)[:, :1], 1.5), [x, idx], dev)



def test_gather_scatter_refuse_out_of_range_indices(dev):
    # before: IndexError from NumPy, and a negative index silently counted from the end
    x = f32(3, 4)
    bad = [(1, np.array([[0, 4]])), (1, np.array([[-1, 0]])), (0, np.array([[3, 0, 0, 0]]))]
    for d, idx in bad:
        if dev == 'cpu':
            same_error(lambda t, a, i: a.gather(d, i), [x, idx], dev)
            same_error(lambda t, a, i: a.scatter(d, i, 1.), [x, idx], dev)
            continue
        # on a GPU checked there and reported at the next read, as PyTorch's CUDA kernels assert
        a, i = nbtorch.tensor(x, device=dev), nbtorch.tensor(idx, device=dev)
        for f in (lambda: a.gather(d, i), lambda: a.scatter(d, i, 1.)):
            f()
            with pytest.raises(RuntimeError, match='device-side assert triggered: gather/scatter: an '
                                                   f'index is out of bounds for dimension {d}'):
                a.sum().item()
    # longer than the input along `dim` itself is fine
    run_both(lambda t, a, i: a.gather(1, i), [x, np.array([[0, 1, 2, 3, 0]])], dev)


def test_cat_stack_errors(dev):
    # before: RuntimeError("cat(): expected a non-empty list") where PyTorch raises ValueError
    same_error(lambda t, a: t.cat([]), [f32(2)], dev)
    same_error(lambda t, a: t.cat(()), [f32(2)], dev)
    same_error(lambda t, a: t.stack([]), [f32(2)], dev)
    same_error(lambda t, a: t.cat([a, 3]), [f32(2)], dev)
    same_error(lambda t, a: t.stack([a, 'x']), [f32(2)], dev)
    same_error(lambda t, a: t.cat(a), [f32(2)], dev)


INDEX = {
    'int': lambda a: a[1], 'neg': lambda a: a[-1, -2], 'slice': lambda a: a[1:, ::2],
    'negslice': lambda a: a[-2:, :-1], 'none': lambda a: a[None, :, None], 'ellipsis': lambda a: a[..., 1],
    'mask': lambda a: a[a > 0], 'mask_row': lambda a: a[a[:, 0] > 0], 'intarr': lambda a: a[[0, 2, 2]],
    'intarr2': lambda a: a[[0, 1], [1, 2]], 'mixed': lambda a: a[1:, [0, 2]],
    'tensor_idx': lambda a: a[(a[:, 0] > 0).long()], 'scalar_item': lambda a: a[1, 2],
    'empty': lambda a: a[2:1],
}


@pytest.mark.parametrize('key', list(INDEX))
def test_getitem(dev, key):
    run_both(lambda t, a: INDEX[key](a), [f32(3, 4)], dev)


SETITEM = {
    'int': (lambda a: (1,), 5.), 'slice': (lambda a: (slice(None), slice(1, 3)), -1.),
    'mask': (lambda a: a > 0, 0.), 'intarr': (lambda a: ([0, 2],), 7.),
    'ellipsis': (lambda a: (Ellipsis, 0), 3.), 'neg': (lambda a: (-1, -1), 2.),
}


@pytest.mark.parametrize('key', list(SETITEM))
@pytest.mark.parametrize('tensor_value', [False, True])
def test_setitem(dev, key, tensor_value):
    k, v = SETITEM[key]
    def f(t, a):
        b = a.clone()
        val = t.full(b[k(b)].shape, v) if tensor_value else v
        b[k(b)] = val
        return b
    run_both(f, [f32(3, 4)], dev)


def test_setitem_broadcast_and_cast(dev):
    def f(t, a):
        b = a.clone()
        b[1:] = t.tensor([1, 2, 3, 4]).to(a.device)
        b[0, 0] = 7
        return b
    run_both(f, [f32(3, 4)], dev)
    run_both(f, [i64(3, 4)], dev)


def test_index_errors(dev):
    same_error(lambda t, a: a[5], [f32(3, 4)], dev)
    same_error(lambda t, a: a[0, 9], [f32(3, 4)], dev)


INPLACE = {
    'add_': lambda a: a.add_(1.5), 'add_tensor': lambda a: a.add_(a * 2, alpha=0.5), 'sub_': lambda a: a.sub_(2),
    'mul_': lambda a: a.mul_(a), 'div_': lambda a: a.div_(4), 'zero_': lambda a: a.zero_(),
    'fill_': lambda a: a.fill_(3), 'clamp_': lambda a: a.clamp_(-0.1, 0.1), 'copy_': lambda a: a.copy_(a.flip(0) if False else a * 3),
    'iadd': lambda a: a.__iadd__(1), 'imul_bcast': lambda a: a.__imul__(a[0].clone()),
    'view_write': lambda a: (a[1].mul_(0), a)[1], 'relu_': lambda a: a.relu_(),
}


@pytest.mark.parametrize('op', list(INPLACE))
def test_inplace(dev, op):
    def f(t, a):
        b = a.clone()
        r = INPLACE[op](b)
        return r, b
    run_both(f, [f32(3, 4)], dev)


def test_inplace_errors(dev):
    same_error(lambda t, a: a.add_(0.5), [i64(3)], dev)
    same_error(lambda t, a: a.add_(a.reshape(3, 1).clone()), [f32(3)], dev)


def test_where_logical(dev):
    x, y = f32(3, 4), f32(4)
    run_both(lambda t, a, b: t.where(a > 0, a, b), [x, y], dev)
    run_both(lambda t, a, b: t.where(a > 0, a, 0.), [x, y], dev)
    run_both(lambda t, a, b: (a > 0) & (b > 0), [x, y], dev)
    run_both(lambda t, a, b: (a > 0) | (b > 0), [x, y], dev)
    run_both(lambda t, a, b: (a > 0) ^ (b > 0), [x, y], dev)
    run_both(lambda t, a, b: ~(a > 0), [x, y], dev)
    run_both(lambda t, a, b: a.logical_and(b), [x, y], dev)
    run_both(lambda t, a, b: t.logical_not(a), [x, y], dev)
    run_both(lambda t, a, b: t.maximum(a, b), [x, y], dev)
    run_both(lambda t, a, b: a.ne(b), [x, y], dev)
    run_both(lambda t, a, b: a.le(0.5), [x, y], dev)


CONVERT = {'float': lambda a: a.float(), 'double': lambda a: a.double(), 'half': lambda a: a.half(),
           'long': lambda a: a.long(), 'int': lambda a: a.int(), 'bool': lambda a: a.bool(),
           'to64': lambda a: a.to(a.double().dtype), 'type': lambda a: a.type(a.int().dtype)}


@pytest.mark.parametrize('op', list(CONVERT))
def test_conversions(dev, op):
    run_both(lambda t, a: CONVERT[op](a), [f32(3, 2) * 4], dev)
    run_both(lambda t, a: CONVERT[op](a), [i64(3)], dev)


def test_attributes(dev):
    x = f32(2, 3, 4)
    for f in [lambda t, a: tuple(a.shape), lambda t, a: a.size(), lambda t, a: a.size(-1),
              lambda t, a: a.dim(), lambda t, a: a.ndim, lambda t, a: a.numel(), lambda t, a: a.stride(),
              lambda t, a: a.transpose(0, 2).stride(), lambda t, a: a.is_contiguous(),
              lambda t, a: a.t().is_contiguous() if a.ndim == 2 else a.transpose(0, 1).is_contiguous(),
              lambda t, a: len(a), lambda t, a: a.tolist(), lambda t, a: a[0, 0, 0].item(),
              lambda t, a: a.element_size(), lambda t, a: a.is_floating_point(), lambda t, a: str(a.dtype),
              lambda t, a: repr(a.shape), lambda t, a: a.is_leaf, lambda t, a: a.requires_grad]:
        compare(f(nbtorch, nbtorch.tensor(x, device=dev)), f(torch, torch.tensor(x)))


def test_item_types(dev):
    for x in [np.array(2.5, np.float32), np.array(3), np.array(True), np.array([7])]:
        compare(nbtorch.tensor(x, device=dev).item(), torch.tensor(x).item())


CREATE = {
    'tensor_list': lambda t: t.tensor([[1, 2], [3, 4]]), 'tensor_float': lambda t: t.tensor([1.5, 2]),
    'tensor_bool': lambda t: t.tensor([True, False]), 'tensor_scalar': lambda t: t.tensor(3.0),
    'tensor_dtype': lambda t: t.tensor([1, 2], dtype=t.float64), 'tensor_mixed': lambda t: t.tensor([1, 2.5, True]),
    'zeros': lambda t: t.zeros(2, 3), 'zeros_tuple': lambda t: t.zeros((2, 3), dtype=t.int32),
    'ones': lambda t: t.ones(4), 'full': lambda t: t.full((2, 2), 7), 'full_f': lambda t: t.full((2,), 1.5),
    'full_b': lambda t: t.full((2,), True), 'eye': lambda t: t.eye(3), 'eye_rect': lambda t: t.eye(2, 3),
    'arange': lambda t: t.arange(5), 'arange_f': lambda t: t.arange(0, 1, 0.1), 'arange_neg': lambda t: t.arange(5, 0, -2),
    'arange_fstep': lambda t: t.arange(1, 2.5, 0.5), 'linspace': lambda t: t.linspace(-1, 1, 7),
    'linspace_1': lambda t: t.linspace(0, 1, 1), 'zeros_like': lambda t: t.zeros_like(t.ones(2, dtype=t.int8)),
    'ones_like': lambda t: t.ones_like(t.zeros(3)), 'full_like': lambda t: t.full_like(t.zeros(2), 4),
    'empty_shape': lambda t: t.empty(2, 3).shape, 'as_tensor': lambda t: t.as_tensor([1, 2]),
    'from_numpy': lambda t: t.from_numpy(np.arange(4, dtype=np.int16)),
    'Tensor': lambda t: t.Tensor([1, 2]), 'Tensor_sizes': lambda t: t.Tensor(2, 3).shape,
}


@pytest.mark.parametrize('name', list(CREATE))
def test_creation(name):
    compare(CREATE[name](nbtorch), CREATE[name](torch))


def test_creation_on_device(dev):
    for f in ['zeros', 'ones', 'empty', 'rand', 'randn']:
        t = getattr(nbtorch, f)(2, 3, device=dev)
        assert t.device.type == ('cuda' if dev == 'cuda' else 'cpu') and t.dtype == nbtorch.float32
    assert nbtorch.arange(5, device=dev).device.type == nbtorch.device(dev).type
    assert nbtorch.randint(0, 5, (3,), device=dev).dtype == nbtorch.int64


def test_random_stats_and_seed():
    nbtorch.manual_seed(1)
    a = nbtorch.randn(10000)
    assert abs(a.mean().item()) < 0.05 and abs(a.std().item() - 1) < 0.05
    u = nbtorch.rand(10000)
    assert 0 <= u.min().item() and u.max().item() < 1 and abs(u.mean().item() - 0.5) < 0.02
    nbtorch.manual_seed(1)
    assert nbtorch.randn(10000).equal(a)
    r = nbtorch.randint(3, 7, (1000,))
    assert set(r.tolist()) == {3, 4, 5, 6}
    assert sorted(nbtorch.randperm(10).tolist()) == list(range(10))


REPRS = [
    lambda t: t.zeros(2, 3), lambda t: t.tensor([1.5, 2, 3], dtype=t.float64), lambda t: t.tensor([1e-5, 1.]),
    lambda t: t.tensor([], dtype=t.int32), lambda t: t.zeros(2, 0), lambda t: t.tensor(3.5, requires_grad=True),
    lambda t: t.arange(2000.), lambda t: t.arange(12).reshape(3, 4), lambda t: t.tensor([-1, 100, 3]),
    lambda t: t.tensor([True, False]), lambda t: t.tensor([1., float('nan'), float('inf'), -float('inf')]),
    lambda t: t.tensor([123456789., 1.]), lambda t: t.tensor([0.1, 0.25]), lambda t: t.tensor(5),
    lambda t: t.tensor([1., 2.], dtype=t.float16), lambda t: t.arange(60.).reshape(3, 4, 5) / 7,
    lambda t: t.arange(1200).reshape(30, 40), lambda t: t.tensor([[1e10, 1.], [2., 3.]]),
    lambda t: t.linspace(-3, 3, 25), lambda t: t.tensor([1, 2], dtype=t.uint8),
    lambda t: t.tensor([[-0.5, 2.25], [1000.5, 3.]]), lambda t: t.tensor(0.), lambda t: t.tensor([-0., 0.]),
    lambda t: t.ones(2, 3, requires_grad=True), lambda t: t.tensor([1e-8, 1e-9]),
    lambda t: t.tensor([[1, 2], [3, 4]], dtype=t.int8), lambda t: t.empty(0, dtype=t.int64),
    lambda t: t.ones(4, 1, 2), lambda t: t.tensor([100000., 2.5]), lambda t: t.arange(1001.),
]


@pytest.mark.parametrize('i', range(len(REPRS)))
def test_repr(i):
    assert repr(REPRS[i](nbtorch)) == repr(REPRS[i](torch))
    assert str(REPRS[i](nbtorch)) == str(REPRS[i](torch))


def test_repr_seeded_random():
    for shape in [(5,), (3, 7), (2, 3, 4), (40,), (30, 50)]:
        for scale in [1e-6, 1e-2, 1, 1e3, 1e9]:
            x = (R.standard_normal(shape) * scale).astype(np.float32)
            assert repr(nbtorch.tensor(x)) == repr(torch.tensor(x)), (shape, scale)


def test_dtype_objects():
    for name in DTYPES + ['float', 'double', 'half', 'long', 'int', 'short', 'bool']:
        assert repr(getattr(nbtorch, name)) == repr(getattr(torch, name))
    assert nbtorch.get_default_dtype() is nbtorch.float32
    assert repr(nbtorch.Size([2, 3])) == repr(torch.Size([2, 3]))


def test_default_dtype():
    try:
        nbtorch.set_default_dtype(nbtorch.float64)
        torch.set_default_dtype(torch.float64)
        for f in [lambda t: t.tensor([1.5]), lambda t: t.tensor([1]) * 2.5, lambda t: t.ones(2),
                  lambda t: t.tensor([1, 2]) / 2, lambda t: t.arange(0., 1., .5)]:
            compare(f(nbtorch), f(torch))
        with pytest.raises(TypeError): nbtorch.set_default_dtype(nbtorch.int64)
    finally:
        nbtorch.set_default_dtype(nbtorch.float32)
        torch.set_default_dtype(torch.float32)


def test_numpy_and_back():
    a = np.arange(6.).reshape(2, 3)
    t = nbtorch.from_numpy(a)
    t[0, 0] = 10
    assert a[0, 0] == 10 and t.numpy() is a
    assert nbtorch.tensor(a).numpy() is not a
    same = nbtorch.as_tensor(a)
    assert same.numpy() is a
    with pytest.raises(RuntimeError, match=r'detach\(\)\.numpy\(\)'):
        nbtorch.ones(2, requires_grad=True).numpy()


def test_numpy_refused_on_device(dev):
    t = nbtorch.ones(2, device=dev)
    if dev == 'cuda':
        with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
            t.numpy()
        assert t.cpu().numpy().tolist() == [1., 1.]


def test_misc_errors():
    same_error(lambda t: t.ones(3).item(), [])
    same_error(lambda t: bool(t.ones(3)), [])
    same_error(lambda t: t.tensor([1, 2]) ** -1, [])
    same_error(lambda t: t.ones(2, dtype=t.int64).requires_grad_(), [])
    same_error(lambda t: -t.tensor([True]), [])
    same_error(lambda t: t.ones(2).view(3), [])
    same_error(lambda t: t.ones(2, 3).t().view(6), [])
    same_error(lambda t: t.ones(2, requires_grad=True).add_(1), [])
    same_error(lambda t: t.ones(2, 3, 4).t(), [])


def test_device_objects():
    with pytest.raises(RuntimeError, match='device type at start of device string: gpu'):
        nbtorch.device('gpu')
    for s in ['cpu', 'cuda', 'cuda:1']:
        assert repr(nbtorch.device(s)) == repr(torch.device(s)) and str(nbtorch.device(s)) == str(torch.device(s))
    assert nbtorch.device('cuda', 1) == nbtorch.device('cuda:1')
    assert nbtorch.ones(2).device == nbtorch.device('cpu') == 'cpu'


def test_device_switch(dev):
    x = nbtorch.tensor([[1., 2.], [3., 4.]])
    y = x.to(dev)
    assert y.device.type == nbtorch.device(dev).type
    assert (y * 2).cpu().tolist() == [[2., 4.], [6., 8.]]
    assert y.to('cpu').device == 'cpu' and y.cpu().tolist() == x.tolist()
    assert x.to(y).device == y.device
    z = x.to(dev, nbtorch.float64)
    assert z.dtype is nbtorch.float64 and z.device == y.device
    if dev == 'cuda':
        assert y.is_cuda and str(y.device) == 'cuda:0' and x.cuda().device == y.device
        assert repr(y) == "tensor([[1., 2.],\n        [3., 4.]], device='cuda:0')"
        with pytest.raises(RuntimeError, match='Expected all tensors to be on the same device, but '
                                               'found at least two devices, cuda:0 and cpu!'):
            y + x
        with pytest.raises(RuntimeError, match='same device'):
            nbtorch.cat([y, x])
        with pytest.raises(RuntimeError, match='same device'):
            y @ x


def test_no_gpu_errors():
    "Without a GPU (and without the stand-in), asking for CUDA says what is missing."
    if nbtorch.cuda.is_available(): pytest.skip("a GPU is present")
    for f in [lambda: nbtorch.zeros(2, device='cuda'), lambda: nbtorch.ones(2).cuda(),
              lambda: nbtorch.ones(2).to('cuda'), lambda: nbtorch.tensor([1], device='cuda')]:
        with pytest.raises(RuntimeError, match='CUDA was asked for'):
            f()
    assert nbtorch.cuda.device_count() == 0


def test_cuda_index_errors(dev):
    if dev != 'cuda': return
    with pytest.raises(RuntimeError, match='invalid device ordinal'):
        nbtorch.zeros(2, device='cuda:5')



_WRAP_OPS = {'add': lambda L, x, v: x + v, 'sub': lambda L, x, v: x - v, 'rsub': lambda L, x, v: v - x,
             'mul': lambda L, x, v: x * v, 'floordiv': lambda L, x, v: x // v, 'and': lambda L, x, v: x & v,
             'xor': lambda L, x, v: x ^ v, 'lt': lambda L, x, v: x < v, 'eq': lambda L, x, v: x == v,
             'ge': lambda L, x, v: x >= v, 'where': lambda L, x, v: L.where(x > 5, x, v)}


@pytest.mark.parametrize('dt, v', [('int8', 300), ('int8', -129), ('uint8', -1), ('uint8', 256),
                                   ('uint8', -255), ('uint8', -256), ('int16', 70000), ('int32', 2 ** 31 + 5)])
@pytest.mark.parametrize('op', list(_WRAP_OPS))
def test_integer_out_of_range_number(dt, v, op):
    "A Python integer the dtype cannot hold wraps in arithmetic and comparisons; where refuses it, as PyTorch."
    if torch is None: pytest.skip('PyTorch (the oracle) is not installed')
    f, x = _WRAP_OPS[op], [1, 7, 100]
    try: want = f(torch, torch.tensor(x, dtype=getattr(torch, dt)), v).tolist()
    except RuntimeError as e:
        if 'ZeroDivisionError' in str(e): pytest.skip('a number that wraps to 0 divides by zero')
        with pytest.raises(RuntimeError, match=re.escape(str(e))):
            f(nbtorch, nbtorch.tensor(x, dtype=getattr(nbtorch, dt)), v)
        return
    assert f(nbtorch, nbtorch.tensor(x, dtype=getattr(nbtorch, dt)), v).tolist() == want
