"make_dot: the graph's nodes, each drawn once, coloured by kind; rendering with graphviz-pure."
import warnings
from pathlib import Path
import nbtorch
from nbtorch.viz import make_dot
import graphviz.backend.dot_command as dc


def test_nodes_labels_and_colours():
    nbtorch.manual_seed(0)
    w, b = nbtorch.randn(3, 2, requires_grad=True), nbtorch.zeros(2, requires_grad=True)
    x = nbtorch.randn(4, 3, requires_grad=True)
    loss = ((x @ w + b).relu() * (x @ w)).mean()
    src = make_dot(loss, params=dict(w=w, b=b)).source
    for name, n in [('MmBackward0', 2), ('AddBackward0', 1), ('ReluBackward0', 1), ('MulBackward0', 1),
                    ('MeanBackward0', 1), ('AccumulateGrad', 3)]:
        assert src.count(f'label={name}') == n, (name, src)
    assert 'w\n(3, 2)\nfloat32' in src and 'b\n(2)\nfloat32' in src    # parameter names, shape, dtype
    assert src.count('lightskyblue') == 2 and src.count('fillcolor=lightblue') == 1  # params vs other leaf
    assert src.count('darkolivegreen1') == 1                              # the output
    assert src.count(f'{id(w)} [') == 1                                   # w drawn once, though used twice


def test_saved_and_attrs():
    x = nbtorch.tensor([1., 2.], requires_grad=True)
    y = x.exp().sum(0)
    src = make_dot(y, show_saved=True, show_attrs=True).source
    assert 'saved' in src and 'orange' in src and 'dims' in src


def test_renders_svg_with_graphviz_pure():
    x = nbtorch.tensor([1.], requires_grad=True)
    assert 'graphviz-pure' in str(dc.DOT_BINARY)
    svg = make_dot((x * x).sum()).pipe(format='svg').decode()
    assert '<svg' in svg and 'MulBackward0' in svg


def test_no_renderer_falls_back_to_text():
    x = nbtorch.tensor([1.], requires_grad=True)
    saved = dc.DOT_BINARY
    dc.DOT_BINARY = Path('/nonexistent/dot')
    try:
        with warnings.catch_warnings(record=True):
            warnings.simplefilter('always')
            bundle = make_dot((x * x).sum())._repr_mimebundle_()
    finally: dc.DOT_BINARY = saved
    assert list(bundle) == ['text/plain'] and 'digraph' in bundle['text/plain']


def test_deep_graph_has_no_recursion_error():
    "A chain of ops deeper than Python's recursion limit (an unrolled RNN, a long loop) is drawn whole."
    import sys
    x = nbtorch.ones(3, requires_grad=True)
    y = x
    for _ in range(sys.getrecursionlimit() + 500): y = y * 1.0001
    src = make_dot(y, params=dict(x=x)).source
    assert src.count('label=MulBackward0') == sys.getrecursionlimit() + 500
    assert src.count('AccumulateGrad') == 1 and 'x\n(3)\nfloat32' in src
