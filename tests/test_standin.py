"The stand-in device catches what a real GPU would refuse: NumPy computing on device data."
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
from nbtorch.tensor import Op
import standin


@pytest.fixture
def gpu():
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    yield
    cuda._set_backend(*saved)


def test_device_arrays_refuse_numpy(gpu):
    x = nbtorch.ones(3, device='cuda')
    assert x.is_cuda and type(x._data) is standin.ndarray and x.device == 'cuda:0'
    with pytest.raises(TypeError, match='NumPy array met a device array'):
        x._data + np.ones(3)
    with pytest.raises(TypeError, match='NumPy array met a device array'):
        np.where(x._data > 0, x._data, np.zeros(3))


class _Leaky(Op):
    "A wrong op: it builds its result with NumPy, whatever the device."
    def forward(ctx, x): return np.zeros(x.shape, x.dtype) + 1


class _Mixing(Op):
    "A wrong op: it mixes a NumPy array into device data."
    def forward(ctx, x): return x + np.arange(x.shape[-1])


def test_a_leaky_op_is_caught(gpu):
    x = nbtorch.ones(3, device='cuda')
    assert not cuda._on_gpu(_Leaky.apply(x)._data)  # what helpers.compare asserts for every op
    with pytest.raises(TypeError):
        _Mixing.apply(x)


def test_every_result_stays_on_the_device(gpu):
    x = nbtorch.randn(3, 4, device='cuda')
    outs = [x + 1, x.exp(), x.sum(0), x.max(1).values, x.argmax(), x[x > 0], x.t() @ x, x.softmax(1),
            nbtorch.cat([x, x]), x.gather(1, nbtorch.zeros(3, 1, dtype=nbtorch.int64, device='cuda')),
            x.clamp(0, 1), x.std(), nbtorch.where(x > 0, x, 0.), x[1, 2], x.to(nbtorch.float64)]
    for o in outs:
        assert type(o._data) is standin.ndarray, o
