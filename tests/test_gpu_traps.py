"""The traps a first run on a real GPU falls into, each checked on the stand-in GPU.

Printing a big CUDA tensor, pinned memory and DataLoader workers, checkpoints moved between devices
with every `map_location`, random numbers on the device, dtype defaults, and accumulating scatters
(CuPy's `cupyx.scatter_add`, which CUDA's atomicAdd limits to a few dtypes).
"""
import io
import pickle
import warnings
import numpy as np
import pytest
import nbtorch
import nbtorch.nn.functional as F
from nbtorch import cuda
from nbtorch.utils.data import DataLoader, TensorDataset
from helpers import needs_torch, torch
import standin


@pytest.fixture
def gpu():
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    yield
    cuda._set_backend(*saved)


@pytest.fixture
def cpu_only():
    "A machine without a GPU (or CuPy), as PyTorch's CPU-only build sees it."
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(None, None)
    yield
    cuda._set_backend(*saved)


def _on_device(t): return type(t._data) is standin.ndarray


# ---- printing ---------------------------------------------------------------------------------------
SHAPES = [(100, 100), (2000,), (3, 400, 5), (7, 7, 7, 7), (2, 2000, 1), (30, 40)]


@needs_torch
@pytest.mark.parametrize('shape', SHAPES)
def test_a_big_gpu_tensor_prints_as_pytorch_sending_only_its_edges(gpu, shape):
    "PyTorch's summary with `device='cuda:0'`, made from the printed edges alone: not the whole array."
    nbtorch.manual_seed(0)
    x = nbtorch.randn(*shape)
    with standin.transfers() as t: s = repr(x.cuda())
    ref = repr(torch.tensor(x.numpy()))[:-1]  # PyTorch's CPU text, then the device as PyTorch adds it
    last = len(ref) - ref.rfind('\n') + 1
    sep = ', ' if last + len("device='cuda:0'") + 2 <= 80 else ',\n       '
    assert s == ref + sep + "device='cuda:0')"
    edges = np.prod([min(n, 6) for n in shape]) * 4
    assert t.count == 1 and t.nbytes == edges < x.numel() * 4, t


def test_small_and_special_gpu_tensors_print_with_one_transfer(gpu):
    for x, text in [(nbtorch.tensor(3.5), "tensor(3.5000, device='cuda:0')"),
                    (nbtorch.arange(5) > 2, "tensor([False, False, False,  True,  True], device='cuda:0')"),
                    (nbtorch.zeros(2, 0), "tensor([], device='cuda:0', size=(2, 0))"),
                    (nbtorch.ones(2000).half(),
                     "tensor([1., 1., 1.,  ..., 1., 1., 1.], device='cuda:0', dtype=torch.float16)")]:
        with standin.transfers() as t: s = repr(x.cuda())
        assert s == text, s
        assert t.count == (0 if x.numel() == 0 else 1), t
        assert str(x.cuda()) == s
    loss = nbtorch.tensor(0.25, device='cuda')
    with standin.transfers() as t: line = f'loss {loss:.3f}'
    assert line == 'loss 0.250' and t.count == 1  # a format spec reads the number: once


# ---- pinned memory and the DataLoader ------------------------------------------------------------------
def test_pinning_on_a_cpu_only_machine_is_pytorchs(cpu_only):
    "PyTorch's CPU-only build: nothing is pinned, pinning raises, a pinning loader warns and goes on."
    x = nbtorch.arange(6.)
    assert x.is_pinned() is False
    with pytest.raises(RuntimeError, match='Cannot access accelerator device when none is available'):
        x.pin_memory()
    with pytest.warns(UserWarning, match="'pin_memory' argument is set as true but no accelerator"):
        batches = list(DataLoader(TensorDataset(x, x), batch_size=4, pin_memory=True))
    assert [b[0].tolist() for b in batches] == [[0., 1., 2., 3.], [4., 5.]]
    assert not any(t.is_pinned() for b in batches for t in b)


@needs_torch
def test_pinning_matches_pytorchs_cpu_only_build(cpu_only):
    assert torch.randn(3).is_pinned() is nbtorch.randn(3).is_pinned() is False
    with pytest.raises(RuntimeError) as ref: torch.randn(3).pin_memory()
    with pytest.raises(RuntimeError) as ours: nbtorch.randn(3).pin_memory()
    assert str(ours.value) == str(ref.value)


def test_pinning_with_a_gpu(gpu):
    x = nbtorch.arange(6.)
    p = x.pin_memory()
    assert p.is_pinned() and not x.is_pinned() and p.pin_memory() is p and p.tolist() == x.tolist()
    assert not p.cuda().is_pinned()
    with pytest.raises(RuntimeError, match="cannot pin 'torch.cuda.FloatTensor' only dense CPU"):
        x.cuda().pin_memory()


@pytest.mark.parametrize('num_workers', [0, 2])
def test_pinned_batches_from_workers_go_to_the_gpu_without_a_read(gpu, num_workers):
    "Workers collate on the CPU, the main process pins, `.to('cuda', non_blocking=True)` moves."
    x = nbtorch.arange(40.).reshape(20, 2)
    y = nbtorch.arange(20)
    dl = DataLoader(TensorDataset(x, y), batch_size=8, num_workers=num_workers, pin_memory=True)
    seen = []
    with warnings.catch_warnings():
        warnings.simplefilter('error')  # a GPU is there: no warning
        for xb, yb in dl:
            assert xb.is_pinned() and yb.is_pinned() and not xb.is_cuda
            with standin.transfers() as t:
                xb, yb = xb.to('cuda', non_blocking=True), yb.to('cuda', non_blocking=True)
                z = (xb.sum(1) + yb).float()
            assert t.count == 0 and _on_device(z) and z.device == nbtorch.device('cuda:0')
            seen.append(z.cpu())
    assert nbtorch.cat(seen).tolist() == (x.sum(1) + y).tolist()


def test_pinning_walks_the_batch(gpu):
    from collections import namedtuple
    P = namedtuple('P', 'a b')
    ds = [dict(x=nbtorch.ones(2), pair=P(nbtorch.zeros(1), [nbtorch.arange(3)]), n=1) for _ in range(4)]
    b = next(iter(DataLoader(ds, batch_size=2, pin_memory=True)))
    assert b['x'].is_pinned() and b['pair'].a.is_pinned() and b['pair'].b[0].is_pinned()
    assert isinstance(b['pair'], P) and b['n'].tolist() == [1, 1]


# ---- checkpoints between devices ---------------------------------------------------------------------
def _saved(obj):
    buf = io.BytesIO()
    nbtorch.save(obj, buf)
    return buf.getvalue()


def _load(data, *args, **kw): return nbtorch.load(io.BytesIO(data), *args, **kw)


def _where(sd): return {k: str(v.device) for k, v in sd.items() if isinstance(v, nbtorch.Tensor)}


MAP_LOCATIONS = [  # (map_location, where the GPU tensor lands, where the CPU tensor lands)
    (None, 'cuda:0', 'cpu'), ('cpu', 'cpu', 'cpu'), ('cuda', 'cuda:0', 'cuda:0'),
    ('cuda:0', 'cuda:0', 'cuda:0'), (b'cpu', 'cpu', 'cpu'),
    (nbtorch.device('cpu'), 'cpu', 'cpu'), (nbtorch.device('cuda', 0), 'cuda:0', 'cuda:0'),
    ({'cuda:0': 'cpu'}, 'cpu', 'cpu'), ({'cpu': 'cuda:0'}, 'cuda:0', 'cuda:0'),
    (lambda s, loc: s, 'cpu', 'cpu'),  # the storage as read: on the CPU
    (lambda s, loc: s.cuda(), 'cuda:0', 'cuda:0'), (lambda s, loc: None, 'cuda:0', 'cpu')]


@pytest.mark.parametrize('ml,gpu_to,cpu_to', MAP_LOCATIONS, ids=range(len(MAP_LOCATIONS)))
def test_every_map_location_both_ways(gpu, ml, gpu_to, cpu_to):
    w, c = nbtorch.randn(3, 4, device='cuda'), nbtorch.arange(5)
    data = _saved({'w': w, 'view': w[1], 'c': c, 'n': 3})  # the view is saved with w's storage
    sd = _load(data, map_location=ml)
    assert _where(sd) == {'w': gpu_to, 'view': gpu_to, 'c': cpu_to} and sd['n'] == 3
    assert sd['w'].tolist() == w.tolist() and sd['view'].tolist() == w[1].tolist()
    assert sd['c'].tolist() == c.tolist() and sd['c'].dtype is nbtorch.int64


def test_weights_only_is_the_default(gpu):
    "As since PyTorch 2.6: tensors, containers and numbers load; any other object needs weights_only=False."
    data = _saved({'w': nbtorch.ones(2, device='cuda'), 'fn': io.BytesIO})
    with pytest.raises(pickle.UnpicklingError, match='weights_only'): _load(data)
    assert _where(_load(data, weights_only=False, map_location='cpu')) == {'w': 'cpu'}


def test_a_gpu_checkpoint_on_a_cpu_only_machine(gpu):
    "PyTorch's advice when the GPU a checkpoint names is not there: map_location."
    data = _saved({'w': nbtorch.ones(2, device='cuda')})
    with pytest.raises(RuntimeError, match="CUDA device 1 but torch.cuda.device_count.. is 1"):
        _load(data, map_location='cuda:1')
    cuda._set_backend(None, None)  # the fixture restores the stand-in
    with pytest.raises(RuntimeError, match="map_location=torch.device\\('cpu'\\) to map your storages"):
        _load(data)
    assert _where(_load(data, map_location='cpu')) == {'w': 'cpu'}
    assert _load(data, map_location=nbtorch.device('cpu'))['w'].tolist() == [1., 1.]
