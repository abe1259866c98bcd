"""The simple engine of 01_autograd (micrograd's twenty lines, run from the notebook's own cell)
agrees with the real engine on a few graphs: the tutorial's, a diamond, broadcasting, a small MLP,
a weight shared by every step."""
import json, sys
from pathlib import Path
import numpy as np
import pytest
import nbtorch
from nbtorch import no_grad, ones_like
from nbtorch.tensor import AccumulateGrad
from nbtorch.autograd import unbroadcast

NB = Path(__file__).resolve().parent.parent / 'nbs' / '01_autograd.ipynb'


def _simple_backward():
    "The notebook's `simple_backward`, taken from its cell: the test checks what the reader reads."
    cells = json.loads(NB.read_text())['cells']
    src, = [''.join(c['source']) for c in cells
            if c['cell_type'] == 'code' and ''.join(c['source']).startswith('def simple_backward(')]
    ns = dict(no_grad=no_grad, ones_like=ones_like, AccumulateGrad=AccumulateGrad,
              unbroadcast=unbroadcast)
    exec(src, ns)
    return ns['simple_backward']


simple_backward = _simple_backward()


def _both(build):
    "Leaves' gradients from the simple engine and from the real one, each on a graph of its own."
    leaves, out = build()
    simple_backward(out)
    simple = [t.grad.tolist() for t in leaves]
    leaves, out = build()
    out.backward()
    return simple, [t.grad.tolist() for t in leaves]


def tutorial():
    x = nbtorch.tensor([[-0.1908, 0.2811], [0.8068, 0.8002]], requires_grad=True)
    y = x + 2
    return [x], (y * y * 3).mean()

def diamond():  # a used twice: directly and through c
    a, b = nbtorch.tensor(2., requires_grad=True), nbtorch.tensor(-3., requires_grad=True)
    c = a * b
    return [a, b], (c + a) * c.exp() / (a + 4)

def broadcast():  # b of shape (3,) added to each row; s of shape (2, 1) stretched along columns
    nbtorch.manual_seed(0)
    x = nbtorch.randn(2, 3, requires_grad=True)
    b, s = nbtorch.randn(3, requires_grad=True), nbtorch.randn(2, 1, requires_grad=True)
    return [x, b, s], ((x + b) * s).tanh().sum()

def mlp():
    nbtorch.manual_seed(1)
    W1, b1 = nbtorch.randn(4, 8, requires_grad=True), nbtorch.zeros(8, requires_grad=True)
    W2 = nbtorch.randn(8, 3, requires_grad=True)
    xb, yb = nbtorch.randn(5, 4), nbtorch.tensor([0, 2, 1, 1, 0])
    logits = (xb @ W1 + b1).relu() @ W2
    return [W1, b1, W2], -logits.log_softmax(1).gather(1, yb[:, None]).mean()

def shared_weight():  # one weight used at every step of a small recurrence
    w = nbtorch.tensor([0.5, -0.25], requires_grad=True)
    h = nbtorch.ones(2)
    for _ in range(6): h = (h * w + 0.1).sigmoid()
    return [w], h.sum()


@pytest.mark.parametrize('build', [tutorial, diamond, broadcast, mlp, shared_weight])
def test_simple_engine_agrees_with_the_real_one(build):
    simple, real = _both(build)
    for s, r in zip(simple, real): np.testing.assert_allclose(s, r, rtol=1e-6, atol=1e-7)


def test_diamond_sums_both_paths():
    a, b = nbtorch.tensor(2., requires_grad=True), nbtorch.tensor(-3., requires_grad=True)
    simple_backward(a * b + a)
    assert (a.grad.item(), b.grad.item()) == (-2., 2.)


def test_what_the_refinements_buy():
    "The simple engine's limits, which the real one lifts: depth, shared .grad, a second walk."
    x = nbtorch.ones(2, requires_grad=True)
    y = x
    for _ in range(sys.getrecursionlimit() + 100): y = y * 1.0
    with pytest.raises(RecursionError): simple_backward(y.sum())
    y.sum().backward()
    assert x.grad.tolist() == [1., 1.]
    a, b = nbtorch.ones(2, requires_grad=True), nbtorch.ones(2, requires_grad=True)
    simple_backward((a + b).sum())
    assert a.grad is b.grad
    a.grad = b.grad = None
    (a + b).sum().backward()
    assert a.grad is not b.grad and not np.shares_memory(a.grad.numpy(), b.grad.numpy())
