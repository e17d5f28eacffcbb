"Training: config, callbacks, checkpoints, `fit_vae`, distributed training. `from vae_nb.train import fit_vae` gives `vae_nb.train.fit`'s names."
from ..core.basics import forward_names
__getattr__ = forward_names('vae_nb.train.fit')
