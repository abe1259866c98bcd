"""Write `tests/cupy_api.json`: what CuPy offers, read from an installed CuPy (no GPU needed).

The stand-in device (`tests/standin.py`) refuses what this file says CuPy lacks, so that CI (which
has no CuPy) catches an op that would fail on a real GPU. Run it where CuPy imports, e.g.

    PYTHONPATH=/path/to/cupy-site python tools/cupy_api.py

(`tests/test_standin.py` reruns it where `NBTORCH_CUPY_SITE` names such a folder, or CuPy is
installed, and checks that the committed file is what it makes.)

What is recorded, and how each part is known:

- `modules`: the public names of each namespace nbtorch reaches through the backend (`dir`), and
  `submodules` apart (which are loaded depends on the machine's CUDA libraries).
- `signatures`: the parameters of each function and `ndarray` method, from `inspect.signature`, or
  for CuPy's compiled (Cython) functions from the signature their docstring starts with. `varkw` is
  true where a function takes `**kwargs`; `kwargs` then lists the keywords its source pops, when it
  refuses any other (`if kwargs: raise`), as `einsum` does.
- `ufuncs`: per ufunc, `nin`, `nout` and the methods that work. `reduce`, `accumulate` and
  `reduceat` are tried for real: CuPy decides from the ufunc's name before it touches the array, so
  a probe object standing for the array tells them apart without a GPU. `at` works where the ufunc
  has a scatter operation (`_scatter_op`, readable). `outer` reshapes and calls the ufunc, so it
  works for every binary ufunc (from CuPy's source, `cupy/_core/_kernel.pyx`: it allocates device
  memory, so it cannot be tried here).
- `ufunc_keywords`: the keywords a ufunc call accepts, tried for real (CuPy refuses the others with
  `TypeError: Wrong arguments` before it touches a device).
- `sort_kinds`: the `kind` values `sort`/`argsort` accept (`ndarray._check_kind_sort`, tried).
- `numpy_aliases`: functions CuPy re-exports from NumPy itself. CuPy's `__array_function__` returns
  NotImplemented for them (`if cupy_func is func`), so `numpy.X(device_array)` raises TypeError.
"""
import importlib, inspect, json, re, sys
from pathlib import Path
import numpy as np

MODULES = ['cupy', 'cupy.linalg', 'cupy.fft', 'cupy.random', 'cupy.lib', 'cupy.lib.stride_tricks',
           'cupyx', 'cupyx.scipy.special', 'cupy.cuda', 'cupy.cuda.runtime']
# (`cupy.cuda.nccl` is not here: it loads NCCL's library, which a machine without a GPU lacks)
NUMPY_KINDS = [None, 'stable', 'quicksort', 'mergesort', 'heapsort']
UFUNC_KEYWORDS = ['out', 'dtype', 'casting', 'where', 'order', 'subok', 'signature', 'axes', 'axis',
                  'keepdims']


def _public(mod):
    """The public names of module `mod` (no private names, no modules imported from elsewhere), and
    apart, its submodules: which of those are loaded depends on the machine (its CUDA libraries)."""
    names, subs = [], []
    for n in dir(mod):
        if n.startswith('_') or n == 'annotations': continue
        v = getattr(mod, n, None)
        if not inspect.ismodule(v): names.append(n)
        elif v.__name__ == f'{mod.__name__}.{n}': subs.append(n)
    return sorted(names), sorted(subs)


_DOCSIG = re.compile(r'^\s*(?:[\w.]+\.)?(\w+)\((.*?)\)\s*(?:->.*)?$')


def _docsig(f):
    "The parameters (names) and whether `**kw` is taken, from a Cython docstring's first line."
    doc = (getattr(f, '__doc__', None) or '').strip().splitlines()
    m = _DOCSIG.match(doc[0]) if doc else None
    if not m: return None
    params, varkw = [], False
    for p in (s.strip() for s in m.group(2).split(',')):
        if not p or p in ('*', '/'): continue
        name = p.split('=')[0].split()[-1]  # 'int axis=-1' -> 'axis'
        if name.startswith('**'): varkw = True
        elif name.startswith('*'): continue
        elif name != 'self': params.append(name)
    return {'params': params, 'varkw': varkw}


def _popped(f):
    "The keywords a `**kwargs` function pops, when it refuses any other; else None."
    try: src = inspect.getsource(f)
    except (OSError, TypeError): return None
    src = re.sub(r'#.*', '', src)  # a commented-out pop is no pop
    if not re.search(r'if kwargs:\s*\n\s*raise', src): return None
    return sorted(set(re.findall(r"kwargs\.pop\(\s*'(\w+)'", src)))


def _signature(f):
    try: sig = inspect.signature(f)
    except (TypeError, ValueError): return _docsig(f)
    ps = sig.parameters.values()
    out = {'params': [p.name for p in ps if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                      and p.name != 'self'],
           'varkw': any(p.kind == p.VAR_KEYWORD for p in ps)}
    if out['varkw'] and (kw := _popped(f)) is not None: out['kwargs'] = kw
    return out


class _Probe:
    "Stands for an array: CuPy's ufunc methods call these where they work (and need no GPU)."
    def _ok(self, *a, **kw): return 'ok'
    sum = prod = cumsum = cumprod = _add_reduceat = _scatter_op = _ok


def _methods(u):
    "The methods of CuPy ufunc `u` that work."
    ms = []
    for m, args in [('reduce', ()), ('accumulate', ()), ('reduceat', ([0],))]:
        try: getattr(u, m)(_Probe(), *args); ms.append(m)
        except NotImplementedError: pass
    if u.nin == 2: ms.append('outer')
    if getattr(u, '_scatter_op', None): ms.append('at')
    return sorted(ms)


def _ufunc_keywords(u):
    "The keywords a call of CuPy ufunc `u` accepts (the others: TypeError before any device work)."
    ok = []
    for k in UFUNC_KEYWORDS:
        try: u(*[0] * u.nin, **{k: None})
        except TypeError as e:
            if 'Wrong arguments' in str(e): continue
        except Exception: pass  # it went on to the device: the keyword was accepted
        ok.append(k)
    return ok


def _sort_kinds(cupy):
    ok = []
    for k in NUMPY_KINDS:
        try: cupy.ndarray._check_kind_sort(k); ok.append(k)
        except ValueError: pass
    return ok


def build():
    import cupy
    mods = {name: importlib.import_module(name) for name in MODULES}
    api = {'cupy_version': cupy.__version__, 'numpy_version': np.__version__,
           'made_by': 'tools/cupy_api.py', 'modules': {}, 'submodules': {}, 'signatures': {},
           'ufuncs': {}}
    for name, mod in mods.items():
        api['modules'][name], api['submodules'][name] = _public(mod)
        for n in api['modules'][name]:
            f = getattr(mod, n)
            if isinstance(f, cupy.ufunc) or inspect.isclass(f) or not callable(f): continue
            if (sig := _signature(f)) is not None: api['signatures'][f'{name}.{n}'] = sig
    api['modules']['cupy.ndarray'] = [n for n in dir(cupy.ndarray) if not n.startswith('_')]
    for n in api['modules']['cupy.ndarray']:
        f = getattr(cupy.ndarray, n)
        if callable(f) and (sig := _signature(f)) is not None:
            api['signatures'][f'cupy.ndarray.{n}'] = sig
    for m in ['reduce', 'accumulate', 'reduceat', 'outer', 'at']:
        api['signatures'][f'cupy.ufunc.{m}'] = _docsig(getattr(cupy.add, m))
    for name in ['cupy', 'cupyx.scipy.special']:
        for n in api['modules'][name]:
            u = getattr(mods[name], n)
            if isinstance(u, cupy.ufunc):
                api['ufuncs'].setdefault(n, {'nin': u.nin, 'nout': u.nout, 'methods': _methods(u)})
            elif isinstance(getattr(np, n, None), np.ufunc) and callable(u):
                # a NumPy ufunc that CuPy writes otherwise (`matmul` is a generalised ufunc): CuPy's
                # `__array_ufunc__` calls it, and its methods where it has them (keywords unchecked)
                ms = [m for m in ('reduce', 'accumulate', 'reduceat', 'outer', 'at')
                      if hasattr(u, m)]
                api['ufuncs'].setdefault(n, {'methods': ms, 'other': type(u).__name__})
    api['ufunc_keywords'] = _ufunc_keywords(cupy.add)
    api['sort_kinds'] = _sort_kinds(cupy)
    same = lambda n: getattr(cupy, n) is getattr(np, n, None)
    api['numpy_aliases'] = sorted(n for n in api['modules']['cupy'] if same(n)
                                  and callable(getattr(np, n))
                                  and not inspect.isclass(getattr(np, n)))
    return api


if __name__ == '__main__':
    # `python tools/cupy_api.py -` prints the JSON (tests compare it with the committed file)
    api = build()
    text = json.dumps(api, indent=1, sort_keys=True) + '\n'
    if sys.argv[1:] == ['-']: sys.stdout.write(text)
    else:
        out = Path(__file__).resolve().parent.parent / 'tests' / 'cupy_api.json'
        out.write_text(text)
        print(f"{out}: CuPy {api['cupy_version']}, {len(api['modules']['cupy'])} names, "
              f"{len(api['ufuncs'])} ufuncs, {len(api['signatures'])} signatures", file=sys.stderr)
