"""Every latent family through the one code path: build, train, reload, evaluate; and fit_vae's contract for your own data/model."""
import math
import pytest, torch
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.callback.core import Callback
from torch.utils.data import TensorDataset

from vae_nb.core.models import bottleneck_names, build_vae
from vae_nb.train import fit_vae
from vae_nb.train.checkpoints import load_run
from vae_nb.evaluation.evaluate import iw_nll, loss_parts

TINY = dict(dataset='mnist', classes=[0, 1], max_train=600, epochs=1, valid_pct=0.02, bs=100, quiet=True, device='cpu', seed=0)

@pytest.mark.parametrize('family', bottleneck_names())
@pytest.mark.parametrize('conditional', [False, True])
def test_family_trains_reloads_and_evaluates(family, conditional, tmp_path):
    learn = fit_vae(bottleneck=family, latent_dim=3, conditional=conditional, out=tmp_path/'run', **TINY)
    assert learn.model.n_classes == (2 if conditional else 0)
    model, dls, cfg = load_run(tmp_path/'run')
    assert cfg.bottleneck == family
    for a, b in zip(model.state_dict().values(), learn.model.state_dict().values()): assert torch.equal(a.cpu(), b.cpu())
    parts = loss_parts(model, dls[2])
    assert math.isfinite(parts['recon']) and parts['kl'] >= 0
    import json
    metrics = json.loads((tmp_path/'run'/'metrics.json').read_text())['test']
    assert math.isnan(metrics['elbo']) == (not model.bottleneck.has_prior)     # no prior: no ELBO to report, as evaluate says too
    if model.bottleneck.has_prior:
        r = iw_nll(model, dls[2], k=20, max_n=40)
        assert r['nll'] < -loss_parts(model, dls[2])['elbo'] + 5          # the IW bound is tighter than the ELBO (MC slack)
    else: assert parts['kl'] == 0

def test_own_dataloaders_and_model():
    "fit_vae takes plain PyTorch data (x, y) in fastai DataLoaders, and a model you built yourself."
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(512, 1, 8, 8, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (512,), generator=g)
    dls = DataLoaders(DataLoader(TensorDataset(x, y), bs=64, shuffle=True), DataLoader(TensorDataset(x[:128], y[:128]), bs=64))
    model = build_vae('gaussian', 2, dict(kind='mlp', hidden=(32,)), in_shape=(1, 8, 8), n_classes=3)
    learn = fit_vae(dls=dls, model=model, epochs=2, quiet=True, device='cpu')
    assert learn.model is model
    elbos = [v[learn.recorder.metric_names[1:].index('valid_elbo')] for v in learn.recorder.values]
    assert elbos[-1] > elbos[0]

def _weights(learn): return torch.cat([p.detach().flatten() for p in learn.model.parameters()])

def test_same_seed_same_result_and_a_different_seed_differs():
    a, b, c = (fit_vae(**{**TINY, 'seed': s}) for s in (1, 1, 2))
    assert torch.equal(_weights(a), _weights(b))
    assert not torch.equal(_weights(a), _weights(c))

class GradNorms(Callback):
    "Record the gradient norm the optimiser is about to use (after any clipping)."
    order = 100
    def before_fit(self): self.norms = []
    def before_step(self): self.norms.append(torch.nn.utils.get_total_norm([p.grad for p in self.learn.model.parameters() if p.grad is not None]).item())

def test_grad_clip_bounds_the_gradient_norm():
    free, clipped = GradNorms(), GradNorms()
    fit_vae(**TINY, cbs=[free])
    fit_vae(**TINY, grad_clip=0.5, cbs=[clipped])
    assert max(free.norms) > 5                                   # unclipped gradients are large here...
    assert max(clipped.norms) <= 0.5 + 1e-4                      # ...and clipping holds every step to the bound

def _plain_dls(lo=0., hi=1.):
    g = torch.Generator().manual_seed(0)
    x = lo + (hi - lo) * (torch.rand(512, 1, 8, 8, generator=g) > 0.5).float()
    y = torch.randint(0, 3, (512,), generator=g)
    return DataLoaders(DataLoader(TensorDataset(x, y), bs=64, shuffle=True), DataLoader(TensorDataset(x[:128], y[:128]), bs=64))

def test_plain_tensors_train_a_model_built_for_them_and_the_run_folder_says_so(tmp_path):
    "Plain (x, y) tensors in fastai loaders: the image shape is read from a batch, figures work, and the run folder records the custom data."
    import yaml
    from vae_nb.train.checkpoints import load_run
    learn = fit_vae(dls=_plain_dls(), latent_dim=2, epochs=2, viz_every=1, quiet=True, device='cpu', out=tmp_path/'run')
    assert learn.model.encoder.in_shape == (1, 8, 8)
    assert (tmp_path/'run'/'figures'/'latent_epoch_002.png').exists() and (tmp_path/'run'/'figures'/'latent_evolution.gif').exists()
    assert yaml.safe_load((tmp_path/'run'/'config.yaml').read_text())['custom'] == 'data torch.utils.data.dataset.TensorDataset'
    with pytest.raises(ValueError, match='trained with your own data torch.utils.data.dataset.TensorDataset'): load_run(tmp_path/'run')

def test_data_out_of_the_likelihoods_range_and_unknown_classes_are_refused():
    with pytest.raises(ValueError, match=r'the images range over \[-1, 1\], but the bernoulli likelihood expects pixels in \[0, 1\]'):
        fit_vae(dls=_plain_dls(-1., 1.), epochs=1, quiet=True, device='cpu')
    with pytest.raises(ValueError, match='conditional=True needs to know the classes'):
        fit_vae(dls=_plain_dls(), conditional=True, epochs=1, quiet=True, device='cpu')

class CountingDataset(torch.utils.data.Dataset):
    "A plain torch dataset that counts the examples read from it."
    def __init__(self, x, y): self.x, self.y, self.reads = x, y, 0
    def __len__(self): return len(self.x)
    def __getitem__(self, i): self.reads += 1; return self.x[i], self.y[i]

def test_fastai_migration_pattern_plain_torch_loaders_train_and_are_read_once_before_training(tmp_path):
    "fastai's migration pattern: `DataLoaders(torch_train_loader, torch_valid_loader)` of plain `torch.utils.data.DataLoader`s trains, writes a run folder, and the checks read one batch (not one per check)."
    from torch.utils.data import DataLoader as TorchDataLoader
    g = torch.Generator().manual_seed(0)
    x, y = (torch.rand(256, 1, 8, 8, generator=g) > 0.5).float(), torch.randint(0, 3, (256,), generator=g)
    train, valid = CountingDataset(x[:192], y[:192]), CountingDataset(x[192:], y[192:])
    dls = DataLoaders(TorchDataLoader(train, batch_size=64, shuffle=True), TorchDataLoader(valid, batch_size=64))
    learn = fit_vae(dls=dls, latent_dim=2, epochs=1, quiet=True, device='cpu', out=tmp_path/'run')
    assert learn.model.encoder.in_shape == (1, 8, 8)
    assert train.reads == 192 + 64                                   # one epoch, and the one batch the checks and the model's shape share
    assert (tmp_path/'run'/'metrics.json').exists()
    resumed = fit_vae(dls=dls, latent_dim=2, epochs=2, quiet=True, device='cpu', out=tmp_path/'run', resume=tmp_path/'run'/'checkpoints'/'last.pt')
    assert resumed.epoch_offset == 1
