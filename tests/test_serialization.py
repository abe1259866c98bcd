"save/load: exact round trips, devices, resuming training, and files that are broken, foreign or malicious."
import io, os, json, pickle, signal, subprocess, sys, zipfile
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
from nbtorch import cuda
from nbtorch.serialization import save, load, CheckpointError
import standin
from helpers import torch

DTYPES = ['float16', 'float32', 'float64', 'uint8', 'int8', 'int16', 'int32', 'int64', 'bool']


def test_round_trip_every_dtype_and_shape(tmp_path):
    rng = np.random.default_rng(0)
    obj = {}
    for d in DTYPES:
        for shape in [(), (0,), (3,), (2, 3, 4)]:
            obj[f'{d}{shape}'] = nbtorch.tensor((rng.standard_normal(shape) * 50).astype(d))
    obj['noncontig'] = nbtorch.arange(12.).reshape(3, 4).t()
    obj['nested'] = [1, 2.5, 'x', None, True, (nbtorch.ones(2), {'deep': [nbtorch.zeros(1)]}), float('inf'), float('nan')]
    obj[7] = 'int key'
    save(obj, tmp_path / 'a.nbt')
    back = load(tmp_path / 'a.nbt')
    assert list(back) == list(obj)
    for k, v in obj.items():
        if isinstance(v, nbtorch.Tensor):
            assert back[k].dtype is v.dtype and back[k].shape == v.shape and back[k].equal(v), k
    n = back['nested']
    assert n[:5] == [1, 2.5, 'x', None, True] and isinstance(n[5], tuple) and n[5][1]['deep'][0].tolist() == [0.]
    assert n[6] == float('inf') and n[7] != n[7]


def test_parameters_and_requires_grad(tmp_path):
    p = nn.Parameter(nbtorch.ones(2))
    save({'p': p, 'g': nbtorch.ones(2, requires_grad=True), 'dt': nbtorch.float16}, tmp_path / 'p.nbt')
    b = load(tmp_path / 'p.nbt')
    assert isinstance(b['p'], nn.Parameter) and b['g'].requires_grad and b['dt'] is nbtorch.float16


def test_devices_and_map_location(tmp_path):
    saved = cuda._cupy, cuda._cupyx
    cuda._set_backend(standin.module, standin.extras)
    try:
        t = nbtorch.arange(4., device='cuda')
        save({'t': t}, tmp_path / 'd.nbt')
        assert load(tmp_path / 'd.nbt')['t'].device == 'cuda:0'
        assert load(tmp_path / 'd.nbt', map_location='cpu')['t'].device == 'cpu'
        assert load(tmp_path / 'd.nbt', map_location={'cuda:0': 'cpu'})['t'].device == 'cpu'
    finally: cuda._set_backend(*saved)
    if not cuda.is_available():
        with pytest.raises(RuntimeError, match='CUDA'): load(tmp_path / 'd.nbt')


def test_file_objects():
    buf = io.BytesIO()
    save({'x': nbtorch.ones(3)}, buf)
    buf.seek(0)
    assert load(buf)['x'].tolist() == [1., 1., 1.]


def _train(model, opt, xs, ys):
    for x, y in zip(xs, ys):
        opt.zero_grad(); nn.functional.cross_entropy(model(x), y).backward(); opt.step()


def test_checkpoint_resumes_training_exactly(tmp_path):
    def fresh():
        nbtorch.manual_seed(0)
        m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        return m, nbtorch.optim.AdamW(m.parameters(), lr=0.01)
    rng = np.random.default_rng(1)
    xs = [nbtorch.tensor(rng.standard_normal((16, 4)).astype(np.float32)) for _ in range(20)]
    ys = [nbtorch.tensor(rng.integers(0, 3, 16)) for _ in range(20)]
    m1, o1 = fresh(); _train(m1, o1, xs, ys)
    m2, o2 = fresh(); _train(m2, o2, xs[:10], ys[:10])
    save({'model': m2.state_dict(), 'opt': o2.state_dict()}, tmp_path / 'ck.nbt')
    m3, o3 = fresh()
    ck = load(tmp_path / 'ck.nbt')
    m3.load_state_dict(ck['model']); o3.load_state_dict(ck['opt'])
    _train(m3, o3, xs[10:], ys[10:])
    for (k, a), (_, b) in zip(m1.state_dict().items(), m3.state_dict().items()):
        assert a.equal(b), k


def test_corrupt_truncated_and_foreign_files(tmp_path):
    good = tmp_path / 'good.nbt'
    save({'w': nbtorch.arange(1000.)}, good)
    data = good.read_bytes()
    cases = {'truncated.nbt': data[:len(data) // 2], 'empty.nbt': b'', 'text.nbt': b'hello world',
             'pickle.pkl': pickle.dumps({'a': 1})}
    flipped = bytearray(data); flipped[200] ^= 0xFF; cases['flipped.nbt'] = bytes(flipped)
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(CheckpointError) as e: load(p)
        assert name in str(e.value), str(e.value)
    if torch is not None:
        torch.save({'w': torch.ones(2)}, tmp_path / 'torch.pt')
        with pytest.raises(CheckpointError, match="torch.pt' is not an nbtorch checkpoint"): load(tmp_path / 'torch.pt')
    with pytest.raises(FileNotFoundError): load(tmp_path / 'missing.nbt')


class Payload:
    "Unpickling this would create a file: proof that code ran."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (open, (self.path, 'w'))


def test_a_crafted_file_runs_nothing(tmp_path):
    marker = tmp_path / 'pwned'
    evil = np.array([Payload(str(marker))], dtype=object)
    bad = tmp_path / 'evil.nbt'
    with zipfile.ZipFile(bad, 'w') as z:
        z.writestr('data.json', json.dumps({'format': 'nbtorch-checkpoint', 'version': 1,
                                            'root': {'__tensor__': 0, 'dtype': 'float32', 'device': 'cpu'}}))
        buf = io.BytesIO(); np.save(buf, evil, allow_pickle=True); z.writestr('arrays/0.npy', buf.getvalue())
    with pytest.raises(CheckpointError): load(bad)
    with zipfile.ZipFile(tmp_path / 'evil2.nbt', 'w') as z:  # a pickle where PyTorch would have one
        z.writestr('archive/data.pkl', pickle.dumps(Payload(str(marker))))
    with pytest.raises(CheckpointError): load(tmp_path / 'evil2.nbt')
    (tmp_path / 'evil3.nbt').write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(CheckpointError): load(tmp_path / 'evil3.nbt')
    assert not marker.exists()


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="save a model's state_dict"): save(nn.Linear(2, 2), tmp_path / 'm.nbt')
    with pytest.raises(TypeError, match='dict keys'): save({(1, 2): 3}, tmp_path / 'k.nbt')
    assert not (tmp_path / 'm.nbt').exists() and not list(tmp_path.glob('.*.tmp'))


CRASH = '''
import sys, os, signal, zipfile
import nbtorch
from nbtorch.serialization import save
real = zipfile.ZipFile.writestr
n = [0]
def crash(self, *a, **k):
    n[0] += 1
    if n[0] == 3: os.kill(os.getpid(), signal.SIGKILL)  # die in the middle of writing the arrays
    return real(self, *a, **k)
zipfile.ZipFile.writestr = crash
save({str(i): nbtorch.full((100,), 9.) for i in range(5)}, sys.argv[1])
'''


def test_a_save_killed_midway_leaves_the_old_file(tmp_path):
    path = tmp_path / 'model.nbt'
    save({'version': 'old', 'w': nbtorch.ones(3)}, path)
    before = path.read_bytes()
    r = subprocess.run([sys.executable, '-c', CRASH, str(path)], capture_output=True)
    assert r.returncode == -signal.SIGKILL
    assert path.read_bytes() == before and load(path)['version'] == 'old'
