"""OpInfo's samples on the stand-in device: which ops would fail on a real GPU?

`tests/test_opinfo.py` runs PyTorch's OpInfo samples on the CPU only; this runs the same samples with
every tensor on the stand-in device (`tests/standin.py`, as strict as CuPy 14.2), forward and
gradients, and prints each op that fails, with why. bfloat16 samples are skipped (CuPy has no such
dtype). It takes a few minutes on two cores:

    PYTHONPATH=. python tools/standin_sweep.py [op ...]

With `--reads` it counts instead, per op, the host reads (each a GPU synchronisation) its forward
and its backward make on device inputs, with the lines that asked: the ops that would stall a GPU;
and the copies of host data to the device they make (`uploads`).
"""
import sys, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'tests'))
import nbtorch
from nbtorch import cuda
import standin
import test_opinfo as T


def _on_device(to_nb):
    "`to_nb` (a torch object as nbtorch's) with tensors moved to the stand-in device."
    def f(x, grad=False):
        if not isinstance(x, T.torch.Tensor): return to_nb(x, grad)
        t = to_nb(x, False)
        try: t = t.cuda()
        except TypeError: raise T.Unsupported('a dtype CuPy lacks')
        return t.requires_grad_() if grad and x.requires_grad else t
    return f


def _cotangents_on_device(grad):
    "`autograd.grad` with its cotangents (made on the CPU by the test) moved to the outputs' device."
    def f(outs, ins, cots=None, **kw):
        if cots is not None: cots = [c.to(o.device) for c, o in zip(cots, outs)]
        return grad(outs, ins, cots, **kw)
    return f


READS = {}  # op -> {'forward'/'backward': {line that asked: count}}
_key = [None]


def _counted(f, part):
    "`f`, its host reads on device data counted under the op being swept and `part`."
    def g(*args, **kw):
        with standin.transfers() as t: r = f(*args, **kw)
        for log, what in ((t.log, part), (t.up_log, part + ' uploads')):
            for kind, _, _, where in log:
                if 'standin_sweep.py' in where: continue  # this sweep moving cotangents up
                at = READS.setdefault(_key[0], {}).setdefault(what, {})
                at[f'{kind} at {where}'] = at.get(f'{kind} at {where}', 0) + 1
        return r
    return g


def _count_reads():
    "Count, in READS, the reads of nbtorch's forward (not PyTorch's) and of its backward."
    call, grad = T._call, nbtorch.autograd.grad
    def _call(fn, sample, lib_input, args, kwargs):
        on_device = any(isinstance(x, nbtorch.Tensor) and x.is_cuda for x in T._tensors([lib_input, args, kwargs]))
        return (_counted(call, 'forward') if on_device else call)(fn, sample, lib_input, args, kwargs)
    T._call, nbtorch.autograd.grad = _call, _counted(grad, 'backward')


def _report_reads():
    for k, parts in sorted(READS.items()):
        for part, where in parts.items():
            print(f'{k} {part}: ' + '; '.join(f'{n}x {w}' for w, n in sorted(where.items(), key=lambda x: -x[1])[:4]))
    print(f"{sum(any(not p.endswith('uploads') for p in v) for v in READS.values())} ops read device "
          f"data on the host; {sum(any(p.endswith('uploads') for p in v) for v in READS.values())} upload host data")


def main(ops, reads=False):
    cuda._set_backend(standin.module, standin.extras)
    T.to_nb = _on_device(T.to_nb)
    nbtorch.autograd.grad = _cotangents_on_device(nbtorch.autograd.grad)
    if reads: _count_reads()
    keys = sorted(k for k in T.ENTRIES if k not in T.MISSING and (not ops or k in ops))
    t, failed = time.time(), 0
    for k in keys:
        _key[0] = k
        try: T.run_entry(k); continue
        except AssertionError as e: why = str(e).replace('\n', ' | ')
        except Exception as e: why = f'{type(e).__name__}: {e}'
        failed += 1
        print(f'{k}: {why[:600]}', flush=True)
    print(f'{failed} of {len(keys)} ops failed on the stand-in device ({time.time() - t:.0f}s)')
    if reads: _report_reads()


if __name__ == '__main__': main(set(sys.argv[1:]) - {'--reads'}, '--reads' in sys.argv)
