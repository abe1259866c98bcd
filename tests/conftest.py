"Backends for the conformance suite: every test that takes `dev` runs once per backend."
import numpy as np
import pytest
import nbtorch
from nbtorch import cuda
import standin

try:
    import torch
except ImportError:  # PyTorch is the oracle, installed by `make test`; without it those tests skip
    torch = None

_real_gpu = cuda.is_available()
BACKENDS = ['cpu', 'standin'] + (['cuda'] if _real_gpu else [])


@pytest.fixture(params=BACKENDS)
def dev(request):
    "The device name to run on: 'cpu', the stand-in device (as 'cuda'), or a real GPU."
    if request.param != 'standin':
        yield request.param
        return
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    try: yield 'cuda'
    finally: cuda._set_backend(*saved)


@pytest.fixture
def gpu():
    "The stand-in GPU as the CUDA backend, for the test's length."
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    yield
    cuda._set_backend(*saved)


@pytest.fixture(params=['standin'] + (['cuda'] if _real_gpu else []))
def any_gpu(request):
    "The stand-in GPU, and a real one where there is one: the test runs on each."
    saved = cuda._cupy, cuda._cupyx
    if request.param == 'standin': cuda._set_backend(standin.module, standin.extras)
    yield
    cuda._set_backend(*saved)


@pytest.fixture
def rng(): return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _no_pending_gpu_checks():
    "Each test starts with no GPU check waiting to be read (`cuda._assert_later`): one test's own."
    cuda._pending.clear()
    yield
    cuda._pending.clear()
