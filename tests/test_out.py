"""`out=` as PyTorch has it, measured with PyTorch's operator test database (OpInfo).

For every OpInfo entry nbtorch has, on its first samples, `out=` must behave as PyTorch's does:
- where PyTorch takes `out=` (`op.supports_out`), nbtorch writes the result into `out` and returns
  it (the tuple of them for several results), with the values of the call without `out`; resizes an
  empty `out` quietly and a full one of the wrong shape with PyTorch's warning; writes through a
  strided view into its base and nowhere else;
- for `out` of another dtype (float64, int64, bool, complex128; each result in turn), nbtorch writes
  where PyTorch writes and raises where PyTorch raises (the error's type may differ: PyTorch's
  `torch.cat` says TypeError, its kernels without that dtype NotImplementedError);
- with a gradient being recorded (the input or `out` requiring it), it raises where PyTorch raises;
- where PyTorch refuses `out=` (a TypeError: `torch.relu(x, out=y)`), nbtorch refuses it too, and
  where an entry says it has none but PyTorch's function takes it (`torch.sum`), nbtorch takes it.

`python tests/test_out.py [entry ...]` prints every disagreement."""
import sys, warnings
import pytest
import nbtorch
import test_opinfo as T
from helpers import torch

pytestmark = T.pytestmark

DTYPES = ('float64', 'int64', 'bool', 'complex128')
SAMPLES = 2
# Entries where nbtorch's one rule for `out=` differs from PyTorch's kernel-by-kernel behaviour (strict:
# an entry that starts to agree must leave): entry -> how
_KERNEL = ("PyTorch's rule follows the kernel the input reaches (inner of a 0-d tensor is mul, of "
           "matrices tensordot): strict or casting, autograd refused or recorded, sample by sample; "
           "nbtorch's follows the function")
_IN_OUT_DTYPE = ("given out=, PyTorch computes in out's dtype, and its kernel lacks bool, integer or "
                 "complex there (NotImplementedError); nbtorch computes, then casts")
_C2R = ("PyTorch's complex-to-real kernels refuse a complex out; nbtorch casts the real result into "
        "it, as can_cast allows")
DIFFER = {
    'bernoulli': "PyTorch draws straight into out's dtype (0 and 1 into int64 or bool, never complex); "
                 "nbtorch draws floats and casts them",
    'cumprod': _IN_OUT_DTYPE, 'cumsum': _IN_OUT_DTYPE, 'nanmean': _IN_OUT_DTYPE,
    'nansum': _IN_OUT_DTYPE, 'std': _IN_OUT_DTYPE, 'var': _IN_OUT_DTYPE,
    'fft.hfft': _C2R, 'fft.hfft2': _C2R, 'fft.hfftn': _C2R, 'fft.irfft': _C2R, 'fft.irfft2': _C2R,
    'fft.irfftn': _C2R,
    'inner': _KERNEL, 'linalg.matrix_power': _KERNEL, 'linalg.pinv': _KERNEL, 'norm.nuc': _KERNEL,
    'scatter': _KERNEL,
    'normal.number_mean': "PyTorch's normal(number, tensor) wants out of the result's dtype exactly; "
                          "nbtorch casts",
}

# Functions without a derivative in PyTorch, whose out= skips its autograd check: PyTorch writes
# into an `out` that requires grad, even a leaf; nbtorch refuses, as it does for every function
LEAF_WRITES = set('''
histc split_with_sizes_copy special.airy_ai special.bessel_j0 special.bessel_j1 special.bessel_y0
special.bessel_y1 special.chebyshev_polynomial_t special.chebyshev_polynomial_u
special.chebyshev_polynomial_v special.chebyshev_polynomial_w special.hermite_polynomial_h
special.hermite_polynomial_he special.laguerre_polynomial_l special.legendre_polynomial_p
special.modified_bessel_i0 special.modified_bessel_i1 special.modified_bessel_k0
special.modified_bessel_k1 special.scaled_modified_bessel_k0 special.scaled_modified_bessel_k1
special.shifted_chebyshev_polynomial_t special.shifted_chebyshev_polynomial_u
special.shifted_chebyshev_polynomial_v special.shifted_chebyshev_polynomial_w
special.spherical_bessel_j0
'''.split())


def _samples(op, n=SAMPLES):
    "The entry's first samples in its first dtype of float32, int64, float64, bool."
    for dt in (torch.float32, torch.int64, torch.float64, torch.bool):
        if dt in op.supported_dtypes('cpu'):
            try: return list(op.sample_inputs('cpu', dt))[:n]
            except Exception: return []
    return []


def _tensor_result(r):
    return isinstance(r, torch.Tensor) or (isinstance(r, (tuple, list)) and len(r) > 0
                                           and all(isinstance(v, torch.Tensor) for v in r))


def _zeros(lib, r, dtype=None, shape=None):
    "`lib`'s zero tensor like torch tensor `r` (or tuple), with another dtype or shape if given."
    def one(v, d, s):
        d = d or str(v.dtype).removeprefix('torch.')
        return lib.zeros(tuple(v.shape) if s is None else s, dtype=getattr(lib, d))
    if isinstance(r, torch.Tensor): return one(r, dtype, shape)
    return tuple(one(v, dtype, shape) for v in r)


def _call(fn, s, lib_input, args, kw, **more):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(lib_input, *args, **kw, **more)


def _outcome(fn, s, inp, args, kw, out):
    "'ok', or 'error' if `fn` raised given `out`."
    try: _call(fn, s, inp, args, kw, out=out)
    except Exception: return 'error'
    return 'ok'


def _nb_args(s):
    return T.to_nb(s.input), T.to_nb(s.args), T.to_nb(s.kwargs)


def _same(out, ref, path, values=True, close=False):
    """nbtorch `out` holds nbtorch `ref` (a tensor or tuple): shape, values (NaN equal); `close`:
    within float32's rounding, for a result computed in out's dtype (`torch.sum(x, 0, out=f64)`)."""
    outs, refs = (out, ref) if isinstance(ref, (tuple, list)) else ((out,), (ref,))
    bad = []
    for i, (o, r) in enumerate(zip(outs, refs)):
        r = r.to(o.dtype)
        if tuple(o.shape) != tuple(r.shape):
            bad.append(f'{path}[{i}]: shape {tuple(o.shape)} != {tuple(r.shape)}')
        elif values and not (nbtorch.allclose(o, r, 1e-5, 1e-6, equal_nan=True) if close
                             and (o.is_floating_point() or o.is_complex())
                             else nbtorch.equal(o, r) or bool((o.isnan() & r.isnan()).any())):
            bad.append(f'{path}[{i}]: values differ from the call without out=')
    return bad


def _writes(key, op, fn, s, random):
    "The disagreements of an entry that takes `out=`, on sample `s`."
    r = op(s.input, *s.args, **s.kwargs)
    if not _tensor_result(r): return []
    inp, args, kw = _nb_args(s)
    ref = _call(fn, s, inp, args, kw)
    bad, several = [], not isinstance(r, torch.Tensor)
    if _outcome(op, s, s.input, s.args, s.kwargs, _zeros(torch, r)) == 'error':  # as_tuple=True
        return [] if _outcome(fn, s, inp, args, kw, _zeros(nbtorch, r)) == 'error' else \
            ['out= taken where PyTorch refuses it for this sample']
    out = _zeros(nbtorch, r)
    got = _call(fn, s, inp, args, kw, out=out)
    same = all(a is b for a, b in zip(got, out)) if several else got is out
    if not same: bad.append(f'returned {type(got).__name__}, not out')
    bad += _same(out, ref, 'out', not random)
    for shape, warned in (((0,), False), (((r[0] if several else r).numel() + 3,), True)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            out = _zeros(nbtorch, r, shape=shape)
            fn(inp, *args, **kw, out=out)
        said = any('was resized' in str(x.message) for x in w)
        if said != warned: bad.append(f'out of shape {shape}: warned {said}, PyTorch {warned}')
        bad += _same(out, ref, f'out of shape {shape}', not random)
    if not several and r.ndim:
        base = nbtorch.zeros(tuple(r.shape) + (2,), dtype=getattr(nbtorch, str(r.dtype)[6:]))
        _call(fn, s, inp, args, kw, out=base[..., 0])
        bad += _same(base[..., 0], ref, 'strided out', not random)
        if base[..., 1].any(): bad.append('strided out: wrote outside the view')
    return bad


def _dtypes(op, fn, s, random):
    "Where nbtorch's casting into `out` differs from PyTorch's, on sample `s`."
    r = op(s.input, *s.args, **s.kwargs)
    if not _tensor_result(r): return []
    inp, args, kw = _nb_args(s)
    several, bad = not isinstance(r, torch.Tensor), []
    for i in range(len(r) if several else 1):
        for d in DTYPES:
            rs = list(r) if several else [r]
            if str(rs[i].dtype)[6:] == d: continue
            def outs(lib):
                o = [_zeros(lib, v) for v in rs]
                o[i] = _zeros(lib, rs[i], d)
                return tuple(o) if several else o[0]
            out_t, out = outs(torch), outs(nbtorch)
            theirs = _outcome(op, s, s.input, s.args, s.kwargs, out_t)
            ours = _outcome(fn, s, inp, args, kw, out)
            if ours != theirs: bad.append(f'result {i} into {d}: nbtorch {ours}, PyTorch {theirs}')
            elif ours == 'ok':
                T._TOL.update(T.TOL['float32'])  # computed in float32, the kernels' last ulp apart
                try: T.compare(out, out_t, f'result {i} into {d}', not random)
                except AssertionError as e: bad.append(' '.join(str(e).split())[:200])
                finally: T._TOL.clear()
    return bad


def _grads(op, fn, s):
    "Where nbtorch's refusal of `out=` under autograd differs from PyTorch's, on sample `s`."
    r = op(s.input, *s.args, **s.kwargs)
    if not _tensor_result(r): return []
    bad = []
    inp, args, kw = _nb_args(s)
    several = not isinstance(r, torch.Tensor)
    grad_out = lambda lib: tuple(o.requires_grad_() if o.is_floating_point() else o for o in _zeros(lib, r)) \
        if several else _zeros(lib, r).requires_grad_(r.is_floating_point())
    theirs = _outcome(op, s, s.input, s.args, s.kwargs, grad_out(torch))
    ours = _outcome(fn, s, inp, args, kw, grad_out(nbtorch))
    if ours != theirs and op.name not in LEAF_WRITES:
        bad.append(f'out requiring grad: nbtorch {ours}, PyTorch {theirs}')
    if op.supports_autograd and isinstance(s.input, torch.Tensor) and s.input.is_floating_point():
        theirs = _outcome(op, s, s.input.detach().requires_grad_(), s.args, s.kwargs, _zeros(torch, r))
        ours = _outcome(fn, s, inp.detach().requires_grad_(), args, kw, _zeros(nbtorch, r))
        if ours != theirs: bad.append(f'input requiring grad: nbtorch {ours}, PyTorch {theirs}')
    return bad


def _refusal(op, fn, s):
    "For an entry without `out=`: whether nbtorch takes or refuses it as PyTorch's function does."
    r = op(s.input, *s.args, **s.kwargs)
    if not _tensor_result(r): return []
    inp, args, kw = _nb_args(s)
    theirs = _outcome(op, s, s.input, s.args, s.kwargs, _zeros(torch, r))
    ours = _outcome(fn, s, inp, args, kw, _zeros(nbtorch, r))
    if (theirs == 'TypeError') != (ours == 'TypeError'):
        return [f'out= given: nbtorch {ours}, PyTorch {theirs}']
    return []


def disagreements(key):
    op = T.ENTRIES[key]
    fn = T.resolve(op)
    if fn is None: return []
    random = key in T.RANDOM or op.name in T.RANDOM or key in T.GAUGE or key in T.TIES
    bad = []
    for s in _samples(op):
        try:
            if op.supports_out:
                bad += _writes(key, op, fn, s, random) + _dtypes(op, fn, s, random)
                bad += _grads(op, fn, s)
            else: bad += _refusal(op, fn, s)
        except T.Unsupported: continue
        except Exception as e: bad.append(f'{type(e).__name__}: {str(e)[:200]}')
    return list(dict.fromkeys(bad))


KEYS = sorted(k for k in T.ENTRIES if k not in T.MISSING)


@pytest.mark.parametrize('key', KEYS)
def test_out(key):
    T.check_listed(key, disagreements(key), DIFFER)


if __name__ == '__main__':
    T.print_disagreements(disagreements, sys.argv[1:] or KEYS)


@pytest.mark.parametrize('call', [
    lambda t, x, o: t.sort(x, out=o),
    lambda t, x, o: t.max(x, 0, out=o),
    lambda t, x, o: t.aminmax(x, out=o),
])
def test_a_refused_tuple_writes_nothing(call):
    "Every `out` of a tuple is checked before any is written: a refused one leaves the rest alone."
    x = nbtorch.tensor([3., 1., 2.])
    first = nbtorch.zeros(3 if call(torch, torch.tensor([3., 1., 2.]), None)[0].ndim else ())
    with pytest.raises(RuntimeError):
        call(nbtorch, x, (first, nbtorch.zeros(first.shape, dtype=nbtorch.bool)))
    assert first.eq(0).all() and tuple(first.shape) in ((), (3,))


OVERLOADS = [  # PyTorch takes out= in some overloads of these functions and not in others
    lambda t, x: t.sum(x, out=t.zeros(0)),
    lambda t, x: t.sum(x, 0, out=t.zeros(0)),
    lambda t, x: t.sum(x, dim=None, out=t.zeros(0)),
    lambda t, x: t.sum(x, dtype=t.float64, out=t.zeros(0, dtype=t.float64)),
    lambda t, x: t.prod(x, out=t.zeros(0)),
    lambda t, x: t.prod(x, 0, out=t.zeros(0)),
    lambda t, x: t.median(x, out=(t.zeros(0), t.zeros(0, dtype=t.int64))),
    lambda t, x: t.median(x, 0, out=(t.zeros(0), t.zeros(0, dtype=t.int64))),
    lambda t, x: t.nanmedian(x, out=(t.zeros(0), t.zeros(0, dtype=t.int64))),
    lambda t, x: t.argsort(x, out=t.zeros(0, dtype=t.int64)),
    lambda t, x: t.argsort(x, descending=True, out=t.zeros(0, dtype=t.int64)),
    lambda t, x: t.argsort(x, stable=True, out=t.zeros(0, dtype=t.int64)),
    lambda t, x: t.argsort(x, stable=True, descending=True, out=t.zeros(0, dtype=t.int64)),
]


@pytest.mark.parametrize('call', OVERLOADS)
def test_out_follows_pytorchs_overloads(call):
    "`torch.sum(x, out=o)` is PyTorch's TypeError, `torch.sum(x, 0, out=o)` is written: the same here."
    x = [3., 1., 2.]
    try: ref = call(torch, torch.tensor(x))
    except TypeError as e:
        with pytest.raises(TypeError) as ours: call(nbtorch, nbtorch.tensor(x))
        assert str(e).split('\n')[0] == str(ours.value).split('\n')[0]
        return
    T.compare(call(nbtorch, nbtorch.tensor(x)), ref)
