"bfloat16 in nn.functional and the nn modules, next to PyTorch: dtypes, values, gradients."
import numpy as np
import pytest
import nbtorch
import nbtorch.nn.functional as NF
from helpers import needs_torch, torch

pytestmark = needs_torch
TF = torch.nn.functional if torch is not None else None
TOL = 2 ** -6  # two units in bfloat16's last place, relative to the largest value compared


def f32(t):
    "A tensor of either library as float64 NumPy values (bfloat16 converts exactly)."
    return t.detach().float().numpy().astype(np.float64)


def both(a, grad=True):
    "The same bfloat16 tensor in nbtorch and PyTorch, from float32 values `a`."
    n, t = nbtorch.tensor(a).bfloat16(), torch.tensor(a).bfloat16()
    return (n.requires_grad_(), t.requires_grad_()) if grad else (n, t)


def lib(F):
    "The library whose nn.functional `F` is."
    return torch if F is TF else nbtorch


def close(ours, theirs, tol=TOL):
    a, b = f32(ours), f32(theirs)
    assert a.shape == b.shape
    err = np.abs(a - b).max(initial=0)
    assert err <= tol * max(1., np.abs(b).max(initial=0)), err


def run(f, shapes, exact, seed=0):
    "Run f(F, *tensors) in both libraries on bfloat16 inputs; compare dtype, values, gradients."
    rng = np.random.default_rng(seed)
    ns, ts = zip(*[both(rng.uniform(-2, 2, s).astype(np.float32)) for s in shapes])
    yn, yt = f(NF, *ns), f(TF, *ts)
    assert repr(yn.dtype) == repr(yt.dtype) == 'torch.bfloat16'
    if exact == 'once':  # PyTorch's float32 result rounded, and within bfloat16 of its kernel's
        once = f(TF, *[t.detach().float() for t in ts]).bfloat16()
        np.testing.assert_array_equal(f32(yn), f32(once))
        close(yn, yt)
    elif exact: np.testing.assert_array_equal(f32(yn), f32(yt))
    else: close(yn, yt)
    g = rng.uniform(-1, 1, tuple(yt.shape)).astype(np.float32)
    yn.backward(nbtorch.tensor(g).bfloat16()); yt.backward(torch.tensor(g).bfloat16())
    for a, b in zip(ns, ts):
        assert repr(a.grad.dtype) == repr(b.grad.dtype) == 'torch.bfloat16'
        close(a.grad, b.grad, 2 * TOL)  # PyTorch's backward kernels round in between


X2, X1, X3, V = (2, 3, 6, 6), (2, 3, 8), (1, 2, 4, 4, 4), (4, 5)
# PyTorch's kernel computes in float32 and rounds once, and so does nbtorch: bit for bit
EXACT = {
    'linear': (lambda F, x, w, b: F.linear(x, w, b), [V, (3, 5), (3,)]),
    'bilinear': (lambda F, a, b, w, c: F.bilinear(a, b, w, c), [V, (4, 3), (2, 5, 3), (2,)]),
    'conv1d': (lambda F, x, w, b: F.conv1d(x, w, b, padding=1), [X1, (4, 3, 3), (4,)]),
    'conv2d': (lambda F, x, w, b: F.conv2d(x, w, b, padding=1, stride=2), [X2, (4, 3, 3, 3), (4,)]),
    'conv3d': (lambda F, x, w: F.conv3d(x, w), [X3, (3, 2, 2, 2, 2)]),
    'interpolate_bicubic': (lambda F, x: F.interpolate(x, size=(9, 9), mode='bicubic'), [X2]),
    'interpolate_align_corners': (lambda F, x: F.interpolate(x, size=11, mode='linear',
                                                             align_corners=True), [X1]),
    'interpolate_bilinear': (lambda F, x: F.interpolate(x, scale_factor=2, mode='bilinear'), [X2]),
    'interpolate_linear': (lambda F, x: F.interpolate(x, scale_factor=2, mode='linear'), [X1]),
    'interpolate_trilinear': (lambda F, x: F.interpolate(x, scale_factor=2, mode='trilinear'),
                              [X3]),
    'avg_pool1d': (lambda F, x: F.avg_pool1d(x, 3, 2, 1), [X1]),
    'avg_pool2d': (lambda F, x: F.avg_pool2d(x, 3, 2, 1), [X2]),
    'avg_pool2d_k2': (lambda F, x: F.avg_pool2d(x, 2), [X2]),
    'lp_pool2d': (lambda F, x: F.lp_pool2d(x, 2, 2), [X2]),
    'lp_pool1d': (lambda F, x: F.lp_pool1d(x, 2, 3), [X1]),  # (bfloat16's x.pow(3) is not exact)
    'max_pool2d': (lambda F, x: F.max_pool2d(x, 3, 2, 1), [X2]),
    'max_pool1d': (lambda F, x: F.max_pool1d(x, 2), [X1]),
    'max_pool3d': (lambda F, x: F.max_pool3d(x, 2), [X3]),
    'layer_norm': (lambda F, x, w, b: F.layer_norm(x, (6, 6), w, b), [X2, (6, 6), (6, 6)]),
    'group_norm': (lambda F, x, w, b: F.group_norm(x, 3, w, b), [X2, (3,), (3,)]),
    'rms_norm': (lambda F, x, w: F.rms_norm(x, (5,), w), [V, (5,)]),
    'gelu': (lambda F, x: F.gelu(x), [V]),
    'gelu_tanh': (lambda F, x: F.gelu(x, approximate='tanh'), [V]),
    'silu': (lambda F, x: F.silu(x), [V]),
    'selu': (lambda F, x: F.selu(x), [V]),
    'softplus': (lambda F, x: F.softplus(x), [V]),
    'mish': (lambda F, x: F.mish(x), [V]),
    'hardsigmoid': (lambda F, x: F.hardsigmoid(x), [V]),
    'hardswish': (lambda F, x: F.hardswish(x), [V]),
    'mse_loss': (lambda F, x, y: F.mse_loss(x, y), [V, V]),
    'normalize': (lambda F, x: F.normalize(x), [X2]),
    'cosine_similarity': (lambda F, x, y: F.cosine_similarity(x, y), [V, V]),
    'pairwise_distance': (lambda F, x, y: F.pairwise_distance(x, y), [V, V]),
}
# PyTorch's kernel depends on the CPU: through oneDNN (AVX-512) it rounds once, in its fallback
# kernel (AVX2) it rounds the columns and sums them in bfloat16. nbtorch rounds once: bit for bit
# PyTorch's float32 result rounded, and within bfloat16 of its bfloat16 kernel's, on either CPU
ONCE = {
    'conv_transpose1d': (lambda F, x, w, b: F.conv_transpose1d(x, w, b, stride=2),
                         [X1, (3, 2, 3), (2,)]),
    'conv_transpose2d': (lambda F, x, w, b: F.conv_transpose2d(x, w, b, stride=2),
                         [X2, (3, 2, 3, 3), (2,)]),
    'conv_transpose3d': (lambda F, x, w: F.conv_transpose3d(x, w), [X3, (2, 2, 2, 2, 2)]),
}
# PyTorch's kernel rounds in between (or its formula is not float32-rounded-once): within bfloat16
CLOSE = {
    'instance_norm': (lambda F, x: F.instance_norm(x), [X2]),
    'batch_norm_train': (lambda F, x: F.batch_norm(x, None, None, training=True), [(4, 3, 8, 8)]),
    'batch_norm_train_affine': (lambda F, x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                                [X2, (3,), (3,)]),
    'batch_norm_1d_train': (lambda F, x: F.batch_norm(x, None, None, training=True), [(16, 3)]),
    'log_softmax_lastdim': (lambda F, x: F.log_softmax(x, -1), [(64, 5)]),
    'embedding_bag_mean': (lambda F, w: F.embedding_bag(
        lib(F).tensor([1, 2, 5, 1, 3, 0]), w, lib(F).tensor([0, 2])), [(6, 3)]),
    'cross_entropy': (lambda F, x: F.cross_entropy(x, lib(F).tensor([0, 4, 2, 1])), [V]),
}


@pytest.mark.parametrize('name', EXACT)
def test_rounded_once_as_pytorch(name):
    f, shapes = EXACT[name]
    run(f, shapes, exact=True)


@pytest.mark.parametrize('name', ONCE)
def test_rounded_once_whatever_pytorchs_kernel(name):
    f, shapes = ONCE[name]
    run(f, shapes, exact='once')


@pytest.mark.parametrize('name', CLOSE)
def test_within_bfloat16_of_pytorch(name):
    f, shapes = CLOSE[name]
    run(f, shapes, exact=False)


def test_linear_gradients_are_exact():
    rng = np.random.default_rng(1)
    shapes = [(8, 16), (4, 16), (4,)]
    ns, ts = zip(*[both(rng.uniform(-2, 2, s).astype(np.float32)) for s in shapes])
    NF.linear(*ns).sum().backward(); TF.linear(*ts).sum().backward()
    for a, b in zip(ns, ts): np.testing.assert_array_equal(f32(a.grad), f32(b.grad))


@pytest.mark.parametrize('nd', [1, 2, 3])
def test_max_pool_indices(nd):
    x, r = both(np.random.default_rng(nd).uniform(-2, 2, (2, 3) + (6,) * nd).astype(np.float32))
    yn, i = getattr(NF, f'max_pool{nd}d')(x, 3, 2, 1, return_indices=True)
    yt, j = getattr(TF, f'max_pool{nd}d')(r, 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(f32(yn), f32(yt))
    np.testing.assert_array_equal(i.numpy(), j.numpy())


@pytest.mark.parametrize('name', ['silu', 'selu', 'hardsigmoid', 'hardswish', 'mish'])
def test_inplace_activations_write_the_rounded_result(name):
    a = np.linspace(-3, 3, 13, dtype=np.float32)
    x, r = both(a, grad=False)
    y = getattr(NF, name)(x, inplace=True)
    getattr(TF, name)(r, inplace=True)
    assert y is x and x.dtype is nbtorch.bfloat16
    np.testing.assert_array_equal(f32(x), f32(r))
    z = nbtorch.tensor(a)  # float32 in place is untouched by the bfloat16 path
    getattr(NF, name)(z, True)
    assert z.dtype is nbtorch.float32
    close(z, getattr(TF, name)(torch.tensor(a)), 1e-6)


def test_module_casts():
    torch.manual_seed(0)
    tm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.GELU(),
                             torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.LayerNorm(64),
                             torch.nn.Linear(64, 5))
    nn = nbtorch.nn
    nm = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.GELU(), nn.AvgPool2d(2),
                       nn.Flatten(), nn.LayerNorm(64), nn.Linear(64, 5))
    nm.load_state_dict({k: nbtorch.tensor(v.numpy()) for k, v in tm.state_dict().items()})
    params = list(nm.parameters())
    assert nm.bfloat16() is nm and tm.bfloat16() is tm
    assert all(p is q for p, q in zip(params, nm.parameters()))  # the same Parameters, cast
    for k, v in tm.state_dict().items():
        assert repr(nm.state_dict()[k].dtype) == repr(v.dtype), k  # num_batches_tracked stays int64
    x, r = both(np.random.default_rng(3).uniform(-2, 2, (2, 3, 10, 10)).astype(np.float32))
    yn, yt = nm(x), tm(r)
    assert repr(yn.dtype) == repr(yt.dtype) == 'torch.bfloat16'
    np.testing.assert_array_equal(f32(yn), f32(yt))  # each layer rounds as PyTorch's does
    yn.float().sum().backward(); yt.float().sum().backward()
    for p, q in zip(nm.parameters(), tm.parameters()):
        assert repr(p.grad.dtype) == repr(q.grad.dtype)
        close(p.grad, q.grad, 4 * TOL)
    for cast in ['half', 'double', 'float', 'bfloat16']:
        ours, theirs = getattr(nm, cast)()[0].weight.dtype, getattr(tm, cast)()[0].weight.dtype
        assert repr(ours) == repr(theirs) and theirs.is_floating_point, cast
        assert repr(nm[1].running_mean.dtype) == repr(tm[1].running_mean.dtype)


def test_batch_norm_running_statistics():
    tm, nm = torch.nn.BatchNorm2d(3).bfloat16(), nbtorch.nn.BatchNorm2d(3).bfloat16()
    a = np.random.default_rng(4).uniform(-2, 2, (4, 3, 6, 6)).astype(np.float32)
    x, r = both(a, grad=False)
    np.testing.assert_array_equal(f32(nm(x)), f32(tm(r)))
    assert nm.running_mean.dtype is nbtorch.bfloat16
    close(nm.running_mean, tm.running_mean); close(nm.running_var, tm.running_var)
    nm.eval(); tm.eval()
    close(nm(x), tm(r))


def test_float32_path_unchanged():
    "The float32 functions give float32, as before: the bfloat16 path is a dtype check away."
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((4, 5), np.float32), rng.standard_normal((3, 5), np.float32)
    y = NF.linear(nbtorch.tensor(x), nbtorch.tensor(w))
    assert y.dtype is nbtorch.float32
    np.testing.assert_allclose(y.numpy(), x @ w.T, rtol=1e-6)
    img = nbtorch.tensor(rng.standard_normal((1, 2, 5, 5), np.float32))
    assert NF.conv2d(img, nbtorch.ones(3, 2, 3, 3)).dtype is nbtorch.float32
    assert NF.interpolate(img, scale_factor=2, mode='bilinear').dtype is nbtorch.float32
    with pytest.raises(RuntimeError, match='same dtype'):
        NF.linear(nbtorch.tensor(x).bfloat16(), nbtorch.tensor(w))


@pytest.mark.filterwarnings('ignore:Mismatch dtype')  # PyTorch's: its rms_norm is not fused then
@pytest.mark.parametrize('name', ['batch_norm_eval', 'batch_norm_train', 'layer_norm', 'group_norm',
                                  'rms_norm'])
def test_norms_with_float32_weights(name):
    "A bfloat16 input with float32 weights (norms kept in float32): bfloat16 out, rounded once."
    rng = np.random.default_rng(6)
    a = rng.uniform(-2, 2, (4, 3, 5, 5)).astype(np.float32)
    w, b = rng.uniform(.5, 1.5, 5).astype(np.float32), rng.uniform(-1, 1, 5).astype(np.float32)
    x, r = both(a, grad=False)

    def call(F, lib, x):
        W, B = lib.tensor(w), lib.tensor(b)
        if name == 'batch_norm_eval':
            return F.batch_norm(x, lib.zeros(3) + .1, lib.ones(3) * 1.3, W[:3], B[:3])
        if name == 'batch_norm_train':
            return F.batch_norm(x, None, None, W[:3], B[:3], training=True)
        if name == 'layer_norm': return F.layer_norm(x, (5,), W, B)
        if name == 'group_norm': return F.group_norm(x, 3, W[:3], B[:3])
        return F.rms_norm(x, (5,), W)
    yn, yt = call(NF, nbtorch, x), call(TF, torch, r)
    assert repr(yn.dtype) == repr(yt.dtype) == 'torch.bfloat16'
    np.testing.assert_array_equal(f32(yn), f32(yt))
