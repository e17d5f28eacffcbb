"The package as users import it: every module imports, every exported name is documented."
import importlib, inspect, pkgutil
import pytest
import vae_nb

MODULES = [m.name for m in pkgutil.walk_packages(vae_nb.__path__, 'vae_nb.') if not m.name.split('.')[-1].startswith('_')]

def test_there_are_modules():
    assert 'vae_nb.data.datasets' in MODULES

@pytest.mark.parametrize('name', MODULES)
def test_every_exported_name_has_a_docstring(name):
    mod = importlib.import_module(name)
    public = getattr(mod, '__all__', [])
    missing = [n for n in public if (inspect.isfunction(getattr(mod, n)) or inspect.isclass(getattr(mod, n)))
               and not inspect.getdoc(getattr(mod, n))]
    assert not missing, f"{name}: no docstring on {missing}"

def _wheel_install(tmp_path):
    """The package as `pip install vae_nb` / `pip install git+URL` installs it: a wheel built from this checkout, installed
    (not editable, no dependencies) into a fresh virtual environment that borrows the dependencies (torch, fastai, ...)
    of this one through a `.pth` file. Returns the new environment's `bin/` and `site-packages/` folders."""
    import shutil, subprocess, sys, sysconfig, venv
    from pathlib import Path
    root = Path(__file__).parent.parent
    if not shutil.which('git') or subprocess.run([sys.executable, '-m', 'pip', '--version'], capture_output=True).returncode:
        pytest.skip('no pip here to build and install a wheel')
    try: import setuptools  # noqa: F401 (the build backend, used without build isolation: no download)
    except ImportError: pytest.skip('setuptools is not installed: cannot build a wheel offline')
    src = tmp_path/'src'          # a copy of the tracked files, as `pip install git+URL` sees them
    src.mkdir()
    subprocess.run(f'git -C {root} ls-files -z | xargs -0 cp --parents -t {src}', shell=True, check=True, cwd=root)
    dist = tmp_path/'dist'
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w', dist, src], check=True)
    env = tmp_path/'venv'
    venv.EnvBuilder(with_pip=False).create(env)
    site = next(env.glob('lib/python*/site-packages'))
    (site/'_deps.pth').write_text(''.join(f'{p}\n' for p in {sysconfig.get_paths()['purelib'], sysconfig.get_paths()['platlib']}))
    [wheel] = dist.glob('vae_nb-*.whl')
    subprocess.run([sys.executable, '-m', 'pip', '--python', env/'bin'/'python', 'install', '--no-deps', '-q', wheel], check=True)
    return env/'bin', site

def test_the_wheel_installs_and_runs_its_presets(tmp_path):
    "Built, installed and run outside the checkout, the package finds its presets (package data) and reads them."
    import os, subprocess
    bin_, site = _wheel_install(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    elsewhere = tmp_path/'elsewhere'
    elsewhere.mkdir()
    run = lambda *a: subprocess.run(a, capture_output=True, text=True, cwd=elsewhere, env=env)
    r = run(bin_/'python', '-c', 'import vae_nb; print(vae_nb.__file__)')
    assert r.stdout.strip().startswith(str(site)), (r.stdout, r.stderr)           # the wheel's copy, not the checkout
    r = run(bin_/'vae-nb', 'presets')
    assert r.returncode == 0, r.stderr
    names = [l.split()[0] for l in r.stdout.splitlines()]
    assert 'quick' in names and len(names) >= 10, r.stdout
    r = run(bin_/'vae-nb', 'config', 'quick', 'epochs=3')
    assert r.returncode == 0 and 'epochs: 3' in r.stdout, r.stderr

def test_importing_the_package_leaves_the_warning_filters_alone():
    "vae_nb silences fastai's import-time FutureWarning only around its own imports, never in the user's filters."
    import subprocess, sys
    code = ("import warnings; import vae_nb.train.fit, vae_nb.evaluation.viz, vae_nb.tools.cli, vae_nb.evaluation.explore, vae_nb.tools.benchmarks; "
            "print([f[1].pattern for f in warnings.filters if f[1] is not None and 'script' in f[1].pattern])")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]', r.stdout

def import_graph(package_dir) -> dict:
    "Module -> the package's modules it imports, read from every `import` statement of every file (those inside functions too)."
    import ast
    from pathlib import Path
    root = Path(package_dir)
    names = {}
    for f in root.rglob('*.py'):
        parts = f.relative_to(root.parent).with_suffix('').parts
        names['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = f
    graph = {}
    for name, f in names.items():
        here = name.split('.') if f.name == '__init__.py' else name.split('.')[:-1]
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = '.'.join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) if node.level else node.module
                deps |= {base, *(f'{base}.{a.name}' for a in node.names)}
            elif isinstance(node, ast.Import): deps |= {a.name for a in node.names}
        graph[name] = sorted(d for d in deps if d in names and d != name)
    return graph

def import_cycle(graph:dict) -> list:
    "One circle of imports in `graph` (a list of modules that leads back to its first), or [] when there is none."
    state, path = {}, []
    def visit(m):
        state[m] = 'open'; path.append(m)
        for d in graph[m]:
            if state.get(d) == 'open': return path[path.index(d):] + [d]
            if d not in state and (found := visit(d)): return found
        state[m] = 'done'; path.pop()
        return []
    for m in sorted(graph):
        if m not in state and (found := visit(m)): return found
    return []

def test_the_import_check_finds_a_circle(tmp_path):
    pkg = tmp_path/'pkg'
    (pkg/'sub').mkdir(parents=True)
    for f, text in {'__init__.py': '', 'a.py': 'from .sub.b import x', 'sub/__init__.py': '', 'sub/b.py': 'def x():\n    from ..c import y',
                    'c.py': 'from . import a', 'd.py': 'import pkg.a'}.items():
        (pkg/f).write_text(text)
    graph = import_graph(pkg)
    assert graph['pkg.d'] == ['pkg.a'] and graph['pkg.sub.b'] == ['pkg.c']
    assert import_cycle(graph) == ['pkg.a', 'pkg.sub.b', 'pkg.c', 'pkg.a']
    (pkg/'c.py').write_text('y = 1')
    assert import_cycle(import_graph(pkg)) == []

def test_no_module_imports_itself_back():
    "The package's imports form no circle, lazy ones (inside functions) included: each module imports downwards only."
    from pathlib import Path
    graph = import_graph(Path(vae_nb.__file__).parent)
    assert 'vae_nb.families.vmf' in graph and 'vae_nb.core.models' in graph['vae_nb.families.vmf']
    assert import_cycle(graph) == [], f"an import circle: {' -> '.join(import_cycle(graph))}"

def test_every_chapter_opens_in_colab():
    "Each chapter, right after its title: an 'Open in Colab' badge pointing at its own path, and a hidden cell that installs vae_nb only on Colab."
    import json
    from pathlib import Path
    nbs = Path(__file__).parent.parent/'nbs'
    chapters = sorted(nbs.glob('*_*/*.ipynb'))
    assert len(chapters) >= 30
    for nb in chapters:
        cells = json.loads(nb.read_text())['cells']
        src = [''.join(c['source']) for c in cells]
        title = next(i for i, c in enumerate(cells) if c['cell_type'] == 'markdown' and src[i].startswith('# '))
        badge, install = src[title + 1], src[title + 2]
        url = f"https://colab.research.google.com/github/vae-nb/vae_nb/blob/main/{nb.relative_to(nbs.parent)}"
        assert 'colab-badge.svg' in badge and f']({url})' in badge, f"{nb}: no Colab badge for {url} after the title"
        assert install.startswith('#| hide') and "'google.colab' in str(get_ipython())" in install and '%pip install' in install, f"{nb}: no hidden Colab install cell"

def test_the_sidebar_lists_every_chapter_once_by_part():
    "nbs/sidebar.yml (written by hand: nbdev's own drops the folders' number prefixes from the paths) lists every notebook once, each part's under its own section, in the folders' order."
    import yaml
    from pathlib import Path
    nbs = Path(__file__).parent.parent/'nbs'
    contents = yaml.safe_load((nbs/'sidebar.yml').read_text())['website']['sidebar']['contents']
    sections = [c for c in contents if isinstance(c, dict)]
    listed = [p for s in sections for p in s['contents']]
    assert contents[0] == 'index.ipynb'
    assert listed == sorted(p.relative_to(nbs).as_posix() for p in nbs.glob('*_*/*.ipynb')), "sidebar.yml and nbs/ differ"
    assert [{p.split('/')[0] for p in s['contents']} for s in sections] == [{d.name} for d in sorted(nbs.glob('[0-9]_*'))]

def test_a_run_folder_of_the_flat_layout_loads_evaluates_and_resumes(tmp_path):
    "A run folder written by vae_nb 0.0.1 before the chapters became parts (tests/fixtures/run_0.0.1_flat: `vae-nb train quick dataset=digits` with a 16-unit net, 2 epochs) loads, evaluates and continues with this version."
    import json, shutil
    from pathlib import Path
    from conftest import cli
    from vae_nb.train.checkpoints import load_run
    run = tmp_path/'run'
    shutil.copytree(Path(__file__).parent/'fixtures'/'run_0.0.1_flat', run)
    model, dls, cfg = load_run(run, 'last')
    assert (cfg.dataset, cfg.latent_dim) == ('digits', 2) and model.encoder is not None
    code, out, err = cli('evaluate', run, '--k', '5', '--iw-n', '20', '--which', 'last')
    assert code == 0, err
    assert json.loads((run/'evaluation.json').read_text())['epochs_run'] == 2
    code, out, err = cli('train', '--resume', run, 'epochs=3', 'quiet=true', 'viz_every=0')
    assert code == 0, err
    assert (run/'history.csv').read_text().count('\n') == 4                     # a header and epochs 0, 1 and the new 2
