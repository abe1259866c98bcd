"Sphinx configuration of nbtorch's docs site (copied into docs/_src by docs/build.py)."
import re
from pathlib import Path
project, author = 'nbtorch', 'nbtorch developers'
extensions = ['myst_nb', 'sphinx.ext.autodoc']
nb_execution_mode = 'off'          # the notebooks' stored outputs are rendered, never re-run
nb_render_markdown_format = 'myst'
myst_enable_extensions = ['dollarmath']
html_theme = 'pydata_sphinx_theme'
html_title = 'nbtorch'
REPO = 'https://github.com/nbtorch/nbtorch'
# The chapters are listed once, in reading order, in the left sidebar of every page (book-nav.html);
# the top bar keeps the search, the theme switch and the repository link.
html_theme_options = {'navigation_with_keys': False, 'show_toc_level': 2, 'github_url': REPO,
                      'navbar_center': [], 'secondary_sidebar_items': ['page-toc', 'notebook-links']}
html_sidebars = {'**': ['book-nav']}
templates_path = ['_templates']
html_static_path = ['_static']
html_css_files = ['custom.css']
html_show_sourcelink = False       # "Show Source" served the notebook's raw JSON
html_extra_path = ['_extra']       # _extra/nbs/X.ipynb: the notebooks themselves, to download
html_context = {'repository': REPO,
                'notebooks': sorted(p.stem for p in Path(__file__).resolve().parent.glob('*.ipynb'))}
exclude_patterns = ['_build', '_extra', '**.ipynb_checkpoints']
suppress_warnings = ['mystnb.unknown_mime_type', 'myst.header', 'misc.highlighting_failure']
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'
add_module_names = False


def _plain(app, what, name, obj, options, lines):
    "Docstrings are Markdown-ish one-liners: make them safe reStructuredText."
    for i, l in enumerate(lines):
        l = re.sub(r'(?<!`)`([^`]+)`(?!`)', r'``\1``', l)
        l = re.sub(r'(?<![`\w])\*+', lambda m: '\\' + '\\'.join(m.group(0)), l)
        l = l.replace('|', '\\|')
        lines[i] = re.sub(r'(\w)_(?=[\s,/.:;)]|$)', r'\1\\_', l)


def setup(app): app.connect('autodoc-process-docstring', _plain)
