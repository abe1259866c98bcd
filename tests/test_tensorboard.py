"""SummaryWriter against PyTorch's: the same calls, written by both, read back with TensorBoard's own
reader (`EventAccumulator`), give the same scalars, histograms, images (decoded pixels), text and folders."""
import io, os
import numpy as np
import pytest
import nbtorch
from helpers import needs_torch, torch

tb = pytest.importorskip('tensorboard')
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from nbtorch.utils.tensorboard import SummaryWriter
pytestmark = needs_torch


def write_both(tmp_path, calls):
    "Run `calls(writer, lib)` with nbtorch's writer and PyTorch's; the two folders, read back."
    from torch.utils.tensorboard import SummaryWriter as TorchWriter
    out = []
    for name, W, lib in [('ours', SummaryWriter, nbtorch), ('ref', TorchWriter, torch)]:
        d = tmp_path / name
        with W(str(d)) as w: calls(w, lib)
        out.append((EventAccumulator(str(d)).Reload(), sorted(p.name for p in d.iterdir() if p.is_dir())))
    return out


def test_scalars_and_add_scalars(tmp_path):
    def calls(w, lib):
        for step in range(5):
            w.add_scalar('loss', lib.tensor(1.0 / (step + 1)), step)
            w.add_scalar('acc', 0.5 + step / 10, step, walltime=1000.0 + step)
            w.add_scalars('run/lr', {'a': 0.1 * step, 'b': 0.2}, step)
    (ours, ours_dirs), (ref, ref_dirs) = write_both(tmp_path, calls)
    assert ours.Tags()['scalars'] == ref.Tags()['scalars'] and ours_dirs == ref_dirs == ['run_lr_a', 'run_lr_b']
    for tag in ['loss', 'acc']:
        assert [(e.step, e.value) for e in ours.Scalars(tag)] == [(e.step, e.value) for e in ref.Scalars(tag)]
    assert [e.wall_time for e in ours.Scalars('acc')] == [1000.0 + s for s in range(5)]
    sub = EventAccumulator(str(tmp_path / 'ours' / 'run_lr_a')).Reload()
    assert [round(e.value, 6) for e in sub.Scalars('run/lr')] == [0.0, 0.1, 0.2, 0.3, 0.4]


@pytest.mark.parametrize('kw', [{}, dict(bins=10), dict(bins='auto'), dict(max_bins=50)])
def test_histograms_like_pytorchs(tmp_path, kw):
    v = np.random.default_rng(0).standard_normal(2000).astype(np.float32) * 3
    (ours, _), (ref, _) = write_both(tmp_path, lambda w, lib: w.add_histogram('w', lib.tensor(v), 7, **kw))
    a, b = ours.Histograms('w')[0], ref.Histograms('w')[0]
    assert a.step == b.step == 7
    a, b = a.histogram_value, b.histogram_value
    assert (a.num, a.min, a.max, list(a.bucket)) == (b.num, b.min, b.max, list(b.bucket))
    np.testing.assert_allclose([a.sum, a.sum_squares], [b.sum, b.sum_squares], rtol=1e-5)
    np.testing.assert_allclose(a.bucket_limit, b.bucket_limit, rtol=1e-6)


def test_images_like_pytorchs(tmp_path):
    import matplotlib.image as mpimg
    rng = np.random.default_rng(1)
    chw, batch = rng.random((3, 5, 7)).astype(np.float32), rng.random((10, 1, 4, 3)).astype(np.float32)
    hwc8 = (rng.random((5, 7, 4)) * 255).astype(np.uint8)
    def calls(w, lib):
        w.add_image('chw', lib.tensor(chw), 0)
        w.add_image('hwc_uint8_rgba', lib.tensor(hwc8), 0, dataformats='HWC')
        w.add_image('hw', lib.tensor(chw[0]), 0, dataformats='HW')
        w.add_images('grid', lib.tensor(batch), 1)
        w.add_images('nhwc', lib.tensor(batch.transpose(0, 2, 3, 1)), 1, dataformats='NHWC')
    (ours, _), (ref, _) = write_both(tmp_path, calls)
    for tag in ['chw', 'hwc_uint8_rgba', 'hw', 'grid', 'nhwc']:
        a, b = ours.Images(tag)[0], ref.Images(tag)[0]
        assert (a.width, a.height, a.step) == (b.width, b.height, b.step), tag
        pa, pb = (mpimg.imread(io.BytesIO(i.encoded_image_string)) for i in (a, b))
        np.testing.assert_array_equal(pa, pb, err_msg=tag)


def test_text_graph_and_log_dir(tmp_path, monkeypatch):
    def calls(w, lib): w.add_text('notes', 'épreuve **1**', 3)
    (ours, _), (ref, _) = write_both(tmp_path, calls)
    a, b = ours.Tensors('notes/text_summary')[0], ref.Tensors('notes/text_summary')[0]
    assert a.tensor_proto == b.tensor_proto and a.step == b.step == 3
    assert ours.SummaryMetadata('notes/text_summary') == ref.SummaryMetadata('notes/text_summary')
    model = nbtorch.nn.Sequential(nbtorch.nn.Linear(4, 3), nbtorch.nn.ReLU(), nbtorch.nn.Linear(3, 2))
    with SummaryWriter(str(tmp_path / 'g')) as w: w.add_graph(model, nbtorch.randn(5, 4))
    g = EventAccumulator(str(tmp_path / 'g')).Reload().Graph()
    names = {n.name: n for n in g.node}
    assert {'0/weight', '0/bias', '2/weight', '2/bias', 'input/0', 'output/0'} <= set(names)
    assert names['0/weight'].op == 'Parameter' and any('0/weight' in n.input for n in g.node)
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment='_exp1')
    assert w.get_logdir().startswith('runs' + os.sep) and w.get_logdir().endswith('_exp1')
    w.add_scalar('x', 1.0, 0); w.close()
    assert any(p.name.startswith('events.out.tfevents.') for p in (tmp_path / w.get_logdir()).iterdir())
    with pytest.raises(AssertionError, match='scalar should be 0D'):
        SummaryWriter(str(tmp_path / 'e')).add_scalar('v', nbtorch.ones(2), 0)


def test_device_tensors_are_logged(tmp_path, dev):
    v = nbtorch.linspace(-1, 1, 50, device=dev)
    with SummaryWriter(str(tmp_path)) as w:
        w.add_scalar('s', v.sum() + 1, 0)
        w.add_histogram('h', v, 0)
        w.add_image('i', v.reshape(1, 5, 10).sigmoid(), 0)
    acc = EventAccumulator(str(tmp_path)).Reload()
    assert acc.Scalars('s')[0].value == pytest.approx(1.0, abs=1e-5)
    assert acc.Histograms('h')[0].histogram_value.num == 50 and acc.Images('i')[0].width == 10
