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


def test_transfers_counts_every_read_by_the_host(gpu):
    "Each way the host reads device data counts once (on a GPU each one waits for the device)."
    x = nbtorch.arange(1000., device='cuda')
    a = x._data
    reads = [lambda: float(a[0]), lambda: a[1].item(), lambda: bool(a[2] > 0), lambda: int(a[3]),
             lambda: range(a[3].astype(np.int64)), lambda: a.tolist(), lambda: a.get(),
             lambda: standin.asnumpy(a), lambda: np.asarray(a), lambda: repr(a), lambda: str(a),
             lambda: f'{a[0]:.2f}', lambda: 5. in a, lambda: x[0].item(), lambda: x.tolist(),
             lambda: x.cpu(), lambda: float(x[0]), lambda: bool(x[1] > 0)]
    # and the reads of a size a result depends on (CuPy must know it to allocate the result)
    reads += [lambda: a[a > 3], lambda: a.__setitem__(a > 5, 0.), lambda: a.nonzero(),
              lambda: np.nonzero(a), lambda: np.unique(a), lambda: np.where(a > 1),
              lambda: x[x > 0]]
    for read in reads:
        with standin.transfers() as t: read()
        assert t.count == 1, (read, t)
    with standin.transfers() as t:
        y = (x * 2 + 1).exp().sum()  # work on the device only: nothing read
        y = y + np.where(a > 1, a, 0.).sum() + a[standin.arange(3)].sum()  # no size read
        assert x.device.type == 'cuda' and y.shape == ()
    assert (t.count, t.nbytes, t.log) == (0, 0, [])
    with standin.transfers() as t: x.tolist(); float(x[0])
    assert (t.count, t.nbytes) == (2, 4000 + 4)  # float32: the whole array, then one element
    assert t.log[0][0] == 'asnumpy' and t.log[0][3].startswith('tensor.py')  # the line that asked
    with standin.transfers() as outer:  # nested blocks each count; NumPy is restored after them
        with standin.transfers() as inner: x.tolist()
        float(x[1])
    assert (outer.count, inner.count) == (2, 1) and np.asarray.__module__ == 'numpy'
