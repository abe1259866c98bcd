"""torch.linalg beyond what the OpInfo samples check: PyTorch's errors and messages, gradients of
eigenvectors and singular vectors (whose signs are the LAPACK library's choice), and the GPU stand-in."""
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch, run_both, compare

pytestmark = needs_torch
R = np.random.default_rng(0)


def spd(n, batch=()):
    a = R.standard_normal(batch + (n, n))
    return a @ a.swapaxes(-1, -2) + n * np.eye(n)


SINGULAR = np.array([[1., 2.], [2., 4.]])

ERRORS = {
    'inv singular': (lambda t, a: t.linalg.inv(a), [SINGULAR]),
    'inv singular, batched': (lambda t, a: t.linalg.inv(a.expand(3, 2, 2)), [SINGULAR]),
    'solve singular': (lambda t, a: t.linalg.solve(a, a[0]), [SINGULAR]),
    'cholesky not PD': (lambda t, a: t.linalg.cholesky(a), [np.array([[1., 2.], [2., 1.]])]),
    'cholesky not PD, batched': (lambda t, a: t.linalg.cholesky(a.expand(2, 2, 2)),
                                 [np.array([[1., 2.], [2., 1.]])]),
    'det of a vector': (lambda t, a: t.linalg.det(a), [np.ones(3)]),
    'det not square': (lambda t, a: t.linalg.det(a), [np.ones((2, 3))]),
    'inv of integers': (lambda t, a: t.linalg.inv(a), [np.eye(2, dtype=np.int64)]),
    'lu_factor singular': (lambda t, a: t.linalg.lu_factor(a), [SINGULAR]),
    'multi_dot of one': (lambda t, a: t.linalg.multi_dot([a]), [np.eye(2)]),
    'matrix_norm order': (lambda t, a: t.linalg.matrix_norm(a, 3), [np.eye(2)]),
    'vecdot dtypes': (lambda t, a: t.linalg.vecdot(a, a.float()), [np.ones(3)]),
    'solve shapes': (lambda t, a: t.linalg.solve(a, t.ones(3, 2, dtype=a.dtype)), [np.eye(2)]),
    'tensorinv shapes': (lambda t, a: t.linalg.tensorinv(a, 1), [np.ones((2, 3))]),
    'eig not square': (lambda t, a: t.linalg.eig(a), [np.ones((2, 3))]),
    'eig of a vector': (lambda t, a: t.linalg.eig(a), [np.ones(3)]),
    'eig of integers': (lambda t, a: t.linalg.eig(a), [np.eye(2, dtype=np.int64)]),
    'eig of NaN': (lambda t, a: t.linalg.eig(a), [np.array([[1., np.nan], [0., 1.]])]),
    'eigvals not square': (lambda t, a: t.linalg.eigvals(a), [np.ones((3, 2))]),
}


@pytest.mark.parametrize('case', ERRORS)
def test_errors_are_pytorchs(case):
    "The same type of error (torch.linalg.LinAlgError as nbtorch's) and the same message."
    fn, arrays = ERRORS[case]
    with pytest.raises(Exception) as ref:
        fn(torch, *[torch.tensor(a) for a in arrays])
    expected = nbtorch.linalg.LinAlgError if isinstance(ref.value, torch.linalg.LinAlgError) \
        else type(ref.value)
    with pytest.raises(expected) as ours:
        fn(nbtorch, *[nbtorch.tensor(a) for a in arrays])
    first = str(ref.value).split('\n')[0]
    assert first in str(ours.value), f"{ours.value!r} does not say {first!r}"


def test_info_instead_of_errors():
    run_both(lambda t, a: t.linalg.inv_ex(a).info, [SINGULAR])
    run_both(lambda t, a: t.linalg.cholesky_ex(a).info, [np.array([[1., 2.], [2., 1.]])])
    run_both(lambda t, a: t.linalg.lu_factor_ex(a).info, [SINGULAR])


def test_qr_mode_r_has_no_gradient():
    a = nbtorch.tensor(R.standard_normal((3, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="mode='r'"):
        nbtorch.linalg.qr(a, mode='r').R.sum().backward()


def _grads(fn, a):
    "The gradient of sum(fn(A) * W) in both libraries, W fixed."
    w = R.standard_normal(fn(torch, torch.tensor(a)).shape)
    out = []
    for lib in (torch, nbtorch):
        x = lib.tensor(a, requires_grad=True)
        (fn(lib, x) * lib.tensor(w)).sum().backward()
        out.append(x.grad)
    return out


SIGN_FREE = {  # functions of the vectors that do not depend on their signs
    'eigh v*v': (lambda t, a: t.linalg.eigh(a).eigenvectors ** 2, lambda: spd(4, (2,))),
    'eigh v diag v': (lambda t, a: (lambda w, v: (v * w.unsqueeze(-2)) @ v.mT)(*t.linalg.eigh(a)),
                      lambda: R.standard_normal((3, 3)) + R.standard_normal((3, 3)).T),
    'svd u*u, tall': (lambda t, a: t.linalg.svd(a, full_matrices=False).U ** 2,
                      lambda: R.standard_normal((5, 3))),
    'svd vh*vh, wide': (lambda t, a: t.linalg.svd(a, full_matrices=False).Vh ** 2,
                        lambda: R.standard_normal((2, 3, 5))),
    'svd u s vh, full': (lambda t, a: (lambda u, s, vh: (u[..., :, :3] * s) @ vh)(*t.linalg.svd(a)),
                         lambda: R.standard_normal((4, 3))),
}


@pytest.mark.parametrize('case', SIGN_FREE)
def test_vector_gradients_agree_where_signs_do_not_matter(case):
    fn, make = SIGN_FREE[case]
    ref, ours = _grads(fn, make())
    compare(ours, ref, atol=1e-8, rtol=1e-6)


ON_DEVICE = {
    'det': lambda t, a: t.linalg.det(a), 'slogdet': lambda t, a: t.linalg.slogdet(a)[1],
    'inv': lambda t, a: t.linalg.inv(a), 'solve': lambda t, a: t.linalg.solve(a, a[..., 0]),
    'cholesky': lambda t, a: t.linalg.cholesky(a), 'eigvalsh': lambda t, a: t.linalg.eigvalsh(a),
    'svdvals': lambda t, a: t.linalg.svdvals(a), 'qr': lambda t, a: t.linalg.qr(a).R.abs(),
    'pinv': lambda t, a: t.linalg.pinv(a), 'norm 2': lambda t, a: t.linalg.matrix_norm(a, 2),
    'norm nuc': lambda t, a: t.linalg.matrix_norm(a, 'nuc'),
    'lstsq': lambda t, a: t.linalg.lstsq(a, a[..., :1]).solution,
    'lu': lambda t, a: t.linalg.lu(a).U, 'matrix_exp': lambda t, a: t.linalg.matrix_exp(a / 10),
    'lu_solve': lambda t, a: t.linalg.lu_solve(*t.linalg.lu_factor(a), a),
    'solve_triangular': lambda t, a: t.linalg.solve_triangular(a, a, upper=False),
    'householder': lambda t, a: t.linalg.householder_product(a, a[..., 0, :2]),
    'matrix_rank': lambda t, a: t.linalg.matrix_rank(a), 'cond': lambda t, a: t.linalg.cond(a),
    'eigvals': lambda t, a: t.linalg.eigvals(a).abs().sort().values,
    'eig': lambda t, a: (lambda w, v: (v * w.unsqueeze(-2)) @ t.linalg.inv(v))(*t.linalg.eig(a)),
}


@pytest.mark.parametrize('case', ON_DEVICE)
def test_on_every_backend(dev, case):
    "Values stay on the device (the stand-in refuses NumPy calls on device arrays)."
    run_both(ON_DEVICE[case], [spd(3, (2,))], dev, atol=1e-8, rtol=1e-6)


def test_det_gradient_of_a_singular_matrix_is_its_cofactor_matrix():
    # PyTorch 2.13 returns zeros here (its LU meets an exact zero pivot); det is a polynomial and its
    # derivative is the cofactor matrix, which central differences confirm
    a = np.array([[1., 2.], [2., 4.]])
    x = nbtorch.tensor(a, requires_grad=True)
    nbtorch.linalg.det(x).backward()
    eps, fd = 1e-6, np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            d = np.zeros((2, 2)); d[i, j] = eps
            fd[i, j] = (np.linalg.det(a + d) - np.linalg.det(a - d)) / (2 * eps)
    np.testing.assert_allclose(x.grad.numpy(), [[4., -2.], [-2., 1.]], atol=1e-12)
    np.testing.assert_allclose(x.grad.numpy(), fd, atol=1e-6)


def cplx(*shape):
    return R.standard_normal(shape) + 1j * R.standard_normal(shape)


REAL_OUTPUTS = {  # complex inputs, outputs that PyTorch gives the real dtype
    'eigvalsh': lambda t, a: t.linalg.eigvalsh(a + a.mH),
    'eigh values': lambda t, a: t.linalg.eigh(a + a.mH).eigenvalues,
    'svdvals': lambda t, a: t.linalg.svdvals(a), 'svd S': lambda t, a: t.linalg.svd(a).S,
    'slogdet': lambda t, a: t.linalg.slogdet(a), 'cond': lambda t, a: t.linalg.cond(a),
    'vector_norm 0': lambda t, a: t.linalg.vector_norm(a, 0),
    'vector_norm inf': lambda t, a: t.linalg.vector_norm(a, float('inf')),
    'matrix_norm 2': lambda t, a: t.linalg.matrix_norm(a, 2),
    'lstsq residuals': lambda t, a: t.linalg.lstsq(a[:, :2], a[:, 2:], driver='gelsd')[1:],
    'empty svd S': lambda t, a: t.linalg.svd(a[:0]).S,
    'empty eigh values': lambda t, a: t.linalg.eigh(a[:0, :0]).eigenvalues,
}


@pytest.mark.parametrize('dtype', [np.complex64, np.complex128])
@pytest.mark.parametrize('case', REAL_OUTPUTS)
def test_real_outputs_of_complex_inputs(case, dtype):
    run_both(REAL_OUTPUTS[case], [cplx(4, 4).astype(dtype)], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('a', [np.array([[0., -1.], [1., 0.]]), np.diag([1., 2.]), cplx(3, 3)])
def test_eig_is_always_complex(a):
    ours, ref = run_both(lambda t, a: t.linalg.eigvals(a), [a])
    w, v = nbtorch.linalg.eig(nbtorch.tensor(a))
    assert str(v.dtype) == str(torch.linalg.eig(torch.tensor(a)).eigenvectors.dtype)
    np.testing.assert_allclose(np.linalg.norm(v.numpy(), axis=-2), 1, atol=1e-12)


PHASE_FREE = {  # complex gradients of functions that do not depend on the vectors' phases
    'eig |v|^2': (lambda t, a: t.linalg.eig(a).eigenvectors.abs() ** 2, lambda: cplx(4, 4)),
    'eig of real A, values': (lambda t, a: t.linalg.eigvals(a).real, lambda: R.standard_normal((4, 4))),
    'eig of real A, |v|^2': (lambda t, a: t.linalg.eig(a).eigenvectors.abs() ** 2,
                             lambda: R.standard_normal((2, 3, 3))),
    'eigh |v|^2': (lambda t, a: t.linalg.eigh(a + a.mH).eigenvectors.abs() ** 2, lambda: cplx(3, 3)),
    'svd |u|^2': (lambda t, a: t.linalg.svd(a, full_matrices=False).U.abs() ** 2, lambda: cplx(4, 3)),
    'det': (lambda t, a: t.view_as_real(t.linalg.det(a)), lambda: cplx(3, 3)),
    'det, singular': (lambda t, a: t.view_as_real(t.linalg.det(a * t.tensor([1., 1., 0.]))),
                      lambda: cplx(3, 3)),
    'slogdet sign': (lambda t, a: t.view_as_real(t.linalg.slogdet(a).sign), lambda: cplx(3, 3)),
    'qr': (lambda t, a: t.view_as_real(t.linalg.qr(a).Q @ t.linalg.qr(a).R.diagonal().diag_embed()),
           lambda: cplx(4, 3)),
    'cross': (lambda t, a: t.view_as_real(t.linalg.cross(a, a.flip(0))), lambda: cplx(2, 3)),
}


@pytest.mark.parametrize('case', PHASE_FREE)
def test_complex_gradients_agree(case):
    fn, make = PHASE_FREE[case]
    ref, ours = _grads(fn, make())
    compare(ours, ref, atol=1e-8, rtol=1e-6)
