"""Gradients against PyTorch: every op of the Tensor, `(out * w).sum().backward()` with random `w`, the
input gradients compared; second derivatives of the smooth ops; gradcheck on each op. On every backend."""
import numpy as np
import pytest
import nbtorch
from nbtorch.autograd import gradcheck
from helpers import needs_torch, compare, torch
import test_tensor_conformance as T

pytestmark = needs_torch
R = np.random.default_rng(1)


def _floats(out):
    return [o for o in (out if isinstance(out, (tuple, list)) else (out,))
            if hasattr(o, 'dtype') and o.is_floating_point() and o.requires_grad]


def grad_both(fn, arrays, dev='cpu', create_graph=False, atol=1e-5, rtol=1e-4):
    "The gradients of sum(fn(inputs) * w) with respect to each float input, nbtorch against PyTorch."
    flags = [a.dtype.kind == 'f' for a in arrays]
    ours = [nbtorch.tensor(a, device=dev, requires_grad=f) for a, f in zip(arrays, flags)]
    ref = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, flags)]
    try: r_out = _floats(fn(torch, *ref))
    except Exception: return  # PyTorch refuses the op: its error is checked in the Tensor suite
    o_out = _floats(fn(nbtorch, *ours))
    assert len(o_out) == len(r_out), "which outputs require grad differs from PyTorch"
    if not r_out: return
    ws = [R.standard_normal(tuple(r.shape)).astype(np.float32) for r in r_out]
    r_loss = sum((r * torch.tensor(w, dtype=r.dtype)).sum() for r, w in zip(r_out, ws))
    o_loss = sum((o * nbtorch.tensor(w, dtype=o.dtype, device=dev)).sum() for o, w in zip(o_out, ws))
    r_in = [t for t in ref if t.requires_grad]
    o_in = [t for t in ours if t.requires_grad]
    try: rg = torch.autograd.grad(r_loss, r_in, allow_unused=True, create_graph=create_graph)
    except RuntimeError: return  # PyTorch has no derivative for it (floor_divide)
    og = nbtorch.autograd.grad(o_loss, o_in, allow_unused=True, create_graph=create_graph)
    for i, (a, b) in enumerate(zip(og, rg)):
        if b is None: assert a is None or not a.numpy(force=True).any(), f"grad {i}: expected None"
        else:
            assert a is not None, f"grad {i} is None, PyTorch's is not"
            compare(a.detach(), b.detach(), dev, atol=atol, rtol=rtol, path=f'grad[{i}]')
    return og, rg, o_in, r_in


@pytest.mark.parametrize('op', [o for o in T.BINARY if o not in ('eq', 'lt', 'ge')])
@pytest.mark.parametrize('shapes', T.SHAPES, ids=str)
def test_binary_grads(dev, op, shapes):
    a, b = T.f32(*shapes[0]), T.pos(*shapes[1])
    grad_both(lambda t, x, y: T.BINARY[op](x, y), [a, b], dev)


@pytest.mark.parametrize('op', ['add', 'sub', 'mul', 'div', 'pow', 'mod'])
@pytest.mark.parametrize('scalar', [2, 2.5, -3])
def test_scalar_grads(dev, op, scalar):
    f = T.BINARY[op]
    grad_both(lambda t, x: f(x, scalar), [T.pos(2, 3)], dev)
    grad_both(lambda t, x: f(abs(scalar), x), [T.pos(2, 3)], dev)


@pytest.mark.parametrize('fn', T.UNARY)
@pytest.mark.parametrize('shape', [(), (5,), (3, 4)], ids=str)
def test_unary_grads(dev, fn, shape):
    x = (T.pos if fn in ('log', 'sqrt') else T.f32)(*shape) * 3
    grad_both(lambda t, a: getattr(a, fn)(), [x], dev)
    if len(shape) == 2: grad_both(lambda t, a: getattr(a.t(), fn)(), [x], dev)


@pytest.mark.parametrize('how', ['method', 'functional', 'module'])
def test_relu_signed_zero_and_nan(dev, how):
    "relu(-0.) is -0. and a NaN input passes its gradient through (PyTorch's threshold rule: zero where y <= 0)."
    x = np.array([np.nan, -0., 0., 1.5, -2.], np.float32)
    f = {'method': lambda t, a: a.relu(), 'functional': lambda t, a: t.nn.functional.relu(a),
         'module': lambda t, a: t.nn.ReLU()(a)}[how]
    og, rg, o_in, _ = grad_both(f, [x], dev)
    ours, ref = f(nbtorch, nbtorch.tensor(x, device=dev)), f(torch, torch.tensor(x))
    np.testing.assert_array_equal(np.signbit(ours.numpy(force=True)), np.signbit(ref.numpy()))
    assert np.signbit(ours.numpy(force=True)[1]), "relu(-0.) should be -0."
    assert np.isfinite(og[0].numpy(force=True)[0]), "the NaN input's gradient should be the incoming gradient"


def test_clamp_where_minmax_grads(dev):
    x, y = T.f32(3, 4), T.f32(4)
    grad_both(lambda t, a: a.clamp(-0.5, 0.5), [x], dev)
    grad_both(lambda t, a: a.clamp(min=0), [x], dev)
    grad_both(lambda t, a, b: t.where(a > 0, a, b), [x, y], dev)
    grad_both(lambda t, a, b: t.maximum(a, b), [x, y], dev)
    grad_both(lambda t, a, b: t.minimum(a, b), [x, y], dev)
    ties = np.array([1., 2., 3.], np.float32)
    grad_both(lambda t, a, b: t.maximum(a, b), [ties, ties.copy()], dev)


@pytest.mark.parametrize('fn,kw', T.REDUCE, ids=[r[0] for r in T.REDUCE])
@pytest.mark.parametrize('dim', [None, 0, -1, (0, 2)], ids=str)
@pytest.mark.parametrize('keepdim', [False, True])
def test_reduction_grads(dev, fn, kw, dim, keepdim):
    x = T.f32(2, 3, 4)
    if fn == 'prod' and isinstance(dim, tuple): return
    if dim is None:
        if fn != 'logsumexp': grad_both(lambda t, a: getattr(a, fn)(), [x], dev)
    else: grad_both(lambda t, a: getattr(a, fn)(dim, keepdim=keepdim), [x], dev)


def test_special_reduction_grads(dev):
    grad_both(lambda t, a: a.prod(1), [np.array([[1., 0., 3.], [2., 2., 2.], [0., 0., 1.]], np.float32)], dev)
    ties = np.array([[1., 3., 3.], [2., 2., 0.]], np.float32)
    for f in [lambda t, a: a.max(), lambda t, a: a.amax(1), lambda t, a: a.max(1).values,
              lambda t, a: a.min(0).values, lambda t, a: a.amin()]:
        grad_both(f, [ties], dev)
    for dim in [0, 1, -1]:
        grad_both(lambda t, a: a.softmax(dim), [T.f32(3, 4) * 5], dev)
        grad_both(lambda t, a: a.log_softmax(dim), [T.f32(3, 4) * 5], dev)
    grad_both(lambda t, a: a.std(0, unbiased=False), [T.f32(4, 3)], dev)
    grad_both(lambda t, a: a.var(1, correction=0, keepdim=True), [T.f32(4, 3)], dev)
    grad_both(lambda t, a: a.mean((0, 1)), [T.f32(4, 3)], dev)


@pytest.mark.parametrize('sa,sb', [((2, 3), (3, 4)), ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                    ((5, 2, 3), (3, 4)), ((5, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (4, 3, 2))],
                         ids=str)
def test_matmul_grads(dev, sa, sb):
    grad_both(lambda t, a, b: a @ b, [T.f32(*sa), T.f32(*sb)], dev)


@pytest.mark.parametrize('op', list(T.SHAPE_OPS))
def test_shape_op_grads(dev, op):
    grad_both(T.SHAPE_OPS[op], [T.f32(4, 6)], dev)


@pytest.mark.parametrize('key', list(T.INDEX))
def test_index_grads(dev, key):
    grad_both(lambda t, a: T.INDEX[key](a), [T.f32(3, 4)], dev)


def test_repeated_index_accumulates(dev):
    og, rg, *_ = grad_both(lambda t, a: a[[0, 0, 2, 0]], [T.f32(3, 4)], dev)
    grad_both(lambda t, a: a[[0, 1, 0], [1, 1, 1]], [T.f32(3, 4)], dev)
    grad_both(lambda t, a, i: a.gather(1, i), [T.f32(3, 4), np.array([[0, 0], [3, 3], [1, 1]])], dev)
    grad_both(lambda t, a, s, i: a.scatter(1, i, s), [T.f32(3, 4), T.f32(3, 1), np.array([[2], [0], [1]])], dev)


def test_setitem_grads(dev):
    def f(t, a, v):
        b = a * 1
        b[1:, :2] = v
        return b
    grad_both(f, [T.f32(3, 4), T.f32(2, 2)], dev)
    def g(t, a, v):
        b = a * 1
        b[b > 0] = 0.
        return b * v
    grad_both(g, [T.f32(3, 4), T.f32(4)], dev)


def test_inplace_grads(dev):
    for f in [lambda t, a: (a * 1).mul_(3), lambda t, a: (a * 1).add_(a), lambda t, a: a.exp().relu_() if False else (a * 1).relu_(),
              lambda t, a: (a * 2).clamp_(-1, 1), lambda t, a: (a * 2).tanh_(), lambda t, a: (a + 0).div_(2)]:
        grad_both(f, [T.f32(3, 4)], dev)


def test_conversion_grads(dev):
    grad_both(lambda t, a: a.double() * 2, [T.f32(3)], dev)
    grad_both(lambda t, a: a.to(t.float64).sum() + a.sum(), [T.f32(3)], dev)
    grad_both(lambda t, a: a.clone() * a.detach(), [T.f32(3)], dev)
    grad_both(lambda t, a, b: a.double() + b, [T.f32(3), np.ones(3)], dev)


def test_broadcast_grads_reach_both_shapes(dev):
    grad_both(lambda t, a, b, c: (a * b + c).tanh(), [T.f32(4, 1, 3), T.f32(2, 3), T.f32(1)], dev)
    grad_both(lambda t, a, b: a + b, [T.f32(), T.f32(2, 3)], dev)


SMOOTH = {'exp': lambda t, a: a.exp(), 'log': lambda t, a: (a.abs() + 1).log(), 'sqrt': lambda t, a: (a * a + 1).sqrt(),
          'sin': lambda t, a: a.sin(), 'cos': lambda t, a: a.cos(), 'tanh': lambda t, a: a.tanh(),
          'sigmoid': lambda t, a: a.sigmoid(), 'pow': lambda t, a: a ** 3, 'div': lambda t, a: 1 / (a * a + 1),
          'softmax': lambda t, a: a.softmax(1), 'log_softmax': lambda t, a: a.log_softmax(1),
          'logsumexp': lambda t, a: a.logsumexp(1), 'matmul': lambda t, a: a @ a.t(),
          'var': lambda t, a: a.var(1), 'mul': lambda t, a: a * a * a,
          'cross_entropy': lambda t, a: t.nn.functional.cross_entropy(a * a, t.tensor([0, 2]), reduction='none')}


@pytest.mark.parametrize('op', list(SMOOTH))
def test_second_derivatives(dev, op):
    "The gradient's own gradient (create_graph=True), against PyTorch's."
    x = T.f32(2, 3)
    f = SMOOTH[op]
    ours, ref = nbtorch.tensor(x, device=dev, requires_grad=True), torch.tensor(x, requires_grad=True)
    og, = nbtorch.autograd.grad(f(nbtorch, ours).sum(), ours, create_graph=True)
    rg, = torch.autograd.grad(f(torch, ref).sum(), ref, create_graph=True)
    compare(og.detach(), rg.detach(), dev, atol=1e-4)
    w = R.standard_normal(x.shape).astype(np.float32)
    og2, = nbtorch.autograd.grad((og * nbtorch.tensor(w, device=dev)).sum(), ours)
    rg2, = torch.autograd.grad((rg * torch.tensor(w)).sum(), ref)
    compare(og2, rg2, dev, atol=1e-4, rtol=1e-3)


GRADCHECK = {**{k: v for k, v in SMOOTH.items()},
             'add': lambda t, a: a + a.sum(0), 'sub': lambda t, a: 1 - a, 'relu': lambda t, a: (a + 0.05).relu(),
             'abs': lambda t, a: (a + 0.05).abs(), 'clamp': lambda t, a: a.clamp(-0.3, 0.3),
             'max': lambda t, a: a.max(1).values, 'amax': lambda t, a: a.amax(0), 'sum': lambda t, a: a.sum(0),
             'mean': lambda t, a: a.mean(), 'prod': lambda t, a: a.prod(1), 'std': lambda t, a: a.std(),
             'reshape': lambda t, a: a.reshape(3, 2), 'permute': lambda t, a: a.permute(1, 0),
             'expand': lambda t, a: a[:1].expand(4, 3), 'repeat': lambda t, a: a.repeat(2, 1),
             'cat': lambda t, a: t.cat([a, a * 2], 1), 'stack': lambda t, a: t.stack([a, a]),
             'index': lambda t, a: a[[0, 0, 1], 1:], 'mask': lambda t, a: a[a > 0.1],
             'gather': lambda t, a: a.gather(1, t.tensor([[0, 2], [1, 1]])),
             'where': lambda t, a: t.where(a > 0, a, a * a), 'maximum': lambda t, a: t.maximum(a, a.flip(0) if False else a * 0.5),
             'split': lambda t, a: a.split(1, 1)[1], 'unsqueeze': lambda t, a: a.unsqueeze(1).squeeze(1)}


@pytest.mark.parametrize('op', list(GRADCHECK))
def test_gradcheck(op):
    x = nbtorch.tensor(R.standard_normal((2, 3)) + np.array([0.01, 0.2, 0.3]), dtype=nbtorch.float64,
                       requires_grad=True)
    assert gradcheck(lambda a: GRADCHECK[op](nbtorch, a), (x,))
