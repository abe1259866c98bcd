"""A stand-in GPU for CPU-only machines: a CuPy look-alike whose arrays refuse to mix with NumPy's.

CuPy raises `TypeError` when one of its arrays meets a NumPy array in an operation, and never converts
to NumPy implicitly. This module gives arrays that behave the same way (they are NumPy arrays
underneath, of a subclass), so the CPU test suite catches an op that computes with NumPy on device
data: such an op either fails on mixing, or returns a plain NumPy array, which the tests check for.
"""
import types
import numpy as np


def _check(xs):
    for x in xs:
        if isinstance(x, (list, tuple)): _check(x)
        elif isinstance(x, np.ndarray) and not isinstance(x, ndarray):
            raise TypeError("Unsupported type <class 'numpy.ndarray'> (stand-in device: a NumPy "
                            "array met a device array)")


def _base(x):
    if isinstance(x, ndarray): return x.view(np.ndarray)
    if isinstance(x, (list, tuple)): return type(x)(_base(v) for v in x)
    return x


def _dev(r):
    if isinstance(r, np.ndarray) and not isinstance(r, ndarray): return r.view(ndarray)
    if isinstance(r, np.generic): return np.asarray(r).view(ndarray)
    if isinstance(r, tuple): return tuple(_dev(v) for v in r)
    if isinstance(r, list): return [_dev(v) for v in r]
    return r


class _Device:
    id = 0
    def __enter__(self): return self
    def __exit__(self, *a): return False


class ndarray(np.ndarray):
    "An array on the stand-in device."
    @property
    def device(self): return _Device()

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        _check(inputs); _check(kw.get('out', ()))
        if 'out' in kw: kw['out'] = _base(kw['out'])
        return _dev(getattr(ufunc, method)(*_base(inputs), **kw))

    def __array_function__(self, func, types_, args, kw):
        _check(args); _check(list(kw.values()))
        return _dev(func(*_base(args), **_base(kw)))

    def get(self): return self.view(np.ndarray).copy()

    # NumPy returns scalars (not 0-d arrays) from these; CuPy returns 0-d device arrays
    def __getitem__(self, key): return _dev(super().__getitem__(_base(key)))
    def argmax(self, *a, **kw): return _dev(self.view(np.ndarray).argmax(*a, **kw))
    def argmin(self, *a, **kw): return _dev(self.view(np.ndarray).argmin(*a, **kw))
    def nonzero(self): return _dev(self.view(np.ndarray).nonzero())

    def tolist(self): return self.view(np.ndarray).tolist()

    def item(self, *a): return self.view(np.ndarray).item(*a)


def asarray(a, dtype=None):
    if isinstance(a, ndarray): return a if dtype is None else a.astype(dtype, copy=False)
    return np.array(a, dtype=dtype).view(ndarray)


def array(a, dtype=None, copy=True, order='K'):
    a = a.view(np.ndarray) if isinstance(a, ndarray) else a
    return np.array(a, dtype=dtype, copy=True, order=order).view(ndarray)


def asnumpy(a): return a.view(np.ndarray).copy() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*xs): return module


def _wrapped(f):
    def g(*args, **kw): return _dev(f(*args, **kw))
    return g


cuda = types.SimpleNamespace(Device=lambda i=0: _Device(),
                             runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
random = types.SimpleNamespace(seed=lambda s: None)
lib = types.SimpleNamespace(stride_tricks=types.SimpleNamespace(
    as_strided=lambda x, shape=None, strides=None: np.lib.stride_tricks.as_strided(x, shape, strides, subok=True)))


def __getattr__(name):
    f = getattr(np, name)
    return _wrapped(f) if callable(f) and not isinstance(f, type) else f


def _scatter_add(a, index, values):
    _check([values])
    np.add.at(a.view(np.ndarray), _base(index), _base(values))


class _Special:
    "`cupyx.scipy.special`'s stand-in: SciPy's functions, refusing NumPy arrays as CuPy's do."
    def __getattr__(self, name):
        import scipy.special
        f = getattr(scipy.special, name)
        def g(*args, **kw):
            _check(args)
            return _dev(f(*_base(args), **kw))
        return g


import sys
module = sys.modules[__name__]
extras = types.SimpleNamespace(scatter_add=_scatter_add, scipy=types.SimpleNamespace(special=_Special()))
