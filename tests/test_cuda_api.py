"""torch.cuda's housekeeping in nbtorch.cuda (seeds, the current GPU, synchronize, device properties,
memory): without a GPU as PyTorch's CPU build where that is defined (seeds ignored, memory 0) and a
clear error where it is not; on the stand-in GPU, each works."""
import pytest
import nbtorch
from nbtorch import cuda
import standin


def test_without_a_gpu():
    if cuda.is_available(): pytest.skip('a GPU is here')
    torch = pytest.importorskip('torch')
    assert cuda.manual_seed(0) is torch.cuda.manual_seed(0) is None
    assert cuda.manual_seed_all(0) is torch.cuda.manual_seed_all(0) is None
    assert cuda.memory_allocated() == torch.cuda.memory_allocated() == 0
    assert cuda.memory_reserved() == torch.cuda.memory_reserved() == 0
    assert cuda.empty_cache() is torch.cuda.empty_cache() is None
    for f in (cuda.synchronize, cuda.current_device, cuda.get_device_name, cuda.get_device_capability,
              cuda.get_device_properties, lambda: cuda.set_device(0)):
        with pytest.raises(RuntimeError, match='CUDA was asked for, but CuPy is not installed'):
            f()
    # seeding a GPU that is not there leaves the CPU's numbers alone, as PyTorch's
    nbtorch.manual_seed(1); a = nbtorch.rand(3)
    nbtorch.manual_seed(1); cuda.manual_seed(5); b = nbtorch.rand(3)
    assert a.tolist() == b.tolist()


def test_seeds_on_the_gpu(gpu):
    cuda.manual_seed(3); a = nbtorch.randn(4, device='cuda')
    cuda.manual_seed_all(3); b = nbtorch.randn(4, device='cuda')
    nbtorch.manual_seed(3); c = nbtorch.randn(4, device='cuda')
    assert a.tolist() == b.tolist() == c.tolist()


def test_current_gpu_and_synchronize(gpu):
    assert cuda.current_device() == 0
    assert cuda.synchronize() is None and cuda.synchronize('cuda:0') is None and cuda.synchronize(0) is None
    for d in (0, 'cuda', 'cuda:0', nbtorch.device('cuda', 0)): cuda.set_device(d)
    with pytest.raises(RuntimeError, match=r'invalid device ordinal \(asked for cuda:1'):
        cuda.set_device(1)
    # 'cuda' without an index is the current GPU, for factories, tensor() and to()
    for t in (nbtorch.ones(2, device='cuda'), nbtorch.tensor([1.], device='cuda'), nbtorch.ones(2).to('cuda')):
        assert t.device == nbtorch.device('cuda', cuda.current_device())


def test_properties_and_memory(gpu):
    p = cuda.get_device_properties(0)
    assert p.name == cuda.get_device_name() == cuda.get_device_name('cuda:0')
    assert cuda.get_device_capability() == (p.major, p.minor) == (9, 0)
    assert repr(p) == ("_CudaDeviceProperties(name='stand-in GPU (tests/standin.py)', major=9, minor=0, "
                       "total_memory=1024MB, multi_processor_count=1)")
    assert cuda.memory_allocated() == cuda.memory_reserved(0) == 0 and cuda.empty_cache() is None
