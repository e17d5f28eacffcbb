"""A small run is a small run (issue 28): what a run does after its last epoch (the test metrics of `metrics.json`, the
figures) reads a bounded sample of the test split however large it is, and a dSprites run writes no decoded copy of
the grid into the data root."""
import json, os
from dataclasses import dataclass, field

from fastai.data.core import DataLoaders

from conftest import cli
from vae_nb.data.datasets import ImageTensors, TensorDL, load_splits
from vae_nb.data.dsprites import DSPRITES_FILE, DSprites
from vae_nb.train import fit_vae
from vae_nb.evaluation.viz import RUN_SAMPLE, save_run_figures

@dataclass
class SeenImages(ImageTensors):
    "An `ImageTensors` that records the rows of its images that batches read (`seen`, shared with its subsets)."
    seen: set = field(default_factory=set)
    def batch(self, idx):
        self.seen.update((idx if self.rows is None else self.rows.index_select(0, idx)).tolist())
        return super().batch(idx)

def test_after_training_a_run_reads_a_bounded_sample_of_a_large_test_split(tmp_path):
    s = load_splits('mnist', max_train=500, valid_pct=0.01)
    big = SeenImages(s.test.x.repeat(6, 1, 1, 1), s.test.y.repeat(6), s.vocab)          # a test split of 60,000 real images
    dls = DataLoaders(TensorDL(s.train, bs=100, shuffle=True), TensorDL(s.valid, bs=200), TensorDL(big, bs=500))
    learn = fit_vae(dls=dls, latent_dim=4, epochs=1, quiet=True, device='cpu', out=tmp_path/'run')
    m = json.loads((tmp_path/'run'/'metrics.json').read_text())
    assert m['test_sample'] == dict(split='test', n=RUN_SAMPLE, of=60_000, seed=0), m['test_sample']
    assert 0 < len(big.seen) <= RUN_SAMPLE, len(big.seen)            # metrics.json: the sample, not the split
    saved = save_run_figures(learn.model, learn.dls, tmp_path/'run')
    assert {'latent_stats.png', 'covariances.png', 'tsne.png'} <= set(saved), saved
    assert 0 < len(big.seen) <= RUN_SAMPLE, len(big.seen)            # the figures: the same sample, nothing else

def test_dsprites_run_writes_no_decoded_grid(tmp_path):
    packed = DSprites().path                                          # the data root's bit-packed file (generated on first use)
    data = tmp_path/'data'
    (data/'dsprites').mkdir(parents=True)
    try: os.link(packed, data/'dsprites'/DSPRITES_FILE)               # the same file in a fresh data root, not a copy
    except OSError: os.symlink(packed, data/'dsprites'/DSPRITES_FILE)
    code, out, err = cli('train', 'quick', 'dataset=dsprites', 'dataset_kwargs.n=20000', 'max_train=300', 'epochs=1', 'quiet=true', 'out=r',
                         cwd=tmp_path, data=data)
    assert code == 0, err
    written = {str(f.relative_to(data)): f.stat().st_size for f in data.rglob('*') if f.is_file() and f.name != DSPRITES_FILE}
    assert written == {}, written               # before: cache/dsprites-*/train_x.npy, 82 MB here (3 GB for the whole grid)
    assert 'test metrics and figures from all 4,000 test images' in out, out
    assert (tmp_path/'r'/'figures'/'latent_stats.png').stat().st_size > 1000

def test_the_full_test_nll_is_shared_by_processes_and_continues_after_a_kill(tmp_path):
    "`full_test_nll`: real processes share the blocks of one score; a kill of one leaves its finished blocks, the same call finishes the rest, and the score equals one process's."
    import signal, subprocess, sys, time
    import torch
    from vae_nb.tools.benchmarks import full_test_nll, _SCORE_SHARD
    from vae_nb.train.checkpoints import load_run
    from vae_nb.evaluation.evaluate import iw_nll, test_dl
    cli('train', 'quick', 'max_train=300', 'epochs=1', 'quiet=true', f'out={tmp_path/"run"}')
    run, parts = tmp_path/'run', tmp_path/'run'/'nll-k40-last'
    p = subprocess.Popen([sys.executable, '-c', _SCORE_SHARD, str(run), 'last', '40', str(parts), '0', '2'],
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    while not (parts.exists() and len(list(parts.glob('*.pt'))) >= 2): time.sleep(0.2)
    p.send_signal(signal.SIGKILL); p.wait()
    kept = sorted(f.name for f in parts.glob('*.pt'))
    assert 2 <= len(kept) < 50 and all(int(f[:6]) % 2 == 0 for f in kept), kept   # shard 0 of 2: even blocks (of 100 images or a batch's rest), none half-written
    res = full_test_nll(run, k=40, processes=2)
    assert res['n'] == 10_000
    assert json.loads((run/'nll-k40-last.json').read_text())['nll'] == res['nll']
    model, dls, _ = load_run(run, 'last')
    one = iw_nll(model, test_dl(dls), k=40, max_n=None, parts=tmp_path/'one')        # one process, blocks seeded the same
    assert torch.isclose(torch.tensor(one['nll']), torch.tensor(res['nll']), rtol=1e-9), (one['nll'], res['nll'])
    assert sorted(f.name for f in parts.glob('*.pt')) == sorted(f.name for f in (tmp_path/'one').glob('*.pt'))
    assert 0 < res['nll'] < -res['elbo']
