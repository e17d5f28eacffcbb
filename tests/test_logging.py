"Optional logging through fastai's own callbacks: Weights & Biases (offline mode) and TensorBoard."
import glob
import pytest
from vae_nb.train import fit_vae

QUICK = dict(epochs=2, max_train=500, valid_pct=0.02, device='cpu', quiet=True)

def test_wandb_offline_run_gets_config_and_epoch_metrics(tmp_path, monkeypatch):
    wandb = pytest.importorskip('wandb')
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_SILENT', 'true')
    monkeypatch.setenv('WANDB_DIR', str(tmp_path))
    learn = fit_vae(wandb=True, out=tmp_path/'run', latent_dim=3, **QUICK)
    try:
        assert wandb.run is not None and wandb.run.offline
        assert dict(wandb.run.config)['latent_dim'] == 3 and dict(wandb.run.config)['bottleneck'] == 'gaussian'
        summary = dict(wandb.run.summary)
        assert summary['epoch'] == 2
        assert summary['valid_elbo'] == pytest.approx(learn.recorder.values[-1][learn.recorder.metric_names[1:].index('valid_elbo')])
    finally: wandb.finish()
    assert glob.glob(str(tmp_path/'run'/'wandb'/'offline-run-*'/'*.wandb'))

def test_tensorboard_gets_the_elbo_parts(tmp_path):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    learn = fit_vae(tensorboard=True, out=tmp_path/'run', **QUICK)
    [events] = glob.glob(str(tmp_path/'run'/'tensorboard'/'events.*'))
    acc = EventAccumulator(events); acc.Reload()
    tags = acc.Tags()['scalars']
    for t in ('train_loss', 'valid_recon', 'valid_kl', 'valid_elbo', 'lr_0'): assert t in tags, tags
    assert len(acc.Scalars('valid_elbo')) == 2
