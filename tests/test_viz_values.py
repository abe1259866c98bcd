"make_dot(show_values=True): data and gradients in the nodes, as micrograd draws them."
import nbtorch
from nbtorch.viz import make_dot


def _diamond():
    a = nbtorch.tensor(2., requires_grad=True)
    b = nbtorch.tensor(-3., requires_grad=True)
    c = a * b; c.retain_grad()
    d = c + a
    d.backward()
    return a, b, c, d


def test_values_and_gradients_in_the_nodes():
    a, b, c, d = _diamond()
    src = make_dot(d, params=dict(a=a, b=b, c=c), show_values=True).source
    assert 'a\n()\nfloat32\ndata 2.\ngrad -2.' in src          # a leaf: name, shape, data, grad
    assert 'b\n()\nfloat32\ndata -3.\ngrad 2.' in src
    assert 'c = MulBackward0\ndata -6.\ngrad 1.' in src          # a named non-leaf, on its op
    assert 'label=AddBackward0' in src                           # an op whose tensor is not named
    assert '()\nfloat32\ndata -4."' in src                        # the output: data, no grad kept


def test_small_matrices_and_large_tensors():
    x = nbtorch.tensor([[1., 2.], [3., 4.]], requires_grad=True)
    (x * x).sum().backward()
    src = make_dot((x * x).sum(), params=dict(x=x), show_values=True).source
    assert 'data [[1., 2.],\n [3., 4.]]' in src and 'grad [[2., 4.],\n [6., 8.]]' in src
    big = nbtorch.ones(100, requires_grad=True)
    src = make_dot(big.sum(), show_values=True).source
    assert '...' in src and len(src) < 1000                      # summarised, not 100 numbers


def test_default_is_torchviz_picture():
    a, b, c, d = _diamond()
    plain = make_dot(d, params=dict(a=a, b=b, c=c)).source
    assert 'data' not in plain and 'grad ' not in plain
    assert 'a\n()\nfloat32"' in plain and 'label=MulBackward0' in plain  # c is not drawn as a name
    assert plain == make_dot(d, params=dict(a=a, b=b, c=c), show_values=False).source
