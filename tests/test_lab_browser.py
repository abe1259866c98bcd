"""JupyterLab opens a chapter without marking it modified: the notebooks store the metadata a running kernel
reports (`language_info`, and the kernel's display name as nbdev-clean writes it), and `make lab` starts
JupyterLab with the kernelspec in tools/jupyter, whose display name is that one. Headless Chromium drives a
real JupyterLab on a copy of one notebook; skipped where Chromium is missing."""
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
JUPYTER = Path(sys.executable).parent / 'jupyter'


def test_every_notebook_stores_the_metadata_a_kernel_reports():
    spec = json.loads((ROOT / 'tools' / 'jupyter' / 'kernels' / 'python3' / 'kernel.json').read_text())
    for f in sorted((ROOT / 'nbs').glob('*.ipynb')):
        md = json.loads(f.read_text())['metadata']
        assert md['kernelspec'] == {'display_name': spec['display_name'], 'language': 'python', 'name': 'python3'}, f.name
        assert md.get('language_info', {}).get('name') == 'python', f"{f.name} has no language_info"


def _dirty(b, name):
    return b.execute_script("return [...document.querySelectorAll('.lm-TabBar-tab.jp-mod-dirty')]"
                            ".map(t => t.textContent)").count(name) > 0


def _open(b, url):
    "Open a notebook and wait for its kernel to be idle."
    b.get(url)
    for _ in range(240):
        status = b.execute_script("const k = document.querySelector('.jp-Notebook-ExecutionIndicator');"
                                  "return k && k.getAttribute('data-status')")
        if status == 'idle': return
        time.sleep(0.5)
    raise AssertionError(f"the kernel of {url} never became idle ({status})")


@pytest.mark.skipif(not (CHROMIUM and DRIVER and JUPYTER.exists()), reason="needs Chromium, chromedriver, JupyterLab")
def test_opening_a_notebook_in_jupyterlab_leaves_it_unmodified(tmp_path):
    """A control first: the same chapter without `language_info` (as the notebooks were stored before) is
    marked modified once the kernel has answered; the chapter as stored, given at least as long, is not."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    shutil.copy(ROOT / 'nbs' / '03b_clip.ipynb', tmp_path / 'chapter.ipynb')
    nb = json.loads((ROOT / 'nbs' / '03b_clip.ipynb').read_text())
    del nb['metadata']['language_info']
    (tmp_path / 'control.ipynb').write_text(json.dumps(nb))
    s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
    env = dict(os.environ, JUPYTER_PATH=str(ROOT / 'tools' / 'jupyter'))  # as `make lab` does
    lab = subprocess.Popen([str(JUPYTER), 'lab', '--no-browser', '--allow-root', f'--port={port}',
                            '--IdentityProvider.token=', f'--ServerApp.root_dir={tmp_path}',
                            f'--LabApp.workspaces_dir={tempfile.mkdtemp()}'],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try: urllib.request.urlopen(f'http://127.0.0.1:{port}/api', timeout=2); break
            except OSError: time.sleep(1)
        def browser():
            opts = webdriver.ChromeOptions(); opts.binary_location = CHROMIUM
            for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--window-size=1300,1000']:
                opts.add_argument(a)
            return webdriver.Chrome(service=Service(DRIVER), options=opts)
        b = browser()  # the control, in a browser of its own (leaving a modified notebook asks to stay)
        try:
            t0 = time.time()
            _open(b, f'http://127.0.0.1:{port}/lab/tree/control.ipynb')
            while not _dirty(b, 'control.ipynb') and time.time() - t0 < 120: time.sleep(0.25)
            took = time.time() - t0
            assert _dirty(b, 'control.ipynb'), "the control never became modified: the check sees nothing"
        finally: b.quit()
        b = browser()
        try:
            t0 = time.time()
            _open(b, f'http://127.0.0.1:{port}/lab/tree/chapter.ipynb?reset')
            time.sleep(max(0, took + 3 - (time.time() - t0)))
            assert not _dirty(b, 'chapter.ipynb'), "JupyterLab marked the stored chapter modified on opening"
        finally: b.quit()
    finally:
        lab.terminate(); lab.wait(timeout=30)
