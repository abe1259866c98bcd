"""The graph nodes of chapters 00b (shapes) and 00c (reductions) carry PyTorch's names (issue 16):
what `grad_fn.name()` says, and what a graph drawing shows, is what PyTorch would show for the same
call. The ops nbtorch composes from others (`stack`, `var`, `logsumexp`, ...) are listed apart, with
the name their top node has here, so that a change to either side is seen."""
import math
import pytest
import nbtorch
from helpers import needs_torch, torch

pytestmark = needs_torch


def _name(lib, f, shapes):
    xs = [lib.arange(float(math.prod(s))).reshape(s).add(1).requires_grad_() for s in shapes]
    y = f(lib, *xs)
    return (y[0] if isinstance(y, (tuple, list)) else y).grad_fn.name()


SAME = [  # (call, fn(lib, *tensors), input shapes): PyTorch's node name, and nbtorch's
    ('x.view(6)', lambda t, x: x.view(6), [(2, 3)]),
    ('x.reshape(3, 2)', lambda t, x: x.reshape(3, 2), [(2, 3)]),
    ('x.flatten()', lambda t, x: x.flatten(), [(2, 3)]),
    ('x.squeeze()', lambda t, x: x.squeeze(), [(2, 1)]),
    ('x.squeeze(1)', lambda t, x: x.squeeze(1), [(2, 1)]),
    ('x.squeeze((0, 1))', lambda t, x: x.squeeze((0, 1)), [(2, 1)]),
    ('x.unsqueeze(0)', lambda t, x: x.unsqueeze(0), [(2, 3)]),
    ('x.permute(1, 0)', lambda t, x: x.permute(1, 0), [(2, 3)]),
    ('x.transpose(0, 1)', lambda t, x: x.transpose(0, 1), [(2, 3)]),
    ('x.expand(3, 3)', lambda t, x: x.expand(3, 3), [(1, 3)]),
    ('x.repeat(2, 2)', lambda t, x: x.repeat(2, 2), [(2, 3)]),
    ('x[0]', lambda t, x: x[0], [(3, 4)]),
    ('x[:, 0]', lambda t, x: x[:, 0], [(3, 4)]),
    ('x[1:, 0]', lambda t, x: x[1:, 0], [(3, 4)]),
    ('x[0, 1:]', lambda t, x: x[0, 1:], [(3, 4)]),
    ('x[:, 1:]', lambda t, x: x[:, 1:], [(3, 4)]),
    ('x[::2]', lambda t, x: x[::2], [(3, 4)]),
    ('x[None]', lambda t, x: x[None], [(3, 4)]),
    ('x[:, None]', lambda t, x: x[:, None], [(3, 4)]),
    ('x[..., 0]', lambda t, x: x[..., 0], [(3, 4)]),
    ('x.select(1, 0)', lambda t, x: x.select(1, 0), [(3, 4)]),
    ('x[[0, 1]]', lambda t, x: x[[0, 1]], [(3, 4)]),
    ('x.gather(1, i)', lambda t, x: x.gather(1, t.tensor([[0, 0], [1, 0]])), [(2, 3)]),
    ('x.scatter(1, i, src)', lambda t, x: x.scatter(1, t.tensor([[0], [1]]), t.ones(2, 1)), [(2, 3)]),
    ('x.scatter(1, i, 5.)', lambda t, x: x.scatter(1, t.tensor([[0], [1]]), 5.), [(2, 3)]),
    ('x.diagonal()', lambda t, x: x.diagonal(), [(3, 3)]),
    ('x.unfold(0, 2, 1)', lambda t, x: x.unfold(0, 2, 1), [(4,)]),
    ('x.flip(0)', lambda t, x: x.flip(0), [(2, 3)]),
    ('x.roll(1, 0)', lambda t, x: x.roll(1, 0), [(2, 3)]),
    ('x.tril()', lambda t, x: x.tril(), [(3, 3)]),
    ('cat', lambda t, x, y: t.cat([x, y]), [(2, 3), (2, 3)]),
    ('x.narrow(0, 0, 1)', lambda t, x: x.narrow(0, 0, 1), [(2, 3)]),
    ('x.sum()', lambda t, x: x.sum(), [(2, 3)]),
    ('x.sum(1)', lambda t, x: x.sum(1), [(2, 3)]),
    ('x.mean(1)', lambda t, x: x.mean(1), [(2, 3)]),
    ('x.prod()', lambda t, x: x.prod(), [(2, 3)]),
    ('x.prod(1)', lambda t, x: x.prod(1), [(2, 3)]),
    ('x.amax(1)', lambda t, x: x.amax(1), [(2, 3)]),
    ('x.amin(1)', lambda t, x: x.amin(1), [(2, 3)]),
    ('x.max()', lambda t, x: x.max(), [(2, 3)]),
    ('x.min()', lambda t, x: x.min(), [(2, 3)]),
    ('x.norm(dim=1)', lambda t, x: x.norm(dim=1), [(2, 3)]),
    ('x.softmax(1)', lambda t, x: x.softmax(1), [(2, 3)]),
    ('x.log_softmax(1)', lambda t, x: x.log_softmax(1), [(2, 3)]),
    ('x.cumsum(1)', lambda t, x: x.cumsum(1), [(2, 3)]),
    ('x.cumprod(1)', lambda t, x: x.cumprod(1), [(2, 3)]),
    ('x.logcumsumexp(1)', lambda t, x: x.logcumsumexp(1), [(2, 3)]),
    ('m @ m', lambda t, x, y: x @ y, [(2, 3), (3, 2)]),
    ('m @ v', lambda t, x, y: x @ y, [(2, 3), (3,)]),
    ('v @ v', lambda t, x, y: x @ y, [(3,), (3,)]),
    ('dot', lambda t, x, y: t.dot(x, y), [(3,), (3,)]),
    ('mv', lambda t, x, y: t.mv(x, y), [(2, 3), (3,)]),
]


@pytest.mark.parametrize('call,f,shapes', SAME, ids=[c[0] for c in SAME])
def test_node_name_is_pytorchs(call, f, shapes):
    assert _name(nbtorch, f, shapes) == _name(torch, f, shapes)


# composed here, one node in PyTorch: the top node is the last op of the composition (known gaps)
COMPOSED = [
    ('stack', lambda t, x, y: t.stack([x, y]), [(2, 3), (2, 3)], 'CatBackward0', 'StackBackward0'),
    ('x.t()', lambda t, x: x.t(), [(2, 3)], 'TransposeBackward0', 'TBackward0'),
    ('x.var()', lambda t, x: x.var(), [(2, 3)], 'DivBackward0', 'VarBackward0'),
    ('x.logsumexp(1)', lambda t, x: x.logsumexp(1), [(2, 3)], 'SqueezeBackward2', 'LogsumexpBackward0'),
    ('bmm', lambda t, x, y: t.bmm(x, y), [(2, 2, 3), (2, 3, 2)], 'MatmulBackward0', 'BmmBackward0'),
]


@pytest.mark.parametrize('call,f,shapes,ours,theirs', COMPOSED, ids=[c[0] for c in COMPOSED])
def test_composed_node_names(call, f, shapes, ours, theirs):
    assert (_name(nbtorch, f, shapes), _name(torch, f, shapes)) == (ours, theirs)
