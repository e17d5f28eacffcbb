#!/usr/bin/env python
"""Build the documentation without Quarto: nbdev's own notebook processing, then nbconvert.

    python tools/docs.py html     # process every notebook (nbs/ and its sub-folders) as nbdev does for Quarto, render each
                                  # to _docs/<same relative path>.html; fail on errors
    python tools/docs.py width    # process, then measure every display equation with KaTeX in headless Chromium against
                                  # the site's text column; fail with one line per equation that overflows it
    python tools/docs.py readme   # README.md (and its figures) from nbs/index.ipynb
    python tools/docs.py check    # html, width and readme, then fail if README.md is out of date with nbs/index.ipynb

Where Quarto is installed, `nbdev-docs` / `nbdev-preview` build the real site from the same `nbs/_quarto.yml`.

The width check renders display math as the site does: KaTeX at the version pinned in `nbs/_quarto.yml`
(`html-math-method: {method: katex, url: .../katex@<version>/dist/}`), with the options of Quarto's KaTeX loader, in a
column of `COLUMN_PX` CSS pixels at Quarto's 17 px root font. KaTeX comes from `$VAE_NB_KATEX` (a folder holding KaTeX's
`dist/` files) or else from the npm registry (`npm pack katex@<version>`, or Python's urllib where npm is missing), once,
into `~/.cache/vae_nb/katex-<version>/`, checked against the registry's integrity hash; nothing is fetched from a CDN. It needs Chromium and chromedriver
(`tools/ci_browser_setup.sh`) and Selenium (the dev extras)."""
import json, os, re, sys, shutil, subprocess, tarfile, tempfile, threading, time
from functools import partial
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
from nbdev.config import get_config
from nbdev.serve import proc_nbs
from nbconvert import HTMLExporter, MarkdownExporter
import nbformat

cfg = get_config()
ROOT, NBS = cfg.config_path, cfg.nbs_path

def processed(file_glob='*.ipynb'):
    "Run nbdev's documentation processors (show_doc, directives, hidden cells) into `_proc/`; returns that folder."
    return Path(proc_nbs(NBS, file_glob=file_glob, n_workers=0))

def read_nb(path):
    "A processed notebook: no execnb timing metadata (nbformat's schema rejects it), Quarto's `echo: false` honoured."
    nb = nbformat.read(path, as_version=4)
    for c in nb.cells:
        c.metadata.pop('execution', None)
        if c.cell_type == 'code':
            lines = c.source.splitlines()
            if any(l.replace(' ', '') == '#|echo:false' for l in lines): c.metadata['tags'] = ['remove_input']
            c.source = '\n'.join(l for l in lines if not l.startswith('#|'))
    return nb

def exporter(cls, **kw):
    "An nbconvert exporter that drops the inputs tagged `remove_input`."
    from traitlets.config import Config
    c = Config()
    c.TagRemovePreprocessor.remove_input_tags = ('remove_input',)
    c.TagRemovePreprocessor.enabled = True
    return cls(config=c, **kw)

def pages(cache):
    "The processed notebooks that are pages of the site: every `*.ipynb` under `cache`, sub-folders included, except those Quarto ignores (a file or folder named `_*` or `.*`)."
    return sorted(p for p in cache.rglob('*.ipynb') if not any(part[0] in '_.' for part in p.relative_to(cache).parts))

def page_name(cache, nb):
    "Where `nb` (a processed notebook under `cache`) is rendered: `_docs/<its path relative to nbs/>.html`."
    return (Path('_docs')/nb.relative_to(cache)).with_suffix('.html')

def html(cache=None):
    "Render every processed notebook to `_docs/<relative path>.html`; returns the processed folder and its pages."
    cache = cache or processed()
    nbs = pages(cache)
    exp = exporter(HTMLExporter, template_name='lab')
    for nb in nbs:
        body, _ = exp.from_notebook_node(read_nb(nb))
        dest = ROOT/page_name(cache, nb)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(body)
    print(f"rendered {len(nbs)} pages into {ROOT/'_docs'}")
    return cache, nbs

# ---- the width check: every display equation, as KaTeX sets it on the site, against the site's text column ----

# The site's text column at a 1,400 px window: Quarto's grid for a page with the floating sidebar and the right-hand
# table of contents gives the body track `minmax(500px, calc(800px - 3em))` (`$grid-body-width: 800px` less the two
# 1.5em page gutters), at 1em = 17 px (`$font-size-root`; cosmo keeps it): 800 - 51 = 749 px. The other tracks reach
# their maxima at 1,351 px, so any window from about 1,370 px up (1,400 px included) gives the body its 749 px.
COLUMN_PX = 749
FONT_PX = 17
WINDOW = (1400, 1000)
SLACK_PX = 0.5          # sub-pixel rounding

def katex_version(quarto_yml=None):
    "The KaTeX version the site loads: `html-math-method`'s `url` in `nbs/_quarto.yml` must name one (`katex@X.Y.Z`)."
    import yaml
    quarto_yml = quarto_yml or NBS/'_quarto.yml'
    method = (yaml.safe_load(Path(quarto_yml).read_text()).get('format') or {}).get('html', {}).get('html-math-method')
    url = method.get('url', '') if isinstance(method, dict) and method.get('method') == 'katex' else ''
    m = re.search(r'/katex@(\d+\.\d+\.\d+)/dist/$', url)
    if not m: sys.exit(f"{quarto_yml}: html-math-method must be {{method: katex, url: https://cdn.jsdelivr.net/npm/katex@<version>/dist/}} "
                      f"(a pinned version, the url ending in /), not {method!r}")
    return m.group(1)

def katex_tarball(version, dest):
    "KaTeX's npm package at `version` into `dest`: `npm pack` where npm is installed, else straight from the npm registry; both check the registry's integrity hash."
    if npm := shutil.which('npm'):
        r = subprocess.run([npm, 'pack', f'katex@{version}', '--pack-destination', dest, '--silent'], capture_output=True, text=True)
        if r.returncode: sys.exit(f"npm pack katex@{version} failed: {(r.stderr or r.stdout).strip()}")
        return next(Path(dest).glob('katex-*.tgz'))
    import base64, hashlib, urllib.request
    registry = (os.environ.get('npm_config_registry') or 'https://registry.npmjs.org/').rstrip('/')
    try:
        with urllib.request.urlopen(f'{registry}/katex/{version}', timeout=60) as r: dist = json.load(r)['dist']
        with urllib.request.urlopen(dist['tarball'], timeout=120) as r: data = r.read()
    except OSError as e: sys.exit(f"the width check needs KaTeX {version} from the npm registry ({registry}): {e}; "
                                  "or set VAE_NB_KATEX to a folder holding KaTeX's dist/ files")
    algo, _, want = dist['integrity'].partition('-')
    if base64.b64encode(hashlib.new(algo, data).digest()).decode() != want: sys.exit(f"{dist['tarball']}: not the registry's {algo}")
    (tgz := Path(dest)/f'katex-{version}.tgz').write_bytes(data)
    return tgz

def katex_dist(version):
    "A local folder with KaTeX's `dist/` files at `version`: `$VAE_NB_KATEX`, or fetched once from npm into the user's cache."
    if os.environ.get('VAE_NB_KATEX'): d = Path(os.environ['VAE_NB_KATEX'])
    else:
        d = Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')/'vae_nb'/f'katex-{version}'
        if not (d/'katex.min.js').exists():
            d.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=d.parent) as tmp:
                with tarfile.open(katex_tarball(version, tmp)) as t:
                    members = [m for m in t.getmembers() if m.isfile() and m.name.startswith('package/dist/')]
                    t.extractall(tmp, members=members, **({'filter': 'data'} if hasattr(tarfile, 'data_filter') else {}))
                try: os.replace(Path(tmp)/'package'/'dist', d)
                except OSError:
                    if not (d/'katex.min.js').exists(): raise      # else another process put it there first
    js = d/'katex.min.js'
    if not js.exists() or f'version:"{version}"' not in js.read_text(): sys.exit(f"{d} holds no katex.min.js of KaTeX {version}")
    return d

def math_html(md):
    "HTML of one markdown text, its math as pandoc writes it for KaTeX: `<span class=\"math display\">TeX</span>` (`inline` for `$..$`)."
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin
    from html import escape
    # pandoc's tex_math_dollars: `$$..$$` anywhere is display math; `$x$` needs no space inside the dollars, no digit after
    mdi = MarkdownIt('commonmark', {'html': False}).enable('table')
    for r in mdi.block.ruler.__rules__:     # pandoc: a list, block quote or heading needs a blank line before it (a line
        if r.name in ('list', 'blockquote', 'heading'): r.alt = [a for a in r.alt if a != 'paragraph']  # `+ x` continues the paragraph)
    mdi.block.ruler.__compile__()
    mdi.use(dollarmath_plugin, allow_labels=False, allow_space=False, allow_digits=False, double_inline=True)
    span = lambda kind: lambda self, tokens, idx, options, env: f'<span class="math {kind}">{escape(tokens[idx].content)}</span>'
    mdi.add_render_rule('math_inline', span('inline'))
    for rule in ('math_inline_double', 'math_block'): mdi.add_render_rule(rule, span('display'))
    return mdi.render(md)

def page_markdown(nb):
    "The markdown a processed notebook puts on its page: its markdown cells and the `text/markdown` outputs (nbdev's `show_doc`)."
    for c in nbformat.read(nb, as_version=4).cells:
        if c.cell_type == 'markdown': yield c.source
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}): yield o['data']['text/markdown']

MEASURE_PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8">
<link rel="stylesheet" href="katex/katex.min.css"><script src="katex/katex.min.js"></script>
<style>
html {{ font-size: {FONT_PX}px; }}                       /* Quarto's $font-size-root */
body {{ margin: 0; font-size: 1rem; line-height: 1.5; }}
section {{ width: {COLUMN_PX}px; }}                        /* the text column */
ul, ol {{ padding-left: 2rem; }}                          /* Bootstrap's lists */
blockquote {{ margin: 0 0 1rem; padding-left: .5rem; border-left: 3px solid #ccc; }}
</style></head><body></body></html>"""

MEASURE_JS = r"""
const [pages, done] = arguments;
(async () => {
  for (const p of pages) {
    const sec = document.createElement('section');
    sec.innerHTML = p.html;
    document.body.appendChild(sec);
    const macros = {};                      // as Quarto's loader: one macro table per page, same options
    for (const el of sec.querySelectorAll('span.math'))
      katex.render(el.textContent, el, {displayMode: el.classList.contains('display'), throwOnError: false, macros: macros, fleqn: false});
  }
  document.body.offsetHeight;               // lay out, so that the fonts are requested
  await document.fonts.ready;
  const fonts = [...document.fonts].filter(f => f.family.replace(/"/g, '').startsWith('KaTeX'));
  const bad = fonts.filter(f => f.status !== 'loaded' && f.status !== 'unloaded').map(f => f.family + ' ' + f.status);
  if (!fonts.some(f => f.status === 'loaded') || bad.length) return done({error: 'KaTeX fonts did not load: ' + (bad.join(', ') || 'none loaded')});
  const out = [];
  document.querySelectorAll('section').forEach((sec, i) => {
    sec.querySelectorAll('span.math').forEach(el => {
      const err = el.querySelector('.katex-error'), display = el.querySelector('.katex-display');
      // an unknown command is set as its own name in KaTeX's error colour (throwOnError: false), not as an error
      const unknown = [...el.querySelectorAll('.katex-html [style]')].filter(e => e.style.color === 'rgb(204, 0, 0)').map(e => e.textContent);
      const row = {page: i, tex: el.querySelector('annotation') ? el.querySelector('annotation').textContent : (err ? err.textContent : ''),
                   display: !!display || el.classList.contains('display'),
                   error: err ? err.title : unknown.length ? 'unknown command ' + [...new Set(unknown)].join(', ') : null};
      if (display) {                        // the rows of the formula (KaTeX's base boxes) and its \tag, if any
        let l = Infinity, r = -Infinity, tag = 0;
        for (const b of display.querySelector('.katex-html').children) {
          const rc = b.getBoundingClientRect();
          if (b.classList.contains('tag') || b.classList.contains('katex-tag')) { tag = rc.width; continue; }
          l = Math.min(l, rc.left); r = Math.max(r, rc.right);
        }
        row.width = r - l + tag;
        row.column = display.clientWidth;
      }
      out.push(row);
    });
  });
  done({rows: out});
})().catch(e => done({error: String(e && e.stack || e)}));
"""

def measure(texts, dist):
    "Render `texts` (`{page name: markdown}`) in headless Chromium; one row per math element: page, tex, display, error, width, column."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    chromium = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
    chromedriver = shutil.which('chromedriver')
    if not (chromium and chromedriver): sys.exit("the width check needs Chromium and chromedriver: run tools/ci_browser_setup.sh")
    names = list(texts)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp)/'katex').symlink_to(dist.resolve())
        (Path(tmp)/'measure.html').write_text(MEASURE_PAGE)
        class Quiet(SimpleHTTPRequestHandler):
            def log_message(self, *a): pass
        server = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=tmp))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', f'--window-size={WINDOW[0]},{WINDOW[1]}',
                  '--force-device-scale-factor=1'): opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(chromedriver), options=opts)
        try:
            driver.set_script_timeout(120)
            driver.get(f'http://127.0.0.1:{server.server_address[1]}/measure.html')
            res = driver.execute_async_script(MEASURE_JS, [{'html': math_html('\n\n'.join(texts[n]))} for n in names])
        finally:
            driver.quit()
            server.shutdown(); server.server_close()
    if 'error' in res: sys.exit(f"the width check could not measure: {res['error']}")
    return [dict(r, page=names[r['page']]) for r in res['rows']]

def short(tex, n=60):
    tex = ' '.join(tex.split())
    return tex if len(tex) <= n else tex[:n-3] + '...'

def problems(rows):
    "One line per display equation wider than its column, and per TeX that KaTeX cannot set."
    out = []
    for r in rows:
        if r['error']:
            d = '$$' if r['display'] else '$'
            out.append(f"{r['page']}: KaTeX cannot set {d}{short(r['tex'])}{d}: {short(r['error'], 200)}")
        elif r['display'] and r['width'] > r['column'] + SLACK_PX:
            out.append(f"{r['page']}: $${short(r['tex'])}$$ is {r['width']:.0f} px wide, the column {r['column']:.0f} px")
    return out

def width_problems(cache, nbs):
    "Measure every display equation of the pages `nbs` (processed, under `cache`) against the text column: one line per problem."
    t0 = time.time()
    version = katex_version()
    rows = measure({str(page_name(cache, nb)): list(page_markdown(nb)) for nb in nbs}, katex_dist(version))
    bad = problems(rows)
    print(f"width check: {sum(r['display'] for r in rows)} display equations on {len(nbs)} pages, KaTeX {version}, column "
          f"{COLUMN_PX} px at a {WINDOW[0]} px window: {len(bad) or 'none'} too wide or unset ({time.time() - t0:.1f} s)", flush=True)
    return bad

def width():
    "The width check alone, on freshly processed notebooks; exit with one line per equation that does not fit."
    cache = processed()
    if bad := width_problems(cache, pages(cache)): sys.exit('\n'.join(bad))

def readme():
    "Write README.md from the processed index notebook, with its figures in `index_files/`."
    cache = processed(cfg.readme_nb)
    nb = read_nb(cache/cfg.readme_nb)
    nb.cells = [c for c in nb.cells if not (c.cell_type == 'raw' and c.source.startswith('---'))]  # front matter
    figs = 'index_files'
    body, res = exporter(MarkdownExporter).from_notebook_node(nb, resources={'output_files_dir': figs})
    body = f"# {cfg.title}\n\n> {cfg.description}\n\n" + body
    body = re.sub(r'\]\((?!https?:|#|/|index_files/)([^)]+)\)', r'](nbs/\1)', body)   # links relative to nbs/ from the repo root
    shutil.rmtree(ROOT/figs, ignore_errors=True)
    for name, data in res.get('outputs', {}).items():
        (ROOT/name).parent.mkdir(parents=True, exist_ok=True)
        (ROOT/name).write_bytes(data)
    (ROOT/'README.md').write_text(body.strip() + '\n')
    print(f"wrote README.md with {len(res.get('outputs', {}))} figure(s)")

def check():
    cache, nbs = html()
    bad = width_problems(cache, nbs)
    readme()
    if subprocess.run(['git', 'diff', '--quiet', '--', 'README.md', 'index_files'], cwd=ROOT).returncode:
        bad.append("README.md is out of date with nbs/index.ipynb: run `python tools/docs.py readme` and commit it.")
    if bad: sys.exit('\n'.join(bad))

if __name__ == '__main__':
    {'html': html, 'width': width, 'readme': readme, 'check': check}[sys.argv[1] if len(sys.argv) > 1 else 'check']()
