"The package as users import it: every module imports, every exported name is documented."
import importlib, inspect, pkgutil
import pytest
import vae_nb

MODULES = [m.name for m in pkgutil.walk_packages(vae_nb.__path__, 'vae_nb.') if not m.name.split('.')[-1].startswith('_')]

def test_there_are_modules():
    assert 'vae_nb.data' in MODULES

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
    code = ("import warnings; import vae_nb.train, vae_nb.viz, vae_nb.cli, vae_nb.explore, vae_nb.benchmarks; "
            "print([f[1].pattern for f in warnings.filters if f[1] is not None and 'script' in f[1].pattern])")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == '[]', r.stdout
