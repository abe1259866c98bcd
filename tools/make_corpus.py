"""Write data/prose.txt, the text `make demo-text` and nbs/06c_text.ipynb train on: the markdown
cells of the notebooks, in file-name order, as plain ASCII.

Run once, and the file is shipped: its numbers (bits per character) then do not drift when the
notebooks change. `python tools/make_corpus.py --check` says whether the shipped file still equals
what the notebooks give now (it need not)."""
import argparse, glob, json, os, re, sys, unicodedata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# typographic characters NFKD leaves alone, spelled in ASCII
ASCII = {'\u2014': '--', '\u2013': '-', '\u2018': "'", '\u2019': "'", '\u201c': '"', '\u201d': '"',
         '\u2026': '...', '\u00d7': 'x', '\u2192': '->', '\u2190': '<-', '\u2264': '<=',
         '\u2265': '>=', '\u2260': '!=', '\u00b5': 'u', '\u03bc': 'u', '\u2248': '~', '\u00b7': '.'}


def to_ascii(s):
    "NFKD-normalised, the typographic characters spelled out, anything else non-ASCII dropped."
    s = ''.join(ASCII.get(ch, ch) for ch in unicodedata.normalize('NFKC', s))
    s = unicodedata.normalize('NFKD', s).encode('ascii', 'ignore').decode('ascii')
    s = s.replace('\t', '    ')
    s = ''.join(ch for ch in s if ch == '\n' or ' ' <= ch <= '~')  # printable ASCII and newlines
    return re.sub(r'\n{3,}', '\n\n', re.sub(r'[ ]+\n', '\n', s)).strip()


def prose(paths):
    "The markdown cells of the notebooks, in order, one blank line between cells."
    cells = []
    for p in sorted(paths):
        for c in json.load(open(p, encoding='utf-8'))['cells']:
            if c['cell_type'] == 'markdown':
                t = to_ascii(''.join(c['source']))
                if t: cells.append(t)
    return '\n\n'.join(cells) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--out', default=os.path.join(ROOT, 'data', 'prose.txt'))
    ap.add_argument('--check', action='store_true',
                    help='compare with the shipped file, write nothing')
    a = ap.parse_args()
    # index.ipynb is the README; the text chapter would read itself
    nbs = [p for p in glob.glob(os.path.join(ROOT, 'nbs', '*.ipynb'))
           if os.path.basename(p) not in ('index.ipynb', '06c_text.ipynb')]
    text = prose(nbs)
    if a.check:
        same = open(a.out, encoding='ascii').read() == text
        print(f"{a.out} {'equals' if same else 'differs from'} what the notebooks give now")
        sys.exit(0 if same else 1)
    with open(a.out, 'w', encoding='ascii', newline='\n') as f: f.write(text)
    print(f"wrote {a.out}: {len(text):,} characters from {len(nbs)} notebooks, "
          f"{len(set(text))} distinct characters")


if __name__ == '__main__': main()
