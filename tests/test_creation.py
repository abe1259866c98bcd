"""Creation, sampling, conversions and products beyond what PyTorch's OpInfo samples check: the
distributions of the samplers, the call forms of `to`, memory formats, NumPy's `__array__`, the
legacy tensor types, the default device, errors, gradients at the edges, and the GPU stand-in."""
import math
import warnings
import numpy as np
import pytest
import nbtorch
from conftest import torch
from helpers import compare, needs_torch, run_both, same_error

pytestmark = needs_torch
N = 200_000  # samples per distribution check: a standard error of 0.2% of a standard deviation


# --- the samplers draw from the right distributions -----------------------------------------------

def _moments(fill, dtype=nbtorch.float64):
    nbtorch.manual_seed(0)
    s = fill(nbtorch.empty(N, dtype=dtype)).numpy().astype(np.float64)
    return s, s.mean(), s.var()


def _close(got, want, sd, k=5):
    "`got` is within `k` standard errors of `want`, for a sample of N values of deviation `sd`."
    assert abs(got - want) < k * sd / math.sqrt(N), (got, want)


@pytest.mark.parametrize('fill, mean, var', [
    (lambda x: x.uniform_(2, 5), 3.5, 9 / 12),
    (lambda x: x.normal_(-1, 3), -1, 9),
    (lambda x: x.log_normal_(0.5, 0.25), math.exp(.5 + .25**2 / 2),
     (math.exp(.25**2) - 1) * math.exp(1 + .25**2)),
    (lambda x: x.exponential_(4), 1 / 4, 1 / 16),
    (lambda x: x.geometric_(0.3), 1 / .3, .7 / .3**2),
    (lambda x: x.bernoulli_(0.2), 0.2, 0.2 * 0.8),
    (lambda x: x.random_(3, 9), 5.5, (6**2 - 1) / 12),
])
def test_in_place_samplers_have_the_right_mean_and_variance(fill, mean, var):
    s, m, v = _moments(fill)
    _close(m, mean, math.sqrt(var))
    assert abs(v - var) < 0.03 * var, (v, var)


def test_cauchy_has_the_right_median_and_quartiles():
    s, _, _ = _moments(lambda x: x.cauchy_(2, 0.5))  # no mean: its quartiles are median -+ sigma
    q1, q2, q3 = np.percentile(s, [25, 50, 75])
    assert abs(q2 - 2) < .01 and abs(q1 - 1.5) < .01 and abs(q3 - 2.5) < .01


def test_random_without_bounds_spans_the_exact_integers_of_the_dtype():
    nbtorch.manual_seed(0)
    f = nbtorch.empty(10_000).random_().numpy()
    assert (f == np.round(f)).all() and f.min() >= 0 and f.max() <= 2**24 and f.max() > 2**23
    b = nbtorch.empty(1000, dtype=nbtorch.bool).random_().numpy()
    assert 400 < b.sum() < 600
    u = nbtorch.empty(1000, dtype=nbtorch.uint8).random_().numpy()
    assert u.max() > 240 and u.min() < 15


def test_out_of_place_samplers():
    nbtorch.manual_seed(0)
    mean, std = nbtorch.tensor([[-5.], [5.]]), nbtorch.tensor([1., 2., 3.])
    s = np.stack([nbtorch.normal(mean, std).numpy() for _ in range(4000)])
    assert s.shape == (4000, 2, 3)
    np.testing.assert_allclose(s.mean(0), [[-5] * 3, [5] * 3], atol=5 * 3 / math.sqrt(4000))
    np.testing.assert_allclose(s.std(0), [[1, 2, 3]] * 2, rtol=.05)
    x = nbtorch.normal(2., 0.5, (N,)).numpy()
    _close(x.mean(), 2, .5)
    p = nbtorch.tensor([0., .25, 1.]).expand(N, 3)
    _close(nbtorch.bernoulli(p).numpy().mean(0)[1], .25, math.sqrt(.25 * .75))
    assert nbtorch.bernoulli(p).numpy()[:, [0, 2]].tolist() == [[0., 1.]] * N


def test_multinomial_frequencies_with_and_without_replacement():
    nbtorch.manual_seed(0)
    p = nbtorch.tensor([1., 2., 7.])  # unnormalised
    draws = nbtorch.multinomial(p, N, replacement=True).numpy()
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / N, [.1, .2, .7], atol=.005)
    rows = nbtorch.multinomial(p.expand(20_000, 3), 2).numpy()
    assert (rows[:, 0] != rows[:, 1]).all()
    first = np.bincount(rows[:, 0], minlength=3) / 20_000  # the first pick follows p itself
    np.testing.assert_allclose(first, [.1, .2, .7], atol=.015)
    # the second pick, given the first: P(second = 1 | first = 2) = 2 / (1 + 2)
    second = rows[rows[:, 0] == 2, 1]
    assert abs((second == 1).mean() - 2 / 3) < .02


def test_samplers_are_reproducible_with_manual_seed():
    nbtorch.manual_seed(7); a = nbtorch.empty(5).normal_().tolist()
    nbtorch.manual_seed(7); assert nbtorch.empty(5).normal_().tolist() == a


# --- errors, against PyTorch ----------------------------------------------------------------------

@pytest.mark.parametrize('fn', [
    lambda lib: lib.zeros(3).normal_(0, -1),
    lambda lib: lib.zeros(3).uniform_(2, 1),
    lambda lib: lib.zeros(3).exponential_(-1),
    lambda lib: lib.zeros(3).geometric_(0),
    lambda lib: lib.zeros(3).cauchy_(0, -1),
    lambda lib: lib.zeros(3).log_normal_(0, -1),
    lambda lib: lib.zeros(3).bernoulli_(2),
    lambda lib: lib.zeros(3).random_(5, 2),
    lambda lib: lib.zeros(3, dtype=lib.long).normal_(),
    lambda lib: lib.multinomial(lib.tensor([0., 0.]), 1),
    lambda lib: lib.multinomial(lib.tensor([-1., 1.]), 1),
    lambda lib: lib.multinomial(lib.tensor([1., 1.]), 3),
    lambda lib: lib.normal(lib.zeros(3), -1.),
    lambda lib: lib.ones(2, 3).contiguous(memory_format=lib.channels_last),
    lambda lib: lib.ones(2, requires_grad=True).normal_(),
], ids=range(15))
def test_errors_as_pytorch(fn):
    same_error(lambda lib: fn(lib), [])


def test_products_errors_as_pytorch():
    for f in [lambda lib, a, v: lib.mv(a, v[:2]),
              lambda lib, a, v: lib.outer(a, v),
              lambda lib, a, v: lib.vdot(v, v[:2]),
              lambda lib, a, v: lib.cross(a.t(), a.t(), dim=1),
              lambda lib, a, v: lib.cdist(a.long(), a.long()),
              lambda lib, a, v: lib.block_diag(a[None]),
              lambda lib, a, v: lib.einsum('ij,jk', a, a),
              lambda lib, a, v: lib.tensordot(a, v, ([0], [0])),
              lambda lib, a, v: lib.addr(a.long(), v.long()[:2], v.long(), alpha=.5)]:
        same_error(f, [np.ones((2, 3), np.float32), np.ones(3, np.float32)])



# a fill value must fit its dtype (PyTorch refuses it, where NumPy wrapped, gave inf or dropped the
# imaginary part); a negative integer wraps into an unsigned dtype; a tensor value is cast unchecked
FILLS = [(300, 'uint8'), (-1, 'uint8'), (-255, 'uint8'), (-256, 'uint8'), (300, 'int8'),
         (2 ** 63, 'int64'), (1e40, 'float32'), (7e4, 'float16'), (1e39, 'bfloat16'),
         (math.inf, 'float32'), (math.nan, 'float16'), (2.5, 'int64'), (-1.5, 'uint8'),
         (1 + 2j, 'float32'), (2 + 0j, 'float64'), (1 + 2j, 'int64'), (1e40j, 'complex64'),
         (5, 'bool'), (True, 'int8')]


@pytest.mark.parametrize('v, dt', FILLS, ids=[f'{v}-{d}' for v, d in FILLS])
@pytest.mark.parametrize('how', ['full', 'fill_', 'masked_fill'])
def test_fill_values_as_pytorch(v, dt, how):
    def fn(lib):
        d = getattr(lib, dt)
        if how == 'full': r = lib.full((2,), v, dtype=d)
        elif how == 'fill_': r = lib.zeros(2, dtype=d).fill_(v)
        else: r = lib.zeros(2, dtype=d).masked_fill(lib.tensor([True, False]), v)
        return r.float() if dt == 'bfloat16' else r
    run_both(fn, [])


@pytest.mark.parametrize('fn', [
    lambda lib: lib.zeros(2, dtype=lib.int8).fill_(lib.tensor(300)),  # cast: 44
    lambda lib: lib.zeros(2).fill_(lib.tensor(2.5, dtype=lib.float64)),
    lambda lib: lib.zeros(2).fill_(lib.ones(2)),
    lambda lib: lib.zeros(2).fill_(lib.tensor(1 + 1j)),
])
def test_fill_with_a_tensor_as_pytorch(fn):
    run_both(fn, [])

# --- gradients at the edges -----------------------------------------------------------------------

def _grads(lib, f):
    m = lib.tensor([1., 2.], requires_grad=True)
    s = lib.tensor([1., 3.], requires_grad=True)
    f(lib, m, s).sum().backward()
    return m.grad, s.grad


@pytest.mark.parametrize('f', [lambda lib, m, s: lib.normal(m, s),
                               lambda lib, m, s: lib.normal(m, 2.),
                               lambda lib, m, s: (m * s).clone().uniform_() + m,
                               lambda lib, m, s: lib.bernoulli(s / 4)])
def test_samples_pass_zero_gradient_back(f):
    ours, ref = _grads(nbtorch, f), _grads(torch, f)
    for o, r in zip(ours, ref): compare(o, r)


def test_cdist_gradient_matches_pytorch_at_zero_distance_and_for_every_p():
    x = np.array([[0., 0., 1.], [1., 2., 3.], [1., 2., 3.]])
    for p in [0., 0.5, 1., 1.5, 2., 3., math.inf]:
        got = []
        for lib in (nbtorch, torch):
            a = lib.tensor(x, requires_grad=True)
            lib.cdist(a, a.detach() * 1, p=p).sum().backward()
            got.append(a.grad)
        compare(*got, atol=1e-6)


def test_einsum_on_pytorchs_opinfo_samples():
    "The harness calls `einsum(tensors, equation)`, which PyTorch refuses; here, as PyTorch does."
    from test_opinfo import ENTRIES, to_nb
    for dt in (torch.float64, torch.int64):
        for s in ENTRIES['einsum'].sample_inputs('cpu', dt, requires_grad=dt.is_floating_point):
            ref = torch.einsum(s.args[0], s.input)
            ops = to_nb(s.input, grad=True)
            ours = nbtorch.einsum(s.args[0], ops)
            compare(ours, ref, rtol=1e-7, atol=1e-7)
            if dt.is_floating_point:
                ref.sum().backward(); ours.sum().backward()
                for o, r in zip(ops, s.input): compare(o.grad, r.grad)


# --- conversions ----------------------------------------------------------------------------------

@pytest.mark.parametrize('call', [
    lambda lib, x: x.to(lib.float64), lambda lib, x: x.to('cpu', lib.float16),
    lambda lib, x: x.to(lib.ones(1, dtype=lib.int32)),
    lambda lib, x: x.to(lib.float32, False, True),
    lambda lib, x: x.to('cpu', None, False, True),
    lambda lib, x: x.to(device='cpu', dtype=lib.int64),
    lambda lib, x: x.to(x, non_blocking=True, copy=True),
    lambda lib, x: x.to(memory_format=lib.channels_last),
    lambda lib, x: x.double(), lambda lib, x: x.type(lib.IntTensor),
    lambda lib, x: x.type('torch.ShortTensor'),
    lambda lib, x: x.contiguous(memory_format=lib.channels_last).clone(),
    lambda lib, x: x.contiguous(memory_format=lib.channels_last).contiguous(),
    lambda lib, x: x.clone(memory_format=lib.channels_last),
    lambda lib, x: lib.empty(2, 3, 4, 5, memory_format=lib.channels_last).fill_(1),
    lambda lib, x: lib.empty_like(x, memory_format=lib.channels_last).fill_(1),
], ids=range(16))
def test_to_and_memory_formats_as_pytorch(call):
    a = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    xo, xr = nbtorch.tensor(a), torch.tensor(a)
    ours, ref = call(nbtorch, xo), call(torch, xr)
    compare(ours, ref)
    assert ours.stride() == ref.stride()
    assert (ours is xo) == (ref is xr)  # a copy exactly when PyTorch makes one
    for fmt in ('contiguous_format', 'channels_last'):
        assert ours.is_contiguous(memory_format=getattr(nbtorch, fmt)) == \
               ref.is_contiguous(memory_format=getattr(torch, fmt))


def test_to_backward_and_copy_keep_the_graph():
    x = nbtorch.tensor([1., 2.], requires_grad=True)
    y = x.to(nbtorch.float64, copy=True)
    y.sum().backward()
    assert y.grad_fn.name() == 'ToCopyBackward0' and x.grad.dtype == nbtorch.float32


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # PyTorch's __array__ has no `copy`
def test_array_protocol_as_pytorch():
    t, r = nbtorch.tensor([[1., 2.], [3., 4.]]), torch.tensor([[1., 2.], [3., 4.]])
    for f in [np.asarray, np.array, lambda x: np.asarray(x, dtype=np.int64),
              lambda x: np.stack([x, x]), lambda x: np.concatenate([np.zeros((1, 2)), x])]:
        np.testing.assert_array_equal(f(t), f(r))
    assert np.shares_memory(np.asarray(t), t.numpy())
    assert not np.shares_memory(np.array(t), t.numpy())
    with pytest.raises(ValueError):
        np.asarray(t, dtype=np.int64, copy=False)
    same_error(lambda lib: np.asarray(lib.ones(2, requires_grad=True)), [])
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    im = plt.imshow(nbtorch.rand(4, 4))  # what old tutorials do with a tensor
    assert im.get_array().shape == (4, 4)
    plt.close('all')


@pytest.mark.parametrize('name', 'Float Double Half Long Int Short Char Byte Bool'.split())
def test_legacy_tensor_types_as_pytorch(name):
    name += 'Tensor'
    ours, ref = getattr(nbtorch, name), getattr(torch, name)
    compare(ours([1, 0, 1]), ref([1, 0, 1]))
    assert ours(2, 3).shape == ref(2, 3).shape and ours(2, 3).dtype == ours.dtype
    assert ours(nbtorch.Size([2, 3])).shape == (2, 3) and ours().shape == ref().shape
    assert repr(ours) == repr(ref) and ours([1]).type() == ref([1]).type() == f'torch.{name}'
    for dt in ('float32', 'int64', 'bool'):
        assert isinstance(nbtorch.zeros(2, dtype=getattr(nbtorch, dt)), ours) == \
               isinstance(torch.zeros(2, dtype=getattr(torch, dt)), ref)


def test_creation_forms_as_pytorch():
    for f in [lambda lib: lib.randint(5, (2, 3)),
              lambda lib: lib.randint(2, 5, (2, 3), dtype=lib.float32),
              lambda lib: lib.randint(5, size=(4,)),
              lambda lib: lib.randint_like(lib.ones(2, 2), 3)]:
        ours, ref = f(nbtorch), f(torch)
        assert tuple(ours.shape) == tuple(ref.shape) and str(ours.dtype) == str(ref.dtype)
    for f in [lambda lib: lib.ones(2).new_tensor([1, 2]),
              lambda lib: lib.ones(2, dtype=lib.int32).new_tensor([1.5]),
              lambda lib: lib.ones(2).new_zeros(2, 3), lambda lib: lib.scalar_tensor(True),
              lambda lib: lib.tril_indices(4, 3, -1)]:
        compare(f(nbtorch), f(torch))
    assert str(nbtorch.get_default_device()) == str(torch.get_default_device())
    for a, b, n in [(-3.5, 10, 7), (0, 1, 5), (5, -5, 4)]:
        for dt in ('int64', 'float64', 'int32'):
            compare(nbtorch.linspace(nbtorch.tensor(a), b, n, dtype=getattr(nbtorch, dt)),
                    torch.linspace(torch.tensor(a), b, n, dtype=getattr(torch, dt)))
            compare(nbtorch.logspace(a, b, n, base=2, dtype=getattr(nbtorch, dt)),
                    torch.logspace(a, b, n, base=2, dtype=getattr(torch, dt)))


def test_default_device_reaches_every_factory(dev):
    if dev != 'cuda': pytest.skip('the default device matters only with a GPU (or its stand-in)')
    nbtorch.set_default_device('cuda')
    try:
        made = [nbtorch.zeros(2), nbtorch.tensor([1, 2]), nbtorch.randn(2), nbtorch.arange(3),
                nbtorch.full((2,), 1.), nbtorch.normal(0., 1., (2,)),
                nbtorch.empty_strided((2,), (1,))]
        assert all(t.is_cuda for t in made) and nbtorch.get_default_device() == 'cuda:0'
        assert not nbtorch.FloatTensor(2).is_cuda  # the legacy CPU types stay on the CPU
    finally: nbtorch.set_default_device(None)
    assert not nbtorch.zeros(2).is_cuda


# --- on the GPU stand-in: no NumPy call on device data --------------------------------------------

def _on(dev, *arrays, grad=False):
    return [nbtorch.tensor(a, device=dev, requires_grad=grad) for a in arrays]


def test_products_on_every_backend(dev):
    rng = np.random.default_rng(0)
    a, b, c = rng.standard_normal((2, 3)), rng.standard_normal((3, 4)), rng.standard_normal((2, 4))
    for f in [lambda lib, a, b, c: lib.addmm(c, a, b, beta=.5, alpha=2),
              lambda lib, a, b, c: lib.einsum('ij,jk,ik->i', a, b, c),
              lambda lib, a, b, c: lib.einsum('ii->i', b[:, :3]),
              lambda lib, a, b, c: lib.cdist(a, c[:, :3]),
              lambda lib, a, b, c: lib.cdist(a, a, p=1.5),
              lambda lib, a, b, c: lib.cross(a, a[:, [2, 1, 0]], dim=1),
              lambda lib, a, b, c: lib.kron(a, c), lambda lib, a, b, c: lib.block_diag(a, c),
              lambda lib, a, b, c: lib.tensordot(a, b, 1), lambda lib, a, b, c: lib.inner(a, a),
              lambda lib, a, b, c: lib.outer(a[0], b[0]), lambda lib, a, b, c: lib.mv(b.t(), a[0])]:
        ours = f(nbtorch, *_on(dev, a, b, c, grad=True))
        ref = f(torch, *[torch.tensor(x, requires_grad=True) for x in (a, b, c)])
        compare(ours, ref, dev)
        ins = _on(dev, a, b, c, grad=True)
        f(nbtorch, *ins).sum().backward()
        rins = [torch.tensor(x, requires_grad=True) for x in (a, b, c)]
        f(torch, *rins).sum().backward()
        for o, r in zip(ins, rins):
            if r.grad is not None: compare(o.grad, r.grad, dev)


def test_creation_and_sampling_on_every_backend(dev):
    import standin
    from nbtorch import cuda
    t = nbtorch
    made = [t.empty(3, 4, device=dev).normal_(), t.zeros(5, device=dev).bernoulli_(.5),
            t.ones(2, 3, device=dev).bernoulli(), t.rand(3, device=dev).multinomial(2),
            t.normal(t.zeros(3, device=dev), 1.), t.empty(3, device=dev).random_(4),
            t.tril_indices(3, 3, device=dev), t.empty_strided((2, 3), (1, 2), device=dev),
            t.empty_permuted((2, 3), (1, 0), device=dev), t.logspace(0, 1, 3, device=dev),
            t.ones(2, device=dev).new_zeros(3), t.empty(2, 3, device=dev).exponential_(),
            t.ones(1, 2, 2, 2, device=dev).contiguous(memory_format=t.channels_last)]
    for t in made:
        assert t.device.type == ('cpu' if dev == 'cpu' else 'cuda')
        if dev == 'cuda' and cuda._cupy is standin.module: assert type(t._data) is standin.ndarray
