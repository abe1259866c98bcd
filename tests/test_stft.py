"torch.stft and torch.istft beyond OpInfo: PyTorch's errors and warnings, the edges of their arguments, names, the GPU stand-in."
import warnings
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
from helpers import needs_torch, torch
import standin

pytestmark = needs_torch

SIG = np.random.default_rng(0).standard_normal(20)


def _both(make):
    "`make(lib, x, X)` run on PyTorch and nbtorch: `x` a real signal, `X` its centred stft."
    out = []
    for lib in (torch, nbtorch):
        x = lib.tensor(SIG)
        X = lib.stft(x, 8, window=lib.ones(8, dtype=lib.float64), return_complex=True)
        out.append(lambda lib=lib, x=x, X=X: make(lib, x, X))
    return out


def _error(f):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(Exception) as e: f()
    return e.type.__name__, str(e.value).split(' (Triggered internally')[0]


ERRORS = {
    'no return_complex': lambda t, x, X: t.stft(x, 8),
    'integer input': lambda t, x, X: t.stft(x.to(t.int64), 8, return_complex=True),
    'n_fft too long': lambda t, x, X: t.stft(x, 25, center=False, return_complex=True),
    'n_fft zero': lambda t, x, X: t.stft(x, 0, center=False, return_complex=True),
    'hop zero': lambda t, x, X: t.stft(x, 8, hop_length=0, return_complex=True),
    'win_length too long': lambda t, x, X: t.stft(x, 8, win_length=9, return_complex=True),
    'window size': lambda t, x, X: t.stft(x, 8, window=t.ones(7), return_complex=True),
    '3-d input': lambda t, x, X: t.stft(x[None, None], 8, return_complex=True),
    'onesided complex': lambda t, x, X: t.stft(x.to(t.complex128), 8, onesided=True),
    'align with center': lambda t, x, X: t.stft(x, 8, align_to_window=True, return_complex=True),
    'reflect too short': lambda t, x, X: t.stft(x[:3], 8, return_complex=True),
    'istft real input': lambda t, x, X: t.istft(X.real, 8),
    'istft empty': lambda t, x, X: t.istft(X[:, :0], 8),
    'istft 4-d': lambda t, x, X: t.istft(X[None, None], 8),
    'istft onesided size': lambda t, x, X: t.istft(X, 10),
    'istft twosided size': lambda t, x, X: t.istft(X, 8, onesided=False),
    'istft onesided complex': lambda t, x, X: t.istft(X, 8, return_complex=True),
    'istft hop': lambda t, x, X: t.istft(X, 8, hop_length=9),
    'istft win_length': lambda t, x, X: t.istft(X, 8, win_length=9),
    'istft window size': lambda t, x, X: t.istft(X, 8, window=t.ones(7, dtype=t.float64)),
    'istft complex window': lambda t, x, X: t.istft(X, 8, window=t.ones(8, dtype=t.complex128)),
    'NOLA zeros': lambda t, x, X: t.istft(X, 8, window=t.zeros(8, dtype=t.float64)),
    'NOLA hop': lambda t, x, X: t.istft(X, 8, hop_length=8, window=t.hann_window(8, dtype=t.float64)
                                        if t is torch else nbtorch.signal.windows.hann(8, sym=False,
                                                                                       dtype=t.float64)),
}


@pytest.mark.parametrize('case', ERRORS)
def test_errors_are_pytorchs(case):
    ref, ours = _both(ERRORS[case])
    assert _error(ours) == _error(ref)


EDGES = {
    'default': dict(n_fft=8, return_complex=True),
    'no center': dict(n_fft=8, center=False, return_complex=True),
    'short window': dict(n_fft=8, win_length=5, hop_length=2, return_complex=True),
    'aligned': dict(n_fft=8, win_length=4, hop_length=2, center=False, align_to_window=True,
                    return_complex=True),
    'normalized': dict(n_fft=8, normalized=True, return_complex=True),
    'two-sided': dict(n_fft=8, onesided=False, return_complex=True),
    'constant pad': dict(n_fft=8, pad_mode='constant', return_complex=True),
    'replicate pad': dict(n_fft=8, pad_mode='replicate', return_complex=True),
    'circular pad': dict(n_fft=8, pad_mode='circular', return_complex=True),
    'real output': dict(n_fft=8, return_complex=False),
}


@pytest.mark.parametrize('case', EDGES)
def test_stft_edges_and_round_trip(case):
    "Values as PyTorch's, and istft brings the signal back (length given, so any hop works)."
    kw = EDGES[case]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        ref = torch.stft(torch.tensor(SIG), **kw)
        ours = nbtorch.stft(nbtorch.tensor(SIG), **kw)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-12)
    if kw.get('center', True) and kw['return_complex'] and not kw.get('normalized'):
        ikw = {k: kw[k] for k in ('n_fft', 'win_length', 'hop_length', 'onesided') if k in kw}
        back = nbtorch.istft(ours, length=len(SIG), **ikw)
        np.testing.assert_allclose(back.numpy(), SIG, atol=1e-12)


@pytest.mark.parametrize('length', [5, 20, 30, 40])
def test_istft_length_cuts_or_pads_with_a_warning(length):
    X = [lib.stft(lib.tensor(SIG), 8, window=lib.ones(8, dtype=lib.float64), return_complex=True)
         for lib in (torch, nbtorch)]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        ours = nbtorch.istft(X[1], 8, length=length)
        ref = torch.istft(X[0], 8, length=length)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), atol=1e-12)
    padded = [m for m in w if 'padded with zeros' in str(m.message) and 'Triggered' not in str(m.message)]
    assert bool(padded) == (length > 24)  # 11 frames reach 28 samples, 4 of them centring pad


def test_return_complex_false_warns_and_views_as_real():
    with pytest.warns(UserWarning, match='return_complex=False is deprecated'):
        y = nbtorch.tensor(SIG).stft(8, window=nbtorch.ones(8, dtype=nbtorch.float64),
                                     return_complex=False)
    assert y.shape == (5, 11, 2) and y.dtype == nbtorch.float64


def test_names_are_top_level_not_fft():
    assert nbtorch.stft is nbtorch.functional.stft and nbtorch.istft is nbtorch.functional.istft
    assert 'stft' not in nbtorch.fft.__all__ and 'istft' not in dir(nbtorch.fft)
    assert hasattr(nbtorch.Tensor, 'stft') and hasattr(nbtorch.Tensor, 'istft')


def test_round_trip_and_gradients_on_the_standin(dev):
    "Batched, windowed, on every backend: istft(stft(x)) == x, and a gradient reaches x and the window."
    a = np.random.default_rng(1).standard_normal((2, 40))
    x = nbtorch.tensor(a, device=dev, requires_grad=True)
    w = nbtorch.tensor(np.hanning(10)[:-1].tolist() + [.5], device=dev, requires_grad=True)
    X = nbtorch.stft(x, 10, hop_length=3, window=w, return_complex=True)
    y = nbtorch.istft(X, 10, hop_length=3, window=w, length=40)
    if dev == 'cuda' and cuda._cupy is standin.module: assert type(y._data) is standin.ndarray
    np.testing.assert_allclose(cuda._to_cpu(y.detach()._data), a, atol=1e-10)
    (X.abs() ** 2).sum().backward()
    xt = torch.tensor(a, requires_grad=True)
    wt = torch.tensor(cuda._to_cpu(w.detach()._data), requires_grad=True)
    (torch.stft(xt, 10, hop_length=3, window=wt, return_complex=True).abs() ** 2).sum().backward()
    np.testing.assert_allclose(cuda._to_cpu(x.grad._data), xt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(cuda._to_cpu(w.grad._data), wt.grad.numpy(), atol=1e-10)
