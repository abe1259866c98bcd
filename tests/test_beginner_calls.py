"""The calls that stopped a new user in the issue 13 survey, each as PyTorch runs it."""
import numpy as np
import pytest
import nbtorch as torch


def test_new_ones_norm_asin_and_matmul_out():
    x = torch.tensor([[3., 4.]])
    assert x.new_ones(2, 3).shape == (2, 3) and x.new_ones(2).dtype is torch.float32
    assert x.norm().item() == 5.0 and torch.asin(torch.tensor([1.])).item() == pytest.approx(np.pi / 2)
    a, b, c = torch.ones(2, 3), torch.ones(3, 4), torch.empty(2, 4)
    r = torch.matmul(a, b, out=c)
    assert r is c and c.tolist() == [[3.] * 4] * 2


def test_default_device_backends_variable_functional():
    torch.set_default_device('cpu')
    assert torch.get_default_device() == torch.device('cpu') and torch.zeros(1).device.type == 'cpu'
    assert torch.backends.mps.is_available() is False
    from nbtorch.autograd import Variable
    v = Variable(torch.ones(2), requires_grad=True)
    (v * 3).sum().backward()
    assert v.grad.tolist() == [3., 3.]
    import nbtorch.functional
    assert nbtorch.functional.split is torch.split


def test_numpy_and_matplotlib_take_tensors():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    img = torch.arange(12.).reshape(3, 4)
    assert np.asarray(img).tolist() == img.tolist()
    fig, ax = plt.subplots()
    shown = ax.imshow(img)
    assert np.asarray(shown.get_array()).tolist() == img.tolist()
    plt.close(fig)


def test_save_a_whole_model_and_a_summary_writer(tmp_path):
    model = torch.nn.Linear(2, 1)
    torch.save(model, tmp_path / 'm.pt')
    back = torch.load(tmp_path / 'm.pt', weights_only=False)
    assert back.weight.tolist() == model.weight.tolist()
    from nbtorch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(log_dir=str(tmp_path / 'runs'))
    w.add_scalar('loss', 0.5, 1)
    w.close()
    assert any((tmp_path / 'runs').iterdir())


def test_a_deep_graph_walks_without_recursion_error():
    from nbtorch.viz import make_dot
    x = torch.ones(1, requires_grad=True)
    y = x
    for _ in range(3000): y = y * 1.0001
    assert 'Backward' in make_dot(y).source


def test_a_loss_prints_with_a_format_spec():
    import torch as pt
    loss = torch.tensor(0.123456, requires_grad=True) * 2
    assert f'{loss:.4f}' == f'{pt.tensor(0.123456) * 2:.4f}' == '0.2469'
    assert f'{torch.tensor(7):>3d}' == '  7'
    with pytest.raises(TypeError, match='unsupported format string'): f'{torch.tensor([1., 2.]):.2f}'


def test_an_integer_cast_has_no_gradient():
    x = torch.tensor([1.5, 2.5], requires_grad=True)
    for y in (x.long(), x.to(torch.int64), x.bool(), x.int()):
        assert not y.requires_grad and y.grad_fn is None
    assert x.double().requires_grad and x.double().grad_fn.name() == 'ToCopyBackward0'


def test_a_module_moves_to_complex_as_pytorchs():
    import torch as pt
    ours, ref = torch.nn.Linear(2, 2), pt.nn.Linear(2, 2)
    with pytest.warns(UserWarning, match='Complex modules'): ours.to(torch.complex64)
    with pytest.warns(UserWarning, match='Complex modules'): ref.to(pt.complex64)
    assert str(ours.weight.dtype) == str(ref.weight.dtype) == 'torch.complex64'
    with pytest.raises(TypeError, match='only accepts floating point or complex'): ours.to(torch.int64)
