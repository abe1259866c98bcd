"""The namespaces hold PyTorch's names (issue 13): no internal Op classes or helper imports in dir(),
and graph nodes' types named as PyTorch's."""
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from helpers import needs_torch, torch

pytestmark = needs_torch
OWN = {nn: {'summary'}}  # nbtorch's model summary, which PyTorch leaves to torchinfo


@pytest.mark.parametrize('ours', [nbtorch, nn, F], ids=['torch', 'nn', 'functional'])
def test_dir_lists_only_pytorchs_names(ours):
    # before: the Op classes (Add, Mul, Cat, ...) and, in nn and F, every imported Tensor function
    theirs = {nbtorch: torch, nn: torch.nn, F: torch.nn.functional}[ours]
    extra = {n for n in set(dir(ours)) - set(dir(theirs)) if not n.startswith('_')}
    assert extra == OWN.get(ours, set())


def test_graph_node_types_are_named_as_pytorchs():
    # before: type(grad_fn).__name__ was 'Mean' where PyTorch says 'MeanBackward0'
    ops = [lambda x: x.mean(), lambda x: x * 2, lambda x: x.exp(), lambda x: x.sum(), lambda x: x.clone(),
           lambda x: x.softmax(0), lambda x: x.view(3), lambda x: x.cumsum(0), lambda x: x.sin()]
    for f in ops:
        a = f(nbtorch.ones(3, requires_grad=True)).grad_fn
        b = f(torch.ones(3, requires_grad=True)).grad_fn
        assert (type(a).__name__, a.name()) == (type(b).__name__, b.name())
