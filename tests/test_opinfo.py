"""PyTorch's operator surface, measured with PyTorch's own operator test database (OpInfo).

For every OpInfo entry in scope, nbtorch's callable is found as a user would find it (`torch.<name>`,
dotted names, the Tensor method, the in-place method), each of PyTorch's sample inputs is converted to
nbtorch tensors value for value, and the results are compared: shape, dtype and values (NaN equal) for
float32, float64, int64 and bool where the entry supports them, and for float64 the gradient of the sum
of the outputs times a fixed random cotangent. An entry nbtorch lacks is an expected failure listed in
one place, `MISSING` (strict: an entry that starts to pass must leave the list), so that the list
shrinks visibly. A full run also writes `docs/parity.json`, the docs site's parity table.

`python tests/test_opinfo.py` prints the entries that are missing now, to paste into `MISSING`;
`python tests/test_opinfo.py KEY ...` checks those entries and prints every mismatch."""
import dis, functools, json, numbers, sys, types, warnings
from pathlib import Path
import numpy as np
import pytest
import nbtorch
from helpers import torch

try:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        from torch.testing._internal.common_methods_invocations import op_db
        from torch.testing._internal import common_utils
        from torch.testing._internal.opinfo import core as _core
    # PyTorch walks the whole call stack at every sample_inputs() call, to name the running test in
    # its own error messages (inspect.stack: most of this suite's time under pytest); not needed here
    common_utils.extract_test_fn = _core.extract_test_fn = lambda: None
except ImportError:  # no PyTorch, or no expecttest: the tests skip
    op_db = []

pytestmark = pytest.mark.skipif(not op_db, reason="PyTorch's OpInfo database (torch, expecttest)")

# Masked and sparse tensors, which nbtorch does not have, are out of scope, as are the ops that exist
# only to test PyTorch's internals. The rest is counted by family: torch.linalg, torch.fft,
# torch.special and torch.signal.windows (issue 14), and the core (everything else, issue 13).
OUT_OF_SCOPE = ('masked.', 'sparse.')
FAMILIES = ('linalg', 'fft', 'special', 'signal')


def _internal(name):
    parts = name.split('.')
    return (any(p.startswith('_') for p in parts) or name.startswith(('torch.ops.', 'jiterator_'))
            or name.endswith('_backward') or name.startswith('native_'))


ENTRIES = {op.name + ('.' + op.variant_test_name if op.variant_test_name else ''): op
           for op in op_db if not op.name.startswith(OUT_OF_SCOPE) and not _internal(op.name)}


def family(key):
    "The family an entry is counted in: linalg, fft, special, signal or core."
    head = key.split('.')[0]
    return head if head in FAMILIES else 'core'

# Ops whose values are random or uninitialised: only shape and dtype can be compared
RANDOM = {'bernoulli', 'cauchy', 'empty', 'empty_like', 'empty_permuted', 'empty_strided', 'exponential',
          'geometric', 'log_normal', 'multinomial', 'new_empty', 'new_empty_strided', 'normal',
          'normal.in_place', 'normal.number_mean', 'rand_like', 'randint', 'randint_like', 'randn',
          'randn_like', 'uniform', 'nn.functional.dropout', 'nn.functional.dropout2d',
          'nn.functional.dropout3d', 'nn.functional.alpha_dropout', 'nn.functional.feature_alpha_dropout',
          'nn.functional.rrelu', 'nn.functional.fractional_max_pool2d',
          'nn.functional.fractional_max_pool3d', 'torch.empty', 'poisson'}

# Samples whose values are random (dropout in training): shape and dtype only, no gradient; the entry's
# other samples are compared in full.
RANDOM_SAMPLES = {
    'nn.functional.scaled_dot_product_attention': lambda s: s.kwargs.get('dropout_p', 0) > 0,
    'nn.functional.multi_head_attention_forward':
        lambda s: s.kwargs.get('training', True) and len(s.args) > 9 and s.args[9] > 0,
}

# Ops that return the positions of values: where values tie, PyTorch's order among them is its
# sorting algorithm's (unstable std::sort, nth_element), which it does not promise. Their indices are
# checked to point at the right values; (argument position, default) of their `dim`.
TIES = {'sort': (0, -1), 'argsort': (0, -1), 'topk': (1, -1), 'kthvalue': (1, -1)}

# Where PyTorch's gradient is wrong, nbtorch gives the true derivative and only values are compared.
PYTORCH_GRAD_BUGS = {
    'as_strided_scatter': "PyTorch 2.13 sends the gradient of `input` to the region that `src` "
                          "overwrites, not to the rest (its formula was flagged as wrong when the op "
                          "was added, pytorch/pytorch#77128); tests/test_indexing.py pins nbtorch's",
}

# Where PyTorch's values are wrong, nbtorch keeps the true ones and the comparison allows PyTorch's
# measured error (the key's tolerances); tests/test_special.py pins nbtorch's values against mpmath.
PYTORCH_VALUE_BUGS = {
    'special.bessel_j0': ("PyTorch 2.13's J0 is off by up to 1.6e-7 for 4 < |x| < 25 (e.g. "
                          "-0.0068440327 at x = 5.5, where mpmath and SciPy give -0.0068438694)",
                          dict(rtol=1e-6, atol=1e-6)),
    'special.bessel_y1': ("PyTorch 2.13's Y1 is off by up to 3.7e-7 for 4 < x < 25 (x = 5.5)",
                          dict(rtol=1e-6, atol=1e-6)),
}
_TOL = {}  # the tolerances of the entry being checked, where PYTORCH_VALUE_BUGS gives some

# Matrix functions whose error is bounded normwise, not element by element: a small entry of a result
# with large ones carries the large ones' rounding error (float32 matrix_exp of a (5, 5, 5) sample:
# entries up to 9.3e4, where 0.148 is off by 0.05 in PyTorch and by 0.1 in nbtorch, against float64).
# Their absolute tolerance is the relative one times the result's largest entry.
NORMWISE = {'matrix_exp'}
_NORM = []  # [True] while such an entry is checked

# Ops whose outputs are defined only up to a sign or phase (eigenvectors, the randomised SVDs' vectors):
# values are compared after the sample's own output_process_fn_grad (PyTorch's: abs of the vectors,
# U V^H), as its gradients are.
GAUGE = {'linalg.eigh', 'linalg.eig', 'svd_lowrank', 'pca_lowrank'}

# Ops that read the memory around their input (as_strided): the sample is rebuilt on nbtorch over a
# copy of its whole storage, with the same offset and strides.
STORAGE = {'as_strided', 'as_strided_copy', 'as_strided_scatter'}

# The in-scope entries nbtorch lacks. Keep it sorted; remove an entry when its op arrives.
MISSING = {
    'chalf', 'hash_tensor', 'slice', 'to_sparse',
}

# Entries nbtorch has that still disagree with PyTorch on some sample (entry: what differs).
DISAGREE = {}


def check_listed(key, bad, listed):
    "Fail on `bad`, entry `key`'s disagreements with PyTorch, unless `listed` (a strict list) has it."
    if key in listed:
        if not bad: pytest.fail(f'{key} now agrees with PyTorch: remove it from the list')
        pytest.xfail(listed[key] if isinstance(listed, dict) else 'listed')
    assert not bad, f'{key}:\n  ' + '\n  '.join(bad)


def print_disagreements(disagreements, keys):
    "Print what `disagreements(key)` finds for each of `keys`; returns the keys that disagree."
    found = {k: disagreements(k) for k in keys}
    differ = [k for k in keys if found[k]]
    for k in differ: print(k, *found[k], sep='\n  ')
    print(f'{len(differ)} of {len(keys)} entries disagree')
    return differ


def _wrapped(keys):
    "Keys as lines of a set literal within 100 columns."
    lines, line = [], '   '
    for k in keys:
        item = f' {k!r},'
        if len(line) + len(item) > 100: lines.append(line); line = '   '
        line += item
    return '\n'.join(lines + [line]) + '\n'


DTYPES = ['float32', 'float64', 'int64', 'bool', 'complex64', 'complex128']  # those nbtorch has
GRAD_DTYPES = ('float64', 'complex128')
# Complex samples are checked for the linalg, fft, special and signal families, and for the core entries
# listed here, whose complex forward and (Wirtinger) gradient nbtorch implements.
COMPLEX_CORE = {
    'H', 'T', 'abs', 'acos', 'acosh', 'add', 'addbmm', 'addcdiv', 'addcmul', 'addmm',
    'addmm.decomposed', 'addmv', 'addr', 'alias_copy', 'all', 'allclose', 'angle', 'any',
    'argwhere', 'as_strided', 'as_strided.partial_views', 'as_strided_copy', 'as_strided_scatter',
    'asin', 'asinh', 'atan', 'atanh', 'atleast_1d', 'atleast_2d', 'atleast_3d', 'baddbmm',
    'bfloat16', 'block_diag', 'bmm', 'bool', 'broadcast_tensors', 'broadcast_to', 'byte',
    'cartesian_prod', 'cat', 'cdouble', 'cfloat', 'char', 'cholesky', 'cholesky_inverse',
    'cholesky_solve', 'chunk', 'clone', 'column_stack', 'combinations', 'complex', 'conj',
    'conj_physical', 'constant_pad_nd', 'contiguous', 'cos', 'cosh', 'count_nonzero', 'cross',
    'cumprod', 'cumsum', 'cumulative_trapezoid', 'diag', 'diag_embed', 'diagflat', 'diagonal',
    'diagonal_copy', 'diagonal_scatter', 'diff', 'dist', 'div.no_rounding_mode', 'dot', 'double',
    'dsplit', 'dstack', 'einsum', 'empty', 'empty_like', 'empty_permuted', 'empty_strided', 'eq',
    'equal', 'exp', 'exp2', 'expand', 'expand_as', 'expand_copy', 'expm1', 'eye', 'fill', 'flatten',
    'flip', 'fliplr', 'flipud', 'float', 'full', 'full_like', 'gather', 'geqrf', 'half', 'hsplit',
    'hstack', 'imag', 'index_add', 'index_copy', 'index_fill', 'index_put', 'index_select', 'inner',
    'int', 'isclose', 'isfinite', 'isinf', 'isnan', 'isreal', 'istft', 'item', 'kron', 'lerp',
    'linspace', 'linspace.tensor_overload', 'log', 'log10', 'log1p', 'log2',
    'log_softmax.with_dtype', 'logdet', 'logical_and', 'logical_not', 'logical_or', 'logical_xor',
    'logspace', 'logspace.tensor_overload', 'long', 'lu', 'lu_solve', 'lu_unpack', 'mH', 'mT',
    'masked_fill', 'masked_scatter', 'masked_select', 'matmul', 'matrix_exp', 'mean',
    'meshgrid.list_of_tensors', 'meshgrid.variadic_tensors', 'mm', 'movedim', 'mul', 'mv',
    'nan_to_num', 'nansum', 'narrow', 'narrow_copy', 'ne', 'neg', 'new_empty', 'new_empty_strided',
    'new_full', 'new_ones', 'new_zeros', 'nn.functional.channel_shuffle',
    'nn.functional.feature_alpha_dropout.without_train', 'nn.functional.l1_loss',
    'nn.functional.pad.circular', 'nn.functional.pad.constant', 'nn.functional.pad.reflect',
    'nn.functional.pad.replicate', 'nn.functional.pad.replicate_negative',
    'nn.functional.pixel_shuffle', 'nn.functional.pixel_unshuffle', 'nn.functional.rms_norm',
    'nn.functional.silu.complex', 'nn.functional.softmin.with_dtype', 'nn.functional.softsign',
    'nn.functional.tanhshrink', 'nn.functional.triplet_margin_loss',
    'nn.functional.triplet_margin_with_distance_loss', 'nn.functional.unfold', 'nonzero',
    'nonzero_static', 'norm', 'norm.fro', 'norm.inf', 'norm.nuc', 'ones', 'ones_like', 'ormqr',
    'outer', 'permute', 'permute_copy', 'pinverse', 'polar', 'positive', 'pow', 'prod', 'put', 'qr',
    'rand_like', 'randn', 'randn_like', 'ravel', 'real', 'reciprocal', 'renorm', 'repeat',
    'repeat_interleave', 'reshape', 'reshape_as', 'resize_', 'resize_as_', 'resolve_conj',
    'resolve_neg', 'roll', 'rot90', 'rsqrt', 'rsub', 'scalar_tensor', 'scatter', 'scatter_add',
    'select', 'select_scatter', 'sgn', 'short', 'sigmoid', 'sin', 'sinc', 'sinh', 'slice_scatter',
    'softmax.with_dtype', 'split', 'split.list_args', 'split_with_sizes', 'split_with_sizes_copy',
    'sqrt', 'square', 'squeeze', 'squeeze.multiple', 'squeeze_copy', 'stack', 'std', 'std.unbiased',
    'std_mean', 'std_mean.unbiased', 'stft', 'sub', 'sum', 'sum_to_size', 'svd', 't', 't_copy',
    'take', 'take_along_dim', 'tan', 'tanh', 'tensor_split', 'tensordot', 'tile', 'to', 'trace',
    'transpose', 'transpose_copy', 'trapezoid', 'trapz', 'triangular_solve', 'tril', 'triu',
    'true_divide', 'unbind', 'unbind_copy', 'unflatten', 'unfold', 'unfold_copy', 'unsafe_chunk',
    'unsafe_split', 'unsqueeze', 'unsqueeze_copy', 'var', 'var.unbiased', 'var_mean',
    'var_mean.unbiased', 'vdot', 'view', 'view_as', 'view_as_complex', 'view_as_real', 'view_copy',
    'vsplit', 'vstack', 'where', 'zero_', 'zeros', 'zeros_like',
}
SAMPLES = 6  # per entry and dtype: PyTorch's first samples cover the shapes; more only cost time
TOL = {'float32': dict(rtol=1e-4, atol=1e-5), 'float64': dict(rtol=1e-7, atol=1e-7),
       'complex64': dict(rtol=1e-4, atol=1e-5), 'complex128': dict(rtol=1e-7, atol=1e-7)}


class Unsupported(Exception):
    "A sample nbtorch cannot even be given (a dtype or argument type it does not have)."


# --- finding nbtorch's callable ---------------------------------------------------------------------

def _lookup(root, dotted):
    for p in dotted.split('.'):
        root = getattr(root, p, None)
        if root is None: return None
    return root


def _rebound(fn):
    "A Python function of OpInfo's (a lambda over torch) with `torch` meaning nbtorch."
    g = dict(fn.__globals__, torch=nbtorch, F=nbtorch.nn.functional)
    return types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__, fn.__closure__)


def resolve(op):
    "nbtorch's function for OpInfo `op`, or None if nbtorch lacks it."
    # a lambda of OpInfo's own, written in torch's terms (x.H, torch.polygamma(n, x), ...): run it on
    # nbtorch, since its arguments need not be in the order of the op it is named after
    if getattr(op.op, '__module__', '').startswith('torch.testing'):
        return _rebound(op.op) if _uses_only_present(op.op) else None
    fn = _lookup(nbtorch, op.name.removeprefix('torch.'))
    if fn is not None and not isinstance(fn, nbtorch.dtype): return fn  # torch.float is a dtype too
    if '.' not in op.name and hasattr(nbtorch.Tensor, op.name):  # a method only, such as x.float()
        return lambda x, *a, **k: getattr(x, op.name)(*a, **k)
    return None


def _names(code):
    "The dotted names `code` (and code it nests) reads from `torch`; the other attributes it reads."
    chains, attrs, chain = set(), set(), None
    for ins in dis.get_instructions(code):
        if ins.opname == 'LOAD_GLOBAL' and ins.argval == 'torch': chain = []
        elif ins.opname in ('LOAD_ATTR', 'LOAD_METHOD'):
            if chain is None: attrs.add(ins.argval)
            else: chain.append(ins.argval)
        else:
            if chain: chains.add('.'.join(chain))
            chain = None
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            more = _names(c)
            chains |= more[0]; attrs |= more[1]
    return chains, attrs


def _uses_only_present(fn):
    "True if every `torch.` name that `fn` uses, and every Tensor attribute, exists in nbtorch."
    chains, attrs = _names(fn.__code__)
    return (all(_lookup(nbtorch, c) is not None for c in chains)
            and all(hasattr(nbtorch.Tensor, a) for a in attrs if hasattr(torch.Tensor, a)))


def _method(op, inplace=False):
    "The Tensor method (or in-place method) name of `op`, if PyTorch has one."
    v = op.inplace_variant if inplace else op.method_variant
    return getattr(v, '__name__', None) if v is not None else None


# --- samples, converted -----------------------------------------------------------------------------

def to_nb(x, grad=False):
    "A torch object (tensor, dtype, device, size, or a container of them) as nbtorch's."
    if isinstance(x, torch.Tensor):
        name = str(x.dtype).removeprefix('torch.')
        if not hasattr(nbtorch, name) or x.layout != torch.strided: raise Unsupported(f'dtype {name}')
        v = x.detach().resolve_conj().resolve_neg()
        a = (v.float() if v.dtype == torch.bfloat16 else v).numpy().copy()  # NumPy has no bfloat16
        t = nbtorch.tensor(a, dtype=getattr(nbtorch, name))
        return t.requires_grad_() if grad and x.requires_grad else t
    if isinstance(x, torch.dtype):
        name = str(x).removeprefix('torch.')
        if not hasattr(nbtorch, name): raise Unsupported(f'dtype {name}')
        return getattr(nbtorch, name)
    if isinstance(x, torch.Size): return nbtorch.Size(x)
    if isinstance(x, torch.device): return nbtorch.device(str(x))
    if isinstance(x, torch.memory_format):
        name = str(x).removeprefix('torch.')
        if not hasattr(nbtorch, name): raise Unsupported(name)
        return getattr(nbtorch, name)
    if isinstance(x, tuple) and not hasattr(x, '_fields'): return tuple(to_nb(v, grad) for v in x)
    if isinstance(x, list): return [to_nb(v, grad) for v in x]
    if isinstance(x, dict): return {k: to_nb(v, grad) for k, v in x.items()}
    if isinstance(x, (numbers.Number, str, slice, type(None), type(Ellipsis))): return x
    raise Unsupported(type(x).__name__)


def _with_storage(x, grad=False):
    "Tensor `x` as a view, with its offset and strides, of a copy of its whole storage (see STORAGE)."
    n = x.untyped_storage().nbytes() // x.element_size()
    flat = to_nb(torch.as_strided(x.detach(), (n,), (1,), 0), False)
    if grad and x.requires_grad: flat.requires_grad_()
    return nbtorch.as_strided(flat, tuple(x.shape), x.stride(), x.storage_offset())


def _tensors(x):
    "The tensors in a (nested) result or argument list, in order."
    if isinstance(x, (torch.Tensor, nbtorch.Tensor)): return [x]
    if isinstance(x, (tuple, list)): return [t for v in x for t in _tensors(v)]
    if isinstance(x, dict): return [t for v in x.values() for t in _tensors(v)]
    return []


# --- comparing ---------------------------------------------------------------------------------------

def compare(ours, ref, path='result', values=True):
    "Assert nbtorch's `ours` is PyTorch's `ref`: type, shape, dtype, values (NaN equal) if `values`."
    if isinstance(ref, torch.Tensor):
        assert isinstance(ours, nbtorch.Tensor), f"{path}: {type(ours).__name__}, not a Tensor"
        assert tuple(ours.shape) == tuple(ref.shape), f"{path}: shape {tuple(ours.shape)} != {tuple(ref.shape)}"
        assert str(ours.dtype) == str(ref.dtype), f"{path}: dtype {ours.dtype} != {ref.dtype}"
        if not values: return
        if ref.dtype == torch.bfloat16: ours, ref = ours.float(), ref.float()  # torch has no .numpy() for it
        if ref._is_zerotensor(): ref = torch.zeros(ref.shape, dtype=ref.dtype)  # sgn's real gradient
        a, b = np.asarray(ours.detach().cpu().numpy()), ref.detach().resolve_conj().resolve_neg().numpy()
        if a.dtype.kind in 'fc':
            tol = _TOL or TOL.get(str(ref.dtype).removeprefix('torch.'), dict(rtol=1e-2, atol=1e-2))
            if _NORM and np.isfinite(b).any():
                tol = dict(tol, atol=max(tol['atol'], tol['rtol'] * np.abs(b[np.isfinite(b)]).max()))
            inf = np.isinf(b) if a.dtype.kind == 'c' else False
            if np.any(inf):  # an infinite part makes |a - b| NaN: such numbers part by part
                for part in (np.real, np.imag):
                    np.testing.assert_allclose(part(a[inf]), part(b[inf]), equal_nan=True,
                                               err_msg=path, **tol)
                a, b = a[~inf], b[~inf]
            np.testing.assert_allclose(a, b, equal_nan=True, err_msg=path, **tol)
        else: np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(ref, (tuple, list)):
        assert isinstance(ours, (tuple, list)), f"{path}: {type(ours).__name__}, not a sequence"
        assert len(ours) == len(ref), f"{path}: {len(ours)} items, not {len(ref)}"
        for i, (o, r) in enumerate(zip(ours, ref)): compare(o, r, f'{path}[{i}]', values)
    elif isinstance(ref, numbers.Number) and not isinstance(ref, bool):
        assert isinstance(ours, numbers.Number), f"{path}: {ours!r} is not a number"
        if not values: return
        assert np.isclose(ours, ref, rtol=1e-6, atol=1e-7, equal_nan=True), f"{path}: {ours} != {ref}"
    else:
        assert ours == ref, f"{path}: {ours!r} != {ref!r}"


def _call(fn, sample, lib_input, args, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return fn(lib_input, *args, **kwargs)


def _cotangents(outs):
    rng = np.random.default_rng(0)
    def one(o):
        c = rng.standard_normal(tuple(o.shape))
        return c + 1j * rng.standard_normal(tuple(o.shape)) if o.is_complex() else c
    return [one(o) for o in outs]


def _tie_positions(key, inp, args, kwargs, idx):
    "The input's values at the positions `idx` that op `key` returned along its dim."
    pos, default = TIES[key]
    dim = kwargs.get('dim', args[pos] if len(args) > pos else default)
    a, i = inp.detach().numpy(), idx.detach().numpy() if isinstance(idx, torch.Tensor) else \
        np.asarray(idx.detach().cpu().numpy())
    if a.ndim == 0: return a.reshape(i.shape)
    if i.ndim < a.ndim: i = np.expand_dims(i, dim)  # kthvalue without keepdim
    return np.take_along_axis(a, i, axis=dim)


def _compare_ties(key, ours, ref, sample):
    "Compare as `compare` does, but indices by the values they point at (see TIES)."
    inp, args, kwargs = sample.input, sample.args, sample.kwargs
    alone = isinstance(ref, torch.Tensor)  # argsort: the indices alone; else (values, indices)
    if alone: ours, ref = (ours,), (ref,)
    for k, (o, r) in enumerate(zip(ours, ref)):
        if alone or k == 1:
            compare(o, r, f'result[{k}] (shape, dtype)', values=False)
            np.testing.assert_array_equal(_tie_positions(key, inp, args, kwargs, o),
                                          _tie_positions(key, inp, args, kwargs, r),
                                          err_msg=f'result[{k}]: indices of other values')
        else: compare(o, r, f'result[{k}]')


def check_sample(fn, torch_fn, sample, grad, values=True, key=None):
    "Run one sample through both libraries; compare outputs (`values` too), and gradients if `grad`."
    inp, args, kwargs = sample.input, sample.args, sample.kwargs
    full, key = key, key and key.split('.')[0]
    try: ref = _call(torch_fn, sample, inp, args, kwargs)
    except Exception: return 'skip'  # PyTorch refuses the sample in this form (an in-place cast)
    n_inp = _with_storage(inp, grad) if key in STORAGE else to_nb(inp, grad)
    n_args, n_kwargs = to_nb(args, grad), to_nb(kwargs, grad)
    ours = _call(fn, sample, n_inp, n_args, n_kwargs)
    if key in TIES and values: _compare_ties(key, ours, ref, sample)
    elif full in GAUGE: compare(sample.output_process_fn_grad(ours), sample.output_process_fn_grad(ref))
    else: compare(ours, ref, values=values)
    if not grad: return 'ok'
    process = sample.output_process_fn_grad
    r_out = [t for t in _tensors(process(ref)) if t.requires_grad]
    if not r_out: return 'ok'
    r_in = [t for t in _tensors([inp, args, kwargs]) if t.requires_grad]
    o_out = [t for t in _tensors(process(ours)) if isinstance(t, nbtorch.Tensor) and t.requires_grad]
    o_in = [t for t in _tensors([n_inp, n_args, n_kwargs]) if t.requires_grad]
    assert len(o_out) == len(r_out), f"{len(o_out)} outputs require grad, not {len(r_out)}"
    cots = _cotangents(r_out)
    r_cots = [torch.tensor(c, dtype=o.dtype) for c, o in zip(cots, r_out)]
    r_g = torch.autograd.grad(r_out, r_in, r_cots, allow_unused=True)
    o_cots = [nbtorch.tensor(c.float().numpy()).bfloat16() if c.dtype == torch.bfloat16
              else nbtorch.tensor(c.resolve_conj().numpy()) for c in r_cots]
    o_g = nbtorch.autograd.grad(o_out, o_in, o_cots, allow_unused=True)
    for i, (o, r) in enumerate(zip(o_g, r_g)):
        if r is None: r = torch.zeros_like(r_in[i])
        if o is None: o = nbtorch.zeros_like(o_in[i])
        compare(o, r, f'gradient of input {i}')
    return 'grad'


def _variant(op, v):
    "nbtorch's form of OpInfo variant `v` (a Tensor method, OpInfo's own lambda, a partial), or None."
    if isinstance(v, types.FunctionType) and v.__module__.startswith('torch.testing'):
        return _rebound(v) if _uses_only_present(v) else None  # as F.elu(x, inplace=True)
    if isinstance(v, functools.partial):  # as partial(F.hardsigmoid, inplace=True)
        where = getattr(v.func, '__module__', '').removeprefix('torch').lstrip('.')
        f = _lookup(nbtorch, f'{where}.{v.func.__name__}'.lstrip('.'))
        return functools.partial(f, *v.args, **v.keywords) if f is not None else None
    name = getattr(v, '__name__', None)
    if name is None or not hasattr(nbtorch.Tensor, name): return None
    return lambda x, *a, **k: getattr(x, name)(*a, **k)


def _forms(op, fn):
    "(form, nbtorch callable, torch callable) for the function, the method and the in-place method."
    forms = [('function', fn, op.op)]
    if op.method_variant is not None:
        forms.append(('method', _variant(op, op.method_variant), op.method_variant))
    if op.inplace_variant is not None:
        forms.append(('inplace', _variant(op, op.inplace_variant),
                      lambda x, *a, **k: op.inplace_variant(x.clone(), *a, **k)))
    return forms


def _inplace_input(ours):
    "An in-place call on a clone, so the sample's own tensor stays as PyTorch's does."
    return lambda x, *a, **k: ours(x.clone() if isinstance(x, nbtorch.Tensor) else x, *a, **k)


RESULTS = {}


def run_entry(key):
    "Check every form and dtype of entry `key`; returns the parity record, raises on a mismatch."
    _TOL.update(PYTORCH_VALUE_BUGS.get(key, ('', {}))[1])
    if key in NORMWISE: _NORM.append(True)
    try: return _run_entry(key)
    finally: _TOL.clear(); _NORM.clear()


def _run_entry(key):
    op = ENTRIES[key]
    fn = resolve(op)
    rec = {'present': fn is not None, 'forms': {}, 'dtypes': [], 'gradient': None}
    if key in PYTORCH_GRAD_BUGS: rec['gradient'] = 'pytorch-bug'
    if key in PYTORCH_VALUE_BUGS: rec['values'] = 'pytorch-bug'
    RESULTS[key] = rec
    if fn is None: return rec
    rec['where'] = _where(fn, op)
    supported = {str(d).removeprefix('torch.') for d in op.supported_dtypes('cpu')}
    failures = []
    for form, ours, theirs in _forms(op, fn):
        if ours is None:
            rec['forms'][form] = 'missing'; failures.append(f'{form}: nbtorch has no {form}'); continue
        if form == 'inplace': ours = _inplace_input(ours)
        status = 'ok'
        complex_ok = family(key) != 'core' or key in COMPLEX_CORE
        for dt in [d for d in DTYPES if d in supported and hasattr(nbtorch, d)
                   and (complex_ok or not d.startswith('complex'))]:
            random = key in RANDOM or op.name in RANDOM
            grad = (dt in GRAD_DTYPES and op.supports_autograd and form == 'function' and not random
                    and key not in PYTORCH_GRAD_BUGS)
            try:
                samples = list(op.sample_inputs('cpu', getattr(torch, dt), requires_grad=grad))
            except Exception: continue
            ran = False
            for s in samples[:SAMPLES]:
                try:
                    rnd = key in RANDOM_SAMPLES and RANDOM_SAMPLES[key](s)
                    r = check_sample(ours, theirs, s, grad and not rnd, not (random or rnd), key)
                except Unsupported: continue
                except Exception as e:
                    failures.append(f'{form} {dt} {_short(s)}: {type(e).__name__}: {str(e)[:300]}')
                    status = 'fail'; break
                ran = ran or r != 'skip'
                if r == 'grad': rec['gradient'] = rec['gradient'] if rec['gradient'] == 'fail' else 'ok'
            if grad and status == 'fail': rec['gradient'] = 'fail'
            if ran and status == 'ok' and dt not in rec['dtypes']: rec['dtypes'].append(dt)
        rec['forms'][form] = status
    if failures: raise AssertionError(f'{key}:\n  ' + '\n  '.join(failures))
    return rec


def _short(s):
    shapes = [tuple(t.shape) for t in _tensors([s.input, s.args])]
    return f'shapes {shapes} kwargs {list(s.kwargs)}'


def _where(fn, op):
    "The nbtorch module and name that define `fn` (for the parity table's link to its notebook)."
    f = getattr(fn, '__func__', fn)
    mod, name = getattr(f, '__module__', None), getattr(f, '__qualname__', op.name)
    return [mod, name] if mod and mod.startswith('nbtorch') else None


@pytest.mark.parametrize('key', sorted(ENTRIES))
def test_opinfo(key):
    if key in MISSING:
        RESULTS[key] = {'present': False, 'forms': {}, 'dtypes': [], 'gradient': None}
        pytest.xfail('nbtorch lacks it (MISSING)')
    if key in DISAGREE:
        try: run_entry(key)
        except AssertionError: pytest.xfail(DISAGREE[key])
        pytest.fail(f'{key} agrees with PyTorch now: take it off DISAGREE')
    run_entry(key)


def test_missing_list_is_honest():
    "Every MISSING entry is in scope and really absent; every absent entry is listed."
    absent = {k for k, op in ENTRIES.items() if resolve(op) is None}
    assert MISSING <= set(ENTRIES), sorted(MISSING - set(ENTRIES))
    assert absent == MISSING, f"missing but not listed: {sorted(absent - MISSING)}; " \
                              f"listed but present: {sorted(MISSING - absent)}"


@pytest.fixture(scope='module', autouse=True)
def _write_parity(request):
    "After a full run of this module, write the parity table's data for the docs site."
    yield
    if len(RESULTS) < len(ENTRIES): return  # a partial run (-k) leaves the table as it was
    agrees = lambda r: r['present'] and not {'fail', 'missing'} & set(r['forms'].values())
    counts = {}
    for k, r in RESULTS.items():
        c = counts.setdefault(family(k), {'entries': 0, 'present': 0, 'agree': 0})
        c['entries'] += 1; c['present'] += r['present']; c['agree'] += agrees(r)
    out = {'pytorch': torch.__version__, 'entries': len(ENTRIES),
           'present': sum(r['present'] for r in RESULTS.values()),
           'agree': sum(agrees(r) for r in RESULTS.values()), 'families': counts,
           'ops': dict(sorted(RESULTS.items()))}
    path = Path(__file__).resolve().parent.parent / 'docs' / 'parity.json'
    path.write_text(json.dumps(out, indent=1) + '\n')


def _report(keys):
    "Check `keys` (all present entries if empty) whatever the lists say; print what fails."
    keys = keys or sorted(k for k, op in ENTRIES.items() if resolve(op) is not None)
    failing = {}
    for k in keys:
        if resolve(ENTRIES[k]) is None: print(f'{k}: missing'); continue
        try: run_entry(k); print(f'{k}: ok {RESULTS[k]}')
        except AssertionError as e: failing[k] = str(e); print(e)
    return failing


if __name__ == '__main__':
    # python tests/test_opinfo.py            the counts and the missing list as it should be now
    # python tests/test_opinfo.py KEY ...    check these entries (or --all present ones) and report
    if len(sys.argv) > 1:
        failing = _report([] if sys.argv[1] == '--all' else sys.argv[1:])
        print(f'{len(failing)} failing:', ' '.join(failing))
    else:
        absent = sorted(k for k, op in ENTRIES.items() if resolve(op) is None)
        print(f'{len(ENTRIES)} in scope, {len(ENTRIES) - len(absent)} present, {len(absent)} missing')
        for f in ('core',) + FAMILIES:
            keys = [k for k in ENTRIES if family(k) == f]
            print(f'  {f}: {len(keys)} entries, {len([k for k in keys if k not in absent])} present')
        print('MISSING = {\n' + _wrapped(absent) + '}')
