"""PyTorch's harder inputs: OpInfo's `reference_inputs`, beyond the ordinary samples.

For 236 of the entries nbtorch has, OpInfo lists reference inputs on top of its ordinary samples:
extremal values (0, -0, ±inf, NaN, tiny and huge numbers, the poles of a function), every pair of them
for binary ops, big and non-contiguous tensors, broadcasting both ways, and operands of mixed dtypes.
`test_opinfo.py` checks the first samples of every entry; this file checks the rest of these, with the
same comparison (shape, dtype, values with NaN equal; for float64 and complex128 the gradient of a fixed
random cotangent), up to `PER_DTYPE` samples of at most `MAX_ELEMENTS` elements for each dtype.

An entry where PyTorch's result is a quirk of its kernels, not a value to match, is listed in `DIFFER`
with the reason (strict: an entry that starts to agree must leave it).

`python tests/test_opinfo_reference.py [entry ...]` prints every disagreement."""
import sys, warnings
import pytest
import test_opinfo as T
from helpers import torch

pytestmark = T.pytestmark

PER_DTYPE = 40
MAX_ELEMENTS = 5000

_NAN_LANES = ("PyTorch's gradient at a NaN input depends on where it lies: its vectorised loop (8 "
              "lanes with AVX2) gives 0 or NaN, its scalar tail passes the gradient on (a 9-element "
              "NaN input gets 0 x 8, then 1); nbtorch passes it on everywhere. The vector width is "
              "the CPU's, so on some CPUs a sample shows it and on others not: these entries may "
              "also agree (elu, celu and selu do with AVX-512)")
_COMPLEX_INF = ("at complex infinities PyTorch's gradient formulas give NaN (inf * 0 inside its complex "
                "products); nbtorch's give the limit")
_POLES = ("at the poles of digamma (0, -1, -2, ...) PyTorch's trigamma is a large finite number "
          "(6.6e32 at -1), nbtorch's inf")
_BESSEL = ("PyTorch's kernel is off by up to 5e-7 for |x| > 5 (bessel_j0(5.001): 3.8e-7, measured "
           "with mpmath); nbtorch keeps SciPy's values, right to 1e-16")
_ALPHA = ("PyTorch multiplies the second operand by alpha = 1 as a complex number: (1+2j) + "
          "(inf-inf j) is nan+nanj there, inf-inf j here")
_POLY_INF = "PyTorch's polygamma(n >= 1) at ±inf is NaN for some n; nbtorch's is the limit (0, ±inf)"
_I1_NAN = "PyTorch's gradient of i1 and i1e at a NaN input is 0.5 (its value at 0); nbtorch's NaN"
DIFFER = {
    'acos': _COMPLEX_INF, 'acosh': _COMPLEX_INF, 'asin': _COMPLEX_INF, 'asinh': _COMPLEX_INF,
    'add': _ALPHA, 'rsub': _ALPHA, 'sub': _ALPHA,
    'addcdiv': ("with operands of mixed dtypes PyTorch's gradient rounds value * tensor1 to tensor1's "
                "dtype (bfloat16: 0.2% off); nbtorch's is computed in the result's dtype"),
    'addcmul': ("with operands of mixed dtypes PyTorch's gradient rounds value * tensor1 to tensor1's "
                "dtype (bfloat16: 0.2% off); nbtorch's is computed in the result's dtype"),
    'clamp': ("PyTorch's backward fails where min or max broadcast the input to a bigger shape "
              "(output with shape [4, 4] doesn't match the broadcast shape [1, 4, 4])"),
    'digamma': _POLES,
    'igamma': "PyTorch's igamma(inf, nan) is 0 and igamma(nan, inf) 1; nbtorch's, as SciPy's, NaN",
    'igammac': "PyTorch's igammac(inf, nan) is 1 and igammac(nan, inf) 0; nbtorch's, as SciPy's, NaN",
    'narrow_copy': ("PyTorch's backward fails for a negative start (The size of tensor a (0) must "
                    "match the size of tensor b (10))"),
    'nn.functional.celu': _NAN_LANES, 'nn.functional.elu': _NAN_LANES,
    'nn.functional.hardshrink': _NAN_LANES, 'nn.functional.hardtanh': _NAN_LANES,
    'nn.functional.relu6': _NAN_LANES, 'nn.functional.selu': _NAN_LANES,
    'nn.functional.softshrink': _NAN_LANES,
    'polygamma.polygamma_n_0': _POLES, 'special.polygamma.special_polygamma_n_0': _POLES,
    'polygamma.polygamma_n_1': _POLY_INF, 'polygamma.polygamma_n_2': _POLY_INF,
    'polygamma.polygamma_n_3': _POLY_INF, 'polygamma.polygamma_n_4': _POLY_INF,
    'remainder': ("PyTorch has no derivative for remainder(number, tensor) (its backward raises); "
                  "nbtorch's is -floor(number / tensor), as for two tensors"),
    'pow': ("PyTorch's complex pow of a zero tensor by a zero tensor is nan+nanj (exp(0 * log 0)), "
            "by the number 0 it is 1; nbtorch's is 1 both ways, as NumPy's"),
    'signal.windows.kaiser': ("with beta = 100 in float32 both windows overflow i0 into NaN (inf / "
                              "inf), PyTorch's from 88.7 (its float32 exp), SciPy's from 91.9"),
    'special.airy_ai': ("PyTorch's airy_ai is off by up to 2e-6 near -2.2 (0.1328086 at -2.146; "
                        "mpmath: 0.1328064); nbtorch keeps SciPy's value"),
    'special.bessel_j0': _BESSEL, 'special.bessel_j1': _BESSEL, 'special.bessel_y0': _BESSEL,
    'special.i1': _I1_NAN, 'special.i1e': _I1_NAN,
    'special.zeta': "PyTorch's zeta(1e20, 1e20) is NaN; nbtorch's, as SciPy's, 0 (q ** -x underflows)",
}


def _unhooked(x):
    "A leaf for a view OpInfo made of a leaf under no_grad (PyTorch connects no gradient to it)."
    if isinstance(x, torch.Tensor) and x.requires_grad and x.is_leaf and x._base is not None:
        return x.detach().clone().requires_grad_()
    if isinstance(x, (list, tuple)) and not hasattr(x, '_fields'): return type(x)(map(_unhooked, x))
    return x


def _samples(op, dt, grad):
    "The reference inputs after the ordinary samples (checked by test_opinfo), up to `PER_DTYPE`."
    n, made = 0, enumerate(op.reference_inputs('cpu', getattr(torch, dt), requires_grad=grad))
    while True:
        try: i, s = next(made)
        except StopIteration: return
        except ValueError: return  # where's inputs: PyTorch cannot make a bool cond requiring grad
        if i < T.SAMPLES: continue
        if sum(t.numel() for t in T._tensors([s.input, s.args, s.kwargs])) > MAX_ELEMENTS: continue
        s.input, s.args = _unhooked(s.input), _unhooked(s.args)
        yield s
        n += 1
        if n == PER_DTYPE: return


def disagreements(key):
    "Every dtype's first disagreement of entry `key` on its reference inputs."
    op = T.ENTRIES[key]
    fn = T.resolve(op)
    supported = {str(d).removeprefix('torch.') for d in op.supported_dtypes('cpu')}
    complex_ok = T.family(key) != 'core' or key in T.COMPLEX_CORE
    bad = []
    for dt in [d for d in T.DTYPES if d in supported and (complex_ok or not d.startswith('complex'))]:
        grad = dt in T.GRAD_DTYPES and op.supports_autograd and key not in T.PYTORCH_GRAD_BUGS
        T._TOL.update(T.PYTORCH_VALUE_BUGS.get(key, ('', {}))[1])
        try:
            for s in _samples(op, dt, grad):
                no_grad = key in T.RANDOM_SAMPLES and T.RANDOM_SAMPLES[key](s)
                try: T.check_sample(fn, op.op, s, grad and not no_grad, True, key)
                except T.Unsupported: continue
                except Exception as e:
                    bad.append(f'{dt} {T._short(s)}: {type(e).__name__}: {str(e)[:300]}')
                    break
        finally: T._TOL.clear()
    return bad


KEYS = sorted(k for k, op in T.ENTRIES.items() if op.reference_inputs_func is not None
              and k not in T.MISSING and k not in T.RANDOM and op.name not in T.RANDOM)


@pytest.mark.parametrize('key', KEYS)
def test_reference_inputs(key):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        bad = disagreements(key)
        if not bad and DIFFER.get(key) is _NAN_LANES: return  # (the CPU's vector width decides)
        T.check_listed(key, bad, DIFFER)


if __name__ == '__main__':
    T.print_disagreements(disagreements, sys.argv[1:] or KEYS)
