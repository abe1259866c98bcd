"save/load: exact round trips, devices, resuming training, and files that are broken, foreign or malicious."
import copy, io, os, json, pickle, shutil, signal, stat, struct, subprocess, sys, tempfile
import threading, time, tracemalloc, zipfile, zlib
import numpy as np
import pytest
import nbtorch
import nbtorch.nn as nn
from nbtorch import cuda
from nbtorch.serialization import save, load, CheckpointError, _owner
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


def test_complex_tensors_round_trip(tmp_path):
    "complex64 and complex128 are stored natively by .npy: values, dtype, requires_grad, views."
    z = nbtorch.tensor([1 + 2j, -0.5j, float('inf') - 1j], dtype=nbtorch.complex128)
    w = nbtorch.randn(2, 3, dtype=nbtorch.complex64, requires_grad=True)
    save({'z': z, 'w': w, 're': z.real, 'dt': nbtorch.cfloat}, tmp_path / 'c.nbt')
    b = load(tmp_path / 'c.nbt')
    assert b['z'].dtype is nbtorch.complex128 and b['z'].tolist() == z.tolist()
    assert b['w'].dtype is nbtorch.complex64 and b['w'].requires_grad and b['w'].equal(w.detach())
    assert b['re'].tolist() == [1., 0., float('inf')] and b['dt'] is nbtorch.complex64


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


def test_save_stores_data_as_data_and_pickles_the_rest(tmp_path):
    save({(1, 2): 3, 'dev': nbtorch.device('cpu')}, tmp_path / 'k.nbt')  # tuple keys, devices: data
    assert load(tmp_path / 'k.nbt') == {(1, 2): 3, 'dev': nbtorch.device('cpu')}
    save(nn.Linear(2, 2), tmp_path / 'm.nbt')  # a whole module is pickled, as PyTorch does
    with zipfile.ZipFile(tmp_path / 'm.nbt') as z: assert 'data.pkl' in z.namelist()
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save({'f': lambda x: x}, tmp_path / 'f.nbt')  # what pickle cannot store fails as in PyTorch
    assert not (tmp_path / 'f.nbt').exists() and not list(tmp_path.glob('.*.tmp'))


CRASH = '''
import sys, os, signal
import numpy as np
from nbtorch.serialization import save
import nbtorch
real, n = np.lib.format.write_array, [0]
def crash(*a, **k):
    n[0] += 1
    if n[0] == 3: os.kill(os.getpid(), signal.SIGKILL)  # die in the middle of writing the arrays
    return real(*a, **k)
np.lib.format.write_array = crash
save({str(i): nbtorch.full((100,), 9.) for i in range(5)}, sys.argv[1])
'''


def test_a_save_killed_midway_leaves_the_old_file_and_a_later_save_removes_its_temporary(tmp_path):
    path = tmp_path / 'model.nbt'
    save({'version': 'old', 'w': nbtorch.ones(3)}, path)
    before = path.read_bytes()
    r = subprocess.run([sys.executable, '-c', CRASH, str(path)], capture_output=True)
    assert r.returncode == -signal.SIGKILL, r.stderr.decode()
    assert path.read_bytes() == before and load(path)['version'] == 'old'
    assert len(list(tmp_path.glob('.model.nbt.*'))) == 1  # the dead save's temporary
    save({'version': 'new'}, path)
    assert load(path)['version'] == 'new' and list(tmp_path.glob('.model.nbt.*')) == []


LIVE = '''
import sys, nbtorch
from nbtorch import serialization
real = serialization._write_archive
def slow(*a):
    print('writing', flush=True); sys.stdin.readline()  # hold the temporary open until told
    return real(*a)
serialization._write_archive = slow
serialization.save({'who': 'child'}, sys.argv[1])
'''


def test_a_live_writers_temporary_is_never_removed(tmp_path):
    path = tmp_path / 'model.nbt'
    child = subprocess.Popen([sys.executable, '-c', LIVE, str(path)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b'writing\n'
        theirs = list(tmp_path.glob('.model.nbt.*'))
        assert len(theirs) == 1
        save({'who': 'parent'}, path)  # a concurrent save of the same file
        assert theirs[0].exists() and load(path)['who'] == 'parent'
        child.communicate(b'go\n', timeout=60)
    finally: child.kill()
    assert child.returncode == 0 and load(path)['who'] == 'child'
    assert list(tmp_path.glob('.model.nbt.*')) == []


def _as_nobody(fn):
    "Run `fn()` as an unprivileged user (root bypasses permissions); its exception type, or None."
    if os.geteuid() != 0:
        try: fn()
        except Exception as e: return type(e)
        return None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child drops to 'nobody', runs fn, reports, and never returns into pytest
        try:
            os.close(r); os.setgid(65534); os.setuid(65534)
            try: fn(); out = b'None'
            except Exception as e: out = type(e).__name__.encode()
            os.write(w, out)
        finally: os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    with os.fdopen(r, 'rb') as f: out = f.read().decode()
    return None if out == 'None' else out


def test_save_over_a_read_only_file_fails_and_leaves_it():
    d = tempfile.mkdtemp()  # a directory anyone may write in, holding a file that nobody may
    try:
        os.chmod(d, 0o777)
        path = os.path.join(d, 'frozen.nbt')
        save({'w': nbtorch.ones(2)}, path)
        os.chmod(path, 0o444)
        before = open(path, 'rb').read()
        err = _as_nobody(lambda: save({'w': nbtorch.zeros(2)}, path))
        assert err in (PermissionError, 'PermissionError'), err
        assert open(path, 'rb').read() == before and stat.S_IMODE(os.stat(path).st_mode) == 0o444
        if torch is not None:  # PyTorch refuses too (RuntimeError, from its C++ writer), keeps it
            assert _as_nobody(lambda: torch.save({'w': torch.zeros(2)}, path)) is not None
            assert open(path, 'rb').read() == before
        assert os.listdir(d) == ['frozen.nbt']
    finally: shutil.rmtree(d)


def test_save_through_a_symlink_updates_its_target(tmp_path):
    target, link = tmp_path / 'real.nbt', tmp_path / 'link.nbt'
    save({'v': 1}, target)
    link.symlink_to(target)
    save({'v': 2}, link)
    assert link.is_symlink() and load(target)['v'] == 2
    if torch is not None:
        torch.save({'v': 3}, link)
        assert link.is_symlink() and torch.load(target)['v'] == 3


def test_new_files_take_the_umask_existing_files_keep_their_mode(tmp_path):
    old = os.umask(0o027)
    try:
        save({'v': 1}, tmp_path / 'new.nbt')
        os.chmod(tmp_path / 'new.nbt', 0o604)
        save({'v': 2}, tmp_path / 'new.nbt')
        modes = [0o640, 0o604]
        if torch is not None:
            torch.save({'v': 1}, tmp_path / 'new.pt')
            assert stat.S_IMODE(os.stat(tmp_path / 'new.pt').st_mode) == 0o640
        save({'v': 3}, tmp_path / 'other.nbt')
        assert stat.S_IMODE(os.stat(tmp_path / 'other.nbt').st_mode) == modes[0]
        assert stat.S_IMODE(os.stat(tmp_path / 'new.nbt').st_mode) == modes[1]
    finally: os.umask(old)


def test_the_directory_is_flushed_after_the_rename(tmp_path, monkeypatch):
    events, fsync, replace = [], os.fsync, os.replace
    def logged_fsync(fd):
        events.append('fsync dir' if stat.S_ISDIR(os.fstat(fd).st_mode) else 'fsync file')
        return fsync(fd)
    monkeypatch.setattr(os, 'fsync', logged_fsync)
    monkeypatch.setattr(os, 'replace', lambda *a: (events.append('rename'), replace(*a))[1])
    save({'v': 1}, tmp_path / 'a.nbt')
    assert events == ['fsync file', 'rename', 'fsync dir']


def test_save_writes_into_a_pipe_instead_of_replacing_it(tmp_path):
    fifo = tmp_path / 'pipe'
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, 'rb').read()), daemon=True)
    reader.start()
    save({'v': nbtorch.ones(2)}, fifo)
    reader.join(20)  # a pipe replaced by a file would leave the reader waiting forever
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and got
    assert load(io.BytesIO(got[0]))['v'].tolist() == [1., 1.]


def _storage_id(t):
    "Which memory a tensor of either library views."
    if isinstance(t, nbtorch.Tensor): return id(_owner(t._data))
    return t.untyped_storage().data_ptr()


def test_shared_memory_stays_shared_and_is_written_once(tmp_path, dev):
    def tied(lib, dev='cpu'):  # tied weights, views of one base, and a state_dict holding both
        lib.manual_seed(0)
        emb, out = lib.nn.Embedding(50, 8).to(dev), lib.nn.Linear(8, 50, bias=False).to(dev)
        out.weight = emb.weight
        base = lib.arange(24., device=dev).reshape(4, 6)
        return {'emb': emb.state_dict(), 'out': out.state_dict(), 'base': base,
                'row': base[1], 'col': base[:, 2], 't': base.t(), 'tail': base.reshape(-1)[5:]}
    ours = tied(nbtorch, dev)
    save(ours, tmp_path / 's.nbt')
    with zipfile.ZipFile(tmp_path / 's.nbt') as z:
        assert len([n for n in z.namelist() if n.startswith('arrays/')]) == 2  # weight and base
    back = load(tmp_path / 's.nbt')
    assert back['emb']['weight'].device == ours['base'].device
    sharing = lambda d: [_storage_id(d['emb']['weight']) == _storage_id(d['out']['weight'])] + \
        [_storage_id(d[k]) == _storage_id(d['base']) for k in ('row', 'col', 't', 'tail')]
    assert sharing(back) == [True] * 5
    if torch is not None:
        ref = tied(torch)
        torch.save(ref, tmp_path / 's.pt')
        assert sharing(torch.load(tmp_path / 's.pt')) == sharing(back)
    back['base'].mul_(10)  # one change, seen through every view, as in PyTorch
    for k, v in [('row', back['base'][1]), ('col', back['base'][:, 2]), ('t', back['base'].t())]:
        assert back[k].equal(v), k
    assert back['tail'].tolist() == (nbtorch.arange(5., 24.) * 10).tolist()


def _raw_zip(entries):
    "A ZIP archive built byte by byte from (name, data, method, crc, size[, stored size])."
    out, central = io.BytesIO(), []
    for name, data, method, crc, size, *csize in entries:
        n, csize = name.encode(), (csize or [len(data)])[0]
        central.append(struct.pack('<4s6H3L5H2L', b'PK\x01\x02', 20, 20, 0, method, 0, 0, crc,
                                   csize, size, len(n), 0, 0, 0, 0, 0, out.tell()) + n)
        out.write(struct.pack('<4s5H3L2H', b'PK\x03\x04', 20, 0, method, 0, 0, crc, csize, size,
                              len(n), 0) + n + data)
    start = out.tell()
    for c in central: out.write(c)
    out.write(struct.pack('<4s4H2LH', b'PK\x05\x06', 0, 0, len(entries), len(entries),
                          out.tell() - start, start, 0))
    return out.getvalue()


def _stored(name, data): return (name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data))


def _npy(a):
    buf = io.BytesIO(); np.save(buf, a, allow_pickle=True); return buf.getvalue()


def _npy_header(shape, descr='<f4'):
    "A .npy header that declares `shape`, whatever data follows."
    buf = io.BytesIO()
    header = {'descr': descr, 'fortran_order': False, 'shape': shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def _doc(root, version=2, storages=None, tensors=None, **kw):
    d = {'format': 'nbtorch-checkpoint', 'version': version, 'root': root, **kw}
    if version == 2: d.update(storages=storages or [], tensors=tensors or [], pickle=False)
    return json.dumps(d).encode()


def _v1_tensor(i=0, dtype='float32'):
    return {'__tensor__': i, 'dtype': dtype, 'device': 'cpu', 'requires_grad': False,
            'parameter': False}


def _bomb():
    "1 MB that inflates to a 1 GiB array: deflate blocks of zeros, each ended by a full flush."
    header = _npy_header((2**28,))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = c.compress(header) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)  # the same bytes every time
    crc = zlib.crc32(header)
    for _ in range(1024): crc = zlib.crc32(bytes(1 << 20), crc)
    return _raw_zip([_stored('data.json', _doc(_v1_tensor(), version=1)),
                     ('arrays/0.npy', head + block * 1024 + c.flush(), zipfile.ZIP_DEFLATED, crc,
                      len(header) + 2**30)])


def _liar():
    "An entry that declares 36 bytes but inflates to 64 MiB."
    data = zlib.compress(bytes(64 << 20), 9)[2:-4]  # raw deflate
    return _raw_zip([_stored('data.json', _doc(_v1_tensor(), version=1)),
                     ('arrays/0.npy', data, zipfile.ZIP_DEFLATED, 0, 36)])


def _huge_header():
    "A header that declares 10**12 float32 values, followed by 8 bytes."
    npy = _npy_header((10**12,)) + bytes(8)
    return _raw_zip([_stored('data.json', _doc(_v1_tensor(), version=1)),
                     _stored('arrays/0.npy', npy)])


def _references(n=20_000):
    "One 1 MiB array, referenced from the document n times."
    npy = _npy(np.ones(1 << 18, np.float32))
    return _raw_zip([_stored('data.json', _doc([_v1_tensor()] * n, version=1)),
                     _stored('arrays/0.npy', npy)])


def _peak(fn):
    "What `fn()` returns or raises, and the most memory it held at once (NumPy reports its own)."
    tracemalloc.start()
    try:
        try: out = fn()
        except Exception as e: out = e
        return out, tracemalloc.get_traced_memory()[1]
    finally: tracemalloc.stop()


@pytest.mark.parametrize('make', [_bomb, _liar, _huge_header])
def test_a_hostile_file_cannot_exhaust_memory(tmp_path, make):
    path = tmp_path / 'hostile.nbt'
    path.write_bytes(make())
    assert path.stat().st_size < 3 << 20
    out, peak = _peak(lambda: load(path))
    assert isinstance(out, CheckpointError) and 'hostile.nbt' in str(out), repr(out)
    assert peak < 4 << 20, f"{peak / 2**20:.0f} MiB for a file of {path.stat().st_size / 2**20:.1f}"


def test_the_bomb_is_real(tmp_path):
    (tmp_path / 'b.zip').write_bytes(_bomb())
    with zipfile.ZipFile(tmp_path / 'b.zip') as z:
        assert z.getinfo('arrays/0.npy').file_size > 2**30
        with z.open('arrays/0.npy') as f:  # a valid header for 2**28 floats, then zeros
            np.lib.format.read_magic(f)
            assert np.lib.format.read_array_header_1_0(f)[0] == (2**28,)
            assert f.read(1 << 20) == bytes(1 << 20)


def test_a_file_referencing_one_array_many_times_shares_it(tmp_path):
    path = tmp_path / 'refs.nbt'
    path.write_bytes(_references())
    start = time.perf_counter()
    out, peak = _peak(lambda: load(path))
    seconds = time.perf_counter() - start
    assert isinstance(out, list) and len(out) == 20_000, repr(out)
    assert len({id(_owner(t._data)) for t in out}) == 1 and out[-1].shape == (1 << 18,)
    assert peak < 64 << 20, f"{peak / 2**20:.0f} MiB (PyTorch shares the storage too)"
    print(f"20,000 references: {seconds:.2f} s, peak {peak / 2**20:.1f} MiB")


def test_a_file_names_dtypes_and_nothing_else(tmp_path):
    for ok in ['float16', 'int64', 'bool']:
        (tmp_path / 'd.nbt').write_bytes(_raw_zip([_stored('data.json', _doc({'__dtype__': ok}))]))
        assert load(tmp_path / 'd.nbt') is getattr(nbtorch, ok)
    for evil in ['save', 'nn', 'Tensor', '__builtins__', 'serialization', 'float', 'tensor']:
        doc = _doc({'__dtype__': evil})
        (tmp_path / 'd.nbt').write_bytes(_raw_zip([_stored('data.json', doc)]))
        with pytest.raises(CheckpointError, match='not a dtype'): load(tmp_path / 'd.nbt')


def _good_v2():
    "A small valid checkpoint's document and arrays, to break in one place."
    storages = [{'dtype': 'float32', 'device': 'cpu'}]
    tensors = [{'storage': 0, 'offset': 0, 'shape': [2, 3], 'stride': [3, 1],
                'requires_grad': False, 'parameter': False}]
    return {'format': 'nbtorch-checkpoint', 'version': 2, 'pickle': False, 'storages': storages,
            'tensors': tensors, 'root': {'__dict__': [['w', {'__tensor__': 0}]], 'ordered': False}}


def _with(change):
    doc = _good_v2(); change(doc)
    return [_stored('data.json', json.dumps(doc).encode()),
            _stored('arrays/0.npy', _npy(np.ones(6, np.float32)))]


def _array(data):
    "The good document, with `data` as its array's entry."
    return _with(lambda d: None)[:1] + [_stored('arrays/0.npy', data)]


def _deep(n):
    return json.dumps({'format': 'nbtorch-checkpoint', 'version': 1, 'root': None}).replace(
        'null', '[' * n + ']' * n).encode()


ONES = _stored('arrays/0.npy', _npy(np.ones(2, np.float32)))
MALFORMED = {
    'string version': _with(lambda d: d.update(version='2')),
    'bool version': _with(lambda d: d.update(version=True)),
    'no version': _with(lambda d: d.pop('version')),
    'negative version': _with(lambda d: d.update(version=-1)),
    'non-string dtype': _with(lambda d: d['storages'][0].update(dtype=5)),
    'list dtype': _with(lambda d: d['storages'][0].update(dtype=['float32'])),
    'unknown device': _with(lambda d: d['storages'][0].update(device='tpu')),
    'storage index string': _with(lambda d: d['tensors'][0].update(storage='0')),
    'storage index out of range': _with(lambda d: d['tensors'][0].update(storage=7)),
    'tensor index out of range': _with(lambda d: d.update(root={'__tensor__': 3})),
    'tensor index float': _with(lambda d: d.update(root={'__tensor__': 0.0})),
    'view past the end': _with(lambda d: d['tensors'][0].update(shape=[3, 3])),
    'negative offset': _with(lambda d: d['tensors'][0].update(offset=-1)),
    'negative stride past start': _with(lambda d: d['tensors'][0].update(stride=[-3, 1])),
    'shape not a list': _with(lambda d: d['tensors'][0].update(shape='23')),
    'huge shape': _with(lambda d: d['tensors'][0].update(shape=[10**30, 0])),
    'strides missing': _with(lambda d: d['tensors'][0].pop('stride')),
    'int requires grad': _with(lambda d: (d['storages'][0].update(dtype='int32'),
                                          d['tensors'][0].update(requires_grad=True))),
    'flag not a bool': _with(lambda d: d['tensors'][0].update(parameter='yes')),
    'tables missing': _with(lambda d: d.pop('tensors')),
    'unknown record': _with(lambda d: d.update(root={'__class__': 'os.system'})),
    'bad float': _with(lambda d: d.update(root={'__float__': '1e999'})),
    'bad dict item': _with(lambda d: d.update(root={'__dict__': [[1, 2, 3]], 'ordered': False})),
    'unhashable key': _with(lambda d: d.update(root={'__dict__': [[[1], 2]], 'ordered': False})),
    'pickle flag a string': _with(lambda d: d.update(pickle='no')),
    'pickle without data.pkl': _with(lambda d: d.update(pickle=True, root=None)),
    'deep nesting': [_stored('data.json', _deep(100_000))],
    'deep but parsable nesting': [_stored('data.json', _deep(900))],
    'root is a list of junk': _with(lambda d: d.update(root=[{'__tuple__': 5}])),
    'document not a dict': [_stored('data.json', b'[1, 2]')],
    'document not JSON': [_stored('data.json', b'{"format": ')],
    'document not UTF-8': [_stored('data.json', b'\xff\xfe\x00\xd8')],
    'array missing': _with(lambda d: None)[:1],
    'duplicate entries': _with(lambda d: None) + [_stored('data.json', b'{}')],
    'big-endian array': _array(_npy(np.ones(6, '>f4'))),
    'string array': _array(_npy(np.array(['abcdef']))),
    'complex array': _array(_npy(np.ones(6, complex))),
    'object array': _array(_npy(np.array([{}, 1], dtype=object))),
    'dtype differs from document': _array(_npy(np.ones(6))),
    'two-d storage': _array(_npy(np.ones((2, 3), 'f4'))),
    'header not a dict': _array(b'\x93NUMPY\x01\x00\x04\x00[1]\n'),
    'header nested': _array(b'\x93NUMPY\x01\x00\xf4\x01' + b'(' * 500),
    'npy version 9': _array(b'\x93NUMPY\x09\x00' + bytes(20)),
    'data short': _array(_npy(np.ones(6, 'f4'))[:-4]),
    'data long': _array(_npy(np.ones(6, 'f4')) + b'1234'),
    'bad crc': _with(lambda d: None)[:1] + [('arrays/0.npy', _npy(np.ones(6, 'f4')), 0, 1234, 152)],
    'sizes that differ': [('data.json', b'{}', 0, zlib.crc32(b'{}'), 2**31)],
    'size beyond the file': [('data.json', b'{}', 0, zlib.crc32(b'{}'), 2**31, 2**31)],
    'compressed entry': [('data.json', zlib.compress(b'{}')[2:-4], 8, zlib.crc32(b'{}'), 2)],
    'unknown compression': [('data.json', b'{}', 99, zlib.crc32(b'{}'), 2)],
    'v1 datetime array': [_stored('data.json', _doc(_v1_tensor(0, 'datetime64'), version=1)),
                          _stored('arrays/0.npy', _npy(np.zeros(2, 'M8[s]')))],
    'v1 string array': [_stored('data.json', _doc(_v1_tensor(0, 'str96'), version=1)),
                        _stored('arrays/0.npy', _npy(np.array(['abc'])))],
    'v1 big-endian array': [_stored('data.json', _doc(_v1_tensor(), version=1)),
                            _stored('arrays/0.npy', _npy(np.ones(2, '>f4')))],
    'v1 duplicate entries': [_stored('data.json', _doc(_v1_tensor(), version=1)),
                             _stored('arrays/0.npy', _npy(np.ones(2, 'f4'))),
                             _stored('arrays/0.npy', _npy(np.zeros(2, 'f4')))],
    'v1 array index string': [_stored('data.json', _doc(_v1_tensor('0'), version=1)), ONES],
    'v1 non-string dtype': [_stored('data.json', _doc(_v1_tensor(0, 5), version=1)), ONES],
    'v1 non-string dtype name': [_stored('data.json', _doc({'__dtype__': 5}, version=1))],
    'v1 list dtype name': [_stored('data.json', _doc({'__dtype__': ['int8']}, version=1))],
    'v1 same array two dtypes': [_stored('data.json', _doc([_v1_tensor(0), _v1_tensor(0, 'int8')],
                                                           version=1)), ONES],
}


@pytest.mark.parametrize('case', list(MALFORMED))
def test_every_malformed_input_is_a_checkpoint_error(tmp_path, case):
    path = tmp_path / 'bad.nbt'
    path.write_bytes(_raw_zip(MALFORMED[case]))
    with pytest.raises(CheckpointError) as e: load(path)
    assert 'bad.nbt' in str(e.value)


def test_the_malformed_cases_start_from_a_good_file(tmp_path):
    path = tmp_path / 'good.nbt'
    path.write_bytes(_raw_zip(_with(lambda d: None)))
    assert load(path)['w'].tolist() == [[1.] * 3] * 2


def _fuzz_cases(seed, n):
    "A valid checkpoint, and n copies of it with bytes changed (seeded)."
    buf = io.BytesIO()
    w = nbtorch.arange(12.).reshape(3, 4)
    save({'w': w, 't': w.t(), 'n': [1, 2.5, (True, None)], 'd': nbtorch.int8,
          'f': float('nan')}, buf)
    good, rng = buf.getvalue(), np.random.default_rng(seed)
    for _ in range(n):
        bad = bytearray(good)
        for i in rng.integers(0, len(bad), rng.integers(1, 4)): bad[i] ^= 1 << rng.integers(0, 8)
        yield bytes(bad)


def test_flipped_bits_load_or_raise_checkpoint_error():
    outcomes = {}
    for data in _fuzz_cases(0, 400):
        try: load(io.BytesIO(data)); kind = 'loaded'
        except CheckpointError: kind = 'CheckpointError'
        outcomes[kind] = outcomes.get(kind, 0) + 1  # anything else fails the test here
    assert outcomes.get('CheckpointError', 0) > 300, outcomes


def _mutants(seed, n):
    "Documents with one value replaced by junk, in archives with correct checksums (seeded)."
    rng = np.random.default_rng(seed)
    junk = [None, True, -1, 0, 2**70, 1.5, 'x', 'float32', [], [0], {}, {'__tensor__': 0}, [[1, 2]]]
    for _ in range(n):
        doc = _good_v2()
        doc['root'] = {'__dict__': [['w', {'__tensor__': 0}], ['d', {'__dtype__': 'int8'}],
                                    ['t', {'__tuple__': [1, {'__float__': 'inf'}]}]],
                       'ordered': True}
        nodes = [doc]  # every dict and list in the document
        for x in nodes: nodes.extend(v for v in (x.values() if isinstance(x, dict) else x)
                                     if isinstance(v, (dict, list)))
        x = nodes[rng.integers(len(nodes))]
        if x:
            k = list(x)[rng.integers(len(x))] if isinstance(x, dict) else rng.integers(len(x))
            x[k] = junk[rng.integers(len(junk))]
        yield _raw_zip([_stored('data.json', json.dumps(doc).encode()),
                        _stored('arrays/0.npy', _npy(np.ones(6, np.float32)))])


def test_mutated_documents_load_or_raise_checkpoint_error():
    outcomes = {}
    for data in _mutants(1, 400):
        try: load(io.BytesIO(data)); kind = 'loaded'
        except CheckpointError: kind = 'CheckpointError'
        outcomes[kind] = outcomes.get(kind, 0) + 1
    assert outcomes.get('CheckpointError', 0) > 150 and outcomes.get('loaded', 0) > 20, outcomes


def test_map_location_takes_every_form_pytorch_takes(tmp_path, dev):
    w = nbtorch.arange(6., device=dev).reshape(2, 3)
    save({'w': w, 't': w.t()}, tmp_path / 'm.nbt')
    saved_at = str(w.device)
    seen = []
    def spy(storage, location):
        seen.append((type(storage), storage.device, location))
        return storage  # the CPU copy itself: PyTorch's idiom to load onto the CPU
    forms = ['cpu', b'cpu', nbtorch.device('cpu'), {saved_at: 'cpu'},
             {saved_at: nbtorch.device('cpu')}, spy, lambda storage, location: None, None]
    for form in forms:
        back = load(tmp_path / 'm.nbt', map_location=form)
        expected = saved_at if form is None or (callable(form) and form is not spy) else 'cpu'
        assert str(back['w'].device) == expected, form
        assert back['w'].tolist() == w.tolist() and back['t'].tolist() == w.t().tolist()
        assert _storage_id(back['w']) == _storage_id(back['t']), form  # one storage, one placement
    assert seen == [(nbtorch.Tensor, nbtorch.device('cpu'), saved_at)]  # once per storage
    if torch is not None:  # the same forms, and the same one call per storage, in PyTorch
        z = torch.zeros(2, 3)
        torch.save({'w': z, 't': z.t()}, tmp_path / 'm.pt')
        calls = []
        torch.load(tmp_path / 'm.pt', map_location=lambda s, loc: calls.append(loc))
        assert calls == ['cpu']
    with pytest.raises(TypeError, match='map_location'): load(tmp_path / 'm.nbt', map_location=5)
    with pytest.raises(TypeError, match='map_location returned'):
        load(tmp_path / 'm.nbt', map_location=lambda s, loc: 'cpu')


def test_loading_peaks_at_about_the_checkpoint_size(tmp_path):
    sd = {'embedding.weight': nbtorch.full((8192, 1024), 1.)}  # 32 MiB, and small tensors
    sd.update({f'layer{i}.bias': nbtorch.full((1024,), float(i)) for i in range(8)})
    save(sd, tmp_path / 'big.nbt')
    size = sum(t.numel() * t.element_size() for t in sd.values())
    back, peak = _peak(lambda: load(tmp_path / 'big.nbt'))
    assert back['embedding.weight'].equal(sd['embedding.weight']) and back['layer7.bias'][0] == 7
    print(f"normal load: peak {peak / size:.2f}x the arrays' bytes")
    assert peak < 1.3 * size, f"{peak / size:.2f}x"


def test_whole_modules_and_optimizers_are_pickled_and_refused_by_default(tmp_path):
    nbtorch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    opt = nbtorch.optim.Adam(m.parameters(), lr=0.01)
    x = nbtorch.randn(16, 4)
    y = nbtorch.tensor(np.random.default_rng(0).integers(0, 3, 16))
    _train(m, opt, [x], [y])
    save({'model': m, 'opt': opt, 'epoch': 3}, tmp_path / 'whole.nbt')
    with zipfile.ZipFile(tmp_path / 'whole.nbt') as z:  # tensors stay arrays, beside the pickle
        assert len([n for n in z.namelist() if n.startswith('arrays/')]) >= 8
        assert z.getinfo('data.pkl').file_size < 4000
    with pytest.raises(pickle.UnpicklingError) as e: load(tmp_path / 'whole.nbt')
    for gist in ['Weights only load failed', 'weights_only=False', 'trusted', 'whole.nbt']:
        assert gist in str(e.value)
    if torch is not None:  # PyTorch refuses a pickled module with the same kind of error
        torch.save(torch.nn.Linear(2, 2), tmp_path / 'whole.pt')
        with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
            torch.load(tmp_path / 'whole.pt')
    back = load(tmp_path / 'whole.nbt', weights_only=False)
    m2, opt2 = back['model'], back['opt']
    assert back['epoch'] == 3 and isinstance(m2[0].weight, nn.Parameter)
    assert opt2.param_groups[0]['params'][0] is m2[0].weight  # one object, as before saving
    _train(m, opt, [x], [y]); _train(m2, opt2, [x], [y])  # and training goes on identically
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()): assert a.equal(b), k


class Boom:
    "Unpickling this runs os.system-like code: it would create a file."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (os.system, (f'touch {self.path}',))


def test_a_crafted_pickle_never_runs_unless_the_caller_opts_in(tmp_path):
    marker = tmp_path / 'pwned'
    doc = {'format': 'nbtorch-checkpoint', 'version': 2, 'pickle': True, 'storages': [],
           'tensors': [], 'root': None}
    (tmp_path / 'evil.nbt').write_bytes(_raw_zip([
        _stored('data.json', json.dumps(doc).encode()),
        _stored('data.pkl', pickle.dumps(Boom(marker)))]))
    with pytest.raises(pickle.UnpicklingError, match='Weights only'): load(tmp_path / 'evil.nbt')
    with pytest.raises(pickle.UnpicklingError):
        load(tmp_path / 'evil.nbt', weights_only=True, map_location='cpu')
    doc['pickle'] = False  # a data.pkl beside a data document is never read
    (tmp_path / 'evil2.nbt').write_bytes(_raw_zip([
        _stored('data.json', json.dumps(doc).encode()),
        _stored('data.pkl', pickle.dumps(Boom(marker)))]))
    assert load(tmp_path / 'evil2.nbt', weights_only=False) is None
    assert not marker.exists()
    load(tmp_path / 'evil.nbt', weights_only=False)  # the caller trusted the file: it runs
    assert marker.exists()


def test_tensors_parameters_modules_and_optimizers_pickle():
    t = nbtorch.ones(3, requires_grad=True)
    (t * 2).sum().backward()  # a leaf with a gradient (and an accumulator) pickles
    t.note = 'kept'
    back = pickle.loads(pickle.dumps(t))
    assert back.tolist() == [1.] * 3 and back.requires_grad and back.grad is None
    assert back.note == 'kept'
    non_leaf = pickle.loads(pickle.dumps(t * 3))
    assert non_leaf.is_leaf and non_leaf.requires_grad and non_leaf.tolist() == [3.] * 3
    if torch is not None:  # the same rules in PyTorch: no .grad, a non-leaf comes back a leaf
        r = torch.ones(3, requires_grad=True); (r * 2).sum().backward()
        assert pickle.loads(pickle.dumps(r)).grad is None
        assert pickle.loads(pickle.dumps(r * 3)).is_leaf
    base = nbtorch.arange(6.)
    b, v = pickle.loads(pickle.dumps((base, base[2:].reshape(2, 2))))
    b.add_(1)
    assert v.tolist() == [[3., 4.], [5., 6.]]  # views still share the base's memory
    m = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    opt = nbtorch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9)
    m(nbtorch.randn(4, 2)).sum().backward(); opt.step()
    m2, opt2 = pickle.loads(pickle.dumps((m, opt)))
    assert isinstance(m2[0].weight, nn.Parameter) and m2[0].weight.equal(m[0].weight)
    assert opt2.param_groups[0]['params'][0] is m2[0].weight
    buffers = [o.state[mm[0].weight]['momentum_buffer'] for o, mm in [(opt, m), (opt2, m2)]]
    assert buffers[0].equal(buffers[1])


def test_version_1_files_still_load(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    root = {'__dict__': [['w', {'__tensor__': 0, 'dtype': 'float32', 'device': 'cpu',
                                'requires_grad': True, 'parameter': True}],
                         [3, {'__tuple__': [1, {'__float__': 'nan'}]}]], 'ordered': True}
    (tmp_path / 'v1.nbt').write_bytes(_raw_zip([_stored('data.json', _doc(root, version=1)),
                                                _stored('arrays/0.npy', _npy(w))]))
    back = load(tmp_path / 'v1.nbt')
    assert isinstance(back['w'], nn.Parameter) and back['w'].tolist() == w.tolist()
    assert list(back) == ['w', 3] and back[3][0] == 1 and back[3][1] != back[3][1]


def test_tensors_met_in_any_order_keep_their_sharing(tmp_path):
    a, b = nbtorch.arange(6.), nbtorch.arange(4.)
    save([a, b, a[2:], b.view(2, 2), a], tmp_path / 'o.nbt')
    back = load(tmp_path / 'o.nbt')
    back[0].add_(100); back[1].add_(10)
    assert back[2].tolist() == [102., 103., 104., 105.]
    assert back[3].tolist() == [[10., 11.], [12., 13.]]
    assert back[4] is back[0]  # one tensor saved twice is one tensor loaded, as pickle's memo does


def test_deepcopy_keeps_what_pytorch_keeps():
    t = nbtorch.ones(2, requires_grad=True)
    (t * 2).sum().backward()
    p = nn.Parameter(nbtorch.ones(2)); (p * 2).sum().backward()
    base = nbtorch.arange(4.)
    ct, cp, (cb, cv) = copy.deepcopy(t), copy.deepcopy(p), copy.deepcopy([base, base[1:]])
    assert ct.grad.tolist() == [2., 2.] and ct.requires_grad and isinstance(cp, nn.Parameter)
    assert cp.grad is None  # PyTorch's Parameter.__deepcopy__ drops the gradient too
    cb.add_(1)
    assert cv.tolist() == [2., 3., 4.] and base.tolist() == [0., 1., 2., 3.]
    with pytest.raises(RuntimeError, match='graph leaves'): copy.deepcopy(t * 2)
    if torch is not None:
        r = torch.ones(2, requires_grad=True); (r * 2).sum().backward()
        q = torch.nn.Parameter(torch.ones(2)); (q * 2).sum().backward()
        assert copy.deepcopy(r).grad.tolist() == [2., 2.] and copy.deepcopy(q).grad is None
        with pytest.raises(RuntimeError, match='graph leaves'): copy.deepcopy(r * 2)
    m = nn.Sequential(nn.Linear(2, 2)); m2 = copy.deepcopy(m)
    assert m2[0].weight.equal(m[0].weight) and m2[0].weight is not m[0].weight
