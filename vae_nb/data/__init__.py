"Data: the datasets by name, their cache and loaders, dSprites. `from vae_nb.data import get_dls` gives `vae_nb.data.datasets`'s names."
from ..core.basics import forward_names
__getattr__ = forward_names('vae_nb.data.datasets')
