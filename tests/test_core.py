"""Around the core, against PyTorch: the deprecated `Variable` and `autograd.backward`, `torch.functional`,
`torch.backends`, `torch.autograd.functional`, the profiler, and saving a whole model with its optimizer."""
import io, warnings
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, compare, torch

pytestmark = needs_torch


def test_variable_is_a_detached_tensor_like_pytorchs():
    for lib in (nbtorch, torch):
        from importlib import import_module
        Variable = import_module(lib.__name__ + '.autograd').Variable
        t = lib.ones(2)
        v = Variable(t, requires_grad=True)
        assert type(v) is lib.Tensor and v.requires_grad and not t.requires_grad and v is not t
        assert isinstance(t, Variable) and not isinstance([1.], Variable)
        u = Variable(v * 2)                       # out of the graph: a leaf that asks for nothing
        assert (u.requires_grad, u.grad_fn, u.is_leaf) == (False, None, True)
        v.data[0] = 3.; assert t.tolist() == [3., 1.]
    with pytest.raises(TypeError, match='Variable data has to be a tensor, but got list'):
        nbtorch.autograd.Variable([1., 2.])
    with pytest.warns(UserWarning, match='volatile was removed'):
        nbtorch.autograd.Variable(nbtorch.ones(1), volatile=True)


def test_autograd_backward_of_several_outputs():
    def run(lib):
        a = lib.tensor([1., 2., 3.], requires_grad=True)
        b = a * a
        lib.autograd.backward([b.sum(), (b * a).sum()], retain_graph=True)
        first = a.grad.clone()
        lib.autograd.backward(b, grad_tensors=lib.tensor([1., 0., 2.]), inputs=[a])
        return first, a.grad
    compare(run(nbtorch), run(torch))
    with pytest.raises(RuntimeError, match='implicitly created only for scalar outputs'):
        nbtorch.autograd.backward(nbtorch.ones(2, requires_grad=True) * 2)
