"Recurrent layers, their cells and packed sequences against PyTorch: same weights, outputs, gradients."
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch, to_np

pytestmark = needs_torch
DT = {'float32': (nbtorch.float32, torch.float32 if torch else None, 2e-5),
      'float64': (nbtorch.float64, torch.float64 if torch else None, 1e-10)}


def pair(name, *args, dtype='float64', **kw):
    "The PyTorch module and ours, with PyTorch's weights loaded through load_state_dict."
    d = DT[dtype]
    ref = getattr(torch.nn, name)(*args, **kw).to(d[1])
    ours = getattr(nbtorch.nn, name)(*args, **kw).to(d[0])
    ours.load_state_dict({k: nbtorch.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    return ours, ref


def leaves(a, dev='cpu'):
    "The same array as a leaf of each library."
    return nbtorch.tensor(a, requires_grad=True, device=dev), torch.tensor(a, requires_grad=True)


def flat(o):
    "The tensors of a nested output (PackedSequence's data, states)."
    if isinstance(o, (tuple, list)) and not hasattr(o, 'batch_sizes'):
        return [t for x in o for t in flat(x)]
    return [o.data] if hasattr(o, 'batch_sizes') else [o]


def check(ours, ref, inputs, call, tol, dev='cpu'):
    "Outputs, then the gradients of the inputs and parameters for a random weighting of the outputs."
    ys, rs = flat(call(ours, [a for a, _ in inputs])), flat(call(ref, [b for _, b in inputs]))
    assert len(ys) == len(rs)
    rng = np.random.default_rng(1)
    loss_o, loss_r = 0, 0
    for y, r in zip(ys, rs):
        assert tuple(y.shape) == tuple(r.shape)
        np.testing.assert_allclose(to_np(y), to_np(r), atol=tol, rtol=tol)
        w = rng.standard_normal(tuple(r.shape))
        loss_o = loss_o + (y * nbtorch.tensor(w, dtype=y.dtype, device=dev)).sum()
        loss_r = loss_r + (r * torch.tensor(w, dtype=r.dtype)).sum()
    loss_o.backward(); loss_r.backward()
    for (a, b) in inputs:
        if b.grad is not None: np.testing.assert_allclose(to_np(a.grad), to_np(b.grad), atol=tol, rtol=tol)
    for (n, p), (m, q) in zip(ours.named_parameters(), ref.named_parameters()):
        assert n == m
        np.testing.assert_allclose(to_np(p.grad), to_np(q.grad), atol=tol, rtol=tol, err_msg=n)


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('name,kw', [('RNNCell', {}), ('RNNCell', {'nonlinearity': 'relu'}),
                                     ('RNNCell', {'bias': False}), ('LSTMCell', {}), ('GRUCell', {}),
                                     ('GRUCell', {'bias': False})])
@pytest.mark.parametrize('batched', [True, False])
def test_cells(name, kw, dtype, batched):
    ours, ref = pair(name, 3, 5, dtype=dtype, **kw)
    rng = np.random.default_rng(0)
    shape = (4, 3) if batched else (3,)
    x = leaves(rng.standard_normal(shape).astype(dtype))
    h = leaves(rng.standard_normal(shape[:-1] + (5,)).astype(dtype))
    c = leaves(rng.standard_normal(shape[:-1] + (5,)).astype(dtype))
    hx = (lambda i: (h[i], c[i])) if name == 'LSTMCell' else (lambda i: h[i])
    ins = [x, h, c] if name == 'LSTMCell' else [x, h]
    check(ours, ref, ins, lambda m, t: m(t[0], (t[1], t[2]) if len(t) == 3 else t[1]), DT[dtype][2])
    # without a state: zeros
    o, r = ours(x[0].detach()), ref(x[1].detach())
    for a, b in zip(flat(o), flat(r)): np.testing.assert_allclose(to_np(a), to_np(b), atol=DT[dtype][2])


LAYERS = [('RNN', {}), ('RNN', {'nonlinearity': 'relu'}), ('LSTM', {}), ('GRU', {}),
          ('LSTM', {'proj_size': 3}), ('LSTM', {'num_layers': 2, 'bidirectional': True, 'proj_size': 2}),
          ('GRU', {'num_layers': 3, 'bias': False}), ('RNN', {'bidirectional': True, 'batch_first': True}),
          ('GRU', {'num_layers': 2, 'bidirectional': True, 'batch_first': True}),
          ('LSTM', {'num_layers': 2, 'dropout': 0.5, 'batch_first': True})]


def states(name, kw, B, rng, dtype='float64'):
    D, L = (2 if kw.get('bidirectional') else 1), kw.get('num_layers', 1)
    h = leaves(rng.standard_normal((D * L,) + B + (kw.get('proj_size') or 5,)).astype(dtype))
    if name != 'LSTM': return [h]
    return [h, leaves(rng.standard_normal((D * L,) + B + (5,)).astype(dtype))]


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('name,kw', LAYERS)
@pytest.mark.parametrize('with_state', [True, False])
def test_layers(name, kw, dtype, with_state):
    ours, ref = pair(name, 3, 5, dtype=dtype, **kw)
    ours.eval(); ref.eval()  # dropout between layers is random: compared in eval mode
    rng = np.random.default_rng(0)
    T, B = 6, 4
    x = leaves(rng.standard_normal((B, T, 3) if kw.get('batch_first') else (T, B, 3)).astype(dtype))
    ins = [x] + (states(name, kw, (B,), rng, dtype) if with_state else [])
    def call(m, t):
        if len(t) == 1: return m(t[0])
        return m(t[0], (t[1], t[2]) if len(t) == 3 else t[1])
    check(ours, ref, ins, call, DT[dtype][2] * 10)


@pytest.mark.parametrize('name,kw', LAYERS[:6])
def test_unbatched(name, kw):
    ours, ref = pair(name, 3, 5, **kw)
    rng = np.random.default_rng(0)
    x = leaves(rng.standard_normal((6, 3)))
    ins = [x] + states(name, kw, (), rng)
    check(ours, ref, ins, lambda m, t: m(t[0], (t[1], t[2]) if len(t) == 3 else t[1]), 1e-9)
