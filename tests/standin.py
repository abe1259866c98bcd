"""A stand-in GPU for CPU-only machines: a CuPy look-alike whose arrays refuse to mix with NumPy's.

CuPy raises `TypeError` when one of its arrays meets a NumPy array in an operation, and never converts
to NumPy implicitly. This module gives arrays that behave the same way (they are NumPy arrays
underneath, of a subclass), so the CPU test suite catches an op that computes with NumPy on device
data: such an op either fails on mixing, or returns a plain NumPy array, which the tests check for.

It is as strict as the CuPy recorded in `cupy_api.json` (made by `tools/cupy_api.py` from a real
CuPy): a NumPy name CuPy lacks is an AttributeError on the module, `numpy.X(device_array)` a
TypeError where CuPy has no `X`, a ufunc method CuPy lacks (`maximum.reduce`) a
NotImplementedError, a keyword CuPy does not take a TypeError, a `kind` of sort other than None or
'stable' a ValueError, an in-place sort of a non-contiguous array a NotImplementedError, an
`ndarray` method CuPy lacks an AttributeError, and a result of a dtype CuPy lacks (object, strings,
datetimes, long double) a TypeError. Its arrays tell where their data lies as CuPy's do, through
`__cuda_array_interface__` (they have no `__array_interface__`).

A device integer used as a Python index or size (`range(x)`, `xs[x]`, `operator.index`) is a
TypeError, as on CuPy, whose arrays have no `__index__`.

What it cannot refuse, being a NumPy subclass: `numpy.asarray(device_array)` and
`numpy.array(device_array)` (NumPy takes a subclass as it is, asking it nothing; CuPy raises
TypeError), `isinstance(device_array, numpy.ndarray)` (True here, False on CuPy), and what CuPy
refuses only on its device (cuSOLVER's conditions, kernels a dtype lacks).
"""
import json, os, types
import numpy as np

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cupy_api.json')) as _f:
    _API = json.load(_f)
_CUPY = _API['cupy_version']
_NAMES = {m: frozenset(ns) for m, ns in _API['modules'].items()}
_SORTS = {'sort', 'argsort'}
_NO_DTYPES = 'OSUVMm'  # object, bytes, str, void, datetime64, timedelta64: CuPy has none of them
_NO_LONG = {np.dtype(np.longdouble), np.dtype(np.clongdouble)} - {np.dtype('f8'), np.dtype('c16')}


def _lacks_dtype(dt): return dt.kind in _NO_DTYPES or dt in _NO_LONG


def _lacks(what): return f"stand-in device: CuPy {_CUPY} has no {what}"


def _check(xs):
    for x in xs:
        if isinstance(x, (list, tuple)): _check(x)
        elif isinstance(x, np.ndarray) and not isinstance(x, ndarray):
            raise TypeError("Unsupported type <class 'numpy.ndarray'> (stand-in device: a NumPy "
                            "array met a device array)")


def _check_kw(qual, args, kw):
    "Refuse, as CuPy's `qual` does, a keyword it does not take and a sort kind it lacks."
    sig = _API['signatures'].get(qual)
    if sig is not None and (not sig['varkw'] or 'kwargs' in sig):
        bad = sorted(set(kw) - set(sig['params']) - set(sig.get('kwargs', ())))
        if bad: raise TypeError(f"{qual}() got an unexpected keyword argument '{bad[0]}' "
                                f"({_lacks('such keyword')})")
    if qual.rsplit('.', 1)[-1] in _SORTS:
        at = 1 if qual.startswith('cupy.ndarray.') else 2  # kind's place after `self`, or `a, axis`
        kind = kw.get('kind', args[at] if len(args) > at else None)
        if kind not in _API['sort_kinds']:
            raise ValueError(f"kind can only be None or 'stable' ({_lacks(f'sort kind {kind!r}')})")


def _base(x):
    if isinstance(x, ndarray): return x.view(np.ndarray)
    if isinstance(x, (list, tuple)): return type(x)(_base(v) for v in x)
    if isinstance(x, dict): return {k: _base(v) for k, v in x.items()}
    return x


def _dev(r):
    if isinstance(r, np.ndarray) and _lacks_dtype(r.dtype):
        raise TypeError(f"{_lacks('dtype ' + str(r.dtype))} (a device array cannot hold it)")
    if isinstance(r, np.ndarray) and not isinstance(r, ndarray): return r.view(ndarray)
    if isinstance(r, np.generic): return np.asarray(r).view(ndarray)
    if isinstance(r, tuple): return tuple(_dev(v) for v in r)
    if isinstance(r, list): return [_dev(v) for v in r]
    return r


class _Device:
    id = 0
    def __enter__(self): return self
    def __exit__(self, *a): return False


def _ufunc_check(name, method, kw):
    "Refuse, as CuPy does, a ufunc it lacks, a method of it that it lacks, and keywords it refuses."
    u = _API['ufuncs'].get(name)
    if u is None:
        raise TypeError(f"operand type(s) all returned NotImplemented from __array_ufunc__ "
                        f"({_lacks('ufunc numpy.' + name)})")
    if 'other' in u:  # a generalised ufunc (`matmul`): its methods are checked, not its keywords
        if method != '__call__' and method not in u['methods']:
            raise AttributeError(f"'{u['other']}' object has no attribute '{method}' "
                                 f"({_lacks(f'numpy.{name}.{method}')})")
    elif method == '__call__':
        bad = {k: v for k, v in kw.items() if k not in _API['ufunc_keywords']}
        if bad: raise TypeError(f"Wrong arguments {bad} ({_lacks('such keyword')})")
    elif method not in u['methods']:
        raise NotImplementedError(f"`cupy_{name}.{method}` is not supported yet "
                                  f"({_lacks(f'numpy.{name}.{method}')})")
    else: _check_kw(f'cupy.ufunc.{method}', (), kw)


class ndarray(np.ndarray):
    "An array on the stand-in device."
    @property
    def device(self): return _Device()

    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        _check(inputs); _check(kw.get('out', ()))
        _ufunc_check(ufunc.__name__, method, kw)
        if 'out' in kw: kw['out'] = _base(kw['out'])
        return _dev(getattr(ufunc, method)(*_base(inputs), **kw))

    def __array_function__(self, func, types_, args, kw):
        _check(args); _check(list(kw.values()))
        mod = 'cupy' + func.__module__[len('numpy'):]  # numpy.linalg.svd -> cupy.linalg.svd
        name = func.__name__
        if name not in _NAMES.get(mod, ()) or mod == 'cupy' and name in _API['numpy_aliases']:
            # CuPy's __array_function__ returns NotImplemented, so NumPy raises this TypeError
            raise TypeError(f"no implementation found for '{func.__module__}.{name}' on types that "
                            f"implement __array_function__ ({_lacks(f'{mod}.{name}')})")
        _check_kw(f'{mod}.{name}', args, kw)
        return _dev(func(*_base(args), **_base(kw)))

    def get(self): return self.view(np.ndarray).copy()

    # CuPy tells where its data lies through the CUDA array interface, and has no NumPy interface
    @property
    def __cuda_array_interface__(self):
        return dict(np.ndarray.__array_interface__.__get__(self), version=3)
    @property
    def __array_interface__(self):
        raise AttributeError(f"'cupy.ndarray' object has no attribute '__array_interface__' "
                             f"({_lacks('ndarray.__array_interface__')})")

    # NumPy returns scalars (not 0-d arrays) from these; CuPy returns 0-d device arrays
    def __getitem__(self, key): return _dev(super().__getitem__(_base(key)))
    def argmax(self, *a, **kw):
        _check_kw('cupy.ndarray.argmax', a, kw)
        return _dev(self.view(np.ndarray).argmax(*a, **kw))
    def argmin(self, *a, **kw):
        _check_kw('cupy.ndarray.argmin', a, kw)
        return _dev(self.view(np.ndarray).argmin(*a, **kw))
    def nonzero(self): return _dev(self.view(np.ndarray).nonzero())

    def tolist(self): return self.view(np.ndarray).tolist()

    def item(self, *a): return self.view(np.ndarray).item(*a)


def _method(name):
    "`ndarray.name` as CuPy has it: NumPy's method on the host view, CuPy's keywords only."
    f, qual = getattr(np.ndarray, name), f'cupy.ndarray.{name}'
    def m(self, *args, **kw):
        _check(args); _check(list(kw.values()))
        _check_kw(qual, args, kw)
        if name in ('sort', 'partition') and not self.flags.c_contiguous:  # CuPy sorts in place
            raise NotImplementedError(  # only C-contiguous data (cupy/_core/_routines_sorting.pyx)
                f"Sorting non-contiguous array is not supported. ({_lacks('such sort')})")
        return _dev(f(self.view(np.ndarray), *_base(args), **_base(kw)))
    m.__name__ = m.__qualname__ = name
    return m


def _absent(name):
    "An `ndarray` attribute CuPy lacks."
    def get(self): raise AttributeError(f"'cupy.ndarray' object has no attribute '{name}' "
                                        f"({_lacks('ndarray.' + name)})")
    return property(get)


for _n in dir(np.ndarray):
    if _n.startswith('_') or _n in vars(ndarray) or _n == 'view': continue
    if _n not in _NAMES['cupy.ndarray']: setattr(ndarray, _n, _absent(_n))
    elif callable(getattr(np.ndarray, _n)) and not isinstance(getattr(np.ndarray, _n), type):
        setattr(ndarray, _n, _method(_n))


def asarray(a, dtype=None):
    if isinstance(a, ndarray): return a if dtype is None else a.astype(dtype, copy=False)
    return _dev(np.array(a, dtype=dtype))


def array(a, dtype=None, copy=True, order='K'):
    a = a.view(np.ndarray) if isinstance(a, ndarray) else a
    return _dev(np.array(a, dtype=dtype, copy=True, order=order))


def asnumpy(a): return a.view(np.ndarray).copy() if isinstance(a, ndarray) else np.asarray(a)


def get_array_module(*xs): return module


class _Ufunc:
    "A NumPy ufunc as CuPy has it: methods, keywords and results checked, results on the device."
    def __init__(self, u): self._u, self.__name__ = u, u.__name__
    def __getattr__(self, n):
        if n in ('reduce', 'accumulate', 'reduceat', 'outer', 'at'):
            _ufunc_check(self.__name__, n, {})
            return _wrapped(f'cupy.ufunc.{n}', getattr(self._u, n))
        return getattr(self._u, n)
    def __call__(self, *args, **kw):
        _ufunc_check(self.__name__, '__call__', kw)
        return _dev(self._u(*args, **kw))


def _wrapped(qual, f):
    def g(*args, **kw):
        _check_kw(qual, args, kw)
        return _dev(f(*args, **kw))
    g.__name__ = getattr(f, '__name__', qual)
    return g


def _lookup(mod, np_mod, name):
    "`name` of CuPy's module `mod`, made of NumPy's `np_mod`: refused where CuPy lacks it."
    if name not in _NAMES[mod]:
        raise AttributeError(f"module '{mod}' has no attribute '{name}' "
                             f"({_lacks('numpy' + mod[len('cupy'):] + '.' + name)})")
    f = getattr(np_mod, name)
    if isinstance(f, np.ufunc): return _Ufunc(f)
    return _wrapped(f'{mod}.{name}', f) if callable(f) and not isinstance(f, type) else f


class _Namespace:
    "A CuPy submodule on the stand-in: NumPy's of the names CuPy has, the others refused."
    def __init__(self, mod, np_mod, **own):
        self._mod, self._np = mod, np_mod
        self.__dict__.update(own)
    def __getattr__(self, name):
        if name.startswith('__'): raise AttributeError(name)
        return _lookup(self._mod, self._np, name)


_LINALG = {'linalg': 'ignore'}  # cupyx.errstate's: CuPy reads cuSOLVER's status only if asked


class _errstate:
    "`cupyx.errstate`: with `linalg='raise'`, CuPy's linear algebra raises LinAlgError on failure."
    def __init__(self, *, divide=None, over=None, under=None, invalid=None, linalg=None):
        self.linalg = linalg
    def __enter__(self):
        self.saved = _LINALG['linalg']
        if self.linalg is not None: _LINALG['linalg'] = self.linalg
    def __exit__(self, *a): _LINALG['linalg'] = self.saved


def _silent(f, shape):
    """CuPy's `linalg.f`: where NumPy's raises LinAlgError (a singular matrix, one not
    positive-definite), CuPy returns what cuSOLVER left, unchecked, unless `cupyx.errstate` asks
    (`cupy/linalg/_util.py`): here NaNs of the result's shape (`shape(*args)`)."""
    def g(*args, **kw):
        try: return f(*args, **kw)
        except np.linalg.LinAlgError:
            if _LINALG['linalg'] == 'raise': raise
            a = _base(args[0])
            return _dev(np.full(shape(*_base(args)), np.nan, np.result_type(a.dtype, np.float32)))
    return g


cuda = types.SimpleNamespace(Device=lambda i=0: _Device(),
                             runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))


def _float(dtype):
    "cuRAND's floating types: CuPy draws float32 or float64 and refuses the others."
    if np.dtype(dtype).char not in 'fd':
        raise TypeError(f"cupy.random only supports float32 and float64 ({_lacks('other dtype')})")
    return np.dtype(dtype)


def _randint(r, low, high=None, size=None, dtype=int):
    if high is None: low, high = 0, low
    if low >= high: raise ValueError('low >= high')
    info = np.iinfo(dtype)
    if low < info.min or high - 1 > info.max:
        raise ValueError(f"{'low' if low < info.min else 'high'} is out of bounds for "
                         f"{np.dtype(dtype).name}")
    return r.integers(low, high, size, dtype=np.int64 if high - 1 <= 2 ** 63 - 1 else np.uint64
                      ).astype(dtype)


_DRAWS = {  # CuPy's `RandomState` methods nbtorch may call, their defaults as CuPy's
    'random_sample': lambda r, size=None, dtype=float: r.random(size, _float(dtype)),
    'standard_normal': lambda r, size=None, dtype=float: r.standard_normal(size, _float(dtype)),
    'normal': lambda r, loc=0., scale=1., size=None, dtype=float:
        (r.standard_normal(size, _float(dtype)) * scale + loc).astype(dtype),
    'uniform': lambda r, low=0., high=1., size=None, dtype=float:
        (low + (high - low) * r.random(size, _float(dtype))).astype(dtype),
    'lognormal': lambda r, mean=0., sigma=1., size=None, dtype=float:
        np.exp(r.standard_normal(size, _float(dtype)) * sigma + mean).astype(dtype),
    'standard_exponential': lambda r, size=None, dtype=float:
        r.standard_exponential(size, _float(dtype)),
    'standard_cauchy': lambda r, size=None, dtype=float:
        np.tan(np.pi * (r.random(size, _float(dtype)) - .5)).astype(dtype),
    'geometric': lambda r, p, size=None, dtype='l': r.geometric(_base(p), size).astype(dtype),
    'randint': _randint,
    'permutation': lambda r, a: r.permutation(a) if isinstance(a, int) else a[r.permutation(len(a))],
}


class RandomState:
    """`cupy.random.RandomState` on the stand-in: NumPy's generator underneath, CuPy's methods,
    keywords and dtypes (cuRAND's floats are float32 or float64), results on the device."""
    def __init__(self, seed=None): self.seed(seed)
    def seed(self, seed=None): self._r = np.random.default_rng(seed)
    def __getattr__(self, name):
        if name.startswith('_'): raise AttributeError(name)
        qual = f'cupy.random.{name}'
        if name not in _NAMES['cupy.random'] or qual not in _API['signatures']:
            raise AttributeError(f"'RandomState' object has no attribute '{name}' "
                                 f"({_lacks('RandomState.' + name)})")
        if name not in _DRAWS: raise NotImplementedError(f"stand-in: RandomState.{name} not modelled")
        params = _API['signatures'][qual]['params']
        def draw(*args, **kw):
            _check_kw(qual, args, kw)
            if len(args) > len(params):
                raise TypeError(f"{name}() takes at most {len(params)} arguments ({len(args)} given)")
            return _dev(_DRAWS[name](self._r, *args, **kw))
        return draw


_RANDOM_STATE = RandomState()  # one device, one generator (CuPy keeps one per device)
random = types.SimpleNamespace(RandomState=RandomState, get_random_state=lambda: _RANDOM_STATE,
                               seed=lambda seed=None: _RANDOM_STATE.seed(seed))
linalg = _Namespace('cupy.linalg', np.linalg)
linalg.inv = _silent(_lookup('cupy.linalg', np.linalg, 'inv'), lambda a: a.shape)
linalg.cholesky = _silent(_lookup('cupy.linalg', np.linalg, 'cholesky'), lambda a: a.shape)
linalg.solve = _silent(_lookup('cupy.linalg', np.linalg, 'solve'),
                       lambda a, b: np.linalg.solve(np.eye(a.shape[-1]) + 0 * a, b).shape)
fft = _Namespace('cupy.fft', np.fft)
lib = types.SimpleNamespace(stride_tricks=_Namespace(
    'cupy.lib.stride_tricks', np.lib.stride_tricks,
    as_strided=lambda x, shape=None, strides=None: _dev(np.lib.stride_tricks.as_strided(
        _base(x), shape, strides))))


def __getattr__(name):
    if name.startswith('__'): raise AttributeError(name)
    return _lookup('cupy', np, name)


def _scatter_add(a, index, values):
    _check([values])
    np.add.at(a.view(np.ndarray), _base(index), _base(values))


class _Special:
    "`cupyx.scipy.special`'s stand-in: SciPy's functions, refusing NumPy arrays as CuPy's do."
    __name__ = 'cupyx.scipy.special'
    def __getattr__(self, name):
        import scipy.special
        if name.startswith('__'): raise AttributeError(name)
        if name not in _NAMES['cupyx.scipy.special']:
            raise AttributeError(f"module 'cupyx.scipy.special' has no attribute '{name}' "
                                 f"({_lacks('scipy.special.' + name)})")
        f = getattr(scipy.special, name)
        def g(*args, **kw):
            _check(args)
            return _dev(f(*_base(args), **kw))
        return g


import sys
module = sys.modules[__name__]
extras = types.SimpleNamespace(scatter_add=_scatter_add, scipy=types.SimpleNamespace(special=_Special()))
extras.errstate = _errstate


class _Stream:
    "The stand-in's CUDA stream: there is one, and work on it is done when a call returns."
    ptr = 0
    def synchronize(self): pass


class _NcclCommunicator:
    """`cupy.cuda.nccl.NcclCommunicator` for the stand-in device: the same calls, on the addresses
    of stand-in (host) arrays, carried out over mpi4py. Every member must make one, as every rank of
    an NCCL communicator must; `calls` counts what ran, so tests see the path taken."""
    calls = {}

    def __init__(self, ndev, commId, rank):
        from mpi4py import MPI
        assert len(commId) == 128, "an NCCL unique id is 128 bytes"
        world = MPI.COMM_WORLD
        import os, shutil, tempfile
        uid = bytes(b % 256 for b in commId).hex()[:64]
        d = os.path.join(tempfile.gettempdir(), f'standin-nccl-{uid}')
        group = world.Get_group().Incl(_rendezvous(d, ndev, rank, world.Get_rank()))
        self._comm = world.Create_group(group)  # collective over the members only, as NCCL's init
        group.Free()
        if rank == 0: shutil.rmtree(d, ignore_errors=True)  # every member has read it: it is in
        assert (self._comm.Get_size(), self._comm.Get_rank()) == (ndev, rank)
        self.ndev, self.rank = ndev, rank

    def _count(self, name): _NcclCommunicator.calls[name] = _NcclCommunicator.calls.get(name, 0) + 1

    @staticmethod
    def _at(ptr, count, datatype):
        "The host array of `count` elements of NCCL type `datatype` at address `ptr`."
        import ctypes
        dt = np.dtype(_NCCL_DTYPES[datatype])
        return np.frombuffer((ctypes.c_byte * (count * dt.itemsize)).from_address(ptr), dt)

    def allReduce(self, sendbuf, recvbuf, count, datatype, op, stream):
        self._count('allReduce')
        parts = self._comm.allgather(self._at(sendbuf, count, datatype).copy())
        self._at(recvbuf, count, datatype)[...] = _NCCL_REDUCE[op](np.stack(parts))

    def reduce(self, sendbuf, recvbuf, count, datatype, op, root, stream):
        self._count('reduce')
        parts = self._comm.gather(self._at(sendbuf, count, datatype).copy(), root)
        if self.rank == root:
            self._at(recvbuf, count, datatype)[...] = _NCCL_REDUCE[op](np.stack(parts))

    def broadcast(self, sendbuff, recvbuff, count, datatype, root, stream):
        self._count('broadcast')
        mine = self._at(sendbuff, count, datatype).copy() if self.rank == root else None
        self._at(recvbuff, count, datatype)[...] = self._comm.bcast(mine, root)

    def bcast(self, buff, count, datatype, root, stream):
        self.broadcast(buff, buff, count, datatype, root, stream)

    def allGather(self, sendbuf, recvbuf, count, datatype, stream):
        self._count('allGather')
        parts = self._comm.allgather(self._at(sendbuf, count, datatype).copy())
        self._at(recvbuf, count * self.ndev, datatype)[...] = np.concatenate(parts)

    def reduceScatter(self, sendbuf, recvbuf, recvcount, datatype, op, stream):
        self._count('reduceScatter')
        parts = self._comm.allgather(self._at(sendbuf, recvcount * self.ndev, datatype).copy())
        total = _NCCL_REDUCE[op](np.stack(parts))
        self._at(recvbuf, recvcount, datatype)[...] = total[self.rank * recvcount:][:recvcount]

    def send(self, sendbuf, count, datatype, peer, stream):
        self._count('send')
        self._comm.send(self._at(sendbuf, count, datatype).copy(), peer, tag=7)

    def recv(self, recvbuf, count, datatype, peer, stream):
        self._count('recv')
        self._at(recvbuf, count, datatype)[...] = self._comm.recv(source=peer, tag=7)

    def destroy(self):
        if self._comm is not None: self._comm.Free(); self._comm = None
    abort = destroy
    def rank_id(self): return self.rank
    def size(self): return self.ndev
    def device_id(self): return 0


_NCCL_DTYPES = {0: np.int8, 1: np.uint8, 2: np.int32, 3: np.uint32, 4: np.int64, 5: np.uint64,
                6: np.float16, 7: np.float32, 8: np.float64}
_NCCL_REDUCE = {0: lambda a: a.sum(0, dtype=a.dtype), 1: lambda a: a.prod(0, dtype=a.dtype),
                2: lambda a: a.max(0), 3: lambda a: a.min(0),
                4: lambda a: a.mean(0).astype(a.dtype)}


def _rendezvous(d, ndev, rank, world_rank, wait_s=60):
    "The world ranks of the `ndev` members of a communicator, met through files in `d`."
    import os, time
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f'{rank}.tmp'), 'w') as f: f.write(str(world_rank))
    os.replace(os.path.join(d, f'{rank}.tmp'), os.path.join(d, str(rank)))  # seen whole or not
    t = time.monotonic()
    while not all(os.path.exists(os.path.join(d, str(i))) for i in range(ndev)):
        if time.monotonic() - t > wait_s:
            raise RuntimeError(f"stand-in NCCL: {ndev} ranks never met")
        time.sleep(0.01)
    return [int(open(os.path.join(d, str(i))).read()) for i in range(ndev)]


def _get_unique_id():
    import os
    return tuple(os.urandom(128))


nccl = types.SimpleNamespace(NcclCommunicator=_NcclCommunicator, get_unique_id=_get_unique_id,
                             get_version=lambda: 0, groupStart=lambda: None, groupEnd=lambda: None,
                             NCCL_SUM=0, NCCL_PROD=1, NCCL_MAX=2, NCCL_MIN=3, NCCL_AVG=4,
                             **{f'NCCL_{np.dtype(t).name.upper()}': k
                                for k, t in _NCCL_DTYPES.items()})
cuda.nccl = nccl
cuda.get_current_stream = lambda: _Stream()


# ---- Device-to-host transfers: counted, as each one synchronises a real GPU ----------------------
# On a GPU, every read of device data by the host (`float(x)`, `x.item()`, `if x:`, `x.get()`,
# `cupy.asnumpy(x)`, printing) waits for all queued kernels, then copies. `transfers()` counts them:
#     with standin.transfers() as t: step()
#     assert t.count == 0, t.log
# Each entry of `t.log` names the path taken, the shape, the bytes, and the nbtorch line that asked.
import contextlib as _contextlib
import functools as _functools


class _Transfers:
    """What a `transfers()` block saw: `count` reads by the host, `nbytes` bytes copied, `log` each;
    and the other way, `uploads` copies of host data to the device (`cupy.asarray(host_array)`), of
    `upload_bytes` bytes, `up_log` each."""
    def __init__(self):
        self.count, self.nbytes, self.log = 0, 0, []
        self.uploads, self.upload_bytes, self.up_log = 0, 0, []
    def __repr__(self):
        lines = [f'{k} {s} {n}B  at {w}' for k, s, n, w in self.log + self.up_log]
        return (f'<{self.count} transfers, {self.nbytes} bytes; {self.uploads} uploads, '
                f'{self.upload_bytes} bytes>' + ''.join('\n  ' + l for l in lines))


_watching = []  # the open `transfers()` blocks
_inside = [0]  # > 0 while a counted read runs (float() calls item(): one transfer, not two)


def _caller():
    """`file:line function` of the first frame outside this file, NumPy and nbtorch's mover
    (cuda.py), then the first one outside tensor.py when that was it (`x.item()`'s caller)."""
    import sys, os
    # (cuda.py's reader of pending GPU checks is named: its read shares the wait of the one after it)
    skip = lambda n, fn: (n == __file__ or f'{os.sep}numpy{os.sep}' in n or 'contextlib' in n
                          or n.endswith(f'nbtorch{os.sep}cuda.py') and fn != '_raise_pending')
    at = lambda f: f'{os.path.basename(f.f_code.co_filename)}:{f.f_lineno} {f.f_code.co_name}'
    f = sys._getframe(2)
    while f is not None and skip(f.f_code.co_filename, f.f_code.co_name): f = f.f_back
    if f is None: return '?'
    where, tensor_py = at(f), f'nbtorch{os.sep}tensor.py'
    if not f.f_code.co_filename.endswith(tensor_py): return where
    while f is not None and f.f_code.co_filename.endswith(tensor_py): f = f.f_back
    return where + (f' < {at(f)}' if f is not None else '')


def _record(kind, a, nbytes=0):
    "Count a read of `a` (of `nbytes` when `a` is no array) in every open `transfers()` block."
    if not _watching: return
    nbytes = a.nbytes if isinstance(a, np.ndarray) else nbytes
    where = _caller()
    for t in _watching:
        t.count += 1; t.nbytes += nbytes
        t.log.append((kind, getattr(a, 'shape', None), nbytes, where))


def _counted(kind, f):
    "`f(a, ...)`, counted as one transfer when `a` is device data and no outer read counted it."
    @_functools.wraps(f)
    def g(a, *args, **kw):
        if _inside[0] or not isinstance(a, ndarray): return f(a, *args, **kw)
        _record(kind, a)
        _inside[0] += 1
        try: return f(a, *args, **kw)
        finally: _inside[0] -= 1
    return g


def _no_index(self):
    "CuPy's arrays have no `__index__`: one used as a Python index or size is a TypeError."
    raise TypeError(f"'cupy.ndarray' object cannot be interpreted as an integer "
                    f"({_lacks('ndarray.__index__')})")


ndarray.__index__ = _no_index


# `v in a`: NumPy's reduces with logical_or, which CuPy's ufunc lacks; CuPy's compares on the device
ndarray.__contains__ = lambda self, v: bool((self.view(np.ndarray) == _base(v)).any())


# every method through which the host reads a device array (CuPy's `__repr__`, `__str__`,
# `__format__` and pickling copy the whole array to the host, as `get()` does)
for _name in ['get', 'item', 'tolist', 'tobytes', '__float__', '__int__', '__bool__',
              '__complex__', '__repr__', '__str__', '__format__', '__reduce__', '__reduce_ex__',
              '__array__', '__contains__']:
    setattr(ndarray, _name, _counted(_name, getattr(ndarray, _name)))
asnumpy = _counted('asnumpy', asnumpy)


# Reads the host makes without copying data: a result whose size depends on the values (a boolean
# mask's selection, nonzero, unique) makes CuPy read that size first, a synchronisation as well
# (CuPy's own tests call boolean indexing one). Counted as `sync:<what>`, the 8 bytes of a size.
def _has_mask(key):
    if isinstance(key, ndarray): return key.dtype == np.bool_ and key.ndim > 0
    return isinstance(key, tuple) and any(_has_mask(k) for k in key)


def _sizing(kind, f, when):
    @_functools.wraps(f)
    def g(*args, **kw):
        if _watching and not _inside[0] and when(*args, **kw):
            _record(kind, None, 8)
        return f(*args, **kw)
    return g


ndarray.__getitem__ = _sizing('sync:mask', ndarray.__getitem__, lambda a, key: _has_mask(key))
ndarray.__setitem__ = _sizing('sync:mask', ndarray.__setitem__, lambda a, key, v: _has_mask(key))
ndarray.nonzero = _sizing('sync:nonzero', ndarray.nonzero, lambda a: True)
_SIZED = {np.nonzero: 'nonzero', np.argwhere: 'argwhere', np.flatnonzero: 'flatnonzero',
          np.unique: 'unique', np.compress: 'compress', np.extract: 'extract'}
_array_function = ndarray.__array_function__


def _array_function_sized(self, func, types_, args, kw):
    kind = _SIZED.get(func) or ('where' if func is np.where and len(args) + len(kw) == 1 else None)
    if kind and _watching and not _inside[0]:
        _record(f'sync:{kind}', None, 8)
    return _array_function(self, func, types_, args, kw)


ndarray.__array_function__ = _array_function_sized


def _holds_device(a):
    if isinstance(a, ndarray): return True
    return isinstance(a, (list, tuple)) and any(_holds_device(v) for v in a)


def _implicit(name, f):
    """NumPy's `name`, counting a call on device data: CuPy refuses that implicit conversion
    (TypeError), the stand-in (NumPy underneath) cannot, so it counts it as `np.<name>`."""
    def g(a, *args, **kw):
        import sys
        if (_watching and not _inside[0] and _holds_device(a)
                and sys._getframe(1).f_globals.get('__name__') != __name__):
            _record(f'np.{name}', a if isinstance(a, np.ndarray) else None)
        return f(a, *args, **kw)
    return g


_IMPLICIT = ['asarray', 'array', 'ascontiguousarray', 'asfortranarray']


@_contextlib.contextmanager
def transfers():
    "Count the device-to-host transfers made inside the block (see `_Transfers`)."
    t = _Transfers()
    outer = not _watching
    saved = {n: getattr(np, n) for n in _IMPLICIT}
    if outer:
        for n in _IMPLICIT: setattr(np, n, _implicit(n, saved[n]))
    _watching.append(t)
    try: yield t
    finally:
        _watching.remove(t)
        if outer:
            for n in _IMPLICIT: setattr(np, n, saved[n])


def _uploading(name, f):
    "CuPy's `name` (`asarray`, `array`), counting a copy of host data to the device."
    @_functools.wraps(f)
    def g(a, *args, **kw):
        if _watching and not isinstance(a, ndarray):
            n, where = np.array(a).nbytes, _caller()
            for t in _watching:
                t.uploads += 1; t.upload_bytes += n
                t.up_log.append((f'upload:{name}', getattr(a, 'shape', ()), n, where))
        return f(a, *args, **kw)
    return g


asarray, array = _uploading('asarray', asarray), _uploading('array', array)


# `cupyx.empty_pinned`: page-locked host memory on a GPU machine; the stand-in's is ordinary memory
extras.empty_pinned = lambda shape, dtype=float, order='C': np.empty(shape, dtype, order)


# `cupyx.scatter_add` adds with CUDA's atomicAdd, which exists for these dtypes only: CuPy raises
# TypeError for the others (int64, the small ints, bool, complex), and so does the stand-in
_ATOMIC_ADD = (np.int32, np.float16, np.float32, np.float64, np.uint32, np.uint64)


def _scatter_add_as_cupy(a, index, values):
    if not issubclass(a.dtype.type, _ATOMIC_ADD):
        raise TypeError('scatter_add only supports int32, float16, float32, float64, uint32, '
                        'uint64, as data type')
    _scatter_add(a, index, values)


extras.scatter_add = _scatter_add_as_cupy


# NumPy's mean, var and std of float16 end in `np.float16(...)`, a host scalar; CuPy's give 0-d
# device arrays, as the stand-in's now do
def _kept_on_device(f):
    @_functools.wraps(f)
    def g(*args, **kw): return _dev(f(*args, **kw))
    return g


for _name in ['mean', 'var', 'std']:
    setattr(ndarray, _name, _kept_on_device(getattr(ndarray, _name)))


# torch.cuda's housekeeping (nbtorch.cuda's synchronize, set_device, get_device_properties,
# memory_allocated, ...): the stand-in is one GPU whose work is done when a call returns, and whose
# memory pool is empty (its arrays live in the host's memory)
_Device.synchronize = lambda self: None
_Device.use = lambda self: None
cuda.runtime.getDevice = lambda: 0
cuda.runtime.getDeviceProperties = lambda i: {
    'name': b'stand-in GPU (tests/standin.py)', 'major': 9, 'minor': 0, 'totalGlobalMem': 2 ** 30,
    'multiProcessorCount': 1}


class _MemoryPool:
    "`cupy.get_default_memory_pool()`'s stand-in: nothing in use, nothing cached."
    def used_bytes(self): return 0
    def total_bytes(self): return 0
    def n_free_blocks(self): return 0
    def free_all_blocks(self): pass


_POOL = _MemoryPool()
def get_default_memory_pool(): return _POOL
