"bfloat16 (through ml_dtypes) as PyTorch has it on the CPU: facts, promotion, printing, arithmetic, autograd, files, GPU."
import io, json, zipfile
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
import standin
from helpers import needs_torch, torch

pytestmark = needs_torch
NAMES = ['bfloat16', 'float16', 'float32', 'float64', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool']


def bits(t):
    "The raw 16 bits of a bfloat16 tensor of either library, as uint16."
    if isinstance(t, nbtorch.Tensor): return t._data.view(np.uint16)
    return t.view(torch.int16).numpy().view(np.uint16)


def pair(values, dtype='bfloat16'):
    "The same tensor in both libraries, made from float32 values."
    a = np.asarray(values, np.float32)
    return nbtorch.tensor(a).to(getattr(nbtorch, dtype)), torch.tensor(a).to(getattr(torch, dtype))


def test_dtype_facts_and_finfo():
    x, r = pair([1.5, 2.])
    assert (x.element_size(), x.is_floating_point(), repr(x.dtype)) == \
           (r.element_size(), r.is_floating_point(), repr(r.dtype))
    for name in ['bfloat16', 'float16', 'float32', 'float64']:
        ours, theirs = nbtorch.finfo(getattr(nbtorch, name)), torch.finfo(getattr(torch, name))
        assert repr(ours) == repr(theirs)
        for k in ['bits', 'eps', 'max', 'min', 'tiny', 'smallest_normal', 'resolution', 'dtype']:
            assert getattr(ours, k) == getattr(theirs, k), (name, k)
    for name in ['uint8', 'int8', 'int16', 'int32', 'int64']:
        assert repr(nbtorch.iinfo(getattr(nbtorch, name))) == repr(torch.iinfo(getattr(torch, name)))
    assert nbtorch.BFloat16Tensor([1, 2]).dtype is nbtorch.bfloat16
    with pytest.raises(TypeError, match='floating point'): nbtorch.finfo(nbtorch.int64)


def test_promotion_as_pytorchs():
    for a in NAMES:
        for b in NAMES:
            ours = nbtorch.promote_types(getattr(nbtorch, a), getattr(nbtorch, b))
            assert repr(ours) == repr(torch.promote_types(getattr(torch, a), getattr(torch, b))), (a, b)
    x, r = pair([1., 2.])
    for other in [1, 2.5, True]:
        assert repr(nbtorch.result_type(x, other)) == repr(torch.result_type(r, other))
    for name in ['float16', 'float32', 'int32', 'bool']:
        o, ro = pair([3., 4.], name)
        assert repr((x + o).dtype) == repr((r + ro).dtype) == repr((o * x).dtype), name
        assert repr((x + o[0]).dtype) == repr((r + ro[0]).dtype), name  # a 0-d operand


@pytest.mark.parametrize('values', [[1e-5, 1e5, 3.], [[1., 2.], [3., 4.]], 3.14159, [], [np.inf, np.nan, -1.],
                                    [0.1, -200.7, 1000.25], np.arange(1200) / 7])
def test_printing_as_pytorchs(values):
    x, r = pair(values)
    assert repr(x) == repr(r)
    assert repr(x.requires_grad_()) == repr(r.requires_grad_())


def test_conversions_both_ways():
    v = np.random.default_rng(0).standard_normal(1000).astype(np.float32) * 100
    x, r = pair(v)
    assert (bits(x) == bits(r)).all()  # float32 -> bfloat16 rounds to nearest even, as PyTorch
    assert (bits(nbtorch.tensor(v.astype(np.float64)).bfloat16()) == bits(torch.tensor(v.astype(np.float64)).bfloat16())).all()
    for name in ['float32', 'float64', 'float16', 'int64', 'int32', 'uint8', 'bool']:
        ours, theirs = x.to(getattr(nbtorch, name)), r.to(getattr(torch, name))
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy(), err_msg=name)
    i = nbtorch.arange(-300, 300, 7)
    assert (bits(i.bfloat16()) == bits(torch.arange(-300, 300, 7).bfloat16())).all()
    assert x.tolist() == r.tolist() and x[3].item() == r[3].item()
    assert type(x[0].item()) is float
    for make in ['zeros', 'ones', 'empty', 'randn', 'rand']:
        assert getattr(nbtorch, make)(2, 3, dtype=nbtorch.bfloat16).dtype is nbtorch.bfloat16
        assert getattr(nbtorch, make + '_like')(x).dtype is nbtorch.bfloat16
    assert nbtorch.full((2,), 1 / 3, dtype=nbtorch.bfloat16).tolist() == \
           torch.full((2,), 1 / 3, dtype=torch.bfloat16).tolist()
    assert (bits(nbtorch.arange(0, 5, 0.3, dtype=nbtorch.bfloat16))
            == bits(torch.arange(0, 5, 0.3, dtype=torch.bfloat16))).all()


@pytest.mark.parametrize('name', ['bfloat16', 'float16'])
def test_doubles_round_through_float32_as_pytorchs(name):
    """A double becomes half or bfloat16 through float32 in PyTorch: rounded twice, which differs
    from rounding once in about 1 value in 10^4 (-7.515625063 is -7.5 in PyTorch's bfloat16)."""
    v = np.random.default_rng(0).standard_normal(10 ** 5) * 5
    ours, theirs = getattr(nbtorch, name), getattr(torch, name)
    pairs = [(nbtorch.tensor(v).to(ours), torch.tensor(v).to(theirs)),
             (nbtorch.tensor(v, dtype=ours), torch.tensor(v, dtype=theirs)),
             (nbtorch.tensor(v.tolist(), dtype=ours), torch.tensor(v.tolist(), dtype=theirs)),
             (nbtorch.tensor(v + 1j).to(ours), torch.tensor(v + 1j).to(theirs))]
    for o, t in pairs: np.testing.assert_array_equal(o.float().numpy(), t.float().numpy())


OPS = {  # bit for bit with PyTorch's CPU kernels
    'add': lambda m, x, y: x + y, 'sub': lambda m, x, y: x - y, 'mul': lambda m, x, y: x * y,
    'div': lambda m, x, y: x / y, 'add 0.1': lambda m, x, y: x + 0.1, 'mul 0.1': lambda m, x, y: x * 0.1,
    'div 3.7': lambda m, x, y: x / 3.7, 'mul 257': lambda m, x, y: x * 257, 'exp': lambda m, x, y: x.exp(),
    'tanh': lambda m, x, y: x.tanh(), 'sqrt': lambda m, x, y: x.abs().sqrt(), 'relu': lambda m, x, y: x.relu(),
    'neg': lambda m, x, y: -x, 'maximum': lambda m, x, y: m.maximum(x, y), 'where': lambda m, x, y: m.where(x > 0, x, y),
    'sum': lambda m, x, y: x.sum(), 'sum 0': lambda m, x, y: x.sum(0), 'mean 1': lambda m, x, y: x.mean(1),
    'var': lambda m, x, y: x.var(1), 'norm': lambda m, x, y: x.norm(), 'cumsum': lambda m, x, y: x.cumsum(1),
    'softmax': lambda m, x, y: x.softmax(1), 'matmul': lambda m, x, y: x @ y.T, 'mv': lambda m, x, y: x @ y[0],
    'amax': lambda m, x, y: x.amax(1), 'sort': lambda m, x, y: x.sort(1)[0], 'isfinite': lambda m, x, y: (x / 0).isfinite(),
}


@pytest.mark.parametrize('name', list(OPS))
def test_ops_agree_bit_for_bit(name):
    rng = np.random.default_rng(1)
    (x, rx), (y, ry) = pair(rng.standard_normal((8, 64))), pair(rng.standard_normal((8, 64)))
    ours, theirs = OPS[name](nbtorch, x, y), OPS[name](torch, rx, ry)
    assert repr(ours.dtype) == repr(theirs.dtype)
    if theirs.dtype == torch.bfloat16: assert (bits(ours) == bits(theirs)).all()
    else: np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_a_sum_is_accumulated_in_float32():
    x, r = pair(np.full(1000, 0.01))
    assert x.sum().item() == r.sum().item() == 10.  # in bfloat16 throughout it would stall at 4


def test_autograd_through_bfloat16():
    rng = np.random.default_rng(2)
    (x, rx), (w, rw) = pair(rng.standard_normal((4, 8))), pair(rng.standard_normal((8, 3)))
    for t in (x, rx, w, rw): t.requires_grad_()
    for m, a, b in ((nbtorch, x, w), (torch, rx, rw)):
        ((a @ b).softmax(1) * 0.5 + (a * a).mean()).sum().backward()
    for ours, theirs in ((x, rx), (w, rw)):
        assert ours.grad.dtype is nbtorch.bfloat16
        np.testing.assert_allclose(ours.grad.float().numpy(), theirs.grad.float().numpy(), rtol=2e-2, atol=2e-2)


def test_save_and_load_round_trip(tmp_path):
    x = nbtorch.randn(4, 5).bfloat16()
    obj = {'x': x, 'view': x[1:, ::2], 'p': nbtorch.nn.Parameter(nbtorch.ones(3, dtype=nbtorch.bfloat16)),
           'dt': nbtorch.bfloat16, 'f': nbtorch.ones(2)}
    nbtorch.save(obj, tmp_path / 'a.nbt')
    back = nbtorch.load(tmp_path / 'a.nbt', weights_only=True)
    for k in ('x', 'view', 'p'):
        assert back[k].dtype is nbtorch.bfloat16 and (bits(back[k]) == bits(obj[k])).all(), k
    assert isinstance(back['p'], nbtorch.nn.Parameter) and back['dt'] is nbtorch.bfloat16
    with zipfile.ZipFile(tmp_path / 'a.nbt') as z:  # the bits as uint16, the name in data.json
        doc = json.loads(z.read('data.json'))
        i = [s['dtype'] for s in doc['storages']].index('bfloat16')
        assert np.load(io.BytesIO(z.read(f'arrays/{i}.npy'))).dtype == np.uint16
    m = nbtorch.nn.Linear(2, 3).to(nbtorch.bfloat16)
    nbtorch.save(m.state_dict(), tmp_path / 'm.nbt')
    sd = nbtorch.load(tmp_path / 'm.nbt', weights_only=True)
    assert all(sd[k].dtype is nbtorch.bfloat16 and sd[k].equal(v) for k, v in m.state_dict().items())


def test_a_uint16_array_is_bfloat16_only_where_data_json_says_so(tmp_path):
    nbtorch.save({'x': nbtorch.ones(3, dtype=nbtorch.bfloat16)}, tmp_path / 'a.nbt')
    src, dst = zipfile.ZipFile(tmp_path / 'a.nbt'), zipfile.ZipFile(tmp_path / 'b.nbt', 'w')
    for info in src.infolist():
        data = src.read(info)
        if info.filename == 'data.json':
            data = data.replace(b'"bfloat16"', b'"float16"')  # 16 bits either way: the names must agree
        dst.writestr(info, data)
    dst.close()
    with pytest.raises(nbtorch.serialization.CheckpointError, match='bfloat16'):
        nbtorch.load(tmp_path / 'b.nbt')


def test_the_gpu_refuses_bfloat16():
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    try:
        x = nbtorch.ones(2, dtype=nbtorch.bfloat16)
        for move in (lambda: x.to('cuda'), lambda: x.cuda(), lambda: x.float().cuda().to(nbtorch.bfloat16),
                     lambda: nbtorch.zeros(2, dtype=nbtorch.bfloat16, device='cuda'),
                     lambda: nbtorch.tensor([1.], dtype=nbtorch.bfloat16, device='cuda')):
            with pytest.raises(TypeError, match='bfloat16'): move()
        assert x.float().cuda().is_cuda  # float32 still goes
    finally: cuda._set_backend(*saved)


def test_bfloat16_as_the_default_dtype():
    try:
        nbtorch.set_default_dtype(nbtorch.bfloat16); torch.set_default_dtype(torch.bfloat16)
        for make in (lambda m: m.tensor([1.1, 2.]), lambda m: m.zeros(2), lambda m: m.ones(3) / 3):
            assert repr(make(nbtorch)) == repr(make(torch))
    finally:
        nbtorch.set_default_dtype(nbtorch.float32); torch.set_default_dtype(torch.float32)
