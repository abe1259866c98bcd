"""Attention and the Transformer (issue 15) against PyTorch: F.scaled_dot_product_attention,
F.multi_head_attention_forward, nn.MultiheadAttention and the Transformer layers, with the same weights
loaded through load_state_dict both ways; outputs and gradients of inputs and parameters."""
import math
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch, to_np, compare

pytestmark = needs_torch
DT = ['float32', 'float64']
TOL = {'float32': 1e-4, 'float64': 1e-9}


def _pair(t, dev='cpu', grad=True):
    "The nbtorch twin of PyTorch tensor `t` (a leaf, requiring grad when t does)."
    if t is None or not isinstance(t, torch.Tensor): return t
    x = nbtorch.tensor(t.detach().numpy(), device=dev)
    return x.requires_grad_() if grad and t.requires_grad else x


def _leaves(shapes, dt, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=getattr(torch, dt)).requires_grad_() for s in shapes]


def _close(ours, ref, dt, what):
    tol = TOL[dt]
    np.testing.assert_allclose(to_np(ours), to_np(ref), rtol=tol, atol=tol, err_msg=what)


def _load(ours, ref):
    "ref's weights into ours, and ours' state_dict back into a fresh copy of ref's: names must agree."
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict({k: nbtorch.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()})
    back = {k: torch.tensor(to_np(v)) for k, v in ours.state_dict().items()}
    for k, v in ref.state_dict().items(): assert torch.equal(back[k], v), k


def _check_module(ours, ref, inputs, dt, kw=None, out=lambda y: y):
    "Same outputs, input gradients and parameter gradients from a loaded state_dict."
    kw = kw or {}
    _load(ours, ref)
    mine = [_pair(t) for t in inputs]
    y_ref = out(ref(*inputs, **kw)); y = out(ours(*mine, **{k: _pair(v) for k, v in kw.items()}))
    g = torch.randn(y_ref.shape, dtype=y_ref.dtype, generator=torch.Generator().manual_seed(1))
    y_ref.backward(g); y.backward(_pair(g))
    _close(y, y_ref, dt, 'output')
    for i, (a, b) in enumerate(zip(mine, inputs)):
        if b.requires_grad: _close(a.grad, b.grad, dt, f'input {i} grad')
    theirs = dict(ref.named_parameters())
    for n, p in ours.named_parameters(): _close(p.grad, theirs[n].grad, dt, f'{n}.grad')


# -- scaled_dot_product_attention ------------------------------------------------------------------

def _masks(L, S):
    g = torch.Generator().manual_seed(3)
    keep = torch.rand(L, S, generator=g) > 0.3
    keep[:, 0] = True
    dead = keep.clone(); dead[1] = False  # one query that may attend to nothing: 0, not NaN
    return {'none': {}, 'causal': {'is_causal': True}, 'bool': {'attn_mask': keep},
            'bool_dead_row': {'attn_mask': dead}, 'float': {'attn_mask': torch.randn(L, S, generator=g)},
            'scale': {'scale': 0.3}, 'causal_scale': {'is_causal': True, 'scale': 2.0}}


@pytest.mark.parametrize('dt', DT)
@pytest.mark.parametrize('case', list(_masks(3, 5)))
@pytest.mark.parametrize('shape', [(3, 4), (2, 3, 4), (2, 2, 3, 4)], ids=['2d', '3d', '4d'])
def test_sdpa(dt, case, shape):
    L, E = shape[-2:]
    q, k, v = _leaves([shape, shape[:-2] + (5, E), shape[:-2] + (5, 6)], dt)
    kw = dict(_masks(L, 5)[case])
    if 'attn_mask' in kw and kw['attn_mask'].is_floating_point(): kw['attn_mask'] = kw['attn_mask'].to(q.dtype)
    f = lambda lib, *a, **k: lib.nn.functional.scaled_dot_product_attention(*a, **k)
    ref = f(torch, q, k, v, **kw)
    ours_in = [_pair(t) for t in (q, k, v)]
    ours = f(nbtorch, *ours_in, **{a: _pair(b) for a, b in kw.items()})
    g = torch.randn(ref.shape, dtype=ref.dtype)
    ref.backward(g); ours.backward(_pair(g))
    _close(ours, ref, dt, 'output')
    for a, b, n in zip(ours_in, (q, k, v), 'qkv'): _close(a.grad, b.grad, dt, n + '.grad')


@pytest.mark.parametrize('dt', DT)
def test_sdpa_gqa_and_broadcast_mask(dt):
    q, k, v = _leaves([(2, 4, 3, 8), (2, 2, 5, 8), (2, 2, 5, 6)], dt)
    m = torch.randn(2, 1, 3, 5, dtype=q.dtype)
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, m, enable_gqa=True)
    ours = nbtorch.nn.functional.scaled_dot_product_attention(*map(_pair, (q, k, v, m)), enable_gqa=True)
    _close(ours, ref, dt, 'output')


def test_sdpa_dropout_keeps_the_expectation():
    nbtorch.manual_seed(0)
    q, k, v = nbtorch.zeros(1, 1, 8), nbtorch.zeros(1, 2000, 8), nbtorch.ones(1, 2000, 3)
    y = nbtorch.nn.functional.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert y.shape == (1, 1, 3) and abs(y.mean().item() - 1) < 0.1


@pytest.mark.parametrize('args', [
    lambda L: (L.randn(3), L.randn(3), L.randn(3)),
    lambda L: (L.randn(2, 3, 4, dtype=L.float64), L.randn(2, 5, 4), L.randn(2, 5, 4)),
    lambda L: (L.randn(3, 4), L.randn(5, 4), L.randn(5, 4), L.zeros(3, 5, dtype=L.int64)),
    lambda L: (L.randn(3, 4), L.randn(5, 4), L.randn(5, 4), L.zeros(3, 5, dtype=L.float64)),
], ids=['1d', 'dtypes', 'int_mask', 'double_mask'])
def test_sdpa_errors(args):
    with pytest.raises(RuntimeError) as ref: torch.nn.functional.scaled_dot_product_attention(*args(torch))
    with pytest.raises(RuntimeError) as ours:
        nbtorch.nn.functional.scaled_dot_product_attention(*args(nbtorch))
    assert str(ours.value) == str(ref.value)


def test_sdpa_causal_with_mask_is_an_error():
    m = torch.ones(3, 3, dtype=torch.bool)
    with pytest.raises(RuntimeError) as ref:
        torch.nn.functional.scaled_dot_product_attention(*[torch.randn(3, 4)] * 3, m, is_causal=True)
    with pytest.raises(RuntimeError) as ours:
        nbtorch.nn.functional.scaled_dot_product_attention(*[nbtorch.randn(3, 4)] * 3, _pair(m),
                                                           is_causal=True)
    assert str(ours.value) == str(ref.value)


# -- MultiheadAttention -----------------------------------------------------------------------------

OPTIONS = {'default': {}, 'kdim_vdim': dict(kdim=3, vdim=5), 'bias_kv': dict(add_bias_kv=True),
           'zero_attn': dict(add_zero_attn=True), 'no_bias': dict(bias=False),
           'batch_first': dict(batch_first=True),
           'all': dict(add_bias_kv=True, add_zero_attn=True, kdim=3, vdim=5)}


def _mha_inputs(opt, dt, batched=True):
    L, S, N = 4, 5, 2
    shapes = [(L, N, 8), (S, N, opt.get('kdim', 8)), (S, N, opt.get('vdim', 8))]
    if not batched: shapes = [(s[0], s[2]) for s in shapes]
    elif opt.get('batch_first'): shapes = [(s[1], s[0], s[2]) for s in shapes]
    return _leaves(shapes, dt)


def _mha_masks(dt):
    g = torch.Generator().manual_seed(5)
    kpm = torch.tensor([[False, False, True, False, True], [False, True, False, False, False]])
    am = torch.rand(4, 5, generator=g) > 0.7; am[:, 0] = False
    fd = getattr(torch, dt)
    return {'none': {}, 'kpm_bool': dict(key_padding_mask=kpm),
            'kpm_float': dict(key_padding_mask=torch.zeros(2, 5, dtype=fd).masked_fill(kpm, -1e4)),
            'mask_bool': dict(attn_mask=am), 'mask_float': dict(attn_mask=torch.randn(4, 5, dtype=fd)),
            'mask_3d': dict(attn_mask=torch.randn(4, 4, 5, dtype=fd)),
            'both_per_head': dict(attn_mask=am, key_padding_mask=kpm, average_attn_weights=False),
            'no_weights': dict(key_padding_mask=kpm, need_weights=False),
            'causal': dict(attn_mask=torch.ones(4, 5, dtype=torch.bool).triu(1), is_causal=True)}


@pytest.mark.parametrize('dt', DT)
@pytest.mark.parametrize('opt', list(OPTIONS))
@pytest.mark.parametrize('mask', list(_mha_masks('float32')))
def test_multihead_attention(dt, opt, mask):
    o = OPTIONS[opt]
    ref = torch.nn.MultiheadAttention(8, 2, **o).to(getattr(torch, dt))
    ours = nbtorch.nn.MultiheadAttention(8, 2, **o).to(getattr(nbtorch, dt))
    kw = _mha_masks(dt)[mask]
    if o.get('add_bias_kv') or o.get('add_zero_attn'):
        kw.pop('average_attn_weights', None)
        if kw.get('attn_mask') is not None and kw['attn_mask'].dim() == 3: return  # sizes grow by one
    with_w = kw.get('need_weights', True)
    _check_module(ours, ref, _mha_inputs(o, dt), dt, kw, out=lambda r: r[0])
    if with_w:  # the weights too, from a fresh call
        w_ref = ref(*_mha_inputs(o, dt), **kw)[1]
        w = ours(*[_pair(t) for t in _mha_inputs(o, dt)], **{k: _pair(v) for k, v in kw.items()})[1]
        _close(w, w_ref, dt, 'weights')
    else: assert ours(*[_pair(t) for t in _mha_inputs(o, dt)], **{k: _pair(v) for k, v in kw.items()})[1] is None


@pytest.mark.parametrize('opt', ['default', 'kdim_vdim', 'batch_first'])
def test_multihead_attention_unbatched(opt):
    o = OPTIONS[opt]
    ref, ours = torch.nn.MultiheadAttention(8, 2, **o), nbtorch.nn.MultiheadAttention(8, 2, **o)
    _check_module(ours, ref, _mha_inputs(o, 'float32', batched=False), 'float32',
                  dict(key_padding_mask=torch.tensor([False, True, False, False, False])),
                  out=lambda r: r[0])


def test_multihead_attention_init_and_names():
    m = nbtorch.nn.MultiheadAttention(64, 4, add_bias_kv=True)
    ref = torch.nn.MultiheadAttention(64, 4, add_bias_kv=True)
    assert list(m.state_dict()) == list(ref.state_dict())
    assert [n for n, _ in m.named_parameters()] == [n for n, _ in ref.named_parameters()]
    assert m.in_proj_bias.abs().max().item() == 0 and m.out_proj.bias.abs().max().item() == 0
    bound = math.sqrt(6 / (64 + 192))  # Xavier-uniform on (3E, E)
    assert m.in_proj_weight.abs().max().item() <= bound and m.in_proj_weight.std().item() > bound / 3
    assert isinstance(m.out_proj, nbtorch.nn.Linear)
    sep = nbtorch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5)
    assert sep.in_proj_weight is None and sep.k_proj_weight.shape == (8, 3)


@pytest.mark.parametrize('make', [lambda L: L.nn.MultiheadAttention(8, 3),
                                  lambda L: L.nn.MultiheadAttention(0, 2)], ids=['divisible', 'zero'])
def test_multihead_attention_constructor_errors(make):
    with pytest.raises(Exception) as ref: make(torch)
    with pytest.raises(type(ref.value)) as ours: make(nbtorch)
    assert str(ours.value) == str(ref.value)


def test_multihead_attention_bad_mask_shape():
    x = torch.randn(4, 2, 8)
    ref = torch.nn.MultiheadAttention(8, 2)
    ours = nbtorch.nn.MultiheadAttention(8, 2)
    with pytest.raises(RuntimeError) as e1: ref(x, x, x, attn_mask=torch.zeros(3, 4))
    with pytest.raises(RuntimeError) as e2: ours(*[_pair(x)] * 3, attn_mask=nbtorch.zeros(3, 4))
    assert str(e1.value) == str(e2.value)


# -- Transformer layers -----------------------------------------------------------------------------

LAYER_OPTIONS = {'default': {}, 'norm_first': dict(norm_first=True), 'gelu': dict(activation='gelu'),
                 'callable': dict(activation='silu'), 'batch_first': dict(batch_first=True),
                 'no_bias': dict(bias=False), 'eps': dict(layer_norm_eps=1e-3)}


def _opts(name, lib):
    o = dict(LAYER_OPTIONS[name])
    if o.get('activation') == 'silu': o['activation'] = lib.nn.functional.silu
    return dict(o, dropout=0.0)


def _seq(dt, L, bf):
    return _leaves([(3, L, 8) if bf else (L, 3, 8)], dt, seed=L)[0]


@pytest.mark.parametrize('dt', DT)
@pytest.mark.parametrize('opt', list(LAYER_OPTIONS))
def test_encoder_layer_and_encoder(dt, opt):
    D = getattr(torch, dt)
    ref_layer = torch.nn.TransformerEncoderLayer(8, 2, 16, **_opts(opt, torch)).to(D)
    ours_layer = nbtorch.nn.TransformerEncoderLayer(8, 2, 16, **_opts(opt, nbtorch)).to(getattr(nbtorch, dt))
    bf = opt == 'batch_first'
    kpm = torch.zeros(3, 5, dtype=torch.bool); kpm[1, 3:] = True
    _check_module(ours_layer, ref_layer, [_seq(dt, 5, bf)], dt, dict(src_key_padding_mask=kpm))
    ref = torch.nn.TransformerEncoder(ref_layer, 2, norm=torch.nn.LayerNorm(8).to(D),
                                      enable_nested_tensor=False)
    ours = nbtorch.nn.TransformerEncoder(ours_layer, 2, norm=nbtorch.nn.LayerNorm(8).to(getattr(nbtorch, dt)))
    causal = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=D)
    _check_module(ours, ref, [_seq(dt, 5, bf)], dt, dict(mask=causal))
    _check_module(ours, ref, [_seq(dt, 5, bf)], dt, dict(src_key_padding_mask=kpm))


@pytest.mark.parametrize('dt', DT)
@pytest.mark.parametrize('opt', list(LAYER_OPTIONS))
def test_decoder_layer_and_decoder(dt, opt):
    D = getattr(torch, dt)
    ref_layer = torch.nn.TransformerDecoderLayer(8, 2, 16, **_opts(opt, torch)).to(D)
    ours_layer = nbtorch.nn.TransformerDecoderLayer(8, 2, 16, **_opts(opt, nbtorch)).to(getattr(nbtorch, dt))
    bf = opt == 'batch_first'
    causal = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=D)
    mkpm = torch.zeros(3, 5, dtype=torch.bool); mkpm[2, 4] = True
    kw = dict(tgt_mask=causal, memory_key_padding_mask=mkpm)
    _check_module(ours_layer, ref_layer, [_seq(dt, 4, bf), _seq(dt, 5, bf)], dt, kw)
    ref = torch.nn.TransformerDecoder(ref_layer, 2, norm=torch.nn.LayerNorm(8).to(D))
    ours = nbtorch.nn.TransformerDecoder(ours_layer, 2, norm=nbtorch.nn.LayerNorm(8).to(getattr(nbtorch, dt)))
    _check_module(ours, ref, [_seq(dt, 4, bf), _seq(dt, 5, bf)], dt, kw)


@pytest.mark.parametrize('dt', DT)
@pytest.mark.parametrize('opt', ['default', 'norm_first', 'batch_first', 'gelu'])
@pytest.mark.parametrize('train', [True, False], ids=['train', 'eval'])
def test_transformer(dt, opt, train):
    kw = dict(d_model=8, nhead=2, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16)
    ref = torch.nn.Transformer(**kw, **_opts(opt, torch)).to(getattr(torch, dt)).train(train)
    ours = nbtorch.nn.Transformer(**kw, **_opts(opt, nbtorch)).to(getattr(nbtorch, dt)).train(train)
    bf = opt == 'batch_first'
    masks = dict(tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=getattr(torch, dt)))
    _check_module(ours, ref, [_seq(dt, 5, bf), _seq(dt, 4, bf)], dt, masks)


def test_transformer_init_and_mask():
    m = nbtorch.nn.Transformer(16, 2, 1, 1, 32)
    ref = torch.nn.Transformer(16, 2, 1, 1, 32)
    assert list(m.state_dict()) == list(ref.state_dict())
    compare(nbtorch.nn.Transformer.generate_square_subsequent_mask(4),
            torch.nn.Transformer.generate_square_subsequent_mask(4))
    w = m.encoder.layers[0].linear1.weight
    assert w.abs().max().item() <= math.sqrt(6 / 48) + 1e-6  # Xavier-uniform on every matrix
    assert nbtorch.nn.Transformer.generate_square_subsequent_mask(3, dtype=nbtorch.float64).dtype \
        == nbtorch.float64


@pytest.mark.parametrize('bad', ['batch', 'feature'])
def test_transformer_errors(bad):
    shapes = {'batch': [(5, 2, 8), (4, 3, 8)], 'feature': [(5, 2, 8), (4, 2, 6)]}[bad]
    ref, ours = torch.nn.Transformer(8, 2, 1, 1, 16), nbtorch.nn.Transformer(8, 2, 1, 1, 16)
    with pytest.raises(RuntimeError) as e1: ref(*[torch.randn(*s) for s in shapes])
    with pytest.raises(RuntimeError) as e2: ours(*[nbtorch.randn(*s) for s in shapes])
    assert str(e1.value) == str(e2.value)


def test_bad_activation():
    with pytest.raises(RuntimeError) as e1: torch.nn.TransformerEncoderLayer(8, 2, activation='tanh')
    with pytest.raises(RuntimeError) as e2: nbtorch.nn.TransformerEncoderLayer(8, 2, activation='tanh')
    assert str(e1.value) == str(e2.value)


# -- on the GPU stand-in ----------------------------------------------------------------------------

def test_sdpa_on_device(dev):
    q, k, v = _leaves([(2, 3, 4), (2, 5, 4), (2, 5, 6)], 'float32')
    m = torch.rand(3, 5, generator=torch.Generator().manual_seed(0)) > 0.3
    ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m)
    ours_in = [_pair(t, dev) for t in (q, k, v)]
    ours = nbtorch.nn.functional.scaled_dot_product_attention(*ours_in, attn_mask=_pair(m, dev))
    compare(ours, ref, dev)
    ref.sum().backward(); ours.sum().backward()
    for a, b in zip(ours_in, (q, k, v)): compare(a.grad, b.grad, dev)


def test_encoder_layer_on_device(dev):
    ref = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    ours = nbtorch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0)
    _load(ours, ref)
    ours.to(dev)
    x = _seq('float32', 5, False)
    kpm = torch.zeros(3, 5, dtype=torch.bool); kpm[0, 4] = True
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5)
    y_ref = ref(x, src_mask=mask, src_key_padding_mask=kpm)
    xo = _pair(x, dev)
    y = ours(xo, src_mask=_pair(mask, dev), src_key_padding_mask=_pair(kpm, dev))
    compare(y, y_ref, dev)
    y_ref.sum().backward(); y.sum().backward()
    compare(xo.grad, x.grad, dev)
    compare(ours.self_attn.in_proj_weight.grad, ref.self_attn.in_proj_weight.grad, dev)
