"""The spatial family against PyTorch (convolution, pooling, padding, resampling), beyond the OpInfo
samples of tests/test_opinfo.py: the layers with PyTorch's weights copied in, on every backend (the
stand-in catches NumPy calls on device arrays); printouts; PyTorch's errors and messages; and the
edges OpInfo does not reach (fractional pooling with given samples, NaN and -inf in windows,
integer division, interpolation at sizes where single precision picks the pixel)."""
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from helpers import needs_torch, compare, run_both, same_error, torch
from test_nn_conformance import layer_both, f32

pytestmark = needs_torch
R = np.random.default_rng(3)


def grad_both(fn, arrays, dev='cpu', atol=1e-5, rtol=1e-4, grads=None):
    """fn(lib, *tensors) in both libraries: the output, and the gradient of each float input (of
    those `grads` marks). Where PyTorch's gradient is zeros, nbtorch may give None (no path)."""
    grads = grads or [a.dtype.kind == 'f' for a in arrays]
    ti = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    oi = [nbtorch.tensor(a, device=dev, requires_grad=g) for a, g in zip(arrays, grads)]
    r, o = fn(torch, *ti), fn(nbtorch, *oi)
    compare(o, r, dev, atol=atol, rtol=rtol)
    w = R.standard_normal(tuple(r.shape)).astype(arrays[0].dtype)
    (r * torch.tensor(w)).sum().backward()
    (o * nbtorch.tensor(w, device=dev)).sum().backward()
    for i, (a, b) in enumerate(zip(oi, ti)):
        if b.grad is None: continue
        ga = a.grad if a.grad is not None or b.grad.any() else nbtorch.zeros_like(a)
        compare(ga, b.grad, dev, atol=atol, rtol=rtol, path=f'grad {i}')


LAYERS = {
    'Conv3d': (lambda n: n.Conv3d(2, 4, 3, padding=1, groups=2), [(2, 2, 4, 5, 3)]),
    'Conv3d_stride': (lambda n: n.Conv3d(2, 3, (2, 3, 1), stride=(2, 1, 1), dilation=(1, 2, 1)),
                      [(1, 2, 5, 7, 3)]),
    'Conv2d_reflect': (lambda n: n.Conv2d(2, 3, 3, padding=1, padding_mode='reflect'),
                       [(2, 2, 5, 6)]),
    'Conv1d_circular': (lambda n: n.Conv1d(2, 3, 3, padding=2, padding_mode='circular'),
                        [(2, 2, 7)]),
    'Conv2d_replicate_same': (lambda n: n.Conv2d(2, 2, (2, 3), padding='same',
                                                 padding_mode='replicate'), [(1, 2, 5, 5)]),
    'ConvTranspose1d': (lambda n: n.ConvTranspose1d(4, 2, 3, stride=2, groups=2, dilation=2),
                        [(2, 4, 5)]),
    'ConvTranspose2d_groups': (lambda n: n.ConvTranspose2d(4, 6, (3, 2), stride=(2, 3), padding=1,
                                                           output_padding=(1, 2), groups=2),
                               [(2, 4, 3, 4)]),
    'ConvTranspose3d': (lambda n: n.ConvTranspose3d(2, 3, 2, stride=2, bias=False),
                        [(1, 2, 2, 3, 2)]),
    'MaxPool1d': (lambda n: n.MaxPool1d(3, stride=2, padding=1, ceil_mode=True), [(2, 3, 10)]),
    'MaxPool2d_ceil': (lambda n: n.MaxPool2d(3, stride=2, ceil_mode=True), [(2, 3, 8, 9)]),
    'MaxPool3d': (lambda n: n.MaxPool3d(2, dilation=(1, 2, 1)), [(1, 2, 4, 6, 5)]),
    'AvgPool1d': (lambda n: n.AvgPool1d(4, stride=3, padding=2, ceil_mode=True,
                                        count_include_pad=False), [(2, 3, 11)]),
    'AvgPool2d_ceil': (lambda n: n.AvgPool2d(3, stride=2, padding=1, ceil_mode=True),
                       [(2, 3, 8, 8)]),
    'AvgPool3d': (lambda n: n.AvgPool3d((2, 3, 2), divisor_override=5), [(1, 2, 4, 6, 5)]),
    'LPPool1d': (lambda n: n.LPPool1d(2, 3, stride=2), [(2, 3, 9)]),
    'LPPool2d': (lambda n: n.LPPool2d(3, (2, 3), ceil_mode=True), [(2, 3, 7, 8)]),
    'AdaptiveAvgPool1d': (lambda n: n.AdaptiveAvgPool1d(4), [(2, 3, 10)]),
    'AdaptiveAvgPool3d': (lambda n: n.AdaptiveAvgPool3d((2, None, 3)), [(1, 2, 5, 4, 7)]),
    'AdaptiveMaxPool1d': (lambda n: n.AdaptiveMaxPool1d(3), [(2, 3, 10)]),
    'AdaptiveMaxPool2d': (lambda n: n.AdaptiveMaxPool2d((3, 4)), [(2, 3, 7, 9)]),
    'AdaptiveMaxPool3d': (lambda n: n.AdaptiveMaxPool3d(2), [(1, 2, 5, 3, 4)]),
    'ZeroPad2d': (lambda n: n.ZeroPad2d((1, 0, 2, -1)), [(2, 3, 4, 4)]),
    'ConstantPad1d': (lambda n: n.ConstantPad1d(2, 3.5), [(2, 3, 4)]),
    'ConstantPad3d': (lambda n: n.ConstantPad3d((1, 0, 0, 1, 2, 0), -1.), [(1, 2, 2, 3, 2)]),
    'ReflectionPad1d': (lambda n: n.ReflectionPad1d((3, 1)), [(2, 3, 5)]),
    'ReflectionPad2d': (lambda n: n.ReflectionPad2d(2), [(2, 3, 4, 5)]),
    'ReflectionPad3d': (lambda n: n.ReflectionPad3d((1, 0, 1, 1, 0, 2)), [(1, 2, 3, 3, 4)]),
    'ReplicationPad1d': (lambda n: n.ReplicationPad1d((0, 3)), [(2, 3, 4)]),
    'ReplicationPad2d': (lambda n: n.ReplicationPad2d((2, -1, 1, 3)), [(2, 3, 4, 5)]),
    'ReplicationPad3d': (lambda n: n.ReplicationPad3d(1), [(1, 2, 3, 3, 2)]),
    'CircularPad1d': (lambda n: n.CircularPad1d((2, 1)), [(2, 3, 4)]),
    'CircularPad2d': (lambda n: n.CircularPad2d((1, 2, 0, 3)), [(2, 3, 4, 5)]),
    'CircularPad3d': (lambda n: n.CircularPad3d(1), [(1, 2, 3, 3, 2)]),
    'Upsample_nearest': (lambda n: n.Upsample(scale_factor=(2, 1.5)), [(2, 3, 4, 5)]),
    'Upsample_bicubic': (lambda n: n.Upsample(size=(7, 3), mode='bicubic'), [(2, 3, 4, 5)]),
    'Upsample_trilinear': (lambda n: n.Upsample(scale_factor=1.5, mode='trilinear',
                                                align_corners=True), [(1, 2, 3, 4, 2)]),
    'UpsamplingNearest2d': (lambda n: n.UpsamplingNearest2d(size=7), [(2, 3, 4, 5)]),
    'UpsamplingBilinear2d': (lambda n: n.UpsamplingBilinear2d(scale_factor=2), [(2, 3, 4, 5)]),
    'PixelShuffle': (lambda n: n.PixelShuffle(2), [(2, 8, 3, 4)]),
    'PixelUnshuffle': (lambda n: n.PixelUnshuffle(3), [(2, 2, 6, 3)]),
    'ChannelShuffle': (lambda n: n.ChannelShuffle(3), [(2, 6, 2, 2)]),
    'Fold': (lambda n: n.Fold((4, 5), 2, padding=1, stride=2), [(2, 12, 9)]),
    'Unfold': (lambda n: n.Unfold((2, 3), dilation=(2, 1), padding=1, stride=(1, 2)),
               [(2, 3, 5, 6)]),
}


@pytest.mark.parametrize('name', list(LAYERS))
def test_layer(dev, name):
    make, shapes = LAYERS[name]
    layer_both(make, [f32(*s) * 2 for s in shapes], dev)


MORE = [lambda n: n.MaxPool1d(3, 2, return_indices=True), lambda n: n.AvgPool1d(3, padding=1),
        lambda n: n.AvgPool3d(2, stride=1, ceil_mode=True), lambda n: n.LPPool2d(2, 3),
        lambda n: n.AdaptiveMaxPool2d((None, 2), return_indices=True),
        lambda n: n.MaxUnpool2d(2), lambda n: n.MaxUnpool3d(3, stride=2, padding=1),
        lambda n: n.FractionalMaxPool2d(3, output_ratio=(0.5, 0.5)),
        lambda n: n.FractionalMaxPool3d(2, output_size=3),
        lambda n: n.Conv3d(4, 8, (1, 3, 3), padding='same', padding_mode='circular', bias=False),
        lambda n: n.ConvTranspose3d(4, 2, 3, output_padding=(0, 1, 0), stride=2),
        lambda n: n.ConvTranspose1d(2, 2, 3, groups=2, dilation=3),
        lambda n: n.Upsample(scale_factor=2), lambda n: n.Upsample(size=(3, 4), mode='bilinear'),
        lambda n: n.ZeroPad1d(2), lambda n: n.ZeroPad3d((1, 2, 3, 4, 5, 6)),
        lambda n: n.ConstantPad2d((1, 2, 3, 4), 2), lambda n: n.Fold(4, 2)]


@pytest.mark.parametrize('i', range(len(MORE)))
def test_repr(i):
    assert repr(MORE[i](nn)) == repr(MORE[i](torch.nn))


@pytest.mark.parametrize('name', [n for n in LAYERS if n.startswith(('Conv', 'Max', 'Avg'))])
def test_repr_of_layers(name):
    make, _ = LAYERS[name]
    assert repr(make(nn)) == repr(make(torch.nn))


def test_conv3d_and_transpose_init_statistics():
    "PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."
    nbtorch.manual_seed(0)
    for layer, fan_in in [(nn.Conv3d(8, 16, 3), 8 * 27), (nn.ConvTranspose3d(8, 16, 3), 16 * 27),
                          (nn.ConvTranspose1d(8, 4, 5, groups=2), 2 * 5)]:
        bound = 1 / np.sqrt(fan_in)
        for p in layer.parameters():
            a = p.detach().numpy()
            assert np.abs(a).max() <= bound
            if a.size > 1000: assert abs(a.std() - bound / np.sqrt(3)) < 0.05 * bound


def test_return_indices_and_unpool_round_trip(dev):
    x = f32(2, 3, 7, 8)
    run_both(lambda lib, a: lib.nn.MaxPool2d(3, stride=2, padding=1, return_indices=True)(a), [x],
             dev)
    def unpool(lib, a):
        y, i = lib.nn.functional.max_pool2d(a, 2, return_indices=True)
        return lib.nn.functional.max_unpool2d(y, i, 2, output_size=a.shape)
    grad_both(unpool, [x], dev)
    run_both(lambda lib, a: lib.nn.functional.adaptive_max_pool3d(a, (2, 3, 2), True),
             [f32(1, 2, 5, 4, 3)], dev)


def test_pool_nan_and_inf():
    "A NaN wins the window (and its gradient); a window of -inf keeps its first index inside."
    x = np.array([[[1., np.nan, 3., -np.inf, -np.inf, 2.]]], np.float32)
    for k, kw in [(2, {}), (3, dict(stride=1, padding=1)), (2, dict(stride=2, padding=1))]:
        run_both(lambda lib, a: lib.nn.functional.max_pool1d(a, k, return_indices=True, **kw), [x])
    grad_both(lambda lib, a: lib.nn.functional.max_pool1d(a, 3, stride=1, padding=1), [x[..., 2:]])


def test_integer_pools():
    "Integers pool as integers: the average truncates toward zero, as PyTorch's C++ division."
    x = R.integers(-20, 20, (2, 3, 5, 6))
    for kw in [dict(kernel_size=2), dict(kernel_size=3, padding=1, count_include_pad=False),
               dict(kernel_size=2, divisor_override=-3),
               dict(kernel_size=3, stride=2, ceil_mode=True)]:
        run_both(lambda lib, a: lib.nn.functional.avg_pool2d(a, **kw), [x])
    run_both(lambda lib, a: lib.nn.functional.max_pool2d(a, 3, 2, 1, return_indices=True), [x])


@pytest.mark.parametrize('k,out', [(3, (2, 3)), ((2, 3), (4, 4)), (2, (5, 2))])
def test_fractional_max_pool_with_given_samples(k, out):
    x, u = R.standard_normal((2, 3, 9, 8)), R.random((2, 3, 2))
    f = lambda lib, a, s: lib.nn.functional.fractional_max_pool2d(a, k, out, return_indices=True,
                                                                  _random_samples=s)
    run_both(f, [x, u])
    grad_both(lambda lib, a, s: f(lib, a, s)[0], [x, u], grads=[True, False])
    x3 = R.standard_normal((1, 2, 6, 7, 5)).astype(np.float32)
    u3 = R.random((1, 2, 3)).astype(np.float32)
    f3 = lambda lib, a, s: lib.nn.functional.fractional_max_pool3d(
        a, 2, output_ratio=0.5, return_indices=True, _random_samples=s)
    run_both(f3, [x3, u3])


@pytest.mark.parametrize('n,o', [(5, 3), (7, 11), (10, 3), (3, 10), (6, 12), (13, 7)])
@pytest.mark.parametrize('mode', ['nearest', 'nearest-exact', 'linear', 'area'])
def test_interpolate_sizes(n, o, mode):
    "Odd ratios, where single precision (nearest) or the source position's rounding picks pixels."
    x = f32(2, 3, n)
    grad_both(lambda lib, a: lib.nn.functional.interpolate(a, size=o, mode=mode), [x])
    s = o / n
    grad_both(lambda lib, a: lib.nn.functional.interpolate(a, scale_factor=s, mode=mode), [x])


@pytest.mark.parametrize('align', [False, True])
def test_interpolate_2d_3d(dev, align):
    x, x3 = f32(2, 2, 5, 4), f32(1, 2, 3, 4, 5)
    for kw in [dict(size=(7, 3)), dict(scale_factor=(1.7, 0.6)),
               dict(scale_factor=2.5, recompute_scale_factor=True)]:
        for mode in ['bilinear', 'bicubic']:
            grad_both(lambda lib, a: lib.nn.functional.interpolate(
                a, mode=mode, align_corners=align, **kw), [x], dev)
    grad_both(lambda lib, a: lib.nn.functional.interpolate(a, (4, 2, 6), mode='trilinear',
                                                           align_corners=align), [x3], dev)
    grad_both(lambda lib, a: lib.nn.functional.interpolate(a, scale_factor=(0.7, 1.3, 2)), [x3],
              dev)


def _resize_cases(seed, n, modes):
    "Random resizes: (shape, mode, align_corners, kwargs), by size or by scale_factor (which can"
    " leave a dim's size unchanged with a scale that is not 1)."
    rng, cases = np.random.default_rng(seed), []
    while len(cases) < n:
        C, H, W = rng.integers(2, 6), rng.integers(1, 25), rng.integers(1, 25)
        mode = modes[rng.integers(len(modes))]
        align = bool(rng.integers(2)) and mode != 'lanczos'
        if rng.integers(2): kw = dict(size=(int(rng.integers(1, 25)), int(rng.integers(1, 25))))
        else:
            kw = dict(scale_factor=(float(rng.uniform(0.15, 3)), float(rng.uniform(0.15, 3))))
            if int(H * kw['scale_factor'][0]) < 1 or int(W * kw['scale_factor'][1]) < 1: continue
        cases.append(((2, int(C), int(H), int(W)), mode, align, kw))
    return cases


def _interp(lib, a, mode, align, kw, aa=True):
    # PyTorch 2.13's contiguous-format resampling kernel is wrong where the output is 1 pixel wide
    # (every row of the result is the first row's); its channels-last kernel is right: compared
    # with that one there (and nbtorch's answer pinned by test_interpolate_one_pixel_wide)
    if lib is torch: a = a.contiguous(memory_format=torch.channels_last)
    return lib.nn.functional.interpolate(a, mode=mode, align_corners=align, antialias=aa, **kw)


@pytest.mark.parametrize('dtype', [np.float32, np.float64])
def test_interpolate_antialias(dev, dtype):
    "Antialiased resizes against PyTorch, values and gradients: shrinking, enlarging, both at once"
    " (on the CPU, many taps go through a matrix product; on a device, tap by tap)."
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == np.float32 else dict(atol=1e-12, rtol=1e-12)
    cases = _resize_cases(5, 40, ['bilinear', 'bicubic', 'lanczos'])
    for shape, mode, align, kw in cases[:10] if dev != 'cpu' else cases:
        x = R.standard_normal(shape).astype(dtype)
        grad_both(lambda lib, a: _interp(lib, a, mode, align, kw), [x], dev, **tol)


def test_interpolate_antialias_nan_and_inf(dev):
    "A NaN, inf or -inf pixel reaches the outputs whose footprint holds it, and no other."
    rng = np.random.default_rng(7)
    for _ in range(30):
        n, o = (int(v) for v in rng.integers(2, 40, 2))
        x = rng.standard_normal((1, 2, 3, n))
        x[0, :, :, rng.integers(n)] = [np.nan, np.inf, -np.inf]
        for mode in ['bilinear', 'bicubic', 'lanczos']:
            run_both(lambda lib, a: _interp(lib, a, mode, False, dict(size=(5, o))), [x], dev,
                     atol=1e-12, rtol=1e-12)

def test_interpolate_uint8(dev):
    "uint8 images, with and without antialias, pixel for pixel: PyTorch's fixed-point arithmetic."
    cases = _resize_cases(6, 60, ['bilinear', 'bicubic', 'lanczos', 'bilinear-', 'bicubic-'])
    for shape, mode, align, kw in cases[:12] if dev != 'cpu' else cases:
        x = R.integers(0, 256, shape).astype(np.uint8)
        run_both(lambda lib, a: _interp(lib, a, mode.strip('-'), align, kw,
                                        aa=not mode.endswith('-')), [x], dev)


def test_interpolate_one_pixel_wide():
    "A resize to one pixel wide is the transposed resize to one pixel high (PyTorch's is not)."
    x = nbtorch.tensor(R.standard_normal((2, 3, 12, 9)))
    for mode in ['bilinear', 'bicubic', 'lanczos']:
        wide = F.interpolate(x, size=(5, 1), mode=mode, antialias=True)
        high = F.interpolate(x.transpose(2, 3), size=(1, 5), mode=mode, antialias=True)
        compare(wide, torch.tensor(high.transpose(2, 3).numpy()), atol=1e-12, rtol=1e-12)


def test_interpolate_errors():
    "Antialias outside its modes, lanczos without it, and dtypes PyTorch does not resample."
    x, x3 = f32(1, 2, 4, 4), f32(1, 2, 4)
    F_ = lambda lib: lib.nn.functional.interpolate
    for a, kw in [(x, dict(mode='nearest', antialias=True)),
                  (x3, dict(mode='linear', antialias=True)),
                  (x3, dict(mode='bilinear', antialias=True)), (x, dict(mode='lanczos')),
                  (x, dict(mode='lanczos', antialias=True, align_corners=True)),
                  (x3, dict(mode='lanczos')), (f32(1, 2, 3, 4, 5), dict(mode='lanczos'))]:
        same_error(lambda lib, t: F_(lib)(t, size=(3,) * (t.ndim - 2), **kw), [a])
    for dt, modes in [(np.int64, ['bilinear', 'bicubic', 'area', 'bilinear+']),
                      (np.bool_, ['bicubic']), (np.uint8, ['area', 'linear', 'trilinear']),
                      (np.float16, ['bicubic+'])]:
        for mode in modes:
            nd = dict(linear=1, trilinear=3).get(mode, 2)
            a = np.ones((1, 2) + (4,) * nd, dt)
            same_error(lambda lib, t: F_(lib)(t, size=(3,) * nd, mode=mode.strip('+'),
                                              antialias=mode.endswith('+')), [a])

@pytest.mark.parametrize('mode', ['bilinear', 'nearest', 'bicubic'])
@pytest.mark.parametrize('padding_mode', ['zeros', 'border', 'reflection'])
@pytest.mark.parametrize('align', [False, True])
def test_grid_sample(mode, padding_mode, align):
    "Points inside and well outside [-1, 1], so that every padding mode is at work."
    x, g = f32(2, 3, 4, 5).astype(np.float64), (R.random((2, 6, 7, 2)) * 3.2 - 1.6)
    f = lambda lib, a, b: lib.nn.functional.grid_sample(a, b, mode, padding_mode, align)
    grad_both(f, [x, g], atol=1e-7, rtol=1e-7)
    if mode == 'bicubic': return
    x3, g3 = f32(1, 2, 3, 4, 5).astype(np.float64), R.random((1, 3, 2, 4, 3)) * 3.2 - 1.6
    grad_both(f, [x3, g3], atol=1e-7, rtol=1e-7)


def test_on_the_device(dev):
    "A few of the family on every backend: the stand-in refuses NumPy calls on device arrays."
    x, g = f32(2, 3, 6, 5), R.random((2, 4, 3, 2)).astype(np.float32) * 2 - 1
    grad_both(lambda lib, a: lib.nn.functional.pad(a, (2, 1, -1, 3), mode='reflect'), [x], dev)
    grad_both(lambda lib, a, b: lib.nn.functional.grid_sample(a, b, align_corners=False), [x, g],
              dev)
    def fold_unfold(lib, a):
        F = lib.nn.functional
        return F.fold(F.unfold(a, 2, padding=1), (6, 5), 2, padding=1)
    grad_both(fold_unfold, [x], dev)
    run_both(lambda lib, a: lib.nn.functional.max_pool2d(a, 3, 2, 1, return_indices=True), [x], dev)


def test_constant_pad_nd_and_grid_samplers_are_torch_level():
    x = f32(2, 3)
    run_both(lambda lib, a: lib.constant_pad_nd(a, (1, -1, 2, 0), 7.), [x])
    g = R.random((1, 2, 2, 2)).astype(np.float32)
    run_both(lambda lib, a, b: lib.grid_sampler_2d(a, b, 1, 2, False), [f32(1, 2, 3, 3), g])
    assert 'constant_pad_nd' not in F.__all__ and 'grid_sampler_2d' not in F.__all__


ERRORS = [
    lambda lib, x: lib.nn.functional.pad(x, (1,)),
    lambda lib, x: lib.nn.functional.pad(x, (5, 0), mode='reflect'),
    lambda lib, x: lib.nn.functional.pad(x, (7, 0), mode='circular'),
    lambda lib, x: lib.nn.functional.pad(x, (1, 1), mode='mirror'),
    lambda lib, x: lib.nn.functional.max_pool2d(x, 3, padding=2),
    lambda lib, x: lib.nn.functional.avg_pool2d(x, 3, divisor_override=0),
    lambda lib, x: lib.nn.functional.max_pool2d(x, 7),
    lambda lib, x: lib.nn.functional.pixel_shuffle(x, 2),
    lambda lib, x: lib.nn.functional.pixel_unshuffle(x, 2),
    lambda lib, x: lib.nn.functional.channel_shuffle(x, 2),
    lambda lib, x: lib.nn.functional.channel_shuffle(x[0, 0], 1),
    lambda lib, x: lib.nn.functional.interpolate(x),
    lambda lib, x: lib.nn.functional.interpolate(x, size=2, scale_factor=2.),
    lambda lib, x: lib.nn.functional.interpolate(x, size=2, mode='linear'),
    lambda lib, x: lib.nn.functional.interpolate(x, size=2, align_corners=True),
    lambda lib, x: lib.nn.functional.interpolate(x, size=(2, 2, 2)),
    lambda lib, x: lib.nn.functional.interpolate(x, size=2, mode='cubic'),
    lambda lib, x: lib.nn.functional.max_unpool2d(x, lib.full(x.shape, 999), 2),
    lambda lib, x: lib.nn.functional.max_unpool2d(x, lib.zeros(x.shape, dtype=lib.long), 2,
                                                  output_size=(20, 20)),
    lambda lib, x: lib.nn.functional.grid_sample(x, lib.zeros(3, 2, 2, 3), align_corners=False),
    lambda lib, x: lib.nn.functional.grid_sample(x, lib.zeros(3, 2, 2, 2), mode='area'),
    lambda lib, x: lib.nn.functional.fractional_max_pool2d(x, 2),
    lambda lib, x: lib.nn.functional.fold(x.reshape(3, 10, 9), 4, 2),
    lambda lib, x: lib.nn.functional.fold(x.reshape(3, 12, 7, 1)[..., 0], 4, 2),
    lambda lib, x: lib.nn.functional.fractional_max_pool2d(x, 4, output_size=4),
    lambda lib, x: lib.nn.functional.conv_transpose2d(x, lib.ones(2, 1, 2, 2)),
    lambda lib, x: lib.nn.ConvTranspose2d(3, 3, 3, padding_mode='reflect'),
    lambda lib, x: lib.nn.FractionalMaxPool2d(2, output_ratio=1.5),
]


@pytest.mark.parametrize('i', range(len(ERRORS)))
def test_errors(i):
    "PyTorch's exception type and the first line of its message."
    same_error(ERRORS[i], [f32(3, 3, 5, 6)])


def test_padding_mode_must_be_known():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(3, 3, 3, padding_mode='mirror')


def test_grid_sample_warns_of_its_default():
    "PyTorch warns when align_corners is left out, since its default changed (1.3.0); nbtorch too."
    with pytest.warns(UserWarning, match='align_corners=False since 1.3.0'):
        F.grid_sample(nbtorch.ones(1, 1, 2, 2), nbtorch.zeros(1, 1, 1, 2))
