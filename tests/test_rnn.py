"Recurrent layers, their cells and packed sequences against PyTorch: same weights, outputs, gradients."
import re
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


def seqs(lengths, dtype='float64', F=3):
    rng = np.random.default_rng(0)
    arrs = [rng.standard_normal((n, F)).astype(dtype) for n in lengths]
    return [leaves(a) for a in arrs]


@pytest.mark.parametrize('batch_first', [False, True])
@pytest.mark.parametrize('side', ['right', 'left'])
def test_pad_sequence(batch_first, side):
    s = seqs([2, 5, 3])
    args = dict(batch_first=batch_first, padding_value=-1.5, padding_side=side)
    o = nbtorch.nn.utils.rnn.pad_sequence([a for a, _ in s], **args)
    r = torch.nn.utils.rnn.pad_sequence([b for _, b in s], **args)
    np.testing.assert_array_equal(to_np(o), to_np(r))
    g = np.random.default_rng(2).standard_normal(tuple(r.shape))
    (o * nbtorch.tensor(g)).sum().backward(); (r * torch.tensor(g)).sum().backward()
    for a, b in s: np.testing.assert_array_equal(to_np(a.grad), to_np(b.grad))


@pytest.mark.parametrize('enforce_sorted,lengths', [(True, [5, 3, 3, 1]), (False, [2, 5, 1, 3])])
@pytest.mark.parametrize('batch_first', [False, True])
def test_pack_and_pad_round_trip(enforce_sorted, lengths, batch_first):
    U, R = nbtorch.nn.utils.rnn, torch.nn.utils.rnn
    s = seqs(lengths)
    po = U.pad_sequence([a for a, _ in s], batch_first=batch_first)
    pr = R.pad_sequence([b for _, b in s], batch_first=batch_first)
    o = U.pack_padded_sequence(po, nbtorch.tensor(lengths), batch_first, enforce_sorted)
    r = R.pack_padded_sequence(pr, torch.tensor(lengths), batch_first, enforce_sorted)
    assert type(o).__name__ == 'PackedSequence' and o._fields == r._fields
    for f in ('data', 'batch_sizes', 'sorted_indices', 'unsorted_indices'):
        a, b = getattr(o, f), getattr(r, f)
        assert (a is None) == (b is None), f
        if a is not None: np.testing.assert_array_equal(to_np(a), to_np(b), err_msg=f)
    qo, lo = U.pad_packed_sequence(o, batch_first, padding_value=7.0, total_length=6)
    qr, lr = R.pad_packed_sequence(r, batch_first, padding_value=7.0, total_length=6)
    np.testing.assert_array_equal(to_np(qo), to_np(qr)); np.testing.assert_array_equal(to_np(lo), to_np(lr))
    assert str(lo.dtype) == str(lr.dtype)
    g = np.random.default_rng(3).standard_normal(tuple(qr.shape))
    (qo * nbtorch.tensor(g)).sum().backward(); (qr * torch.tensor(g)).sum().backward()
    for a, b in s: np.testing.assert_array_equal(to_np(a.grad), to_np(b.grad))
    ps = U.pack_sequence([a for a, _ in s], enforce_sorted)
    np.testing.assert_array_equal(to_np(ps.data), to_np(R.pack_sequence([b for _, b in s], enforce_sorted).data))
    for a, b in zip(U.unpack_sequence(ps), s): np.testing.assert_array_equal(to_np(a), to_np(b[1]))


@pytest.mark.parametrize('dtype', ['float32', 'float64'])
@pytest.mark.parametrize('name,kw', LAYERS)
@pytest.mark.parametrize('enforce_sorted,lengths', [(True, [6, 4, 4, 1]), (False, [3, 6, 1, 4])])
def test_packed_input(name, kw, dtype, enforce_sorted, lengths):
    ours, ref = pair(name, 3, 5, dtype=dtype, **kw)
    ours.eval(); ref.eval()
    s = seqs(lengths, dtype)
    ins = s + states(name, kw, (len(lengths),), np.random.default_rng(5), dtype)
    n = len(lengths)
    def call(m, t):
        U = torch.nn.utils.rnn if isinstance(m, torch.nn.Module) else nbtorch.nn.utils.rnn
        p = U.pack_sequence(t[:n], enforce_sorted)
        st = t[n:]
        out, h = m(p, (st[0], st[1]) if len(st) == 2 else st[0])
        return U.pad_packed_sequence(out, kw.get('batch_first', False))[0], out.data, h
    check(ours, ref, ins, call, DT[dtype][2] * 10)


def test_errors():
    for name, args in [('LSTM', (3, 5)), ('GRU', (3, 5)), ('RNN', (3, 5))]:
        m, r = getattr(nbtorch.nn, name)(*args), getattr(torch.nn, name)(*args)
        for shape in [(2, 3, 4, 3), (4, 2, 7)]:
            with pytest.raises(Exception) as e: r(torch.zeros(shape))
            with pytest.raises(type(e.value), match=re.escape(str(e.value)[:40])): m(nbtorch.zeros(shape))
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"): nbtorch.nn.GRU(3, 5, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller"): nbtorch.nn.LSTM(3, 5, proj_size=5)
    with pytest.raises(RuntimeError, match="must be sorted in decreasing order"):
        nbtorch.nn.utils.rnn.pack_padded_sequence(nbtorch.zeros(4, 2, 3), [2, 4])
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 5\), got \[1, 3, 5\]"):
        nbtorch.nn.GRU(3, 5)(nbtorch.zeros(4, 2, 3), nbtorch.zeros(1, 3, 5))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 5\), got \[1, 3, 5\]"):
        torch.nn.GRU(3, 5)(torch.zeros(4, 2, 3), torch.zeros(1, 3, 5))


def test_names_reprs_and_state_dict_both_ways():
    kws = [dict(), dict(proj_size=2, num_layers=2, bidirectional=True), dict(bias=False, batch_first=True,
           dropout=0.5, num_layers=2)]
    for name in ('RNN', 'LSTM', 'GRU'):
        for kw in kws:
            if name != 'LSTM' and 'proj_size' in kw: continue
            o, r = getattr(nbtorch.nn, name)(3, 4, **kw), getattr(torch.nn, name)(3, 4, **kw)
            assert repr(o) == repr(r)
            assert [(k, tuple(v.shape)) for k, v in o.state_dict().items()] == \
                   [(k, tuple(v.shape)) for k, v in r.state_dict().items()]
            r.load_state_dict({k: torch.tensor(to_np(v)) for k, v in o.state_dict().items()})
            assert len(o.all_weights) == len(r.all_weights)
            o.flatten_parameters()
    assert repr(nbtorch.nn.RNN(3, 4, 2, 'relu')) == repr(torch.nn.RNN(3, 4, 2, 'relu'))
    assert repr(nbtorch.nn.RNNCell(3, 4, nonlinearity='relu')) == repr(torch.nn.RNNCell(3, 4, nonlinearity='relu'))
    assert repr(nbtorch.nn.LSTMCell(3, 4, bias=False)) == repr(torch.nn.LSTMCell(3, 4, bias=False))


def test_init_bounds():
    m = nbtorch.nn.LSTM(3, 16, num_layers=2)
    for p in m.parameters(): assert float(p.abs().max()) <= 0.25 and float(p.abs().max()) > 0.2


@pytest.mark.parametrize('name', ['LSTM', 'GRU', 'RNN'])
def test_on_device(dev, name):
    ours, ref = pair(name, 3, 5, num_layers=2, bidirectional=True)
    ours.to(dev)
    x = np.random.default_rng(0).standard_normal((4, 2, 3))
    xo, xr = nbtorch.tensor(x, requires_grad=True, device=dev), torch.tensor(x, requires_grad=True)
    check(ours, ref, [(xo, xr)], lambda m, t: m(t[0]), 1e-9, dev)
    s = [nbtorch.tensor(x[:n, 0], device=dev) for n in (4, 2, 3)]
    out, _ = ours(nbtorch.nn.utils.rnn.pack_sequence(s, enforce_sorted=False))
    assert out.data.device.type == ('cuda' if dev != 'cpu' else 'cpu')


def test_dtype_mismatch_and_dropout():
    msg = re.escape("RNN input dtype (torch.float64) does not match weight dtype (torch.float32). Convert")
    with pytest.raises(ValueError, match=msg): torch.nn.LSTM(3, 4)(torch.zeros(5, 2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=msg): nbtorch.nn.LSTM(3, 4)(nbtorch.zeros(5, 2, 3, dtype=nbtorch.float64))
    m = nbtorch.nn.GRU(3, 64, num_layers=2, dropout=0.5)
    x = nbtorch.randn(5, 2, 3)
    a, b = m(x)[0], m(x)[0]
    assert not np.allclose(to_np(a), to_np(b))  # training: a new dropout mask each call
    m.eval()
    np.testing.assert_array_equal(to_np(m(x)[0]), to_np(m(x)[0]))
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nbtorch.nn.LSTM(3, 4, dropout=0.2)


@pytest.mark.parametrize('name,kw', [('LSTM', {}), ('GRU', {'bidirectional': True}), ('RNN', {}),
                                     ('LSTM', {'proj_size': 2})])
def test_double_backward(name, kw):
    ours, ref = pair(name, 3, 4, **kw)
    x = leaves(np.random.default_rng(0).standard_normal((5, 2, 3)))
    res = []
    for m, t in ((ours, x[0]), (ref, x[1])):
        lib = nbtorch if m is ours else torch
        g, = lib.autograd.grad(m(t)[0].pow(2).sum(), t, create_graph=True)
        (g.pow(2).sum()).backward()
        res.append([t.grad] + [p.grad for p in m.parameters()])
    for a, b in zip(*res): np.testing.assert_allclose(to_np(a), to_np(b), atol=1e-9, rtol=1e-7)
