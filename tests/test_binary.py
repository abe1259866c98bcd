"""The binary family (issue 13) where PyTorch's OpInfo samples do not reach: the graph that the
reflected operators record, integer edges (negative powers, division by zero, shifts out of range),
errors and their messages, in-place operators, and every op on the stand-in GPU backend."""
import math
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, run_both, same_error, compare, torch

pytestmark = needs_torch
R = np.random.default_rng(0)


def f32(*shape): return R.standard_normal(shape).astype(np.float32)
def pos(*shape): return (R.random(shape) + 0.5).astype(np.float32)
def i64(*shape, lo=-5, hi=6): return R.integers(lo, hi, shape).astype(np.int64)


# --- the graph of `2 * t`: the tensor first, as in PyTorch ------------------------------------------

def _graph(lib, expr):
    "The node's name and its inputs' names, for `expr` on a leaf `w` that requires grad."
    w = lib.tensor([1., 2., 4.], requires_grad=True)
    y = eval(expr, {'w': w})
    return y.grad_fn.name(), [n.name() if n is not None else None for n, _ in y.grad_fn.next_functions]


@pytest.mark.parametrize('expr', ['2 + w', '2 * w', '2.5 / w', '2 - w', '2 ** w', '2 // w', '2 % w',
                                  'w + 2', 'w * 2', 'w / 2', 'w - 2'])
def test_reflected_ops_record_the_tensor_first(expr):
    name, inputs = _graph(nbtorch, expr)
    t_name, t_inputs = _graph(torch, expr)
    if 'NotImplemented' not in t_name: assert name == t_name  # PyTorch has no gradient for //, %
    assert inputs[0] == t_inputs[0]          # next_functions[0][0]: the tensor's node
    assert inputs[1:] in ([None], t_inputs[1:])  # the constant: last, or not listed (as PyTorch)


def test_reflected_ops_values_and_gradients():
    x = (R.random(1000) * 10 + 0.1).astype(np.float32)
    fn = lambda t, w: 3 / w + (2 - w) * (2 * w) + 1.5 ** w  # PyTorch has no gradient for 7 % w
    ours, ref = nbtorch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    np.testing.assert_array_equal((3 / ours).detach().numpy(), (3 / ref).detach().numpy())  # to the bit
    fn(nbtorch, ours).sum().backward()
    fn(torch, ref).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), ref.grad.numpy(), rtol=1e-5)


# --- integer edges ------------------------------------------------------------------------------------

@pytest.mark.parametrize('fn', [lambda t, a, b: 2 ** b, lambda t, a, b: a ** b,
                                lambda t, a, b: (-1) ** b, lambda t, a, b: a ** 2])
def test_integer_power_with_negative_exponents(fn):
    run_both(fn, [np.array([2, -1, 1, 0, 3]), np.array([-1, -3, -2, 2, 0])])


@pytest.mark.parametrize('fn', [lambda t, a, b: a // b, lambda t, a, b: a % b, lambda t, a, b: 5 % b,
                                lambda t, a, b: 5 // b, lambda t, a, b: t.fmod(a, b),
                                lambda t, a, b: a.div(b, rounding_mode='trunc'),
                                lambda t, a, b: a.div(0, rounding_mode='floor'),
                                lambda t, a, b: a.remainder_(b)])
def test_integer_division_by_zero_is_an_error(fn):
    same_error(fn, [np.array([5, 7]), np.array([1, 0])])


def test_float_division_by_zero_is_not():
    run_both(lambda t, a, b: (a // b, a % b, t.fmod(a, b), 5. // b), [f32(4), np.zeros(4, np.float32)])


@pytest.mark.parametrize('amount', [0, 1, 62, 63, 64, 65, 100, -1, -64])
def test_shifts_out_of_range(amount):
    a = np.array([-8, -1, 0, 1, 5, 2 ** 62], np.int64)
    run_both(lambda t, x, s: (x << s, x >> s, 3 << s), [a, np.full(6, amount)])
    run_both(lambda t, x: (x.bitwise_left_shift(amount), x.bitwise_right_shift(amount)), [a])


# --- clamp: promotion and tensor bounds --------------------------------------------------------------

@pytest.mark.parametrize('lo,hi', [(0.5, None), (None, 2), (-1, 2.5), (True, None)])
def test_clamp_promotes_with_number_bounds(lo, hi):
    run_both(lambda t, x: (x.clamp(lo, hi), t.clamp_min(x, -2.5), t.clamp_max(x, 1)), [i64(2, 3)])


def test_clamp_with_tensor_bounds_edges():
    "NaN in the input or a bound, min > max, a broadcast bound; gradients to all three."
    x = np.array([math.nan, 1., 2., 3., 5., -4.], np.float64)
    lo = np.array([0., math.nan, 2.5, 4., 1., -5.], np.float64)
    hi = np.array([1., 1., math.nan, 3.5, 0.5, -4.5], np.float64)
    for fn in [lambda t, a, b, c: t.clamp(a, b, c), lambda t, a, b, c: a.clamp(min=b),
               lambda t, a, b, c: a.clamp(max=c),
               lambda t, a, b, c: t.clamp(a, b[2:3], c[3]), lambda t, a, b, c: t.clamp_min(a, b),
               lambda t, a, b, c: t.clamp_max(a, c)]:
        ts = [torch.tensor(v, requires_grad=True) for v in (x, lo, hi)]
        ns = [nbtorch.tensor(v, requires_grad=True) for v in (x, lo, hi)]
        ref, ours = fn(torch, *ts), fn(nbtorch, *ns)
        compare(ours, ref)
        g = R.standard_normal(tuple(ref.shape))
        ref.backward(torch.tensor(g)); ours.backward(nbtorch.tensor(g))
        for o, r in zip(ns, ts):
            if r.grad is None: assert o.grad is None or not o.grad.numpy().any()
            else: compare(o.grad, r.grad)


def test_clamp_scalar_node_keeps_its_name():
    assert nbtorch.ones(2, requires_grad=True).clamp(0, 1).grad_fn.name() == 'ClampBackward1'
    w = nbtorch.ones(2, requires_grad=True)
    assert w.clamp(nbtorch.zeros(2)).grad_fn.name() == 'ClampBackward0'


# --- errors, in PyTorch's words ------------------------------------------------------------------------

ERRORS = {
    'hypot of integers': lambda t: t.hypot(t.tensor([3]), t.tensor([4])),
    'logaddexp of integers': lambda t: t.logaddexp(t.tensor([3]), t.tensor([4])),
    'nextafter of integers': lambda t: t.nextafter(t.tensor([3]), t.tensor([4])),
    'igamma of integers': lambda t: t.igamma(t.tensor([3]), t.tensor([4])),
    'gcd of floats': lambda t: t.gcd(t.tensor([3.]), t.tensor([4.])),
    'lcm of bools': lambda t: t.lcm(t.tensor([True]), t.tensor([True])),
    'shift of floats': lambda t: t.tensor([1.]) << 2,
    'right shift of bools': lambda t: t.tensor([True]) >> t.tensor([True]),
    'bitwise_not of floats': lambda t: t.bitwise_not(t.tensor([1.])),
    '& of floats': lambda t: t.tensor([1.]) & t.tensor([1.]),
    '| of a double and a number': lambda t: t.tensor([1.], dtype=t.float64) | 1,
    '~ of floats': lambda t: ~t.tensor([1.]),
    'bitwise_xor of a float and a bool': lambda t: t.tensor([1.]).bitwise_xor(t.tensor([True])),
    'heaviside of two dtypes': lambda t: t.heaviside(t.tensor([1]), t.tensor([.5])),
    'heaviside of a number': lambda t: t.heaviside(t.tensor([1.]), .5),
    'isclose of two dtypes': lambda t: t.isclose(t.tensor([1]), t.tensor([1.])),
    'isclose with rtol < 0': lambda t: t.isclose(t.tensor([1.]), t.tensor([1.]), rtol=-1),
    'isclose with atol < 0': lambda t: t.isclose(t.tensor([1.]), t.tensor([1.]), atol=-0.5),
    'lerp of two dtypes': lambda t: t.lerp(t.tensor([1.]), t.tensor([2.], dtype=t.float64), .5),
    'lerp with a weight of another dtype': lambda t: t.lerp(t.tensor([1.]), t.tensor([2.]),
                                                            t.tensor([.5], dtype=t.float64)),
    'addcdiv of integers': lambda t: t.addcdiv(t.tensor([1]), t.tensor([1]), t.tensor([2])),
    'rsub of integers with a float alpha': lambda t: t.rsub(t.tensor([1]), 3, alpha=2.5),
    'rsub of bools': lambda t: t.rsub(t.tensor([True]), True),
    'float_power_ of a float32 tensor': lambda t: t.tensor([2.]).float_power_(2),
    'atan2_ into an integer tensor': lambda t: t.tensor([1, 2]).atan2_(t.tensor([1, 1])),
    'eq_ growing its tensor': lambda t: t.tensor([1.]).eq_(t.tensor([1., 2.])),
    'copysign_ into a bool tensor': lambda t: t.tensor([True]).copysign_(t.tensor([-1.])),
}


@pytest.mark.parametrize('case', list(ERRORS))
def test_errors(case):
    same_error(lambda t: ERRORS[case](t), [])


def test_igamma_input_has_no_gradient():
    a, x = nbtorch.tensor([1., 2.], requires_grad=True), nbtorch.tensor([.5, 1.])
    with pytest.raises(NotImplementedError, match="derivative for 'igamma: input'"):
        nbtorch.igamma(a, x).sum().backward()


# --- in place: operators and methods -------------------------------------------------------------------

def test_inplace_operators_keep_the_tensor():
    for op in ['__iand__', '__ior__', '__ixor__', '__ilshift__', '__irshift__']:
        a, b = nbtorch.tensor([12, 5, -3]), nbtorch.tensor([1, 2, 3])
        t, u = torch.tensor([12, 5, -3]), torch.tensor([1, 2, 3])
        r = getattr(a, op)(b)
        getattr(t, op)(u)
        assert r is a
        compare(a, t)


INPLACE = ['eq', 'ne', 'lt', 'le', 'gt', 'ge', 'logical_and', 'logical_or', 'logical_xor', 'atan2',
           'hypot', 'copysign', 'fmod', 'remainder', 'floor_divide', 'true_divide', 'xlogy', 'ldexp',
           'nextafter', 'clamp_min', 'clamp_max']


@pytest.mark.parametrize('name', INPLACE)
def test_inplace_methods_on_a_view(name):
    "x[1].op_(y) writes into x, as in PyTorch."
    def fn(t, x, y):
        getattr(x[1], name + '_')(y)
        return x
    run_both(fn, [f32(3, 4), pos(4)])


# --- every op on every backend (the stand-in GPU refuses NumPy calls on device arrays) ---------------

BINARY = {
    'atan2': lambda t, a, b: t.atan2(a, b), 'hypot': lambda t, a, b: a.hypot(b),
    'logaddexp': lambda t, a, b: t.logaddexp(a, b), 'logaddexp2': lambda t, a, b: a.logaddexp2(b),
    'copysign': lambda t, a, b: t.copysign(a, -b), 'fmax': lambda t, a, b: t.fmax(a, b),
    'fmin': lambda t, a, b: a.fmin(b), 'fmod': lambda t, a, b: t.fmod(a, b),
    'heaviside': lambda t, a, b: t.heaviside(a.round(), b), 'nextafter': lambda t, a, b: a.nextafter(b),
    'xlogy': lambda t, a, b: t.xlogy(a.round(), b), 'ldexp': lambda t, a, b: t.ldexp(a, b.round()),
    'float_power': lambda t, a, b: t.float_power(b, a), 'isclose': lambda t, a, b: t.isclose(a, a + b / 1e6),
    'lerp': lambda t, a, b: (t.lerp(a, b, .7), a.lerp(b, b / 2)),
    'addcmul': lambda t, a, b: t.addcmul(a, a, b, value=.5), 'addcdiv': lambda t, a, b: a.addcdiv(a, b),
    'rsub': lambda t, a, b: t.rsub(a, b, alpha=2), 'clamp': lambda t, a, b: a.clamp(-b, b),
    'reflected': lambda t, a, b: (2 - a, 3 / b, 2 ** a, 5. // b, 5. % b),
    'in place': lambda t, a, b: a.clone().atan2_(b).lt_(b),
}


@pytest.mark.parametrize('op', list(BINARY))
def test_float_ops_on_every_backend(dev, op):
    run_both(lambda t, x, y: BINARY[op](t, x, y), [f32(2, 3), pos(3)], dev)


INTEGER = {'gcd': lambda t, a, b: t.gcd(a, b), 'lcm': lambda t, a, b: a.lcm(b),
           'shifts': lambda t, a, b: (a << b, a >> b, a.bitwise_left_shift(70)),
           'bitwise': lambda t, a, b: (t.bitwise_not(a), a.bitwise_and(b), a.bitwise_xor_(b)),
           'power': lambda t, a, b: (a - 2) ** (b - 3)}


@pytest.mark.parametrize('op', list(INTEGER))
def test_integer_ops_on_every_backend(dev, op):
    run_both(lambda t, x, y: INTEGER[op](t, x, y), [i64(2, 3), i64(3, lo=0, hi=5)], dev)


def test_gradients_on_every_backend(dev):
    a, b = f32(2, 3), pos(3)
    def fn(t, x, y):
        x, y = x.double().requires_grad_(), y.double().requires_grad_()
        out = (t.atan2(x, y) + t.hypot(x, y) + t.logaddexp(x, y) + t.fmax(x, y) + t.xlogy(y, y)
               + t.lerp(x, y, .3) + t.addcdiv(x, x, y) + t.copysign(x, y) + 2 / y)
        return t.autograd.grad(out.sum(), (x, y))
    run_both(fn, [a, b], dev)


def test_igamma_on_the_gpu_is_the_cpus(dev):
    "CuPy's gammainc and gammaincc serve the GPU (it raised NotImplementedError before), gradient too."
    a, x = [1., 2., 3.5], [0.5, 2., 7.]
    for f in (nbtorch.igamma, nbtorch.igammac):
        xs = [nbtorch.tensor(x, device=d, dtype=nbtorch.float64, requires_grad=True) for d in ('cpu', dev)]
        ys = [f(nbtorch.tensor(a, device=d, dtype=nbtorch.float64), t) for d, t in zip(('cpu', dev), xs)]
        for y in ys: y.sum().backward()
        assert ys[1].device.type == nbtorch.device(dev).type
        np.testing.assert_allclose(ys[1].tolist(), ys[0].tolist(), rtol=1e-12)
        np.testing.assert_allclose(xs[1].grad.tolist(), xs[0].grad.tolist(), rtol=1e-12)


# --- edges OpInfo's reference inputs found (tests/test_opinfo_reference.py lists the rest) -----------

@pytest.mark.parametrize('fn,arrays', [
    # the gradient of the remainder's divisor is -(x // y): 0.25 / 0.001 rounds up to 250, 0.25 // 0.001
    # is 249
    (lambda t, x, y: t.remainder(x, y), [[0.25, 1., -0.25], [0.001, 0.001, -0.001]]),
    (lambda t, x, y: t.atan2(x, y), [[0., -0., 1e-200, 1.], [0., 0., 1e-200, 0.]]),  # 0 at the origin
    (lambda t, x, y: t.nextafter(x, y), [[1., 0., 1., math.nan], [1., -0., 2., 1.]]),  # 0 where x == y
    (lambda t, x, y: t.div(x, y, rounding_mode='trunc'), [[5., math.nan, 1.], [2., 1., math.inf]]),
    (lambda t, x, y: t.div(x, y, rounding_mode='floor'), [[5., math.nan, 1.], [2., 1., math.inf]]),
    (lambda t, x, y: t.xlogy(x, y), [[0., 0., 0., 0., 1.], [2., 0., -1., math.inf, -1.]]),
    (lambda t, x, y: t.special.xlog1py(x, y), [[0., 0., 0., 0.], [1., -1., -2., math.nan]]),
    (lambda t, r, a: t.polar(r, a), [[0., 2., -2., 1.], [1., 1., 1., 0.]]),  # Re(conj(g) sgn z)
])
def test_gradients_at_the_edges(fn, arrays):
    def value_and_grads(t, *xs):
        xs = [x.requires_grad_() for x in xs]
        y = fn(t, *xs)
        return [y, *t.autograd.grad(y.real.sum() if y.is_complex() else y.sum(), xs)]
    run_both(value_and_grads, [np.array(a, dtype=np.float64) for a in arrays], atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize('fn', [
    lambda t: t.where(t.tensor([True, False]), 1.5, 2.5),  # two numbers: condition's shape
    lambda t: t.where(t.tensor([[True], [False]]), 1, 2.5),
    lambda t: t.where(t.tensor([True, False]), True, False),
    lambda t: t.rsub(t.tensor([1 + 1j]), t.tensor([2 + 0j]), alpha=-3.125),  # a float alpha, complex
    lambda t: t.div(t.tensor([1 + 1j]), t.tensor([2.]), rounding_mode='trunc'),
    lambda t: t.tensor([1j]) // 2,
    lambda t: t.nn.functional.group_norm(t.zeros(0, 4, 3), 2),  # an empty batch
])
def test_calls_the_reference_inputs_found(fn):
    run_both(lambda t: fn(t), [])
