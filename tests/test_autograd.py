"""The mechanics of autograd, each pinned: accumulation, freed graphs, errors, hooks, modes, Function,
the version counter, and memory that stays flat over a training loop."""
import gc, tracemalloc, weakref
import numpy as np
import pytest
import nbtorch
from nbtorch.autograd import Function, grad, gradcheck, GradcheckError
from helpers import needs_torch, torch


def both(f):
    "Run f(lib) on nbtorch and on PyTorch; return both results."
    return f(nbtorch), (f(torch) if torch is not None else None)


def same_error(f):
    with pytest.raises(Exception) as ref: f(torch)
    with pytest.raises(type(ref.value)) as ours: f(nbtorch)
    assert str(ref.value).split('\n')[0][:120] in str(ours.value)


@needs_torch
def test_errors_are_pytorchs():
    def second_time(t):
        x = t.ones(2, requires_grad=True); y = (x * x).sum(); y.backward(); y.backward()
    def non_scalar(t): (t.ones(2, requires_grad=True) * 2).backward()
    def no_grad_fn(t): t.ones(2).sum().backward()
    def unused(t):
        a, b = t.ones(2, requires_grad=True), t.ones(2, requires_grad=True)
        t.autograd.grad((a * 2).sum(), [a, b])
    def leaf_inplace(t): t.ones(2, requires_grad=True).mul_(2)
    def version(t):
        x = t.ones(2, requires_grad=True); y = x.sigmoid(); y.mul_(2); y.sum().backward()
    def version_input(t):
        x = t.ones(2, requires_grad=True); a = x * 1; y = a * a; a.add_(1); y.sum().backward()
    def int_grad(t): t.ones(2, dtype=t.int64).requires_grad_()
    def set_nonleaf(t): (t.ones(2, requires_grad=True) * 2).requires_grad_(False)
    for f in [second_time, non_scalar, no_grad_fn, unused, leaf_inplace, version, version_input, int_grad,
              set_nonleaf]:
        same_error(f)


@needs_torch
def test_accumulation_and_retain_graph():
    def f(t):
        x = t.tensor([1., 2., 3.], requires_grad=True)
        y = (x ** 2).sum()
        y.backward(retain_graph=True); y.backward(retain_graph=True)
        g1 = x.grad.clone()
        x.grad.zero_(); y.backward()
        return g1, x.grad, x.grad is not None and x.grad.requires_grad
    (a, b, c), (ra, rb, rc) = both(f)
    assert a.tolist() == ra.tolist() and b.tolist() == rb.tolist() and c == rc


@needs_torch
def test_many_gradients_into_one_leaf():
    "A leaf used many times sums its gradients in place inside the engine; nothing the user holds changes."
    def f(t):
        w = t.tensor([[1., -2., 3.]], requires_grad=True)
        b = t.tensor([0.5, 1.5, -1.], requires_grad=True)
        seen = []
        b.register_hook(lambda g: seen.append(g.clone()))
        y = w
        for k in range(6): y = (y + b) * 0.9 if k % 2 else y + b.unsqueeze(0) * (k + 1)
        gy = t.ones(1, 3) * 2
        y.backward(gy)
        g_first = b.grad.clone()
        y2 = (w * 3 + b).sum() + b.sum()  # a second backward adds into the .grad the first one made
        y2.backward()
        return w.grad, g_first, b.grad, seen[0], gy
    ours, ref = both(f)
    for o, r in zip(ours, ref): np.testing.assert_allclose(o.numpy(), r.numpy(), rtol=1e-6)
    (_, g_first, b_grad, seen, gy) = ours
    assert seen is not b_grad and not np.shares_memory(seen._data, b_grad._data)
    assert gy.tolist() == [[2., 2., 2.]]  # the caller's gradient is untouched


@needs_torch
def test_retain_grad_and_leaves():
    def f(t):
        x = t.tensor([1., 2.], requires_grad=True)
        h = x * 3; h.retain_grad()
        k = h.exp()
        (k * 2).sum().backward()
        return x.is_leaf, h.is_leaf, h.grad.tolist(), x.grad.tolist(), k.grad, h.retains_grad
    ours, ref = both(f)
    assert ours[:2] == ref[:2] and ours[4] is None and ref[4] is None and ours[5] == ref[5]
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-6); np.testing.assert_allclose(ours[3], ref[3], rtol=1e-6)


@needs_torch
def test_hooks_on_leaves_and_nonleaves():
    def f(t):
        x = t.tensor([1., 2.], requires_grad=True)
        log = []
        y = x * x
        y.register_hook(lambda g: log.append(('y', g.tolist())))
        x.register_hook(lambda g: g * 0.5)
        h = y.register_hook(lambda g: g + 1)
        y.sum().backward()
        h.remove(); x.grad = None
        (x * x).sum().backward()
        return log, x.grad.tolist()
    assert both(f)[0] == both(f)[1]


def test_grad_modes():
    x = nbtorch.ones(2, requires_grad=True)
    with nbtorch.no_grad():
        assert not (x * 2).requires_grad and not nbtorch.is_grad_enabled()
        with nbtorch.enable_grad(): assert (x * 2).requires_grad
        with nbtorch.set_grad_enabled(True): assert (x * 2).requires_grad
    assert nbtorch.is_grad_enabled()
    @nbtorch.no_grad()
    def f(): return (x * 2).requires_grad
    @nbtorch.enable_grad()
    def g(): return (x * 2).requires_grad
    assert f() is False and nbtorch.is_grad_enabled()
    with nbtorch.no_grad(): assert g() is True
    nbtorch.set_grad_enabled(False); assert not (x * 2).requires_grad
    nbtorch.set_grad_enabled(True); assert (x * 2).requires_grad
    # detach, detach_, requires_grad_ and .data
    y = x * 2
    assert not y.detach().requires_grad and y.detach().grad_fn is None
    z = x * 3; z.detach_()
    assert z.grad_fn is None and not z.requires_grad
    w = nbtorch.zeros(2).requires_grad_()
    assert w.requires_grad and w.is_leaf
    x.data.mul_(5)
    assert x.tolist() == [5., 5.] and x._version == 0


class Cube(Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        assert ctx.needs_input_grad == (True, False)
        return g * 3 * x ** 2 * ctx.k, None


def test_custom_function():
    x = nbtorch.tensor([1., 2.], dtype=nbtorch.float64, requires_grad=True)
    y = Cube.apply(x, 2.)
    assert y.grad_fn.name() == 'CubeBackward' and y.requires_grad
    y.sum().backward()
    assert x.grad.tolist() == [6., 24.]
    assert gradcheck(lambda a: Cube.apply(a, 2.), (x,))
    g, = grad(Cube.apply(x, 1.).sum(), x, create_graph=True)  # its backward is differentiable too
    g2, = grad(g.sum(), x)
    assert g2.tolist() == [6., 12.]
    with nbtorch.no_grad(): assert not Cube.apply(x, 1.).requires_grad
    x.data.add_(0)
    y = Cube.apply(x, 1.)
    x.data  # untouched version
    with nbtorch.no_grad(): pass
    z = x * 1
    out = Cube.apply(z, 1.)
    z.add_(1)
    with pytest.raises(RuntimeError, match='modified by an inplace operation'):
        out.sum().backward()


def test_gradcheck_catches_a_wrong_backward():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x): return x * x
        @staticmethod
        def backward(ctx, g): return g
    x = nbtorch.rand(3, dtype=nbtorch.float64, requires_grad=True)
    with pytest.raises(GradcheckError, match='Jacobian mismatch'):
        gradcheck(Bad.apply, (x,))
    assert gradcheck(Bad.apply, (x,), raise_exception=False) is False


@needs_torch
def test_higher_order():
    def f(t):
        x = t.tensor([0.3, -0.7], dtype=t.float64, requires_grad=True)
        ds, y = [], x.tanh()
        for _ in range(4):
            y, = t.autograd.grad(y.sum(), x, create_graph=True)
            ds.append(y.detach().tolist())
        w = t.tensor([1., 2.], dtype=t.float64, requires_grad=True)
        g, = t.autograd.grad((w ** 3).prod(), w, create_graph=True)
        hvp, = t.autograd.grad((g * t.tensor([1., -1.], dtype=t.float64)).sum(), w, retain_graph=True)
        (g.norm() if hasattr(g, 'norm') and t is torch else (g * g).sum().sqrt()).backward()
        return ds, hvp.tolist(), w.grad.tolist()
    ours, ref = both(f)
    np.testing.assert_allclose(ours[0], ref[0], rtol=1e-10)
    np.testing.assert_allclose(ours[1], ref[1], rtol=1e-10)
    np.testing.assert_allclose(ours[2], ref[2], rtol=1e-10)


def test_graph_freed_without_cycles():
    "After backward the saved tensors are gone; dropping the output frees every node at once."
    w = nbtorch.randn(16, 16, requires_grad=True)
    y = (w @ w).tanh().sigmoid().sum()
    refs = []
    stack = [y.grad_fn]
    while stack:
        n = stack.pop()
        if n is not None and not any(r() is n for r in refs):
            refs.append(weakref.ref(n)); stack.extend(c for c, _ in n.next_functions)
    y.backward()
    assert all(getattr(r(), '_saved', None) in (None, ()) for r in refs)
    gc.disable()
    try:
        del y, n, stack
        assert all(r() is None for r in refs[:-1])  # only the leaf's accumulator may wait for gc
    finally: gc.enable()


def test_training_loop_memory_is_flat():
    "200 steps of a small MLP: traced memory after step 50 and after step 200 are the same."
    nbtorch.manual_seed(0)
    W1 = nbtorch.randn(32, 64, requires_grad=True); W2 = nbtorch.randn(64, 10, requires_grad=True)
    x, y = nbtorch.randn(64, 32), nbtorch.randint(0, 10, (64,))
    def step():
        loss = -(x @ W1).relu().__matmul__(W2).log_softmax(1).gather(1, y[:, None]).mean()
        loss.backward()
        with nbtorch.no_grad():
            for p in (W1, W2): p -= 0.01 * p.grad; p.grad = None
    tracemalloc.start()
    for i in range(200):
        step()
        if i == 49: gc.collect(); base = tracemalloc.get_traced_memory()[0]
    gc.collect()  # a full collection also empties Python's free lists, which would blur the figure
    end = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert end - base < 16 * 1024, (base, end)


def test_unbroadcast_in_one_place():
    from nbtorch.autograd import unbroadcast
    g = nbtorch.ones(4, 2, 3)
    assert unbroadcast(g, (2, 1)).tolist() == [[12.], [12.]]
    assert unbroadcast(g, ()).item() == 24.
    assert unbroadcast(g, (4, 2, 3)) is g


# --- grad mode per thread (as PyTorch's); in-place changes autograd cannot follow are refused ---

def _in_threads(lib, steps):
    "Run `steps` (name, thread, action) in that order across threads; returns what each recorded."
    import threading
    go = {name: threading.Event() for name, _, _ in steps}
    done = {name: threading.Event() for name, _, _ in steps}
    seen = {}

    def thread(mine):
        for name, action in mine:
            go[name].wait(5)
            action(seen)
            done[name].set()

    by_thread = {}
    for name, who, action in steps: by_thread.setdefault(who, []).append((name, action))
    ts = [threading.Thread(target=thread, args=(mine,)) for mine in by_thread.values()]
    for t in ts: t.start()
    for name, _, _ in steps:
        go[name].set(); assert done[name].wait(5), f"step {name} hung"
    for t in ts: t.join(5)
    return seen


@needs_torch
@pytest.mark.parametrize('lib', ['nbtorch', 'torch'])
def test_grad_mode_is_per_thread(lib):
    lib = nbtorch if lib == 'nbtorch' else torch
    x = lib.ones(2, requires_grad=True)
    blocks = {}

    def enter(who):
        def f(seen): blocks[who] = lib.no_grad(); blocks[who].__enter__()
        return f

    def leave(who):
        def f(seen): blocks[who].__exit__(None, None, None)
        return f

    def look(key):
        def f(seen): seen[key] = ((x * 2).requires_grad, lib.is_grad_enabled())
        return f

    # two no_grad blocks that overlap in time: A in, B in, A out, B out
    seen = _in_threads(lib, [('a in', 'A', enter('A')), ('b in', 'B', enter('B')),
                             ('main while both', 'M', look('main while both')),
                             ('a out', 'A', leave('A')), ('a after', 'A', look('a after')),
                             ('b inside', 'B', look('b inside')),
                             ('b out', 'B', leave('B')), ('b after', 'B', look('b after'))])
    assert seen == {'main while both': (True, True), 'a after': (True, True),
                    'b inside': (False, False), 'b after': (True, True)}
    assert lib.is_grad_enabled() and (x * 2).requires_grad


@needs_torch
def test_inplace_on_views_of_leaves_refused_as_pytorch():
    def make(lib):
        w = lib.tensor([1., 2., 3.], requires_grad=True)
        with lib.no_grad(): v = w[:2]
        return w, v
    cases = [lambda w, v: w[:2].add_(1), lambda w, v: w.view(3).mul_(2), lambda w, v: w[0].fill_(0),
             lambda w, v: w[1:].zero_(), lambda w, v: w[:2].copy_(w[1:].detach()),
             lambda w, v: v.add_(1), lambda w, v: v.fill_(1), lambda w, v: v.__setitem__(0, 5.),
             lambda w, v: v.zero_()]
    for i, case in enumerate(cases):
        with pytest.raises(RuntimeError) as ref: case(*make(torch))
        with pytest.raises(RuntimeError) as ours: case(*make(nbtorch))
        assert str(ref.value)[:60] in str(ours.value) or 'view of a view' in str(ref.value), i
        assert ('no_grad mode' in str(ref.value)) == ('no_grad mode' in str(ours.value)), i
    # allowed: inside no_grad, through detach, on a view of a computed tensor
    for lib in (nbtorch, torch):
        w, v = make(lib)
        with lib.no_grad(): w[:2].add_(1); v.mul_(2)
        w.detach().add_(1)
        y = w * 1
        y[:2].mul_(3)
        y.sum().backward()
        assert w.tolist() == [5., 7., 4.] and w.grad.tolist() == [3., 3., 1.]


@needs_torch
def test_integer_tensors_cannot_require_grad():
    def cases(lib):
        t = lib.arange(3)
        return [lambda: setattr(t, 'requires_grad', True), lambda: t.requires_grad_(),
                lambda: lib.nn.Parameter(t), lambda: lib.tensor([1, 2], requires_grad=True),
                lambda: lib.zeros(2, dtype=lib.int64, requires_grad=True),
                lambda: setattr(lib.ones(2, requires_grad=True) * 2, 'requires_grad', False)]
    for ref_case, our_case in zip(cases(torch), cases(nbtorch)):
        with pytest.raises(RuntimeError) as ref: ref_case()
        with pytest.raises(RuntimeError) as ours: our_case()
        assert str(ref.value) == str(ours.value)
    p = nbtorch.nn.Parameter(nbtorch.arange(3), requires_grad=False)  # allowed, as in PyTorch
    t = nbtorch.arange(3)
    t.requires_grad = False
    assert not p.requires_grad and not t.requires_grad


@needs_torch
def test_inplace_through_a_view_of_a_computed_tensor_reaches_its_gradient():
    # before: the base kept its old grad_fn and the gradient ignored the change ([1, 1, 1] here)
    def run(lib):
        w = lib.tensor([1., 2., 3.], requires_grad=True)
        y = w * 1
        v = y[:2]
        v.mul_(3); v.add_(1)
        h = w * 2
        h[1:] += 1
        c = w.detach() * float('inf') + w * 0
        c.fill_(2.)                  # filled: no gradient reaches the old values, and no inf * 0
        (y.sum() + (h * h).sum() + c.sum()).backward()
        return y.tolist(), h.tolist(), c.tolist(), w.grad.tolist()
    assert run(nbtorch) == run(torch)
    y = nbtorch.ones(3, requires_grad=True) * 1
    with pytest.raises(RuntimeError, match='only for a view made by indexing'):
        y.view(3).mul_(2)           # refused, not silently wrong
    assert y.tolist() == [1., 1., 1.]
