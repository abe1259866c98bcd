"Property tests (hypothesis): broadcasting, indexing and reshape round trips, against NumPy and PyTorch."
import math
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st, HealthCheck
from hypothesis.extra import numpy as hnp
import nbtorch
from helpers import torch

settings.register_profile('nbtorch', max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile('nbtorch')

floats = st.floats(-100, 100, width=32)


@st.composite
def broadcast_pair(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4))
    a = draw(hnp.arrays(np.float32, shapes.input_shapes[0], elements=floats))
    b = draw(hnp.arrays(np.float32, shapes.input_shapes[1], elements=floats))
    return a, b, shapes.result_shape


@given(broadcast_pair())
def test_broadcasting_matches_numpy_and_torch(pair):
    a, b, shape = pair
    for op in [np.add, np.multiply, np.maximum]:
        ours = op.__name__ if op is not np.maximum else 'maximum'
        x, y = nbtorch.tensor(a), nbtorch.tensor(b)
        r = {'add': x + y, 'multiply': x * y, 'maximum': nbtorch.maximum(x, y)}[ours]
        assert tuple(r.shape) == shape
        np.testing.assert_array_equal(r.numpy(), op(a, b))
        if torch is not None:
            t = {'add': torch.tensor(a) + torch.tensor(b), 'multiply': torch.tensor(a) * torch.tensor(b),
                 'maximum': torch.maximum(torch.tensor(a), torch.tensor(b))}[ours]
            np.testing.assert_array_equal(r.numpy(), t.numpy())


@st.composite
def bad_pair(draw):
    "Two shapes that do not broadcast."
    n = draw(st.integers(1, 3))
    s = draw(st.lists(st.integers(2, 4), min_size=n, max_size=n))
    i = draw(st.integers(0, n - 1))
    t = list(s); t[i] = s[i] + 1
    return tuple(s), tuple(t)


@given(bad_pair())
def test_broadcast_errors_name_the_dimension(shapes):
    sa, sb = shapes
    with pytest.raises(RuntimeError, match='must match the size of tensor b') as e:
        nbtorch.zeros(sa) + nbtorch.zeros(sb)
    if torch is not None:
        with pytest.raises(RuntimeError) as t:
            torch.zeros(sa) + torch.zeros(sb)
        assert str(e.value) == str(t.value)


@st.composite
def array_and_index(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=5))
    a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    idx = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    # PyTorch has no negative slice steps; keep steps positive
    def fix(k): return slice(k.start, k.stop, abs(k.step) if k.step else None) if isinstance(k, slice) else k
    idx = tuple(fix(k) for k in idx) if isinstance(idx, tuple) else fix(idx)
    return a, idx


@given(array_and_index())
def test_basic_indexing_matches_numpy_and_is_a_view(ai):
    a, idx = ai
    x = nbtorch.tensor(a)
    r = x[idx]
    np.testing.assert_array_equal(r.numpy(), a[idx])
    if torch is not None:
        np.testing.assert_array_equal(r.numpy(), torch.tensor(a)[idx].numpy())
    if r.numel():  # a view: writing through it changes the original
        r.fill_(-1)
        assert (x.numpy() == -1).sum() == r.numel()


@given(hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), st.data())
def test_integer_and_mask_indexing(shape, data):
    a = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    ints = data.draw(hnp.arrays(np.int64, st.integers(1, 6), elements=st.integers(-shape[0], shape[0] - 1)))
    mask = data.draw(hnp.arrays(np.bool_, shape))
    x = nbtorch.tensor(a)
    np.testing.assert_array_equal(x[nbtorch.tensor(ints)].numpy(), a[ints])
    np.testing.assert_array_equal(x[nbtorch.tensor(mask)].numpy(), a[mask])
    if torch is not None:
        np.testing.assert_array_equal(x[nbtorch.tensor(ints)].numpy(), torch.tensor(a)[torch.tensor(ints)].numpy())


@st.composite
def shape_and_reshape(draw):
    dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    n = math.prod(dims)
    # another factorisation of n
    factors, m = [], n
    for p in [2, 3]:
        while m % p == 0: factors.append(p); m //= p
    perm = draw(st.permutations(factors)) if factors else []
    cut = sorted(draw(st.lists(st.integers(0, len(perm)), max_size=3)))
    parts, prev = [], 0
    for c in cut + [len(perm)]:
        parts.append(math.prod(perm[prev:c]) if c > prev else 1); prev = c
    if draw(st.booleans()) and parts: parts[draw(st.integers(0, len(parts) - 1))] = -1
    return tuple(dims), tuple(parts)


@given(shape_and_reshape())
def test_reshape_round_trips(sr):
    shape, new = sr
    a = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x = nbtorch.tensor(a)
    y = x.view(*new)
    assert y.numel() == x.numel()
    np.testing.assert_array_equal(y.reshape(*shape).numpy(), a)
    np.testing.assert_array_equal(y.numpy(), a.reshape(new))
    np.testing.assert_array_equal(x.flatten().unflatten(0, shape).numpy(), a)
    np.testing.assert_array_equal(x.unsqueeze(0).squeeze(0).numpy(), a)
    if x.ndim >= 2:
        np.testing.assert_array_equal(x.transpose(0, -1).transpose(0, -1).numpy(), a)
        t = x.transpose(0, -1)
        np.testing.assert_array_equal(t.reshape(-1).numpy(), a.swapaxes(0, -1).reshape(-1))
        np.testing.assert_array_equal(t.contiguous().view(-1).numpy(), a.swapaxes(0, -1).reshape(-1))
