"Run the same code on nbtorch and on PyTorch and compare what comes out."
import numbers
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
from conftest import torch
import standin

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the test oracle) is not installed")


def to_np(t):
    "A NumPy copy of a tensor of either library."
    if isinstance(t, nbtorch.Tensor): return cuda._to_cpu(t._data).copy()
    return t.detach().cpu().numpy()


def compare(ours, ref, dev='cpu', atol=1e-5, rtol=1e-4, path='result'):
    "Assert that nbtorch's `ours` equals PyTorch's `ref`: type, shape, dtype and values."
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, nbtorch.Tensor), f"{path}: expected a Tensor, got {type(ours)}"
        assert tuple(ours.shape) == tuple(ref.shape), f"{path}: shape {ours.shape} != {ref.shape}"
        assert str(ours.dtype) == str(ref.dtype), f"{path}: dtype {ours.dtype} != {ref.dtype}"
        if dev == 'cuda':
            assert cuda._on_gpu(ours._data), f"{path}: the result left the device ({type(ours._data)})"
            if cuda._cupy is standin.module:
                assert type(ours._data) is standin.ndarray, f"{path}: a NumPy array on the device"
        a, b = to_np(ours), to_np(ref)
        if ref.dtype == torch.float16: atol, rtol = 1e-2, 1e-2
        if a.dtype.kind in 'fc':
            np.testing.assert_allclose(a, b, atol=atol, rtol=rtol, equal_nan=True, err_msg=path)
        else: np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(ref, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(ref), f"{path}: {ours} vs {ref}"
        for i, (o, r) in enumerate(zip(ours, ref)): compare(o, r, dev, atol, rtol, f'{path}[{i}]')
    elif isinstance(ref, numbers.Number):
        assert type(ours) is type(ref), f"{path}: {type(ours)} != {type(ref)}"
        assert ours == ref or (np.isclose(ours, ref, rtol=rtol, atol=atol)), f"{path}: {ours} != {ref}"
    else:
        assert ours == ref, f"{path}: {ours!r} != {ref!r}"


def run_both(fn, arrays, dev='cpu', **kw):
    """fn(lib, *tensors) on nbtorch (on `dev`) and on PyTorch (CPU), compared. Where PyTorch raises,
    nbtorch must raise the same type of error with the same first line of message."""
    try: ref = fn(torch, *[torch.tensor(a) for a in arrays])
    except Exception:
        same_error(fn, arrays, dev)
        return None, None
    ours = fn(nbtorch, *[nbtorch.tensor(a, device=dev) for a in arrays])
    compare(ours, ref, dev, **kw)
    return ours, ref


def same_error(fn, arrays, dev='cpu'):
    "fn raises the same type of error with the same message in both libraries."
    with pytest.raises(Exception) as ref:
        fn(torch, *[torch.tensor(a) for a in arrays])
    with pytest.raises(type(ref.value)) as ours:
        fn(nbtorch, *[nbtorch.tensor(a, device=dev) for a in arrays])
    first = str(ref.value).split('\n')[0]
    assert first in str(ours.value), f"{ours.value!r} does not say {first!r}"
