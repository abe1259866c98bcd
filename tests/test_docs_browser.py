"""The docs site in a real browser (headless Chromium): every page renders with its images, a search for a
public name finds its page, and no internal link is broken. Runs where Chromium and the built site are
present (`make test` builds the site first when Chromium is installed; `.ci/run` installs it)."""
import functools, http.server, importlib.util, os, re, shutil, socketserver, threading, time
from pathlib import Path
from urllib.parse import urljoin, urlparse
import pytest

SITE = Path(__file__).resolve().parent.parent / 'docs' / '_build' / 'html'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER and (SITE / 'index.html').exists()),
                                reason="needs Chromium, chromedriver and the built site (make docs)")
_spec = importlib.util.spec_from_file_location('docs_build', SITE.parent.parent / 'build.py')
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)
ORDER = _build.ORDER  # the chapters, in reading order, as docs/build.py builds them

PAGES = ORDER + ['api/index', 'api/nbtorch.tensor', 'api/nbtorch.nn', 'performance', 'parity']


@pytest.fixture(scope='module')
def server():
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *a: None
    httpd = socketserver.TCPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown()


@pytest.fixture(scope='module')
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
              '--disable-background-networking', '--disable-component-update', '--disable-sync',
              '--window-size=1300,1000']:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield d
    d.quit()


def _wait(browser, cond, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        r = browser.execute_script(cond)
        if r: return r
        time.sleep(0.1)
    return browser.execute_script(cond)


@pytest.mark.parametrize('page', PAGES)
def test_page_renders_with_its_images(server, browser, page):
    browser.get(server + page + '.html')
    assert _wait(browser, "return document.readyState === 'complete'")
    assert 'nbtorch' in browser.title
    h1 = browser.execute_script("return document.querySelector('article h1, main h1').textContent")
    assert h1.strip()
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], broken
    if page in ('00_tensor', '00a_ops', '00b_shapes', '01_autograd', '01a_viz', '02_nn', '03_optim', '04_training'):
        n = browser.execute_script("return document.querySelectorAll('article img, article svg').length")
        assert n > 0, f'{page} shows no picture'


def test_search_finds_a_public_name(server, browser):
    browser.get(server + 'search.html?q=conv2d')
    found = _wait(browser, "const r = document.querySelectorAll('#search-results li a'); "
                           "return r.length ? Array.from(r).map(a => a.getAttribute('href')) : null", timeout=20)
    assert found and any('02_functional' in h or 'nbtorch.nn.functional' in h for h in found), found


def test_no_internal_link_is_broken(server, browser):
    bad = []
    for page in PAGES:
        browser.get(server + page + '.html')
        for href in browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"):
            u = urlparse(href)
            if u.netloc != urlparse(server).netloc: continue
            target = SITE / (u.path.lstrip('/') or 'index.html')
            if target.is_dir(): target = target / 'index.html'
            if not target.exists(): bad.append((page, href)); continue
            if u.fragment and target.suffix == '.html':
                html = target.read_text(errors='ignore')
                if f'id="{u.fragment}"' not in html: bad.append((page, href))
    assert not bad, bad[:10]


def test_parity_table_lists_every_opinfo_entry(server, browser):
    import json
    p = json.loads((SITE.parent.parent / 'parity.json').read_text())
    browser.get(server + 'parity.html')
    # the op table is the last one: the family summary above it has a row per family
    rows = browser.execute_script("const t = document.querySelectorAll('article table');"
                                  "return t[t.length - 1].querySelectorAll('tbody tr').length")
    fams = browser.execute_script("return document.querySelectorAll('article table')[0]"
                                  ".querySelectorAll('tbody tr').length")
    assert fams == len(p['families'])
    text = browser.execute_script("return document.querySelector('article').textContent")
    assert rows == p['entries']
    assert f"{p['present']} of {p['entries']} entries exist" in text
    # a present op links to the chapter that explains it
    assert browser.execute_script("return [...document.querySelectorAll('article table a')]"
                                  ".some(a => a.href.endsWith('00c_reduce.html'))")
