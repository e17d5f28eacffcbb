#!/usr/bin/env python
"""Build the documentation without Quarto: nbdev's own notebook processing, then nbconvert.

    python tools/docs.py html     # process every notebook as nbdev does for Quarto, render each to _docs/*.html; fail on errors
    python tools/docs.py readme   # README.md (and its figures) from nbs/index.ipynb
    python tools/docs.py check    # both, then fail if README.md is out of date with nbs/index.ipynb

Where Quarto is installed, `nbdev-docs` / `nbdev-preview` build the real site from the same `nbs/_quarto.yml`."""
import re, sys, shutil, subprocess
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

def html():
    "Render every processed notebook to `_docs/<name>.html`."
    cache, out = processed(), ROOT/'_docs'
    out.mkdir(exist_ok=True)
    nbs = sorted(p for p in cache.glob('*.ipynb') if not p.name.startswith('_'))
    exp = exporter(HTMLExporter, template_name='lab')
    for nb in nbs:
        body, _ = exp.from_notebook_node(read_nb(nb))
        (out/nb.with_suffix('.html').name).write_text(body)
    print(f"rendered {len(nbs)} pages into {out}")
    return nbs

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
    html()
    readme()
    if subprocess.run(['git', 'diff', '--quiet', '--', 'README.md', 'index_files'], cwd=ROOT).returncode:
        sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/docs.py readme` and commit it.")

if __name__ == '__main__':
    {'html': html, 'readme': readme, 'check': check}[sys.argv[1] if len(sys.argv) > 1 else 'check']()
