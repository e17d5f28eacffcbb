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
