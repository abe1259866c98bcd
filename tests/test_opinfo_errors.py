"""PyTorch's error inputs, from its operator test database: for every OpInfo entry nbtorch has, each
bad call PyTorch lists (`op.error_inputs`: the arguments, the error type, and a pattern of PyTorch's
message) must raise that type of error in nbtorch, with a message the pattern matches: an error that
names what was wrong, never a NumPy message from deep inside, and never silence where PyTorch refuses.

Two kinds of error input are not asked of nbtorch: those passing `out=` (nbtorch's functions have no
`out` argument), and those where PyTorch's only complaint is the binding (an `Exception` with an empty
pattern, as `torch.atan2(t, 2)`: a Python number where its C++ signature wants a Tensor); nbtorch
accepts such a call and computes what the method form computes. An entry that still disagrees on
some other error input is listed in `DIFFER` (strict: one that starts to agree must leave the list).

`python tests/test_opinfo_errors.py [entry ...]` prints every disagreement."""
import re, sys, warnings
import pytest
import test_opinfo as T

pytestmark = T.pytestmark

DIFFER = {
    'cov',  # "fweights/aweights cannot be negative" reads the data: a GPU would wait
}


def _asked(ei):
    "Whether error input `ei` is asked of nbtorch (see the module's docstring)."
    s = ei.sample_input
    if 'out' in s.kwargs: return False
    return not (ei.error_type is Exception and ei.error_regex == '')


def disagreements(key):
    "What nbtorch does differently from PyTorch on entry `key`'s error inputs, one line each."
    op = T.ENTRIES[key]
    fn = T.resolve(op)
    if fn is None or op.error_inputs_func is None: return []
    bad = []
    for ei in op.error_inputs('cpu'):
        if not _asked(ei): continue
        s = ei.sample_input
        try: inp, args, kw = T.to_nb(s.input), T.to_nb(s.args), T.to_nb(s.kwargs)
        except (T.Unsupported, ValueError, TypeError): continue  # a dtype or device nbtorch lacks
        want = f'PyTorch: {ei.error_type.__name__} matching {ei.error_regex!r}'
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                fn(inp, *args, **kw)
        except Exception as e:
            if not isinstance(e, ei.error_type): bad.append(f'{type(e).__name__}: {str(e)[:150]}; {want}')
            elif not re.search(ei.error_regex, str(e)): bad.append(f'{str(e)[:150]!r}; {want}')
        else: bad.append(f'no error; {want}')
    return bad


KEYS = sorted(k for k, op in T.ENTRIES.items()
              if k not in T.MISSING and op.error_inputs_func is not None)


@pytest.mark.parametrize('key', KEYS)
def test_error_inputs(key):
    T.check_listed(key, disagreements(key), DIFFER)


if __name__ == '__main__':
    differ = T.print_disagreements(disagreements, sys.argv[1:] or KEYS)
    print('DIFFER = {\n' + T._wrapped(differ) + '}')
