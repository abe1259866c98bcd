"Complex tensors and torch.fft beyond OpInfo: promotion, printing, errors, and the GPU stand-in."
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
from helpers import needs_torch, torch
import standin

pytestmark = needs_torch

DTYPES = ['bool', 'int64', 'float32', 'float64', 'complex64', 'complex128']


def _on_device(t, dev):
    "Assert that `t` lives where `dev` says (a stand-in array, not NumPy's, on the stand-in)."
    if dev == 'cuda':
        assert cuda._on_gpu(t._data), type(t._data)
        if cuda._cupy is standin.module: assert type(t._data) is standin.ndarray


def _close(ours, ref, rtol=1e-6, atol=1e-9):
    assert str(ours.dtype) == str(ref.dtype), (ours.dtype, ref.dtype)
    np.testing.assert_allclose(cuda._to_cpu(ours.detach()._data), ref.detach().resolve_conj().numpy(),
                               rtol=rtol, atol=atol)


def test_promotion_with_complex_matches_pytorch():
    "Every pair of dtypes as tensors, 0-d tensors and Python numbers, complex among them."
    def operands(lib, name):
        d = getattr(lib, name)
        return [lib.ones(2, dtype=d), lib.ones((), dtype=d)]
    for a in DTYPES:
        for b in DTYPES:
            for x, y in zip(operands(torch, a) * 2, operands(torch, b) + operands(torch, b)[::-1]):
                nx, ny = nbtorch.tensor(x.numpy()), nbtorch.tensor(y.numpy())
                assert str(nbtorch.result_type(nx, ny)) == str(torch.result_type(x, y)), (a, b)
        for s in (True, 2, 2.5, 1j):
            t = torch.ones(2, dtype=getattr(torch, a))
            assert str(nbtorch.result_type(nbtorch.tensor(t.numpy()), s)) == \
                str(torch.result_type(t, s)), (a, s)


def test_complex_printing_matches_pytorch():
    rng = np.random.default_rng(1)
    cases = [np.array([1 + 2j, -3.5 - 0.25j]), np.array(1e-6 + 3j), rng.standard_normal((3, 4)) * 1j,
             np.array([np.inf + 1j, np.nan * 1j, -0.0 - 0j]), rng.standard_normal((4, 300)) + 2j]
    for a in cases:
        for dt in ('complex64', 'complex128'):
            for rg in (False, True):
                t = torch.tensor(a, dtype=getattr(torch, dt), requires_grad=rg)
                n = nbtorch.tensor(a, dtype=getattr(nbtorch, dt), requires_grad=rg)
                assert repr(n) == repr(t)


@pytest.mark.parametrize('fn', [
    lambda lib, x: lib.view_as_complex(x[..., :3]),
    lambda lib, x: lib.view_as_complex(x.t()),
    lambda lib, x: lib.view_as_real(x),
    lambda lib, x: x.imag,
    lambda lib, x: lib.complex(x, x.double()),
    lambda lib, x: lib.fft.rfft(x.cfloat()),
    lambda lib, x: lib.fft.fft(x, norm='both'),
    lambda lib, x: x.cfloat().sign(),
])
def test_errors_match_pytorch(fn):
    a = np.ones((2, 4), np.float32)
    with pytest.raises(Exception) as ref: fn(torch, torch.tensor(a))
    with pytest.raises(type(ref.value)) as ours: fn(nbtorch, nbtorch.tensor(a))
    assert str(ref.value).split('\n')[0] in str(ours.value)


def test_a_complex_result_cannot_be_written_into_a_real_tensor():
    x = nbtorch.ones(2)
    with pytest.raises(RuntimeError, match="ComplexFloat can't be cast to the desired output type Float"):
        x.mul_(1j)


def test_complex_ops_and_gradients_on_every_backend(dev):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    b = rng.standard_normal((4, 2))
    def loss(lib, z, w):
        parts = lib.view_as_real(z @ w.to(z.dtype))
        return (parts.sum() + z.angle().sum() + z.sgn().real.sum() + (z.conj() * z.exp()).abs().sum()
                + lib.polar(w.abs(), w).imag.sum())
    zs, ws = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    zn = nbtorch.tensor(a, device=dev, requires_grad=True)
    wn = nbtorch.tensor(b, device=dev, requires_grad=True)
    lt, ln = loss(torch, zs, ws), loss(nbtorch, zn, wn)
    lt.backward(); ln.backward()
    _on_device(ln, dev); _on_device(zn.grad, dev); _on_device(wn.grad, dev)
    _close(ln, lt); _close(zn.grad, zs.grad); _close(wn.grad, ws.grad)


@pytest.mark.parametrize('name,kw', [('fft', dict(n=7)), ('ifft', dict(norm='ortho')),
                                     ('rfft', dict(n=6)), ('irfft', dict(n=7, norm='forward')),
                                     ('hfft', {}), ('ihfft', {}), ('fft2', dict(s=(3, 5))),
                                     ('rfftn', {}), ('irfft2', {}), ('hfftn', dict(norm='ortho'))])
def test_fft_values_and_gradients_on_every_backend(dev, name, kw):
    rng = np.random.default_rng(0)
    real = name in ('rfft', 'ihfft', 'rfftn')
    a = rng.standard_normal((3, 4, 5)) + (0 if real else 1j * rng.standard_normal((3, 4, 5)))
    t = torch.tensor(a, requires_grad=True)
    n = nbtorch.tensor(a, device=dev, requires_grad=True)
    yt, yn = getattr(torch.fft, name)(t, **kw), getattr(nbtorch.fft, name)(n, **kw)
    _on_device(yn, dev); _close(yn, yt)
    c = rng.standard_normal(tuple(yt.shape)) * (1 + 1j if yt.is_complex() else 1)
    (yt * torch.tensor(c)).real.sum().backward()
    (yn * nbtorch.tensor(c, device=dev)).real.sum().backward()
    _on_device(n.grad, dev); _close(n.grad, t.grad)


def test_fft_of_float32_is_complex64_and_frequencies_match(dev):
    x = nbtorch.ones(8, device=dev)
    assert nbtorch.fft.fft(x).dtype is nbtorch.complex64 and nbtorch.fft.rfft(x).dtype is nbtorch.complex64
    assert nbtorch.fft.irfft(nbtorch.fft.rfft(x)).dtype is nbtorch.float32
    for n, d in [(1, 1.), (6, .5), (7, 2.)]:
        _close(nbtorch.fft.fftfreq(n, d), torch.fft.fftfreq(n, d))
        _close(nbtorch.fft.rfftfreq(n, d, dtype=nbtorch.float64),
               torch.fft.rfftfreq(n, d, dtype=torch.float64))


def test_real_and_imag_are_writable_views(dev):
    z = nbtorch.tensor([1 + 2j, 3 - 4j], device=dev)
    z.real[1] = 5.
    z.imag.mul_(2)
    assert z.tolist() == [1 + 4j, 5 - 8j]
    r = nbtorch.view_as_real(z)
    r[0, 0] = -1.
    assert z.tolist()[0] == -1 + 4j


def test_a_complex_loss_needs_an_explicit_gradient():
    z = nbtorch.ones(1, dtype=nbtorch.cfloat, requires_grad=True)
    with pytest.raises(RuntimeError, match='only for real scalar outputs but got torch.complex64'):
        (z * 2).sum().backward()
    (z * 2).sum().backward(nbtorch.tensor(1 - 1j))
    assert z.grad.tolist() == [2 - 2j]
