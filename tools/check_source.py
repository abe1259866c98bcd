"""Check that the notebooks are the source: `nbdev-export` leaves nbtorch/ as it is, and `nbdev-clean`
leaves the notebooks as they are. Both run on a copy, so nothing in the working tree is touched."""
import filecmp, shutil, subprocess, sys, tempfile
from pathlib import Path

root = Path(__file__).resolve().parent.parent
bin_ = Path(sys.executable).parent


def diff(a, b):
    "Paths that differ between folders `a` and `b` (caches ignored)."
    out, cmp = [], filecmp.dircmp(a, b, ignore=['__pycache__', '.ipynb_checkpoints'])
    def walk(c, rel):
        out.extend(f'{rel}{n}' for n in c.diff_files + c.left_only + c.right_only)
        for n, sub in c.subdirs.items(): walk(sub, f'{rel}{n}/')
    walk(cmp, '')
    return out


with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    for p in ['nbs', 'nbtorch']: shutil.copytree(root / p, tmp / p)
    shutil.copy(root / 'pyproject.toml', tmp)
    problems = []
    for cmd, folder, why in [('nbdev-export', 'nbtorch', 'nbtorch/ is not what nbdev-export makes of '
                              'the notebooks (edit the notebooks, then run `make export`)'),
                             ('nbdev-clean', 'nbs', 'notebooks are not clean (run `make clean-nbs`)')]:
        r = subprocess.run([str(bin_ / cmd)], cwd=tmp, capture_output=True, text=True)
        if r.returncode: sys.exit(f"{cmd} failed:\n{r.stdout}{r.stderr}")
        changed = diff(root / folder, tmp / folder)
        if changed: problems.append(f"{why}: " + ', '.join(f'{folder}/{c}' for c in changed))
    if problems: sys.exit('\n'.join(problems))
print("nbtorch/ and nbs/ are what nbdev-export and nbdev-clean make")
