"""The docs check's width check (tools/docs.py): which notebooks are pages and where they render, math found as pandoc
finds it, the KaTeX pin read from nbs/_quarto.yml, the one-line reports, and a real measure in headless Chromium (skipped,
with the reason, where Chromium, chromedriver, Selenium or KaTeX is missing). About 5 s with Chromium."""
import importlib.util, os, re, shutil
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location('vae_nb_docs_tool', REPO/'tools'/'docs.py')
docs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs)

def test_pages_in_sub_folders(tmp_path):
    for p in ('index.ipynb', '0_core/01_elbo.ipynb', '4_families/05h_vmf.ipynb', '_hidden.ipynb', '0_core/_draft.ipynb',
              '_private/x.ipynb', '0_core/.ipynb_checkpoints/01_elbo-checkpoint.ipynb', '0_core/notes.md'):
        (tmp_path/p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path/p).write_text('{}')
    found = docs.pages(tmp_path)
    assert [str(p.relative_to(tmp_path)) for p in found] == ['0_core/01_elbo.ipynb', '4_families/05h_vmf.ipynb', 'index.ipynb']
    assert docs.page_name(tmp_path, found[0]) == Path('_docs/0_core/01_elbo.html')

def test_math_found_as_pandoc_finds_it():
    h = docs.math_html('text $$a = b$$ text, and $x$, but not $5 or $ y$ nor `$$code$$`')
    assert h.count('class="math display"') == 1 and h.count('class="math inline"') == 1 and '$5' in h
    # a line starting with `+ ` inside a paragraph continues it in pandoc (no list without a blank line before it)
    h = docs.math_html('so\n$$a = b\n+ c$$\n')
    assert h.count('class="math display"') == 1 and '<li>' not in h
    assert '&lt;' in docs.math_html('$$a < b$$')       # TeX is text in the HTML

def test_katex_version_is_pinned(tmp_path):
    assert re.fullmatch(r'\d+\.\d+\.\d+', docs.katex_version())      # the repository's own pin
    y = tmp_path/'_quarto.yml'
    y.write_text('format:\n  html:\n    html-math-method:\n      method: katex\n      url: https://cdn.jsdelivr.net/npm/katex@0.16.22/dist/\n')
    assert docs.katex_version(y) == '0.16.22'
    for bad in ('katex', '{method: katex, url: "https://cdn.jsdelivr.net/npm/katex@latest/dist/"}'):
        y.write_text(f'format:\n  html:\n    html-math-method: {bad}\n')
        with pytest.raises(SystemExit, match='pinned version'): docs.katex_version(y)

def test_problems_one_line_each():
    rows = [dict(page='_docs/a.html', tex='x = 1', display=True, error=None, width=100.0, column=749),
            dict(page='_docs/a.html', tex=r'\sum_k ' * 20, display=True, error=None, width=812.4, column=749),
            dict(page='_docs/b/c.html', tex=r'\frac{a', display=False, error='ParseError: KaTeX parse error: ...'),
            dict(page='_docs/a.html', tex='y', display=True, error=None, width=749.3, column=749)]   # sub-pixel: fits
    out = docs.problems(rows)
    assert len(out) == 2
    assert out[0].startswith(r'_docs/a.html: $$\sum_k \sum_k') and out[0].endswith('$$ is 812 px wide, the column 749 px')
    assert len(out[0].split('$$')[1]) <= 60
    assert out[1].startswith(r'_docs/b/c.html: KaTeX cannot set $\frac{a$: ParseError')

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
MISSING = ([] if CHROMIUM else ['chromium']) + ([] if shutil.which('chromedriver') else ['chromedriver']) + \
          ([] if importlib.util.find_spec('selenium') else ['selenium']) + \
          ([] if os.environ.get('VAE_NB_KATEX') or shutil.which('npm') else ['npm (or VAE_NB_KATEX)'])

@pytest.mark.skipif(bool(MISSING), reason=f"the width check needs {', '.join(MISSING)}: run tools/ci_browser_setup.sh and pip install -e '.[dev]'")
def test_width_check_in_chromium():
    wide = ' + '.join(rf'\frac{{a_{{{i}}}}}{{b_{{{i}}}}}' for i in range(40))
    long_row = ' + '.join(f'x_{{{i}}}' for i in range(30))
    texts = {'_docs/fits.html': ['$$x = 1$$', r'$$\begin{aligned} a &= x_{0} + x_{1} \\ &= b \end{aligned}$$'],
             '_docs/0_core/wide.html': ['Some text.', f'$${wide}$$', r'and $\frac{{a}$ broken', '- a list item:\n\n  $$' + long_row + '$$']}
    rows = docs.measure(texts, docs.katex_dist(docs.katex_version()))
    disp = [r for r in rows if r['display']]
    assert [r['page'] for r in disp] == ['_docs/fits.html']*2 + ['_docs/0_core/wide.html']*2
    assert disp[0]['width'] < 100 and disp[0]['column'] == docs.COLUMN_PX
    assert disp[2]['width'] > 2 * docs.COLUMN_PX
    assert disp[3]['column'] == docs.COLUMN_PX - 2 * docs.FONT_PX          # a list item's column is 2rem narrower
    out = docs.problems(rows)
    assert len(out) == 3 and all(l.startswith('_docs/0_core/wide.html: ') for l in out), out
    assert 'KaTeX cannot set' in out[1] and f'the column {docs.COLUMN_PX} px' in out[0]
