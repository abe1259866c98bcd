"""nn against PyTorch: each layer with PyTorch's weights copied in (through state_dict and NumPy), forward
values and the gradients of inputs and parameters, in train and eval mode, on every backend; losses;
printouts; state_dict round trips; default initialisation statistics."""
import math
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from helpers import needs_torch, compare, torch

pytestmark = needs_torch
R = np.random.default_rng(2)


def f32(*s): return R.standard_normal(s).astype(np.float32)


def copy_weights(ours, ref):
    "PyTorch's state_dict into our module, through NumPy."
    sd = {k: nbtorch.tensor(v.detach().numpy()) for k, v in ref.state_dict().items()}
    ours.load_state_dict(sd)


def layer_both(make, arrays, dev='cpu', train=True, atol=1e-5, rtol=1e-4, grad_inputs=True):
    "The same layer in both libraries, same weights: outputs, input and parameter gradients."
    ref = make(torch.nn)
    ours = make(nn)
    copy_weights(ours, ref)
    ours.to(dev)
    ours.train(train); ref.train(train)
    flt = [a.dtype.kind == 'f' and grad_inputs for a in arrays]
    oi = [nbtorch.tensor(a, device=dev, requires_grad=f) for a, f in zip(arrays, flt)]
    ri = [torch.tensor(a, requires_grad=f) for a, f in zip(arrays, flt)]
    o, r = ours(*oi), ref(*ri)
    compare(o, r, dev, atol=atol, rtol=rtol, path='output')
    if r.is_floating_point() and r.requires_grad:
        w = f32(*r.shape)
        (o * nbtorch.tensor(w, device=dev)).sum().backward()
        (r * torch.tensor(w)).sum().backward()
        for i, (a, b) in enumerate(zip(oi, ri)):
            if b.grad is not None: compare(a.grad, b.grad, dev, atol=atol, rtol=rtol, path=f'input grad {i}')
        rp = dict(ref.named_parameters())
        for k, p in ours.named_parameters():
            if rp[k].grad is None: assert p.grad is None, k
            else: compare(p.grad, rp[k].grad, dev, atol=atol, rtol=rtol, path=f'grad of {k}')
    for k, b in ref.named_buffers():
        compare(dict(ours.named_buffers())[k], b, dev, path=f'buffer {k}')
    return ours, ref


LAYERS = {
    'Identity': (lambda n: n.Identity(), [(3, 4)]),
    'Linear': (lambda n: n.Linear(5, 3), [(4, 5)]),
    'Linear3d': (lambda n: n.Linear(5, 3), [(2, 4, 5)]),
    'Linear_nobias': (lambda n: n.Linear(5, 3, bias=False), [(4, 5)]),
    'Bilinear': (lambda n: n.Bilinear(3, 4, 2), [(5, 3), (5, 4)]),
    'Flatten': (lambda n: n.Flatten(), [(2, 3, 4)]),
    'Unflatten': (lambda n: n.Unflatten(1, (2, 3)), [(4, 6)]),
    'Conv1d': (lambda n: n.Conv1d(3, 4, 3), [(2, 3, 10)]),
    'Conv1d_same': (lambda n: n.Conv1d(3, 4, 4, padding='same', dilation=2), [(2, 3, 10)]),
    'Conv1d_stride': (lambda n: n.Conv1d(2, 4, 3, stride=2, padding=1, groups=2), [(2, 2, 9)]),
    'Conv2d': (lambda n: n.Conv2d(3, 4, 3), [(2, 3, 7, 8)]),
    'Conv2d_pad': (lambda n: n.Conv2d(3, 4, 3, padding=1), [(2, 3, 7, 8)]),
    'Conv2d_same': (lambda n: n.Conv2d(3, 4, (2, 4), padding='same'), [(2, 3, 7, 8)]),
    'Conv2d_stride': (lambda n: n.Conv2d(3, 4, 3, stride=2, padding=(1, 2)), [(2, 3, 9, 8)]),
    'Conv2d_dilation': (lambda n: n.Conv2d(3, 2, 3, dilation=2), [(1, 3, 9, 9)]),
    'Conv2d_groups': (lambda n: n.Conv2d(4, 6, 3, groups=2, bias=False), [(2, 4, 6, 6)]),
    'Conv2d_depthwise': (lambda n: n.Conv2d(3, 3, 3, groups=3, padding=1), [(2, 3, 5, 5)]),
    'Conv2d_unbatched': (lambda n: n.Conv2d(3, 2, 3), [(3, 6, 6)]),
    'ConvTranspose2d': (lambda n: n.ConvTranspose2d(3, 2, 3), [(2, 3, 4, 5)]),
    'ConvTranspose2d_stride': (lambda n: n.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), [(2, 3, 4, 5)]),
    'ConvTranspose2d_k2s2': (lambda n: n.ConvTranspose2d(4, 3, 2, stride=2, bias=False), [(1, 4, 3, 3)]),
    'MaxPool2d': (lambda n: n.MaxPool2d(2), [(2, 3, 8, 8)]),
    'MaxPool2d_overlap': (lambda n: n.MaxPool2d(3, stride=2, padding=1), [(2, 3, 9, 8)]),
    'MaxPool2d_dilation': (lambda n: n.MaxPool2d(2, stride=1, dilation=2), [(1, 2, 6, 6)]),
    'AvgPool2d': (lambda n: n.AvgPool2d(2), [(2, 3, 8, 8)]),
    'AvgPool2d_pad': (lambda n: n.AvgPool2d(3, stride=2, padding=1), [(2, 3, 7, 7)]),
    'AvgPool2d_nocount': (lambda n: n.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), [(2, 3, 7, 7)]),
    'AdaptiveAvgPool2d_1': (lambda n: n.AdaptiveAvgPool2d((1, 1)), [(2, 3, 5, 6)]),
    'AdaptiveAvgPool2d_3': (lambda n: n.AdaptiveAvgPool2d(3), [(2, 3, 7, 8)]),
    'AdaptiveAvgPool2d_2x4': (lambda n: n.AdaptiveAvgPool2d((2, 4)), [(2, 3, 4, 8)]),
    'BatchNorm1d': (lambda n: n.BatchNorm1d(4), [(6, 4)]),
    'BatchNorm1d_3d': (lambda n: n.BatchNorm1d(4, momentum=0.3), [(6, 4, 5)]),
    'BatchNorm1d_cma': (lambda n: n.BatchNorm1d(4, momentum=None), [(6, 4)]),
    'BatchNorm1d_noaffine': (lambda n: n.BatchNorm1d(4, affine=False), [(6, 4)]),
    'BatchNorm2d': (lambda n: n.BatchNorm2d(3), [(4, 3, 5, 5)]),
    'BatchNorm2d_nostats': (lambda n: n.BatchNorm2d(3, track_running_stats=False), [(4, 3, 5, 5)]),
    'LayerNorm': (lambda n: n.LayerNorm(5), [(3, 4, 5)]),
    'LayerNorm_2d': (lambda n: n.LayerNorm((4, 5), eps=1e-3), [(3, 4, 5)]),
    'GroupNorm': (lambda n: n.GroupNorm(2, 6), [(3, 6, 4, 4)]),
    'Dropout_p0': (lambda n: n.Dropout(0.), [(3, 4)]),
    'Dropout_eval': (lambda n: n.Dropout(0.5), [(3, 4)]),
    'Dropout2d_p0': (lambda n: n.Dropout2d(0.), [(2, 3, 4, 4)]),
    'ReLU': (lambda n: n.ReLU(), [(3, 4)]), 'LeakyReLU': (lambda n: n.LeakyReLU(0.2), [(3, 4)]),
    'ELU': (lambda n: n.ELU(0.7), [(3, 4)]), 'GELU': (lambda n: n.GELU(), [(3, 4)]),
    'GELU_tanh': (lambda n: n.GELU('tanh'), [(3, 4)]), 'SiLU': (lambda n: n.SiLU(), [(3, 4)]),
    'Sigmoid': (lambda n: n.Sigmoid(), [(3, 4)]), 'Tanh': (lambda n: n.Tanh(), [(3, 4)]),
    'Softplus': (lambda n: n.Softplus(beta=2., threshold=3.), [(3, 4)]),
    'Hardtanh': (lambda n: n.Hardtanh(-0.5, 0.5), [(3, 4)]), 'Softmax': (lambda n: n.Softmax(1), [(3, 4)]),
    'LogSoftmax': (lambda n: n.LogSoftmax(-1), [(3, 4)]),
    'Sequential': (lambda n: n.Sequential(n.Linear(4, 8), n.ReLU(), n.Linear(8, 2)), [(5, 4)]),
}


@pytest.mark.parametrize('name,train', [(n, t) for n in LAYERS for t in (True, False)
                                        if not (t and n.endswith('_eval'))],  # random in training: see below
                         ids=lambda v: v if isinstance(v, str) else ('train' if v else 'eval'))
def test_layer(dev, name, train):
    make, shapes = LAYERS[name]
    layer_both(make, [f32(*s) * 2 for s in shapes], dev, train)


def test_batchnorm_running_stats_over_steps(dev):
    ref, ours = torch.nn.BatchNorm2d(3), nn.BatchNorm2d(3).to(dev)
    for _ in range(3):
        x = f32(4, 3, 5, 5) * 3 + 1
        compare(ours(nbtorch.tensor(x, device=dev)), ref(torch.tensor(x)), dev)
    for k, b in ref.state_dict().items(): compare(ours.state_dict()[k], b, dev, path=k)
    ours.eval(); ref.eval()
    x = f32(2, 3, 5, 5)
    compare(ours(nbtorch.tensor(x, device=dev)), ref(torch.tensor(x)), dev)


def test_embedding(dev):
    idx = np.array([[1, 2, 0], [3, 3, 1]])
    for pad in [None, 0, -1]:
        ref = torch.nn.Embedding(4, 3, padding_idx=pad); ours = nn.Embedding(4, 3, padding_idx=pad)
        copy_weights(ours, ref); ours.to(dev)
        o, r = ours(nbtorch.tensor(idx, device=dev)), ref(torch.tensor(idx))
        compare(o, r, dev)
        w = f32(2, 3, 3)
        (o * nbtorch.tensor(w, device=dev)).sum().backward(); (r * torch.tensor(w)).sum().backward()
        compare(ours.weight.grad, ref.weight.grad, dev)


def test_dropout_statistics(dev):
    nbtorch.manual_seed(0)
    x = nbtorch.ones(200, 100, device=dev)
    y = nn.Dropout(0.3)(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - 0.7) < 0.01 and abs(y.sum().item() / x.numel() - 1) < 0.03
    vals = np.unique(y.cpu().numpy())
    assert len(vals) == 2 and vals[0] == 0 and np.isclose(vals[1], 1 / 0.7)
    z = nn.Dropout2d(0.5)(nbtorch.ones(50, 20, 3, 3, device=dev)).cpu().numpy()
    assert ((z == 0).all((2, 3)) | (z != 0).all((2, 3))).all()  # whole channels


LOSSES = [
    ('MSELoss', lambda n: n.MSELoss(), lambda: (f32(4, 3), f32(4, 3))),
    ('L1Loss', lambda n: n.L1Loss(), lambda: (f32(4, 3), f32(4, 3))),
    ('SmoothL1Loss', lambda n: n.SmoothL1Loss(beta=0.5), lambda: (f32(4, 3) * 2, f32(4, 3))),
    ('HuberLoss', lambda n: n.HuberLoss(delta=0.7), lambda: (f32(4, 3) * 2, f32(4, 3))),
    ('CrossEntropy', lambda n: n.CrossEntropyLoss(), lambda: (f32(5, 4), R.integers(0, 4, 5))),
    ('CrossEntropy_weight', lambda n: n.CrossEntropyLoss(weight=n_t(n, [1., 2., .5, 3.])), lambda: (f32(5, 4), R.integers(0, 4, 5))),
    ('CrossEntropy_ignore', lambda n: n.CrossEntropyLoss(ignore_index=2), lambda: (f32(6, 4), np.array([0, 2, 1, 2, 3, 1]))),
    ('CrossEntropy_smooth', lambda n: n.CrossEntropyLoss(label_smoothing=0.1), lambda: (f32(5, 4), R.integers(0, 4, 5))),
    ('CrossEntropy_all', lambda n: n.CrossEntropyLoss(weight=n_t(n, [1., 2., .5, 3.]), ignore_index=1, label_smoothing=0.2),
     lambda: (f32(6, 4), np.array([0, 1, 2, 3, 1, 0]))),
    ('CrossEntropy_probs', lambda n: n.CrossEntropyLoss(), lambda: (f32(5, 4), softmax_np(f32(5, 4)))),
    ('CrossEntropy_probs_smooth_w', lambda n: n.CrossEntropyLoss(weight=n_t(n, [1., 2., .5, 3.]), label_smoothing=0.3),
     lambda: (f32(5, 4), softmax_np(f32(5, 4)))),
    ('CrossEntropy_spatial', lambda n: n.CrossEntropyLoss(), lambda: (f32(2, 4, 3, 3), R.integers(0, 4, (2, 3, 3)))),
    ('NLLLoss', lambda n: n.NLLLoss(), lambda: (np.log(softmax_np(f32(5, 4))), R.integers(0, 4, 5))),
    ('NLLLoss_weight_ignore', lambda n: n.NLLLoss(weight=n_t(n, [1., 2., .5, 3.]), ignore_index=0),
     lambda: (np.log(softmax_np(f32(6, 4))), np.array([0, 1, 2, 3, 0, 2]))),
    ('BCELoss', lambda n: n.BCELoss(), lambda: (sig_np(f32(4, 3)), R.random((4, 3)).astype(np.float32))),
    ('BCELoss_weight', lambda n: n.BCELoss(weight=n_t(n, [1., 2., 3.])), lambda: (sig_np(f32(4, 3)), R.random((4, 3)).astype(np.float32))),
    ('BCEWithLogits', lambda n: n.BCEWithLogitsLoss(), lambda: (f32(4, 3) * 3, R.random((4, 3)).astype(np.float32))),
    ('BCEWithLogits_pos', lambda n: n.BCEWithLogitsLoss(pos_weight=n_t(n, [1., 2., 3.]), weight=n_t(n, [.5, 1., 2.])),
     lambda: (f32(4, 3) * 3, R.random((4, 3)).astype(np.float32))),
    ('KLDiv', lambda n: n.KLDivLoss(reduction='batchmean'), lambda: (np.log(softmax_np(f32(4, 3))), softmax_np(f32(4, 3)))),
    ('KLDiv_logt', lambda n: n.KLDivLoss(log_target=True), lambda: (np.log(softmax_np(f32(4, 3))), np.log(softmax_np(f32(4, 3))))),
]


def n_t(lib, v): return nbtorch.tensor(v) if lib is nn else torch.tensor(v)
def softmax_np(x): e = np.exp(x - x.max(1, keepdims=True)); return (e / e.sum(1, keepdims=True)).astype(np.float32)
def sig_np(x): return (1 / (1 + np.exp(-x))).astype(np.float32)


@pytest.mark.parametrize('reduction', ['mean', 'sum', 'none'])
@pytest.mark.parametrize('name,make,data', LOSSES, ids=[l[0] for l in LOSSES])
def test_loss(dev, name, make, data, reduction):
    x, t = data()
    if reduction != 'mean' and name == 'KLDiv': return
    def mk(lib):
        m = make(lib); m.reduction = reduction; return m
    ref, ours = mk(torch.nn), mk(nn)
    ours.to(dev)
    xi, xr = nbtorch.tensor(x, device=dev, requires_grad=True), torch.tensor(x, requires_grad=True)
    ti, tr = nbtorch.tensor(t, device=dev), torch.tensor(t)
    o, r = ours(xi, ti), ref(xr, tr)
    compare(o, r, dev, atol=1e-5, rtol=1e-4)
    w = f32(*r.shape)
    (o * nbtorch.tensor(w, device=dev)).sum().backward(); (r * torch.tensor(w)).sum().backward()
    compare(xi.grad, xr.grad, dev, atol=1e-5, rtol=1e-4)


def test_losses_stable_at_extreme_logits():
    x = np.array([[1000., -1000., 0.], [-1000., 1000., 500.]], np.float32)
    t = np.array([1, 0])
    for lib_loss in [lambda l: l.nn.functional.cross_entropy, lambda l: l.nn.functional.cross_entropy]:
        o = nbtorch.tensor(x, requires_grad=True); r = torch.tensor(x, requires_grad=True)
        lo, lr = F.cross_entropy(o, nbtorch.tensor(t)), torch.nn.functional.cross_entropy(r, torch.tensor(t))
        lo.backward(); lr.backward()
        assert np.isfinite(lo.item()) and np.isfinite(o.grad.numpy()).all()
        compare(lo, lr); compare(o.grad, r.grad)
    xb = np.array([1000., -1000., 50.], np.float32); tb = np.array([0., 1., 1.], np.float32)
    o = nbtorch.tensor(xb, requires_grad=True); r = torch.tensor(xb, requires_grad=True)
    lo = F.binary_cross_entropy_with_logits(o, nbtorch.tensor(tb)); lr = torch.nn.functional.binary_cross_entropy_with_logits(r, torch.tensor(tb))
    lo.backward(); lr.backward()
    compare(lo, lr); compare(o.grad, r.grad)


@pytest.mark.parametrize('name', list(LAYERS))
def test_repr(name):
    make, _ = LAYERS[name]
    assert repr(make(nn)) == repr(make(torch.nn))


def test_repr_more():
    for make in [lambda n: n.Conv2d(3, 8, (3, 5), stride=(2, 1), padding='same' if False else 2, dilation=(1, 2), groups=1, bias=False),
                 lambda n: n.ModuleList([n.Linear(2, 2) for _ in range(3)] + [n.ReLU()]),
                 lambda n: n.ModuleDict({'a': n.Linear(2, 3), 'b': n.Tanh()}),
                 lambda n: n.Embedding(10, 3, padding_idx=0), lambda n: n.Embedding(10, 3),
                 lambda n: n.ReLU(inplace=True), lambda n: n.LeakyReLU(inplace=True), lambda n: n.CrossEntropyLoss(),
                 lambda n: n.Sequential(n.Conv2d(1, 2, 3), n.Sequential(n.ReLU(), n.MaxPool2d(2))),
                 lambda n: n.Dropout2d(0.2), lambda n: n.Conv2d(2, 4, 3, padding='same'),
                 lambda n: n.ConvTranspose2d(2, 3, 3, stride=2, output_padding=1)]:
        assert repr(make(nn)) == repr(make(torch.nn))
    assert repr(nn.Parameter(nbtorch.ones(2))) == repr(torch.nn.Parameter(torch.ones(2)))


class Net:
    "The same model class body for both libraries."
    @staticmethod
    def make(n, t):
        class Net(n.Module):
            def __init__(self):
                super().__init__()
                self.conv = n.Conv2d(1, 4, 3, padding=1)
                self.bn = n.BatchNorm2d(4)
                self.blocks = n.ModuleList([n.Linear(16, 16), n.Linear(16, 16)])
                self.head = n.Sequential(n.ReLU(), n.Linear(16, 3))
                self.register_buffer('scale', t.ones(1))
            def forward(self, x):
                h = n.functional.max_pool2d(self.bn(self.conv(x)).relu(), 2).flatten(1)
                for b in self.blocks: h = b(h).tanh()
                return self.head(h) * self.scale
        return Net()


def test_module_tree_and_state_dict_round_trip():
    ref, ours = Net.make(torch.nn, torch), Net.make(nn, nbtorch)
    assert [k for k, _ in ours.named_parameters()] == [k for k, _ in ref.named_parameters()]
    assert [k for k, _ in ours.named_buffers()] == [k for k, _ in ref.named_buffers()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert [k for k, _ in ours.named_modules()] == [k for k, _ in ref.named_modules()]
    assert [k for k, _ in ours.named_children()] == [k for k, _ in ref.named_children()]
    assert repr(ours) == repr(ref)
    copy_weights(ours, ref)
    x = f32(2, 1, 4, 4)
    ours.eval(); ref.eval()
    compare(ours(nbtorch.tensor(x)), ref(torch.tensor(x)))
    # and back: our weights into a fresh PyTorch model
    back = Net.make(torch.nn, torch)
    back.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    back.eval()
    compare(ours(nbtorch.tensor(x)), back(torch.tensor(x)))


def test_load_state_dict_errors_like_pytorch():
    ref, ours = Net.make(torch.nn, torch), Net.make(nn, nbtorch)
    sd = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    del sd['conv.bias']; sd['extra'] = np.ones(1, np.float32)
    def ref_sd(sd): return {k: torch.tensor(v) for k, v in sd.items()}
    def our_sd(sd): return {k: nbtorch.tensor(v) for k, v in sd.items()}
    with pytest.raises(RuntimeError) as r: ref.load_state_dict(ref_sd(sd))
    with pytest.raises(RuntimeError) as o: ours.load_state_dict(our_sd(sd))
    assert str(o.value) == str(r.value)
    res_o = ours.load_state_dict(our_sd(sd), strict=False)
    res_r = ref.load_state_dict(ref_sd(sd), strict=False)
    assert (res_o.missing_keys, res_o.unexpected_keys) == (res_r.missing_keys, res_r.unexpected_keys)
    sd2 = {k: v.detach().numpy() for k, v in ref.state_dict().items()}
    sd2['head.1.weight'] = np.ones((3, 15), np.float32)
    with pytest.raises(RuntimeError) as r: ref.load_state_dict(ref_sd(sd2))
    with pytest.raises(RuntimeError) as o: ours.load_state_dict(our_sd(sd2))
    assert str(o.value) == str(r.value)


def test_load_state_dict_refuses_values_of_the_wrong_type_like_pytorch():
    # before: a list, a string or a number was turned into a tensor (or failed inside NumPy)
    good = {'weight': np.ones((3, 2), np.float32), 'bias': np.zeros(3, np.float32)}
    bads = [{'weight': [[1., 2.]] * 3}, {'weight': 'abc'}, {'bias': 5}, {'weight': good['weight']}]
    for bad in bads:
        def sd(lib): return {k: (lib.tensor(good[k]) if k not in bad else bad[k]) for k in good}
        with pytest.raises(RuntimeError) as r: torch.nn.Linear(2, 3).load_state_dict(sd(torch))
        with pytest.raises(RuntimeError) as o: nn.Linear(2, 3).load_state_dict(sd(nbtorch))
        assert str(o.value) == str(r.value)
    for bad in [[1, 2], None, 3.5]:
        with pytest.raises(TypeError) as r: torch.nn.Linear(2, 3).load_state_dict(bad)
        with pytest.raises(TypeError) as o: nn.Linear(2, 3).load_state_dict(bad)
        assert str(o.value) == str(r.value)


def test_module_errors_like_pytorch():
    for make in [lambda n: type('Early', (n.Module,), {'__init__': lambda self: setattr(self, 'w', n.Parameter(n_ones(n)))})(),
                 lambda n: getattr(n.Linear(2, 2), 'nope')]:
        with pytest.raises(Exception) as r: make(torch.nn)
        with pytest.raises(type(r.value)) as o: make(nn)
        assert str(o.value) == str(r.value)


def n_ones(n): return nbtorch.ones(2) if n is nn else torch.ones(2)


def test_linear_input_errors_like_pytorch():
    for x in [np.ones((4, 5), np.float32), np.ones((4, 2), np.float64)]:
        with pytest.raises(RuntimeError) as r: torch.nn.Linear(2, 3)(torch.tensor(x))
        with pytest.raises(RuntimeError) as o: nn.Linear(2, 3)(nbtorch.tensor(x))
        assert str(o.value) == str(r.value)


def test_module_mechanics(dev):
    m = Net.make(nn, nbtorch)
    m.eval(); assert not any(x.training for x in m.modules())
    m.train(); assert all(x.training for x in m.modules())
    m.to(dev); assert all(p.device.type == nbtorch.device(dev).type for p in m.parameters())
    params = list(m.parameters())
    m.double(); assert all(p.dtype is nbtorch.float64 for p in m.parameters())
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]  # the same Parameter objects
    assert m.bn.num_batches_tracked.dtype is nbtorch.int64
    m.float()
    out = m(nbtorch.randn(2, 1, 4, 4, device=dev)).sum(); out.backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=False); assert all(p.grad.abs().sum().item() == 0 for p in m.parameters())
    m.zero_grad(); assert all(p.grad is None for p in m.parameters())
    seen = []
    m.apply(lambda mod: seen.append(type(mod).__name__))
    assert seen[-1] == 'Net' and seen[0] == 'Conv2d'
    m.requires_grad_(False); assert not any(p.requires_grad for p in m.parameters())
    calls = []
    h1 = m.head.register_forward_pre_hook(lambda mod, args: calls.append('pre'))
    h2 = m.head.register_forward_hook(lambda mod, args, out: out * 0)
    assert m(nbtorch.randn(2, 1, 4, 4, device=dev)).abs().sum().item() == 0 and calls == ['pre']
    h1.remove(); h2.remove()
    assert m(nbtorch.randn(2, 1, 4, 4, device=dev)).abs().sum().item() > 0


def test_containers():
    s = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert isinstance(s[0], nn.Linear) and isinstance(s[-1], nn.Linear) and len(s[1:]) == 2
    s.append(nn.Sigmoid()); assert len(s) == 4 and list(s.state_dict()) == ['0.weight', '0.bias', '2.weight', '2.bias']
    t = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 1), torch.nn.Sigmoid())
    del s[1]; del t[1]; s.insert(0, nn.Tanh()); t.insert(0, torch.nn.Tanh())
    assert repr(s) == repr(t)
    ml = nn.ModuleList([nn.Linear(2, 2)]); ml.append(nn.Tanh()); ml += [nn.ReLU()]
    assert len(ml) == 3 and len(list(nn.Sequential(*ml).parameters())) == 2
    md = nn.ModuleDict({'a': nn.Linear(2, 2)}); md['b'] = nn.ReLU()
    assert list(md.keys()) == ['a', 'b'] and 'a' in md
    pl = nn.ParameterList([nbtorch.ones(2), nn.Parameter(nbtorch.zeros(3))])
    pd = nn.ParameterDict({'x': nbtorch.ones(2)})
    assert [p.shape for p in pl] == [(2,), (3,)] and isinstance(pd['x'], nn.Parameter)
    tpl = torch.nn.ParameterList([torch.ones(2), torch.nn.Parameter(torch.zeros(3))])
    assert repr(pl) == repr(tpl)
    assert repr(pd) == repr(torch.nn.ParameterDict({'x': torch.ones(2)}))
    class Holder(nn.Module):
        def __init__(self):
            super().__init__(); self.ps = pl; self.d = pd
    assert list(Holder().state_dict()) == ['ps.0', 'ps.1', 'd.x']


@pytest.mark.parametrize('make,fan_in', [(lambda n: n.Linear(1000, 400), 1000), (lambda n: n.Conv2d(32, 64, 3), 288),
                                         (lambda n: n.Conv1d(16, 64, 5), 80), (lambda n: n.Bilinear(50, 20, 300), 50),
                                         (lambda n: n.ConvTranspose2d(64, 32, 3), 288)])
def test_default_init_statistics(make, fan_in):
    "Same distributions and bounds as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."
    nbtorch.manual_seed(0)
    ours, ref = make(nn), make(torch.nn)
    bound = 1 / math.sqrt(fan_in)
    for (k, p), (_, q) in zip(ours.named_parameters(), ref.named_parameters()):
        a, b = p.detach().numpy().ravel(), q.detach().numpy().ravel()
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound * (1 + 1e-6), k
        if a.size > 1000:
            assert abs(a.std() - bound / math.sqrt(3)) < 0.03 * bound, k
            assert abs(a.std() - b.std()) < 0.03 * bound and abs(a.mean()) < 0.03 * bound, k


def test_default_init_others():
    nbtorch.manual_seed(0)
    e = nn.Embedding(2000, 50)
    w = e.weight.detach().numpy()
    assert abs(w.std() - 1) < 0.02 and abs(w.mean()) < 0.02
    bn, ln, gn = nn.BatchNorm2d(5), nn.LayerNorm(5), nn.GroupNorm(1, 5)
    for m in (bn, ln, gn):
        assert m.weight.tolist() == [1.] * 5 and m.bias.tolist() == [0.] * 5
    assert bn.running_var.tolist() == [1.] * 5 and bn.num_batches_tracked.item() == 0
