"The stand-in device catches what a real GPU would refuse: NumPy computing on device data."
import operator
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
from nbtorch.tensor import Op
import standin


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
             lambda: a.tolist(), lambda: a.get(),
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


def test_a_device_integer_is_no_python_index(gpu):
    "CuPy's arrays have no `__index__`: `int(x)` reads (and waits), `range(x)` or `xs[x]` is refused."
    i = nbtorch.tensor(3, device='cuda')._data
    for use in (lambda: range(i), lambda: [1, 2, 3, 4][i], lambda: operator.index(i),
                lambda: standin.arange(10)[i:]):
        with pytest.raises(TypeError, match='cannot be interpreted as an integer'): use()
    assert list(range(int(i))) == [0, 1, 2]


# The stand-in is as strict as CuPy 14.2 (tests/cupy_api.json, made by tools/cupy_api.py)
import json, os, subprocess, sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
_API = json.loads((_ROOT / 'tests' / 'cupy_api.json').read_text())


def test_the_api_file_is_cupy_14_2s():
    assert _API['cupy_version'] == '14.2.0' and _API['made_by'] == 'tools/cupy_api.py'
    assert 'geomspace' not in _API['modules']['cupy'] and 'eig' in _API['modules']['cupy.linalg']
    assert _API['ufuncs']['maximum']['methods'] == ['at', 'outer']
    assert _API['sort_kinds'] == [None, 'stable']


def _cupy_env():
    "The environment under which a CuPy imports (`NBTORCH_CUPY_SITE` names its folder), or None."
    env = dict(os.environ, PYTHONPATH=os.environ.get('NBTORCH_CUPY_SITE', ''))
    r = subprocess.run([sys.executable, '-c', 'import cupy'], env=env, capture_output=True)
    return env if r.returncode == 0 else None


def test_the_api_file_is_what_the_tool_makes():
    env = _cupy_env()
    if env is None: pytest.skip("no CuPy to read (set NBTORCH_CUPY_SITE to a folder holding one)")
    r = subprocess.run([sys.executable, str(_ROOT / 'tools' / 'cupy_api.py'), '-'], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    made = json.loads(r.stdout)
    # NumPy's, not CuPy's; and which submodules are loaded depends on the machine's CUDA libraries
    skip = ('numpy_version', 'numpy_aliases', 'submodules')
    assert {k: v for k, v in made.items() if k not in skip} == \
           {k: v for k, v in _API.items() if k not in skip}


def test_a_name_cupy_lacks_is_refused():
    with pytest.raises(AttributeError, match=r'CuPy 14\.2\.0 has no numpy\.geomspace'):
        standin.module.geomspace
    with pytest.raises(AttributeError, match=r'has no numpy\.linalg\.svdvals'):
        standin.module.linalg.svdvals
    with pytest.raises(AttributeError, match=r'has no scipy\.special\.airy'):
        standin.extras.scipy.special.airy
    assert standin.module.linalg.eig and standin.module.take_along_axis  # what it has is there


def test_a_numpy_function_cupy_lacks_is_refused(gpu):
    x = nbtorch.arange(4.).cuda()._data
    with pytest.raises(TypeError, match=r"no implementation found for 'numpy\.insert'"):
        np.insert(x, 0, 1.)
    assert type(np.cumsum(x)) is standin.ndarray


def test_a_ufunc_method_cupy_lacks_is_refused(gpu):
    x = nbtorch.arange(4.).cuda()._data
    with pytest.raises(NotImplementedError, match=r'cupy_maximum\.reduce'):
        np.maximum.reduce(x)
    with pytest.raises(NotImplementedError, match=r'cupy_multiply\.reduceat'):
        np.multiply.reduceat(x, [0, 2])
    with pytest.raises(NotImplementedError, match=r'cupy_minimum\.accumulate'):
        standin.module.minimum.accumulate(x)
    with pytest.raises(TypeError, match='has no ufunc numpy.spacing'):
        np.spacing(x)
    assert np.add.reduceat(x, [0, 2]).tolist() == [1., 5.]  # these CuPy has
    np.maximum.at(x, [0], 9.); assert x.tolist() == [9., 1., 2., 3.]
    assert (x @ x).item() == 95.  # matmul: a generalised ufunc in CuPy, called as NumPy's


def test_keywords_cupy_refuses_are_refused(gpu):
    x = nbtorch.arange(4.).cuda()._data
    for kind in ['quicksort', 'heapsort', 'mergesort']:
        with pytest.raises(ValueError, match="kind can only be None or 'stable'"):
            np.sort(x, kind=kind)
        with pytest.raises(ValueError, match="kind can only be None or 'stable'"):
            x.argsort(kind=kind)
    assert np.argsort(x, kind='stable').tolist() == [0, 1, 2, 3]
    with pytest.raises(TypeError, match='Wrong arguments'):
        np.add(x, x, where=x > 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        x.sum(where=x > 1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'initial'"):
        x.max(initial=0.)
    with pytest.raises(TypeError, match="unexpected keyword argument 'casting'"):
        standin.module.einsum('i->', x, casting='no')


def test_what_a_cupy_array_lacks_is_refused(gpu):
    x = nbtorch.arange(4.).cuda()._data
    with pytest.raises(AttributeError, match='has no ndarray.resize'):
        x.resize(5)
    with pytest.raises(TypeError, match='has no dtype object'):
        x.astype(object)
    # what the stand-in cannot refuse: NumPy takes a subclass as it is (CuPy raises TypeError)
    assert type(np.asarray(x)) is np.ndarray


# Ops rewritten for CuPy 14's API: each failed (or went through the host) on the strict stand-in
def test_linalg_eig_uses_cupys_eig(gpu, monkeypatch):
    calls = []
    def eig(a): calls.append(a.shape); return np.linalg.eig(a)
    monkeypatch.setattr(standin.linalg, 'eig', eig, raising=False)
    a = nbtorch.tensor([[2., 1.], [0., 3.]], requires_grad=True)
    w, v = nbtorch.linalg.eig(a.cuda())
    assert calls == [(2, 2)] and type(w._data) is standin.ndarray and w.dtype == nbtorch.complex64
    wc, vc = nbtorch.linalg.eig(a)
    assert np.allclose(w.detach().cpu().numpy(), wc.detach().numpy())
    assert np.allclose(v.detach().cpu().numpy(), vc.detach().numpy())
    w.real.sum().backward()
    assert np.allclose(a.grad.numpy(), np.eye(2))  # d(trace)/dA


def test_airy_ai_on_the_device_goes_through_the_host(gpu):
    x = nbtorch.linspace(-3, 3, 7)
    y = nbtorch.special.airy_ai(x.cuda())  # CuPy 14 has no airy: SciPy's on a copy
    assert type(y._data) is standin.ndarray
    assert np.allclose(y.cpu().numpy(), nbtorch.special.airy_ai(x).numpy())


def test_an_in_place_sort_needs_contiguous_data(gpu):
    x = nbtorch.arange(6.).cuda()._data.reshape(2, 3)
    with pytest.raises(NotImplementedError, match='Sorting non-contiguous array'):
        x.T.sort()
    assert np.sort(x.T).shape == (3, 2)  # the function sorts a copy: CuPy's does too
    x.sort(); assert x.tolist() == [[0., 1., 2.], [3., 4., 5.]]


def test_device_arrays_tell_their_address_as_cupys_do(gpu):
    x = nbtorch.arange(4.).cuda()._data
    face = x.__cuda_array_interface__
    assert face['shape'] == (4,) and face['typestr'] == '<f4' and face['version'] == 3
    with pytest.raises(AttributeError, match='__array_interface__'):
        x.__array_interface__


def test_what_the_stand_in_offers_cupy_has():
    "The stand-in invents no API: its own namespaces hold only names CuPy 14.2 has."
    names = _API['modules']
    for n in ['Device', 'get_current_stream']:
        assert n in names['cupy.cuda'] and hasattr(standin.cuda, n)
    assert 'runtime' in _API['submodules']['cupy.cuda']  # (nccl: loaded on first use, unlisted)
    assert set(vars(standin.cuda.runtime)) <= set(names['cupy.cuda.runtime'])
    assert set(vars(standin.random)) <= set(names['cupy.random'])
    assert 'as_strided' in names['cupy.lib.stride_tricks']
    assert 'scatter_add' in names['cupyx'] and 'scipy' in _API['submodules']['cupyx']
    assert {'ndarray', 'asarray', 'array', 'asnumpy', 'get_array_module'} <= set(names['cupy'])
    assert {'cuda', 'random', 'linalg', 'fft', 'lib'} <= set(_API['submodules']['cupy'])


def test_cupys_linalg_fails_silently_unless_asked(gpu):
    z = standin.asarray(np.zeros((2, 2)))
    assert np.isnan(standin.linalg.inv(z).get()).all()  # CuPy: no error, what cuSOLVER left
    with standin.extras.errstate(linalg='raise'), pytest.raises(np.linalg.LinAlgError):
        standin.linalg.inv(z)


@pytest.mark.parametrize('case', ['inv', 'solve', 'cholesky', 'cholesky_ex'])
def test_a_failed_factorisation_raises_on_the_device_as_on_the_cpu(gpu, case):
    zero, neg = nbtorch.zeros(2, 2), -nbtorch.eye(2)
    f = {'inv': lambda d: nbtorch.linalg.inv(zero.to(d)),
         'solve': lambda d: nbtorch.linalg.solve(zero.to(d), nbtorch.ones(2, device=d)),
         'cholesky': lambda d: nbtorch.linalg.cholesky(neg.to(d)),
         'cholesky_ex': lambda d: nbtorch.linalg.cholesky_ex(neg.to(d)).info.item()}[case]
    if case == 'cholesky_ex': assert f('cuda') == f('cpu') == 1; return
    with pytest.raises(nbtorch.linalg.LinAlgError) as cpu: f('cpu')
    with pytest.raises(nbtorch.linalg.LinAlgError) as dev: f('cuda')
    assert str(dev.value) == str(cpu.value)
