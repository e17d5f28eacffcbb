__version__ = "0.0.1"

from .core.basics import install_moved_modules as _install_moved_modules
_install_moved_modules()      # old module paths (vae_nb.vmf, vae_nb.config, ...) keep working for one release, with a warning
