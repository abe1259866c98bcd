"""The helpers of `make demo-text` (tools/demo_text.py) and of tools/make_corpus.py, on tiny inputs:
the text's encoding and split, the batches, bits per character, sampling, and the Transformer's
causal mask. The training itself is the demo's, never run here."""
import importlib.util, json, math, os
from pathlib import Path
import numpy as np
import nbtorch as torch
import nbtorch.nn as nn

TOOLS = Path(__file__).parent.parent / 'tools'


def _load(name):
    env = dict(os.environ)  # demo_text sets BLAS thread counts for itself: not for the test session
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py')
    m = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(m)
    os.environ.clear(); os.environ.update(env)
    return m


demo, corpus = _load('demo_text'), _load('make_corpus')


def test_load_text_encodes_and_splits(tmp_path):
    p = tmp_path / 't.txt'
    p.write_text('hello world\nthe cat sat. ' * 4, encoding='ascii')
    text, chars, tr, va = demo.load_text(str(p))
    assert chars == sorted(set(text))
    assert ''.join(chars[i] for i in np.concatenate([tr, va])) == text
    assert len(tr) == int(0.9 * len(text)) and len(tr) + len(va) == len(text)


def test_get_batch_targets_are_inputs_shifted():
    ids = np.arange(100)
    x, y = demo.get_batch(ids, 8, 5, np.random.default_rng(0))
    assert tuple(x.shape) == (5, 8) == tuple(y.shape)
    assert (y.numpy() == x.numpy() + 1).all()  # windows of consecutive ids, targets one ahead


class _Const(nn.Module):
    "Logits that ignore the input: uniform (all zero), or all mass on one character."
    def __init__(self, V, favourite=None, stateful=False):
        super().__init__()
        self.V, self.fav, self.stateful = V, favourite, stateful
    def forward(self, x, state=None):
        logits = torch.zeros(*x.shape, self.V)
        if self.fav is not None: logits[..., self.fav] = 100.0
        return logits, ((torch.zeros(1),) if self.stateful else None)


def test_bits_per_char_of_uniform_guess_is_log2_vocab():
    ids = np.random.default_rng(0).integers(0, 7, 1000)
    assert math.isclose(demo.bits_per_char(_Const(7), ids, T=16, bs=10), math.log2(7), rel_tol=1e-5)


def test_sample_follows_the_model_with_and_without_state():
    chars = list('abc')
    for stateful in (False, True):
        model = _Const(3, favourite=2, stateful=stateful)
        assert demo.sample(model, chars, 'ab', n=5, T=4) == 'abccccc'


def test_models_shapes_and_causality():
    torch.manual_seed(0)
    x = torch.tensor(np.random.default_rng(0).integers(0, 11, (2, 10)))
    logits, state = demo.CharLSTM(11, emb=4, hidden=8)(x)
    assert tuple(logits.shape) == (2, 10, 11) and tuple(state[0].shape) == (1, 2, 8)
    tf = demo.CharTransformer(11, d=8, heads=2, layers=1, ff=16, T=10)
    y1 = tf(x)[0]
    x2 = x.clone(); x2[:, -1] = (x2[:, -1] + 1) % 11
    y2 = tf(x2)[0]
    assert tuple(y1.shape) == (2, 10, 11)
    assert torch.allclose(y1[:, :-1], y2[:, :-1], atol=1e-6)  # earlier positions never see the last
    assert not torch.allclose(y1[:, -1], y2[:, -1])


def test_digits_rows_are_the_images():
    (xtr, ytr), (xte, yte) = demo.digits()
    assert tuple(xtr.shape[1:]) == (8, 8) and len(xtr) + len(xte) == 1797
    assert 0 <= xtr.min().item() and xtr.max().item() <= 1


def test_make_corpus_is_plain_ascii_in_file_order(tmp_path):
    s = 'caf\u00e9 \u2014 na\u00efve\u2019s \u00d7\t\u2192'
    assert corpus.to_ascii(s) == "cafe -- naive's x    ->"
    for name, src in [('b.ipynb', 'second'), ('a.ipynb', 'first \u201cquoted\u201d')]:
        cells = [dict(cell_type='markdown', source=[src]), dict(cell_type='code', source=['x = 1'])]
        (tmp_path / name).write_text(json.dumps(dict(cells=cells)), encoding='utf-8')
    assert corpus.prose(tmp_path.glob('*.ipynb')) == 'first "quoted"\n\nsecond\n'


def test_shipped_corpus_is_ascii_and_sized():
    text = (TOOLS.parent / 'data' / 'prose.txt').read_text(encoding='ascii')
    assert 100_000 < len(text) < 500_000
    assert all(c == '\n' or ' ' <= c <= '~' for c in set(text))
