"""Numerics at the edges, against PyTorch: losses that must not turn a model into NaN (ignored
targets, saturated probabilities, infinite logits), gradients at kinks and at special values (NaN,
+-inf, -0., ties), empty tensors, and the error messages of convolutions and cross-entropy."""
import math
import numpy as np
import pytest
import nbtorch
import nbtorch.nn.functional as F
from helpers import needs_torch, compare, same_error, to_np, torch

pytestmark = needs_torch
inf, nan = math.inf, math.nan
R = np.random.default_rng(7)


def f32(*s): return R.standard_normal(s).astype(np.float32)


def same(ours, ref, path, rtol, signs=True):
    "Equal values: NaN to NaN, inf to inf of its sign, and (if `signs`) 0. to 0. and -0. to -0."
    a, b = to_np(ours), to_np(ref)
    kinds = (a.shape, a.dtype), (b.shape, b.dtype)
    assert kinds[0] == kinds[1], f"{path}: {kinds[0]} != {kinds[1]}"
    atol = 0 if signs else 1e-6  # a loss sums in another order: its values near 0 differ a little
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=path)
    zero = (a == 0) & (b == 0)
    if signs: np.testing.assert_array_equal(np.signbit(a[zero]), np.signbit(b[zero]), err_msg=path)


def values_and_grads(fn, arrays, dev, signs=True):
    "fn(lib, *tensors) in both libraries: the values, and the gradients of their sum, compared."
    rtol = 1e-5 if arrays[0].dtype == np.float32 else 1e-12
    ours = [nbtorch.tensor(a, device=dev, requires_grad=True) for a in arrays]
    ref = [torch.tensor(a, requires_grad=True) for a in arrays]
    o, r = fn(nbtorch, *ours), fn(torch, *ref)
    same(o.detach(), r.detach(), 'value', rtol, signs)
    o.sum().backward(); r.sum().backward()
    for i, (a, b) in enumerate(zip(ours, ref)): same(a.grad, b.grad, f'grad[{i}]', rtol, signs)


# ---- 1. losses that must not turn a model into NaN ----

@pytest.mark.parametrize('opt', ['SGD', 'Adam'])
def test_all_ignored_batch_leaves_the_weights_unchanged(dev, opt):
    "Every target ignored: the loss is NaN (as PyTorch's), the gradient 0, a step changes nothing."
    x, w, b = f32(2, 4), f32(3, 4), f32(3)
    models = []
    for lib, d in [(nbtorch, dev), (torch, 'cpu')]:
        m = lib.nn.Linear(4, 3).to(d)
        with lib.no_grad(): m.weight.copy_(lib.tensor(w)); m.bias.copy_(lib.tensor(b))
        o = getattr(lib.optim, opt)(m.parameters(), lr=0.1)
        t = lib.tensor([-100, -100], device=d)
        loss = lib.nn.functional.cross_entropy(m(lib.tensor(x, device=d)), t)
        loss.backward()
        o.step()
        models.append((m, loss))
    (ours, lo), (ref, lr) = models
    assert math.isnan(lo.item()) and math.isnan(lr.item())
    assert not ours.weight.grad.numpy(force=True).any()
    np.testing.assert_array_equal(ours.weight.numpy(force=True), w)
    np.testing.assert_array_equal(ours.bias.numpy(force=True), b)
    compare(ours.weight.detach(), ref.weight.detach(), dev)


BAD_ROWS = np.array([[1., 2., 3.], [nan, 0., 1.], [-inf, 0., 1.], [2., -inf, 0.]], np.float32)
CE_CASES = {
    'plain': dict(), 'weight': dict(weight=[1., 2., .5]), 'smooth': dict(label_smoothing=0.2),
    'weight_smooth': dict(weight=[1., 2., .5], label_smoothing=0.2),
    'ignore_0': dict(ignore_index=0),
}


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('case', list(CE_CASES))
def test_ignored_rows_contribute_nothing(dev, case, reduction):
    "Rows whose target is ignored add nothing to the loss, even with NaN or -inf logits."
    kw = dict(CE_CASES[case])
    ii = kw.pop('ignore_index', -100)
    t = np.array([0, ii, ii, 0]) if ii != 0 else np.array([2, 0, 0, 2])  # row 3: -inf elsewhere
    def fn(lib, x):
        w = {'weight': lib.tensor(kw['weight'], device=x.device)} if 'weight' in kw else {}
        return lib.nn.functional.cross_entropy(
            x, lib.tensor(t, device=x.device), ignore_index=ii, reduction=reduction,
            label_smoothing=kw.get('label_smoothing', 0.), **w)
    values_and_grads(fn, [BAD_ROWS], dev, signs=False)
    clean = np.where((t == ii)[:, None], 0, BAD_ROWS).astype(np.float32)  # ignored rows, harmless
    same(fn(nbtorch, nbtorch.tensor(BAD_ROWS, device=dev)),
         fn(nbtorch, nbtorch.tensor(clean, device=dev)), 'the ignored rows changed the loss', 0)


NLL_EDGES = {  # (input shape, target, keyword arguments)
    'all_ignored': ((3, 4), [-100, -100, -100], {}),
    'all_ignored_weight': ((3, 4), [1, 1, 1], dict(ignore_index=1, weight=[1., 2., 3., 4.])),
    'zero_total_weight': ((3, 4), [1, 1, 2], dict(weight=[1., 0., 0., 1.])),
    'some_ignored_weight': ((4, 4), [0, 3, 2, 3], dict(ignore_index=3, weight=[1., 2., 3., 4.])),
    'empty': ((0, 4), [], {}),
    'spatial_ignored': ((2, 4, 3), [[0, 1, -100], [-100, -100, 3]], {}),
    'spatial4d_ignored': ((2, 4, 2, 2), [[[0, -100], [1, 2]], [[-100, -100], [3, 3]]],
                          dict(weight=[1., 2., 3., 4.])),
    'unbatched': ((4,), 2, {}), 'unbatched_ignored': ((4,), -100, {}),
}


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('smoothing', [0., 0.25])
@pytest.mark.parametrize('case', list(NLL_EDGES))
def test_cross_entropy_and_nll_edges(dev, case, smoothing, reduction):
    "All ignored, zero total weight, empty batches, unbatched: PyTorch's values and gradients."
    shape, t, kw = NLL_EDGES[case]
    x = f32(*shape)
    def run(lib, loss, a):
        extra = {k: (lib.tensor(v, device=a.device) if k == 'weight' else v) for k, v in kw.items()}
        if loss == 'cross_entropy': extra['label_smoothing'] = smoothing
        target = lib.tensor(np.array(t, np.int64), device=a.device)
        return getattr(lib.nn.functional, loss)(a, target, reduction=reduction, **extra)
    values_and_grads(lambda lib, a: run(lib, 'cross_entropy', a), [x], dev, signs=False)
    if smoothing == 0:
        values_and_grads(lambda lib, a: run(lib, 'nll_loss', a), [x], dev, signs=False)


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('smoothing', [0., 0.3])
@pytest.mark.parametrize('shape', [(0, 3), (0, 3, 2), (3,)], ids=str)
def test_soft_target_cross_entropy_edges(dev, shape, smoothing, reduction):
    "Class probabilities as targets: an empty batch's mean is NaN, as PyTorch's."
    x, p = f32(*shape), np.abs(f32(*shape))
    values_and_grads(lambda lib, a, b: lib.nn.functional.cross_entropy(
        a, b, reduction=reduction, label_smoothing=smoothing), [x, p], dev, signs=False)


def test_cross_entropy_keeps_the_lean_nodes_for_the_common_case():
    "No weights, no smoothing, no target ignored: the lean nodes, also with an unused ignore_index."
    x, t = nbtorch.tensor(f32(5, 4), requires_grad=True), nbtorch.tensor([0, 1, 3, 3, 0])
    assert type(F.cross_entropy(x, t).grad_fn) is F._NllLossRows
    assert type(F.cross_entropy(x, t, ignore_index=2).grad_fn) is F._NllLossRows
    assert type(F.cross_entropy(x, t, ignore_index=1).grad_fn) is not F._NllLossRows


def test_cross_entropy_byte_targets_and_unbatched_shape(dev):
    "uint8 class indices are accepted; one unbatched sample's 'none' loss is 0-d, as in PyTorch."
    x = f32(3, 4)
    values_and_grads(lambda lib, a: lib.nn.functional.cross_entropy(
        a, lib.tensor(np.array([0, 3, 1], np.uint8), device=a.device)), [x], dev, signs=False)
    values_and_grads(lambda lib, a: lib.nn.functional.cross_entropy(
        a, lib.tensor(2, device=a.device), reduction='none'), [x[0]], dev, signs=False)
    # a 1-D target of one element is accepted too (PyTorch's own backward then fails: values only)
    ours = F.cross_entropy(nbtorch.tensor(x[0], device=dev), nbtorch.tensor([2], device=dev),
                           reduction='none')
    compare(ours, torch.nn.functional.cross_entropy(torch.tensor(x[0]), torch.tensor([2]),
                                                    reduction='none'), dev)


BCE_X = np.array([0., 1., 0., 1., 0., 1., 0.25], np.float32)
BCE_T = np.array([0., 0., 1., 1., .5, .5, 1.], np.float32)


def test_binary_cross_entropy_saturated_and_boundaries(dev):
    "A saturated sigmoid gives gradient 0; probabilities of exactly 0 or 1 finite gradients."
    values_and_grads(lambda lib, a: lib.nn.functional.binary_cross_entropy(
        a.sigmoid(), lib.ones_like(a)), [np.array([20., 40., -20.], np.float32)], dev)
    values_and_grads(lambda lib, a, b: lib.nn.functional.binary_cross_entropy(
        a, b, reduction='none'), [BCE_X, BCE_T], dev)
    w = np.array([1., 2., .5, 1., 3., 1., 2.], np.float32)
    values_and_grads(lambda lib, a: lib.nn.functional.binary_cross_entropy(
        a, lib.tensor(BCE_T, device=a.device), weight=lib.tensor(w, device=a.device)), [BCE_X], dev)


@pytest.mark.parametrize('x,t', [([nan], [1.]), ([1.5], [1.]), ([-0.1], [0.]), ([.5], [1.5]),
                                 ([.5], [nan]), ([[.5], [.5]], [1., 0.])], ids=str)
def test_binary_cross_entropy_refuses_bad_input(dev, x, t):
    "On a GPU the range is checked there and reported at the next read (`tolist`), as PyTorch's CUDA."
    same_error(lambda lib, a, b: lib.nn.functional.binary_cross_entropy(a, b).tolist(),
               [np.array(x, np.float32), np.array(t, np.float32)], dev)


def test_losses_refuse_a_weight_that_needs_a_gradient():
    "PyTorch's losses do not differentiate their weights, and say so."
    for lib in [nbtorch, torch]:
        w = lib.ones(3, requires_grad=True)
        x, t = lib.rand(2, 3), lib.rand(2, 3)
        calls = [lambda: lib.nn.functional.binary_cross_entropy(x, t, weight=w),
                 lambda: lib.nn.functional.binary_cross_entropy_with_logits(x, t, weight=w),
                 lambda: lib.nn.functional.binary_cross_entropy_with_logits(x, t, pos_weight=w),
                 lambda: lib.nn.functional.cross_entropy(x, lib.tensor([0, 2]), weight=w),
                 lambda: lib.nn.functional.nll_loss(x, lib.tensor([0, 2]), weight=w)]
        for call in calls:
            with pytest.raises(RuntimeError, match='is not differentiable with respect to'): call()
    same_error(lambda lib, a, b: lib.nn.functional.binary_cross_entropy_with_logits(a, b),
               [f32(2, 1), f32(2)])


@pytest.mark.parametrize('pos_weight', [None, 3.])
def test_binary_cross_entropy_with_logits_at_infinities(dev, pos_weight):
    "At x = -inf the loss is NaN in PyTorch, but the gradient is -1 (sigmoid(x) - t), not NaN."
    xs = np.array([-inf, inf, nan, 0., -1000., 1000., -3.], np.float32)
    x, t = np.repeat(xs, 3), np.tile(np.array([0., .5, 1.], np.float32), len(xs))
    def fn(lib, a, b):
        pw = None if pos_weight is None else lib.full(tuple(a.shape), pos_weight, device=a.device)
        return lib.nn.functional.binary_cross_entropy_with_logits(a, b, pos_weight=pw,
                                                                  reduction='none')
    values_and_grads(fn, [x, t], dev)
    values_and_grads(lambda lib, a, b: fn(lib, a, b).mean(), [x[3:], t[3:]], dev)


# ---- 2. gradients at kinks and special values ----

X = [-inf, -2., -1., -0.5, -0., 0., 0.5, 1., 2., inf, nan]
UNARY = {
    'abs': lambda t, x: x.abs(), 'sign': lambda t, x: x.sign(), 'trunc': lambda t, x: x.trunc(),
    'floor': lambda t, x: x.floor(), 'ceil': lambda t, x: x.ceil(), 'round': lambda t, x: x.round(),
    'relu': lambda t, x: x.relu(), 'leaky_relu': lambda t, x: t.nn.functional.leaky_relu(x, 0.1),
    'clamp': lambda t, x: x.clamp(-1, 1), 'sigmoid': lambda t, x: x.sigmoid(),
    'tanh': lambda t, x: x.tanh(), 'exp': lambda t, x: x.exp(),
    'softplus': lambda t, x: t.nn.functional.softplus(x),
    'softplus_beta': lambda t, x: t.nn.functional.softplus(x, beta=2., threshold=1.),
    'hardtanh': lambda t, x: t.nn.functional.hardtanh(x),
    'hardtanh_half': lambda t, x: t.nn.functional.hardtanh(x, -0.5, 0.5),
    'elu': lambda t, x: t.nn.functional.elu(x),
    'elu_alpha': lambda t, x: t.nn.functional.elu(x, 0.5),
    'elu_inplace': lambda t, x: t.nn.functional.elu(x * 1, 2., inplace=True),
    **{f'pow_{e}': (lambda e: lambda t, x: x ** e)(e)
       for e in [0, 1, 2, 3, -1, -2, 0.5, -0.5, 2.5, -1.5, nan, inf, -inf]},
    **{f'rpow_{b}': (lambda b: lambda t, x: b ** x)(b) for b in [0, 2, 0.5, 1]},
}


@pytest.mark.parametrize('dtype', [np.float32, np.float64], ids=['f32', 'f64'])
@pytest.mark.parametrize('op', list(UNARY))
def test_special_values_unary(dev, op, dtype):
    "Values and gradients at -inf, -2, -1, -0.5, -0., 0., 0.5, 1, 2, inf and NaN, as PyTorch's."
    values_and_grads(UNARY[op], [np.array(X, dtype)], dev)


S = [-inf, -1., -0., 0., 0.5, 1., 2., inf, nan]
A, B = np.meshgrid(S, S)  # every pair: ties (inf with inf, 0. with -0.), NaN on either side or both


@pytest.mark.parametrize('dtype', [np.float32, np.float64], ids=['f32', 'f64'])
@pytest.mark.parametrize('op', ['maximum', 'minimum', 'pow'])
def test_special_values_binary(dev, op, dtype):
    "maximum/minimum (ties split, NaN to both) and tensor ** tensor (base 0, exponent 0, NaN)."
    f = {'maximum': lambda t, a, b: t.maximum(a, b), 'minimum': lambda t, a, b: t.minimum(a, b),
         'pow': lambda t, a, b: a ** b}[op]
    values_and_grads(f, [A.ravel().astype(dtype), B.ravel().astype(dtype)], dev)


SECOND = {
    'softplus': lambda t, a: t.nn.functional.softplus(a * 3),
    'elu': lambda t, a: t.nn.functional.elu(a * 3, 0.7),
    'elu_inplace': lambda t, a: t.nn.functional.elu(a * 3, 0.7, inplace=True),
    'pow_tensor': lambda t, a: a.abs() ** a, 'pow_scalar_base': lambda t, a: 2 ** a,
    'bce': lambda t, a: t.nn.functional.binary_cross_entropy(a.sigmoid(), a.detach().sigmoid()),
    'bce_logits': lambda t, a: t.nn.functional.binary_cross_entropy_with_logits(
        a, a.detach().sigmoid()),
    'nll_weight': lambda t, a: t.nn.functional.cross_entropy(
        a * a, t.tensor([0, 2]), weight=t.tensor([1., 2., 3.]), ignore_index=2),
}


@pytest.mark.parametrize('op', list(SECOND))
def test_second_derivatives_of_the_new_backwards(op):
    "The new backwards are tensor ops, so create_graph differentiates them again, as PyTorch does."
    x = f32(2, 3)
    f = SECOND[op]
    ours, ref = nbtorch.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    og, = nbtorch.autograd.grad(f(nbtorch, ours).sum(), ours, create_graph=True)
    rg, = torch.autograd.grad(f(torch, ref).sum(), ref, create_graph=True)
    compare(og.detach(), rg.detach(), atol=1e-5)
    og2, = nbtorch.autograd.grad((og * og).sum(), ours)
    rg2, = torch.autograd.grad((rg * rg).sum(), ref)
    compare(og2, rg2, atol=1e-4, rtol=1e-3)


# ---- 3. empty tensors ----

@pytest.mark.parametrize('shape', [(0,), (0, 3), (3, 0), (2, 0, 3)], ids=str)
def test_softmax_family_on_empty_tensors(dev, shape):
    "Empty in, empty out, over every dim; logsumexp over an empty dim is -inf, as PyTorch's."
    x = np.zeros(shape, np.float32)
    for d in range(len(shape)):
        for f in [lambda t, a: a.softmax(d), lambda t, a: a.log_softmax(d),
                  lambda t, a: t.nn.functional.log_softmax(a, d), lambda t, a: t.logsumexp(a, d),
                  lambda t, a: a.logsumexp(d, keepdim=True)]:
            values_and_grads(f, [x], dev)


# ---- 4. errors that name the problem ----

W1, W2 = f32(4, 3, 3), f32(4, 3, 3, 3)
CONV_ERRORS = {
    'conv2d_rank2': ('conv2d', (3, 5), W2, {}), 'conv2d_rank1': ('conv2d', (5,), W2, {}),
    'conv2d_rank5': ('conv2d', (1, 3, 5, 5, 5), W2, {}),
    'conv2d_channels': ('conv2d', (1, 2, 5, 5), W2, {}),
    'conv2d_channels_3d': ('conv2d', (2, 5, 5), W2, {}),
    'conv2d_channels_groups': ('conv2d', (1, 4, 5, 5), W2, dict(groups=2)),
    'conv2d_groups_divide': ('conv2d', (1, 6, 5, 5), f32(3, 3, 3, 3), dict(groups=2)),
    'conv2d_groups_too_many': ('conv2d', (1, 3, 5, 5), W2, dict(groups=5)),
    'conv2d_weight_rank': ('conv2d', (1, 3, 5, 5), W1, {}),
    'conv2d_kernel_too_big': ('conv2d', (1, 3, 2, 2), W2, {}),
    'conv2d_kernel_too_big_one_side': ('conv2d', (1, 3, 2, 8), W2, {}),
    'conv2d_kernel_too_big_padded': ('conv2d', (1, 3, 1, 5), W2, dict(padding=(0, 1))),
    'conv2d_kernel_too_big_dilated': ('conv2d', (1, 3, 4, 4), W2, dict(dilation=2)),
    'conv2d_kernel_too_big_unbatched': ('conv2d', (3, 2, 2), W2, {}),
    'conv2d_bias': ('conv2d', (1, 3, 5, 5), W2, dict(bias=(3,))),
    'conv2d_negative_padding': ('conv2d', (1, 3, 5, 5), W2, dict(padding=-1)),
    'conv2d_zero_stride': ('conv2d', (1, 3, 5, 5), W2, dict(stride=0)),
    'conv2d_zero_dilation': ('conv2d', (1, 3, 5, 5), W2, dict(dilation=0)),
    'conv2d_padding_string': ('conv2d', (1, 3, 5, 5), W2, dict(padding='full')),
    'conv1d_rank1': ('conv1d', (5,), W1, {}), 'conv1d_rank4': ('conv1d', (1, 3, 5, 5), W1, {}),
    'conv1d_channels': ('conv1d', (1, 2, 5), W1, {}),
    'conv1d_channels_2d': ('conv1d', (2, 5), W1, {}),
    'conv1d_kernel_too_big': ('conv1d', (1, 3, 2), W1, {}),
    'conv1d_kernel_too_big_dilated': ('conv1d', (1, 3, 4), W1, dict(dilation=2)),
    'conv1d_weight_rank': ('conv1d', (1, 3, 5), W2, {}),
}


@pytest.mark.parametrize('case', list(CONV_ERRORS))
def test_conv_errors_name_the_sizes(case):
    fn, shape, w, kw = CONV_ERRORS[case]
    kw = dict(kw)
    bias = kw.pop('bias', None)
    arrays = [f32(*shape), w] + ([f32(*bias)] if bias else [])
    same_error(lambda lib, x, w, *b: getattr(lib.nn.functional, fn)(x, w, *b, **kw), arrays)


def test_conv_kernel_check_allows_what_padding_makes_fit():
    for x, kw in [((1, 3, 1, 1), dict(padding=1)), ((1, 3, 2, 2), dict(padding='same'))]:
        assert F.conv2d(nbtorch.zeros(*x), nbtorch.tensor(W2), **kw).shape == \
            torch.nn.functional.conv2d(torch.zeros(*x), torch.tensor(W2), **kw).shape


CE_ERRORS = {
    'float_target': ((3, 4), np.array([0., 1., 2.], np.float32), {}),
    'float_target_short': ((3, 4), np.array([0., 1.], np.float32), {}),
    'int32_target': ((3, 4), np.array([0, 1, 2], np.int32), {}),
    'bool_target': ((3, 4), np.array([True, False, True]), {}),
    'batch_fewer': ((3, 4), np.array([0, 1]), {}),
    'batch_more': ((3, 4), np.array([0, 1, 2, 3]), {}),
    'target_2d': ((3, 4), np.array([[0, 1, 2]]), {}), 'target_0d': ((3, 4), np.array(1), {}),
    'probabilities_other_classes': ((3, 4), R.random((3, 5), np.float32), {}),
    'probabilities_other_batch': ((3, 4), R.random((2, 4), np.float32), {}),
    'probabilities_as_integers': ((3, 4), np.ones((3, 4), np.int64), {}),
    'probabilities_ignore_index': ((3, 4), R.random((3, 4), np.float32), dict(ignore_index=1)),
    'out_of_bounds': ((3, 4), np.array([0, 1, 4]), {}),
    'negative': ((3, 4), np.array([0, -1, 2]), {}),
    'out_of_bounds_weight': ((3, 4), np.array([0, 1, 4]), dict(weight=np.ones(4, np.float32))),
    'weight_size': ((3, 4), np.array([0, 1, 2]), dict(weight=np.ones(3, np.float32))),
    'spatial_batch': ((2, 4, 3, 3), np.zeros((3, 3, 3), np.int64), {}),
    'spatial_dims': ((2, 4, 3, 3), np.zeros((2, 3), np.int64), {}),
    'spatial_size': ((2, 4, 3, 3), np.zeros((2, 3, 2), np.int64), {}),
    'spatial_float': ((2, 4, 3, 3), np.zeros((2, 3, 3), np.float32), {}),
    'sequence_size': ((2, 4, 3), np.zeros((2, 3, 1), np.int64), {}),
    'unbatched_two_targets': ((4,), np.array([2, 1]), {}),
    'label_smoothing': ((3, 4), np.array([0, 1, 2]), dict(label_smoothing=1.5)),
    'reduction': ((3, 4), np.array([0, 1, 2]), dict(reduction='avg')),
}


@pytest.mark.parametrize('loss', ['cross_entropy', 'nll_loss'])
@pytest.mark.parametrize('case', list(CE_ERRORS))
def test_cross_entropy_errors_name_the_problem(case, loss):
    shape, t, kw = CE_ERRORS[case]
    if loss == 'nll_loss' and ('probabilities' in case or case == 'label_smoothing'): return
    kw = dict(kw)
    w = kw.pop('weight', None)
    def fn(lib, x, t, *w): return getattr(lib.nn.functional, loss)(x, t, w[0] if w else None, **kw)
    same_error(fn, [f32(*shape), t] + ([w] if w is not None else []))
