"The Learner: callback order, cancellation, callbacks that do their job, and a short run whose loss falls."
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
import nbtorch.nn.functional as F
from nbtorch import optim
from nbtorch.utils.data import TensorDataset, DataLoader, Generator
from nbtorch.learner import (Learner, Callback, MetricsCB, DeviceCB, EarlyStoppingCB, SaveBestCB, GradNormCB,
                             ProgressCB, CancelFitException, CancelEpochException, CancelBatchException, lr_find,
                             confusion_matrix, get_preds)


def data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    ds = TensorDataset(nbtorch.tensor(x), nbtorch.tensor(y))
    return DataLoader(ds, batch_size=16, shuffle=True, generator=Generator().manual_seed(seed)), DataLoader(ds, batch_size=64)


class Recorder(Callback):
    def __init__(self, cancel=None): self.events, self.cancel = [], cancel
    def __getattr__(self, name):
        if not name.startswith(('before_', 'after_')): raise AttributeError(name)
        def f(learn):
            self.events.append(name)
            if self.cancel and self.cancel[0] == name and len(self.events) >= self.cancel[2]: raise self.cancel[1]()
        return f


def test_callback_order_and_events():
    rec = Recorder()
    class First(Callback):
        order = -5
        def before_fit(self, learn): rec.events.append('first')
    Learner(nn.Linear(5, 2), data(), cbs=[rec, First()]).fit(2)
    ev = rec.events
    assert ev[:2] == ['first', 'before_fit'] and ev[-1] == 'after_fit'
    assert ev.count('before_epoch') == 4 and ev.count('after_backward') == 16 and ev.count('after_step') == 16
    assert ev.count('after_pred') == 16 + 4  # 8 train batches and 2 valid batches per epoch


@pytest.mark.parametrize('exc,after', [(CancelBatchException, 'after_cancel_batch'), (CancelEpochException, 'after_cancel_epoch'),
                                       (CancelFitException, 'after_cancel_fit')])
def test_cancellation(exc, after):
    rec = Recorder(cancel=('after_loss', exc, 5))
    Learner(nn.Linear(5, 2), data(), cbs=[rec]).fit(2)
    assert after in rec.events
    if exc is CancelFitException: assert rec.events[-1] == 'after_cancel_fit' and 'after_fit' not in rec.events
    if exc is CancelBatchException: assert rec.events.count('after_cancel_batch') > 1 and rec.events[-1] == 'after_fit'


def test_short_training_run_loss_falls_and_callbacks_work(tmp_path):
    nbtorch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    learn = Learner(model, data(), F.cross_entropy, lr=0.1, opt_func=optim.SGD,
                    cbs=[DeviceCB(), MetricsCB(), GradNormCB(), ProgressCB()])
    learn.fit(6, cbs=[SaveBestCB(tmp_path / 'best.nbt')])
    valid = [h for h in learn.history if not h['train']]
    assert valid[-1]['loss'] < 0.5 * valid[0]['loss'] and valid[-1]['accuracy'] > 0.9
    assert (tmp_path / 'best.nbt').exists()
    assert all(len(v) == 6 * 8 for v in learn.grad_norms.values())
    preds, targets = get_preds(model, learn.dls[1])
    cm = confusion_matrix(preds, targets, 2)
    assert cm.sum().item() == 128 and abs(cm.diagonal().sum().item() / 128 - (preds.argmax(1) == targets).float().mean().item()) < 1e-6 \
        if hasattr(cm, 'diagonal') else cm.sum().item() == 128


def test_early_stopping():
    class FlatLoss(Callback):
        order = 5
        def after_epoch(self, learn): pass
    learn = Learner(nn.Linear(5, 2), data(), lr=0.0, cbs=[MetricsCB()])
    learn.fit(10, cbs=[EarlyStoppingCB(patience=2)])
    assert len([h for h in learn.history if not h['train']]) == 3  # epoch 1 sets the best; 2 more without progress


def test_lr_find_leaves_the_model_unchanged():
    nbtorch.manual_seed(0)
    model = nn.Linear(5, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    learn = Learner(model, data(), lr=0.1)
    lrs, losses = lr_find(learn, num_it=20, plot=False)
    assert 5 <= len(losses) <= 20 and lrs[0] == pytest.approx(1e-5) and lrs == sorted(lrs)
    assert all(model.state_dict()[k].equal(v) for k, v in before.items())
