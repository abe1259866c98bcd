"The computation graph as PyTorch draws it: the same nodes, with the same names, in the same order."
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch, compare

pytestmark = needs_torch


def graph(y):
    "The names of the nodes reachable from `y.grad_fn`, breadth first along next_functions."
    seen, names, todo = set(), [], [y.grad_fn]
    while todo:
        node = todo.pop(0)
        if node is None or id(node) in seen: continue
        seen.add(id(node))
        names.append(node.name())
        todo += [f for f, _ in node.next_functions]
    return names


def f32(*shape): return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


X4, W4, X2, T2 = f32(2, 3, 6, 6), f32(4, 3, 3, 3), f32(4, 5), np.array([1, 0, 4, 2])
CASES = {  # name: (f(lib, x, other), x, other); x requires grad, other does not
    'cross_entropy': (lambda t, x, c: t.nn.functional.cross_entropy(x, c), X2, T2),
    'cross_entropy_none': (lambda t, x, c: t.nn.functional.cross_entropy(x, c, reduction='none'),
                           X2, T2),
    'nll_of_log_softmax': (lambda t, x, c: t.nn.functional.nll_loss(x.log_softmax(1), c), X2, T2),
    'conv2d_padding': (lambda t, x, w: t.nn.functional.conv2d(x, w, padding=1), X4, W4),
    'conv2d_same': (lambda t, x, w: t.nn.functional.conv2d(x, w, padding='same'), X4, W4),
    'conv2d_stride': (lambda t, x, w: t.nn.functional.conv2d(x, w, stride=2, padding=2), X4, W4),
    'conv2d_no_padding': (lambda t, x, w: t.nn.functional.conv2d(x, w), X4, W4),
    'max_pool2d_padding': (lambda t, x, _: t.nn.functional.max_pool2d(x, 3, 2, padding=1), X4, None),
    'avg_pool2d_padding': (lambda t, x, _: t.nn.functional.avg_pool2d(x, 3, 2, padding=1), X4, None),
    'unfold_padding': (lambda t, x, _: t.nn.functional.unfold(x, 3, padding=1), X4, None),
    'linear_relu': (lambda t, x, w: t.nn.functional.linear(x, w).relu(), X2, f32(3, 5)),
    'linear_bias': (lambda t, x, w: t.nn.functional.linear(x, w, w[:, 0]), X2, f32(3, 5)),
    'softmax_sum': (lambda t, x, _: x.softmax(1).sum(), X2, None),
    'matmul_mean': (lambda t, x, w: (x @ w).mean(), X2, f32(5, 3)),
    'mul_add': (lambda t, x, y: x * y + x, X2, f32(4, 5)),
    'gather': (lambda t, x, i: x.gather(1, i), X2, np.array([[0], [1], [2], [3]])),
}


def run(lib, name):
    f, x, other = CASES[name]
    a = lib.tensor(x, requires_grad=True)
    return f(lib, a, None if other is None else lib.tensor(other)), a


@pytest.mark.parametrize('name', CASES)
def test_graph_names_are_pytorchs(name):
    "Each node of the graph, PyTorch's name; no node PyTorch does not have (a pad, a fused loss)."
    ours, a = run(nbtorch, name)
    ref, b = run(torch, name)
    assert graph(ours) == graph(ref)
    assert ours.grad_fn.name() == ref.grad_fn.name()
    compare(ours, ref)  # and the same values
    ours.sum().backward()
    ref.sum().backward()
    compare(a.grad, b.grad)
