"""The docs site in a real browser (headless Chromium): every page renders with its images, a search for a
public name finds its page, and no internal link is broken. Runs where Chromium and the built site are
present (`make test` builds the site first when Chromium is installed; `.ci/run` installs it)."""
import functools, http.server, importlib.util, os, re, shutil, socketserver, threading, time
from pathlib import Path
from urllib.parse import urljoin, urlparse
import pytest

ROOT = Path(__file__).resolve().parent.parent
# NBTORCH_DOCS_SITE: check another build (an older one, to see these checks fail where they should)
SITE = Path(os.environ.get('NBTORCH_DOCS_SITE') or ROOT / 'docs' / '_build' / 'html')
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
DRIVER = shutil.which('chromedriver')
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER and (SITE / 'index.html').exists()),
                                reason="needs Chromium, chromedriver and the built site (make docs)")
_spec = importlib.util.spec_from_file_location('docs_build', ROOT / 'docs' / 'build.py')
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)
ORDER = _build.ORDER  # the chapters, in reading order, as docs/build.py builds them

CHAPTERS = [n for n in ORDER if n != 'index']
# every page the site has (the chapters, the API reference's pages, parity, performance), less Sphinx's own
PAGES = ORDER + sorted({str(p.relative_to(SITE).with_suffix('')) for p in SITE.glob('**/*.html')
                        if p.parts[-2] != '_static' and p.stem not in ('genindex', 'search', 'py-modindex')}
                       - set(ORDER))


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


def _open(browser, url):
    "Load a page and wait until it is complete, its article and its sidebars in place (slow under load)."
    browser.get(url)
    assert _wait(browser, "return document.readyState === 'complete' && !!document.querySelector('article')"
                          " && document.querySelectorAll('a[href]').length > 0", timeout=30)


@pytest.mark.parametrize('page', PAGES)
def test_page_renders_with_its_images(server, browser, page):
    browser.get(server + page + '.html')
    assert _wait(browser, "return document.readyState === 'complete'")
    assert 'nbtorch' in browser.title
    h1 = browser.execute_script("return document.querySelector('article h1, main h1').textContent")
    assert h1.strip()
    # lazy images load only near the viewport: ask for every one now, then wait for them all
    browser.execute_script("document.querySelectorAll('img').forEach(i => i.loading = 'eager')")
    _wait(browser, "return Array.from(document.images).every(i => i.complete)")
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
    p = json.loads((ROOT / 'docs' / 'parity.json').read_text())
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


def _chapter(href):
    "The page a link points to, as ORDER names it ('00_tensor'), or None for another kind of link."
    name = urlparse(href).path.rsplit('/', 1)[-1]
    return name[:-5] if name.endswith('.html') else None


@pytest.mark.parametrize('page', ['index', '02_functional', 'api/nbtorch.nn', 'parity'])
def test_navigation_lists_every_chapter_in_reading_order(server, browser, page):
    _open(browser, server + page + '.html')
    nav = browser.execute_script("const n = document.querySelector('.bd-sidebar-primary nav.book-nav');"
                                 "return n && n.getBoundingClientRect().width > 0 ? "
                                 "Array.from(n.querySelectorAll('a')).map(a => a.href) : null")
    assert nav, f'{page}: no chapter navigation shown in the left sidebar'
    listed = [_chapter(h) for h in nav if _chapter(h) in CHAPTERS]
    assert listed == CHAPTERS, listed  # every chapter, once, in reading order: the Tensor first
    assert listed[0] == '00_tensor'
    # and no chapter hidden in the top bar's "More" dropdown
    more = browser.execute_script("return Array.from(document.querySelectorAll('header .dropdown-toggle'))"
                                  ".map(b => b.textContent.trim()).filter(t => t === 'More')")
    assert more == []


def test_reading_order_table_links_every_chapter(server, browser):
    _open(browser, server + 'index.html')
    rows = browser.execute_script(
        "const t = Array.from(document.querySelectorAll('article table')).find(t => "
        "t.textContent.includes('what it teaches')); return Array.from(t.querySelectorAll('tbody tr'))"
        ".map(r => { const a = r.querySelector('td a'); return a ? a.href : r.cells[0].textContent })")
    assert [_chapter(h) for h in rows] == CHAPTERS, rows


def test_readme_links_the_chapters_as_notebooks():
    readme = (ROOT / 'README.md').read_text()
    linked = re.findall(r'\| \[`(\w+)`\]\(nbs/(\w+)\.ipynb\) \|', readme)
    assert [a for a, b in linked] == CHAPTERS and all(a == b for a, b in linked), linked


@pytest.mark.parametrize('page', CHAPTERS)
def test_lead_line_ends_its_sentence(server, browser, page):
    _open(browser, server + page + '.html')
    lead = _wait(browser, "const h = document.querySelector('article h1');"
                                  "const q = h && h.parentElement.querySelector('blockquote');"
                                  "return q ? q.textContent.trim() : null")
    assert lead, f'{page}: no lead line under the title'
    assert re.search(r'[.!?)][\'"\u2019\u201d]?$', lead), f'{page}: the lead line stops mid-sentence: {lead!r}'


def test_llms_txt_links_pages_that_exist_and_lists_every_module():
    text = (ROOT / 'nbs' / 'llms.txt').read_text()
    assert text == (SITE / 'llms.txt').read_text()  # the site serves the same file
    links = re.findall(r'\]\((\S+?)\)', text)
    assert links and all(l.startswith(_build.SITE_URL) for l in links), links
    missing = [l for l in links if not (SITE / l[len(_build.SITE_URL):].split('#')[0]).exists()]
    assert missing == [], missing
    listed = re.findall(r'^- \[(nbtorch[\w.]*)\]', text, re.M)
    assert sorted(listed) == sorted(_build._modules())
    assert re.findall(r'^- \[.*?\]\(\S+/(\w+)\.html\)', text, re.M)[:len(CHAPTERS)] == CHAPTERS


@pytest.mark.parametrize('page', ['00_tensor', '02_functional'])
def test_source_link_gives_the_notebook_not_its_json(server, browser, page):
    _open(browser, server + page + '.html')
    hrefs = browser.execute_script("return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")
    assert not [h for h in hrefs if '/_sources/' in h]  # "Show Source": the raw JSON as text
    (dl,) = browser.execute_script("return Array.from(document.querySelectorAll('a[download]')).map(a => a.href)")
    assert dl.endswith(f'/{page}.ipynb')
    import json
    nb = json.loads((SITE / urlparse(dl).path.lstrip('/')).read_text())
    assert nb['cells'] and any(c.get('outputs') for c in nb['cells'])  # the notebook, outputs and all
    assert any(h.startswith('https://github.com/') and h.endswith(f'nbs/{page}.ipynb') for h in hrefs)


def _cards(browser):
    "The doc cards of the page: (title, signature)."
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('article p.rubric')).map(r => { let e = r.nextElementSibling;"
        " while (e && !e.querySelector('pre') && !e.matches('p.rubric')) e = e.nextElementSibling;"
        " return [r.textContent.trim(), e && e.querySelector('pre') ? e.querySelector('pre').textContent : ''] })")


def test_doc_cards_in_source_order(server, browser):
    _open(browser, server + '02_functional.html')
    titles = [t for t, _ in _cards(browser)]
    # one cell defines relu, sigmoid, tanh, leaky_relu and silu, in that order
    first = [t for t in titles if t in ('relu', 'sigmoid', 'tanh', 'leaky_relu', 'silu')]
    assert first == ['relu', 'sigmoid', 'tanh', 'leaky_relu', 'silu'], first
    hard = [t for t in titles if t in ('hardtanh', 'elu', 'celu', 'selu', 'softplus')]
    assert hard == ['hardtanh', 'elu', 'celu', 'selu', 'softplus'], hard


@pytest.mark.parametrize('page, want', [
    ('02_nn', {'Linear': 'class Linear(in_features, out_features, bias=True, device=None, dtype=None)',
               'Tanh': 'class Tanh()', 'Module': 'class Module()'}),
    ('06_sequences', {'GRU': 'class GRU(input_size, hidden_size, num_layers=1',
                      'RNN': "class RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True"}),
    ('04_training', {'Learner': 'class Learner(model, dls, loss_func=cross_entropy'})])
def test_class_cards_show_real_signatures(server, browser, page, want):
    _open(browser, server + page + '.html')
    cards = dict(_cards(browser))
    for name, sig in want.items():
        assert ' '.join(cards[name].split()).startswith(sig), cards[name]
    bad = [s for s in cards.values() if re.match(r'def [A-Z]', s) or 'NoneType' in s or ' at 0x' in s]
    assert bad == [], bad
    # a long signature is broken into lines that fit: the browser does not wrap them a second time
    rewrapped = browser.execute_script(
        "return Array.from(document.querySelectorAll('article p.rubric')).map(r => { let e = r.nextElementSibling;"
        " while (e && !e.querySelector('pre') && !e.matches('p.rubric')) e = e.nextElementSibling;"
        " return e && e.querySelector('pre') }).filter(p => p && /^(class|def) /.test(p.textContent))"
        ".filter(p => { const lines = p.textContent.replace(/\\n$/, '').split('\\n').length;"
        " const st = getComputedStyle(p), pad = parseFloat(st.paddingTop) + parseFloat(st.paddingBottom);"
        " return (p.clientHeight - pad) / parseFloat(st.lineHeight) > lines + 0.5 })"
        ".map(p => p.textContent.slice(0, 60))")
    assert rewrapped == [], rewrapped


@pytest.mark.parametrize('page', PAGES)
def test_no_code_wider_than_the_column(server, browser, page):
    _open(browser, server + page + '.html')
    wide = browser.execute_script(
        "const col = document.querySelector('article').getBoundingClientRect().width;"
        "return Array.from(document.querySelectorAll('article pre, article img')).filter(e => "
        "e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().width > col + 1)"
        ".map(e => e.tagName + ': ' + (e.textContent || e.src).slice(0, 80))")
    assert wide == [], wide


def test_api_reference_links_each_name_to_its_place(server, browser):
    _open(browser, server + 'api/nbtorch.tensor.html')
    said = browser.execute_script("return Array.from(document.querySelectorAll('article p.explained a'))"
                                  ".map(a => [a.textContent, a.getAttribute('href')])")
    assert said and all('#' in h for _, h in said), said  # to the symbol's card or section, not the page's top
    assert len([h for _, h in said if h.endswith('#dtypes')]) == 1  # fourteen dtypes, said once
    text = browser.execute_script("return document.querySelector('article').textContent")
    assert 'Explained in 00_tensor' not in text


def test_performance_table_has_no_nan(server, browser):
    if not (SITE / 'performance.html').exists(): pytest.skip('no benchmark results')
    _open(browser, server + 'performance.html')
    cells = browser.execute_script("return Array.from(document.querySelectorAll('article td')).map(t => t.textContent)")
    assert cells and not [c for c in cells if 'nan' in c.lower()]
