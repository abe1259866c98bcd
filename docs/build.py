"""Build the docs site offline: the notebooks' stored outputs -> Sphinx (myst-nb, pydata theme) -> docs/_build/html.

1. nbdev's own processing (`nbdev.serve.proc_nbs`, called directly: the nbdev-proc-nbs command tries to
   install Quarto) hides `#| hide` cells and `#| export` code, and turns exported names into `show_doc`
   entries, into `_proc/`.
2. `convert` turns Quarto's cell options into what myst-nb understands (`#| echo: false` -> the
   `remove-input` tag), drops the execution metadata that nbformat rejects, and gives each page its title.
3. An API reference page per module is generated from the package (`sphinx.ext.autodoc`): every public
   name with its signature and docstring, and a link back to the notebook that explains it (from nbdev's
   symbol index, `nbtorch/_modidx.py`).
4. `sphinx-build -W` (warnings are errors) renders it all, with notebooks not re-executed.
"""
import ast, html, inspect, json, re, shutil, subprocess, sys, importlib, textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / 'docs' / '_src', ROOT / 'docs' / '_build' / 'html'
# The reading order: the site's chapter list and the README's table follow it. The GPU backend (00_cuda)
# comes after the Tensor and its ops, which a reader meets first; by then every op has called its
# `get_array_module` and `.to('cuda')` has been shown, so the chapter answers a question already asked.
ORDER = ['index', '00_tensor', '00a_ops', '00b_shapes', '00c_reduce', '00d_pointwise',
         '00d_binary', '00e_products', '00f_sort', '00g_indexing', '00h_complex', '00h_fft',
         '00i_factorizations', '00i_linalg', '00j_special', '00k_windows', '00_cuda',
         '01_autograd', '01a_viz', '01b_autograd_functional', '01c_profiler', '02_functional',
         '02_init', '02_nn', '03_optim', '03a_lr_scheduler', '03b_clip', '04_data',
         '04a_serialization', '04_training', '05_tensorboard', '06_sequences', '06b_attention',
         '06c_text', '07_architecture', '08_distributed', '08a_launcher',
         '08b_distributed_sampler', '08c_ddp', '09_compile', '99_package']
LINK = re.compile(r'\[`([^`]+)`\]\(https://nbtorch\.github\.io/nbtorch/[^)]*\)')


def directives(src):
    "Quarto-style `#| key: value` options at the top of a cell, and the source without them."
    opts, lines = {}, src.split('\n')
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].partition(':')
        opts[k.strip()] = v.strip()
    return opts, '\n'.join(lines)


def lead(nb_path):
    "The notebook's lead line: every `>` line under its H1 title (nbdev's front matter keeps only the first)."
    for c in json.loads(Path(nb_path).read_text())['cells']:
        text = ''.join(c['source'])
        if c['cell_type'] == 'markdown' and text.startswith('# '):
            quoted = [l[1:].strip() for l in text.split('\n')[1:] if l.startswith('>')]
            return ' '.join(quoted) or None
    return None


def _defined(code):
    "The names a code cell defines at top level, in source order (`Tensor.f` for a method added by `@patch`)."
    try: tree = ast.parse('\n'.join(l for l in code.split('\n') if not l.startswith('#|')))
    except SyntaxError: return []
    names = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            decos = [d.func if isinstance(d, ast.Call) else d for d in getattr(node, 'decorator_list', [])]
            if any(isinstance(d, ast.Name) and d.id == 'patch' for d in decos) and node.args.args:
                ann = node.args.args[0].annotation
                owners = ann.elts if isinstance(ann, ast.Tuple) else [ann]
                names += [f'{o.id}.{node.name}' for o in owners if isinstance(o, ast.Name)]
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
    return names


def in_source_order(cells):
    "Move each show_doc card right after the code cell that defines its name, in the cell's source order."
    # nbdev inserts a cell's cards one by one at a shifting index: the first lands above the code,
    # the rest below it in reverse order.
    card = lambda c: c['cell_type'] == 'code' and re.search(r'^show_doc\(([\w.]+)\)\s*$', c['source'], re.M)
    cards, rest, after = {}, [], {}
    for c in cells:
        m = card(c)
        if m: cards[m.group(1)] = c; after.setdefault(len(rest) - 1, []).append(m.group(1))
        else: rest.append(c)
    out, placed = [], set()
    for i, c in enumerate(rest):
        out.append(c)
        if c['cell_type'] == 'code':
            for n in _defined(c['source']):
                if n in cards and n not in placed: out.append(cards[n]); placed.add(n)
    # cards whose definition is not on the page stay where nbdev put them
    for i, names in sorted(after.items(), reverse=True):
        at = out.index(rest[i]) + 1 if i >= 0 else 0
        while at < len(out) and card(out[at]): at += 1
        out[at:at] = [cards[n] for n in names if n not in placed]
    return out


def _params(sig):
    "A signature without annotations (the code's own annotations are few; nbdev's guesses say `NoneType`)."
    empty = inspect.Parameter.empty
    class Named(str): __repr__ = str.__str__  # a function or class default shown by its name, not its id
    named = lambda d: Named(d.__name__) if d is not empty and callable(d) and hasattr(d, '__name__') else d
    return str(sig.replace(parameters=[p.replace(annotation=empty, default=named(p.default))
                                       for p in sig.parameters.values()], return_annotation=empty))


def _class_params(cls):
    "What calling the class takes: its `__init__`'s parameters, seen through `*args, **kwargs` forwarding."
    owner = next((k for k in cls.__mro__ if '__init__' in k.__dict__ or '__new__' in k.__dict__), object)
    if owner is object or '__new__' in owner.__dict__: return _params(inspect.signature(cls))
    sig = inspect.signature(owner.__init__)
    ps = list(sig.parameters.values())[1:]
    if [p.kind for p in ps] != [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]:
        return _params(sig.replace(parameters=ps))
    body = ast.parse(textwrap.dedent(inspect.getsource(owner.__init__))).body[0]
    calls = [n for n in ast.walk(body) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == '__init__' and any(isinstance(a, ast.Starred) for a in n.args)]
    if not calls:  # the arguments are accepted and ignored (PyTorch's Module, Identity): none to give
        used = any(isinstance(n, ast.Name) and n.id in ('args', 'kwargs') for n in ast.walk(body))
        return _params(sig.replace(parameters=ps)) if used else '()'
    fixed = len([a for a in calls[0].args if not isinstance(a, ast.Starred)])
    parent = owner.__mro__[1]
    inner = _class_params(parent)[1:-1].split(', ') if parent is not object else []
    inner = inner[fixed:]
    # arguments taken out of kwargs on the way (RNN's `nonlinearity`), at the place `args[:n]` leaves them
    popped = [f'{n.args[0].value}={ast.unparse(n.args[1])}' for n in ast.walk(body) if isinstance(n, ast.Call)
              and isinstance(n.func, ast.Attribute) and n.func.attr == 'pop' and len(n.args) == 2
              and isinstance(n.func.value, ast.Name) and n.func.value.id == 'kwargs']
    cut = [n.slice.upper.value for n in ast.walk(body) if isinstance(n, ast.Subscript)
           and isinstance(n.value, ast.Name) and n.value.id == 'args' and isinstance(n.slice, ast.Slice)
           and isinstance(n.slice.upper, ast.Constant)]
    at = cut[0] if cut else len(inner)
    return '(' + ', '.join(inner[:at] + popped + inner[at:]) + ')'


def signature(obj, name):
    "The first line of a doc card: `def f(...)`, `class C(...)`, or `exception E` (autodoc's words)."
    if isinstance(obj, type) and issubclass(obj, BaseException):
        return f'exception {name}'
    if isinstance(obj, type): text = f'class {name}{_class_params(obj)}'
    else: text = f'def {name}{_params(inspect.signature(obj))}'
    # lines short enough for the text column (about 68 monospace characters), so the browser never
    # wraps them again; continuation lines indented by four, as black would
    return '\n'.join(textwrap.wrap(text, 66, subsequent_indent=' ' * 4, break_long_words=False,
                                    break_on_hyphens=False))


def _card(md, expr, module):
    "nbdev's card with the real signature of the documented object (left as nbdev wrote it if unknown)."
    try:
        ns = vars(importlib.import_module(module)) if module else {}
        obj = eval(expr, dict(vars(importlib.import_module('nbtorch'))), dict(ns))
        sig = signature(obj, expr.split('.')[-1])
    except Exception:
        return md
    return re.sub(r'```python\n.*?```', lambda m: f'```python\n{sig}\n```', md, count=1, flags=re.S)


def _default_exp(nb_path):
    "The module a notebook exports to (`#| default_exp`)."
    m = re.search(r'#\|\s*default_exp\s+([\w.]+)', Path(nb_path).read_text())
    return f'nbtorch.{m.group(1)}' if m else None


def convert(src_nb, dst, orig_nb=None):
    "A processed notebook, ready for myst-nb."
    nb = json.loads(Path(src_nb).read_text())
    module = _default_exp(orig_nb) if orig_nb else None
    cells, title, desc = [], None, None
    for c in nb['cells']:
        text = ''.join(c['source'])
        if c['cell_type'] == 'raw' and text.startswith('---'):
            title = re.search(r"^title: ?'?(.*?)'?$", text, re.M)
            desc = re.search(r"^description: ?([\s\S]*?)(?:\n[\w-]+:|\n---)", text, re.M)
            title = title.group(1) if title else None
            desc = ' '.join(desc.group(1).strip().strip("'").split()).replace("''", "'") if desc else None
            if orig_nb: desc = lead(orig_nb) or desc
            continue
        if c['cell_type'] == 'raw': continue
        c.get('metadata', {}).pop('execution', None)
        if c['cell_type'] == 'markdown':
            text = LINK.sub(r'`\1`', text)
            if 'AUTOGENERATED' in text: continue
            c['source'] = text
        else:
            opts, code = directives(text)
            if opts.get('echo') == 'false': c.setdefault('metadata', {})['tags'] = ['remove-input']
            c['source'] = code
            m = re.search(r'^show_doc\(([\w.]+)\)\s*$', code, re.M)
            for o in c.get('outputs', []):
                md = o.get('data', {}).get('text/markdown')
                if md is not None:  # show_doc's entries, without the rule (---) that cannot stand in an output
                    md = re.sub(r'^---\s*$', '', ''.join(md) if isinstance(md, list) else md, flags=re.M)
                    md = re.sub(r'\{target="_blank"[^}]*\}', '', md)  # Pandoc link attributes
                    if m: md = _card(md, m.group(1), module)
                    o['data'] = {'text/markdown': LINK.sub(r'`\1`', md)}
        cells.append(c)
    cells = in_source_order(cells)
    if title:
        head = f'# {title}\n' + (f'\n> {desc}\n' if desc else '')
        cells.insert(0, {'cell_type': 'markdown', 'metadata': {}, 'source': head})
    for i, c in enumerate(cells): c['id'] = f'c{i}'
    nb['cells'], nb['nbformat'], nb['nbformat_minor'] = cells, 4, 5
    nb['metadata'] = {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
                      'language_info': {'name': 'python'}}
    Path(dst).write_text(json.dumps(nb, indent=1))
    return title


def _modules():
    "Every module of the package made from a notebook (the top-level package only re-exports)."
    for f in sorted((ROOT / 'nbtorch').rglob('*.py')):
        rel = f.relative_to(ROOT).with_suffix('')
        if rel.name == '_modidx' or rel.parts == ('nbtorch', '__init__'): continue
        yield '.'.join(rel.parts[:-1] if rel.name == '__init__' else rel.parts)


def api_pages(titles=None):
    "One reference page per module: autodoc entries, each linked to the place in a chapter that explains it."
    sys.path.insert(0, str(ROOT))
    titles = titles or {}
    pages, seen = [], set()
    for mod in _modules():
        m = importlib.import_module(mod)
        names = [n for n in getattr(m, '__all__', []) if not n.startswith('_')]
        if not names: continue
        lines, group = [f'# `{mod}`', '', (m.__doc__ or '').split('\n')[0], ''], None
        for n in names:
            obj = getattr(m, n, None)
            if obj is None or id(obj) in seen or getattr(obj, '__module__', mod) not in (mod, None): continue
            seen.add(id(obj))
            kind = 'autoclass' if isinstance(obj, type) else 'autofunction' if callable(obj) else 'autodata'
            opts = ('\n   :members:\n   :undoc-members:' if n == 'Tensor' else '\n   :members:') if kind == 'autoclass' else ''
            where = _explained(mod, n, titles)
            if group and where != group:  # names explained in one section (the dtypes): said once, after the last
                lines += _explained_line(group)
            group = where
            lines += ['```{eval-rst}', f'.. {kind}:: {mod}.{n}{opts}', '```', '']
        if group: lines += _explained_line(group)
        (SRC / 'api').mkdir(exist_ok=True)
        (SRC / 'api' / f'{mod}.md').write_text('\n'.join(lines))
        pages.append(mod)
    return pages


def _explained_line(where):
    "The paragraph that sends a reader from the reference to the chapter (raw HTML: a rubric is no label)."
    href, label = where
    return ['```{eval-rst}', '.. raw:: html', '',
            f'   <p class="explained">Explained in <a href="../{href}">{label}</a>.</p>', '```', '']


_CARDS = {}
def _explained(mod, name, titles):
    "(link, label) of the place that explains `mod`.`name`: its doc card in the chapter, else its section."
    from docutils.nodes import make_id
    nb = _notebook_of(mod, name)
    if not nb: return None
    nb, cell = nb[3:], _CELL_OF.get((mod, name))
    chapter = titles.get(nb) or nb
    if nb not in _CARDS and (SRC / f'{nb}.ipynb').exists():
        page = json.loads((SRC / f'{nb}.ipynb').read_text())['cells']
        outs = [o.get('data', {}).get('text/markdown', '') for c in page for o in c.get('outputs', [])]
        _CARDS[nb] = {t for md in outs for t in re.findall(r'^### (\S+)\s*$', ''.join(md), re.M)}
    if name in _CARDS.get(nb, ()):
        return f'{nb}.html#{make_id(name)}', f'{chapter}: <code>{name}</code>'
    heading, path = None, ROOT / 'nbs' / f'{nb}.ipynb'
    cells = json.loads(path.read_text())['cells'] if path.exists() else []
    if not cell:  # made by code, not by a def or an assignment (`zeros_like`): the first cell naming it
        cell = next((c.get('id') for c in cells if c['cell_type'] == 'code'
                     and '#| export' in ''.join(c['source']) and re.search(rf'\b{name}\b', ''.join(c['source']))),
                    None)
    if cell:
        for c in cells:
            if c.get('id') == cell: break
            if c['cell_type'] == 'markdown':
                hs = re.findall(r'^#{2,4} (.+)$', ''.join(c['source']), re.M)
                if hs: heading = hs[-1]
    if not heading: return f'{nb}.html', chapter
    text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading).replace('`', '').replace('*', '').strip()
    return f'{nb}.html#{make_id(text)}', f'{chapter}: {html.escape(text)}'


_NB_OF, _CELL_OF = {}, {}
def _notebook_of(mod, name):
    "The notebook whose exported code defines `mod`.`name` (from the generated module's cell markers)."
    if mod not in _NB_OF:
        path = ROOT / (mod.replace('.', '/') + '.py')
        if not path.exists(): path = ROOT / mod.replace('.', '/') / '__init__.py'
        text, cur, cell, where = path.read_text(), None, None, {}
        for line in text.split('\n'):
            m = re.match(r'# %% \.\./(?:\.\./)*nbs/(\S+)\.ipynb(?: #(\w+))?', line)
            if m: cur, cell = m.group(1), m.group(2)
            m = re.match(r'(?:def|class) (\w+)|(\w+)\s*=', line)
            if m and cur:
                where.setdefault(m.group(1) or m.group(2), cur)
                _CELL_OF.setdefault((mod, m.group(1) or m.group(2)), cell)
        _NB_OF[mod] = (where, next(iter(set(where.values())), None))
    where, default = _NB_OF[mod]
    return f'../{where.get(name, default)}' if (where.get(name) or default) else None


def _fmt(v, unit):
    "A benchmark figure: MiB for memory, µs or ms for time."
    if v is None: return '-'
    if unit: return f'{v:.1f} MiB'
    return f'{v * 1e6:.2f} µs' if v < 1e-3 else f'{v * 1e3:.2f} ms'


def _bench_section(r, title, suffix):
    "One results file of `make bench` as a page section: its chart and its table (JAX's column if run)."
    base, keys = r.get('baseline', 'NumPy'), ['pytorch', 'numpy'] + (['jax'] if r.get('jax') else [])
    names = dict(pytorch='PyTorch', numpy=base, jax='JAX jit')
    rows = []
    for b in r['results']:
        times = [_fmt(b['median_s'].get(k), b.get('unit')) for k in ['nbtorch'] + keys]
        ratios = [f"{b['ratio'][k]:.2f}" if b['ratio'].get(k) else '-' for k in keys]
        rows.append(f"| {b['name']} | " + ' | '.join(times + ratios) + ' |')
    jax = f", JAX {r['jax']} (`jax.jit` of the same step)" if r.get('jax') else ''
    head = ['nbtorch'] + [names[k] for k in keys] + [f'nbtorch/{names[k]}' for k in keys]
    return (f"## {title}\n\nnbtorch against PyTorch {r.get('pytorch')} and hand-written {base} "
            f"(NumPy {r.get('numpy')}){jax}, "
            + (f"on the GPU (CuPy {r.get('cupy')}; PyTorch's TF32 off, so all three multiply in float32)"
               if r.get('gpu') else f"{r['threads']} CPU threads each") + ", measured in one "
            f"process, interleaved, by `make bench` (`bench/bench.py`): medians of "
            f"{r.get('rounds', 7)} rounds, ratios paired per round. Ratios below 1: nbtorch is faster "
            "(or smaller). Rows ending in *compiled* time nbtorch's step under `nbtorch.compile`.\n\n"
            f'![ratios](ratios{suffix}.png)\n\n'
            f"| benchmark | {' | '.join(head)} |\n|---|" + '---|' * len(head) + '\n'
            + '\n'.join(rows) + '\n\n')


def performance_page():
    "The benchmark's latest figures (bench/results, written by `make bench`) as a page, if any."
    res = ROOT / 'bench' / 'results'
    if not (res / 'results.json').exists(): return None
    text = '# Performance\n\n'
    for suffix in ['', '_cuda']:
        if not (res / f'results{suffix}.json').exists(): continue
        shutil.copy(res / f'ratios{suffix}.png', SRC / f'ratios{suffix}.png')
        r = json.loads((res / f'results{suffix}.json').read_text())
        title = (f"On a GPU: {r.get('gpu') or 'CUDA'} (`make bench` with `--device cuda`)" if suffix
                 else 'On the CPU')
        text += _bench_section(r, title, suffix)
    (SRC / 'performance.md').write_text(text)
    return 'performance'


_MARK = {'ok': '✓', 'fail': '✗ differs', 'missing': '✗ missing', None: '',
         'pytorch-bug': "not compared: PyTorch's is wrong"}


def _parity_row(key, r):
    "One row of the parity table: the op, its forms, gradient, dtypes, the notebook that explains it."
    # F. for nn.functional., and a break allowed after each dot or underscore: long names wrap
    name = re.sub(r'([._])', '\\1\u200b', key.replace('nn.functional.', 'F.'))
    if not r['present']: return f'| {name} | ✗ missing | | | | | |'
    forms = [_MARK[r['forms'].get(f)] for f in ('function', 'method', 'inplace')]
    if r.get('values') == 'pytorch-bug':  # agrees within PyTorch's own error, which the page names
        forms = [m and m + " (PyTorch's values are off)" for m in forms]
    where, link = r.get('where'), ''
    if where:
        nb = _notebook_of(where[0], where[1].split('.')[-1])
        if nb: link = f'[{nb[3:]}]({nb[3:]}.ipynb)'  # the page is beside the chapters, not in api/
    short = {'float': 'f', 'int': 'i', 'complex': 'c'}
    dts = ' '.join(re.sub('float|int|complex', lambda m: short[m.group()], d) for d in r['dtypes'])
    return f"| {name} | {' | '.join(forms)} | {_MARK[r.get('gradient')]} | {dts} | {link} |"


def parity_page():
    "The OpInfo parity table (docs/parity.json, written by tests/test_opinfo.py) as a page, if any."
    src = ROOT / 'docs' / 'parity.json'
    if not src.exists(): return None
    p = json.loads(src.read_text())
    n, present, agree = p['entries'], p['present'], p['agree']
    text = ('# Parity with PyTorch\n\n'
            f"Every operator of PyTorch {p['pytorch']}'s own test database (OpInfo) in scope, checked on "
            "PyTorch's sample inputs by `tests/test_opinfo.py`: the function, the Tensor method and the "
            "in-place method where PyTorch has them, for float32, float64, int64 and bool where the op "
            "supports them (and complex64, complex128 where nbtorch has them); gradients in float64 "
            "(and complex128) against a fixed random cotangent. Out of scope: masked and sparse "
            "tensors, and PyTorch's internal ops.\n\n"
            f'**{present} of {n} entries exist ({100 * present / n:.0f}%), {agree} agree with PyTorch on '
            f'every sample ({100 * agree / n:.0f}%).**\n\n'
            '| family | entries | present | agree |\n|---|---|---|---|\n'
            + ''.join(f"| {f} | {c['entries']} | {c['present']} | {c['agree']} |\n"
                      for f, c in p.get('families', {}).items()) + '\n'
            '✓: agrees with PyTorch on every sample; ✗: differs, or missing. Dtypes: those checked '
            '(f32, f64, i64, bool, c64, c128); F. is `torch.nn.functional`.\n\n'
            '| op | function | method | in place | gradient | dtypes | explained in |\n'
            '|---|---|---|---|---|---|---|\n'
            + '\n'.join(_parity_row(k, r) for k, r in p['ops'].items()) + '\n')
    (SRC / 'parity.md').write_text(text)
    return 'parity'


SITE_URL = 'https://nbtorch.github.io/nbtorch/'


def llms_txt(titles, leads, pages):
    "llms.txt: every chapter in reading order and every module, each linked to a page the site has."
    out = ['# nbtorch', '', f"> {leads.get('index') or ''}", '',
           'A small PyTorch written as Jupyter notebooks: each chapter explains one layer of the framework with the '
           'code that implements it and the tests that pin it to PyTorch. `import nbtorch as torch` runs beginner '
           'PyTorch code unchanged.', '', '## Chapters', '']
    out += [f'- [{titles.get(n) or n}]({SITE_URL}{n}.html): {leads.get(n) or ""}'.rstrip(': ')
            for n in ORDER if n != 'index']
    out += ['', '## Modules', '']
    for mod in _modules():
        doc = (importlib.import_module(mod).__doc__ or '').strip().split('\n')[0]
        nb = _notebook_of(mod, '')
        url = f'{SITE_URL}api/{mod}.html' if mod in pages else f'{SITE_URL}{nb[3:]}.html' if nb else SITE_URL
        out.append(f'- [{mod}]({url}): {doc}'.rstrip(': '))
    out += ['', '## Optional', '', f'- [API reference]({SITE_URL}api/index.html): every public name, '
            'its signature and docstring', f'- [Parity with PyTorch]({SITE_URL}parity.html): every OpInfo entry '
            'checked against PyTorch', f'- [Performance]({SITE_URL}performance.html): nbtorch timed against '
            'PyTorch and NumPy', '']
    return '\n'.join(out)


def main():
    from nbdev.serve import proc_nbs
    sys.path.insert(0, str(ROOT))
    proc = proc_nbs(n_workers=0)
    if SRC.exists(): shutil.rmtree(SRC)
    SRC.mkdir(parents=True)
    (SRC / '_extra' / 'nbs').mkdir(parents=True)
    titles, leads = {}, {}
    for name in ORDER:
        orig = ROOT / 'nbs' / f'{name}.ipynb'
        titles[name] = convert(Path(proc) / f'{name}.ipynb', SRC / f'{name}.ipynb', orig)
        leads[name] = lead(orig)
        shutil.copy(orig, SRC / '_extra' / 'nbs' / f'{name}.ipynb')  # "Download the notebook"
    pages = api_pages(titles)
    perf = performance_page()
    parity = parity_page()
    (SRC / 'api' / 'index.md').write_text('# API reference\n\nEvery public name of the package, by module, with '
        'its signature, its docstring and a link to the notebook that explains it.\n\n```{toctree}\n:maxdepth: 1\n\n'
        + '\n'.join(pages) + '\n```\n')
    llms = llms_txt(titles, leads, pages)
    (ROOT / 'nbs' / 'llms.txt').write_text(llms)
    (SRC / '_extra' / 'llms.txt').write_text(llms)
    toc = '\n'.join(n for n in ORDER if n != 'index')
    idx = json.loads((SRC / 'index.ipynb').read_text())
    # hidden: the page shows the reading-order table, and the sidebar (book-nav.html) lists these on every page
    idx['cells'].append({'cell_type': 'markdown', 'metadata': {}, 'source':
                         f'```{{toctree}}\n:hidden:\n:maxdepth: 1\n:caption: The book\n\n{toc}\n```\n\n'
                         '```{toctree}\n:hidden:\n:maxdepth: 1\n:caption: Reference\n\napi/index\n'
                         + ''.join(f'{page}\n' for page in (parity, perf) if page) + '```\n'})
    (SRC / 'index.ipynb').write_text(json.dumps(idx, indent=1))
    shutil.copy(ROOT / 'docs' / 'conf.py', SRC / 'conf.py')
    for d in ('_templates', '_static'): shutil.copytree(ROOT / 'docs' / d, SRC / d)
    if OUT.exists(): shutil.rmtree(OUT)
    r = subprocess.run([sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q', '-b', 'html', str(SRC), str(OUT)])
    if r.returncode: sys.exit(r.returncode)
    print(f"docs built: {OUT / 'index.html'}")


if __name__ == '__main__': main()
