"""Training on 2 processes (torchrun, gloo on CPU) against 1 process: the same parameters, the same recorded metrics,
the same decisions on every rank, no hang when a rank fails, and a run folder the other commands read."""
import json, os, subprocess, sys, time
from pathlib import Path
import pytest, torch

from vae_nb.train.checkpoints import load_run
from vae_nb.evaluation.evaluate import loss_parts
from conftest import cli, cli_process

SCRIPT = '''
import json, sys, torch
from fastai.callback.core import Callback
from fastai.torch_core import rank_distrib
from vae_nb.train import fit_vae

class Fault(Callback):
    "On rank `rank`, at the third training batch of epoch `epoch`: raise, or make the loss NaN."
    order = -1
    def __init__(self, rank, epoch, kind): self.rank, self.at, self.kind = rank, epoch, kind
    def after_loss(self):
        if rank_distrib() != self.rank or not self.training or (self.epoch, self.iter) != (self.at, 2): return
        if self.kind == 'raise': raise RuntimeError(f'injected failure on rank {self.rank}')
        self.learn.loss_grad = self.learn.loss_grad * float('nan')

prefix, kw = sys.argv[1], json.loads(sys.argv[2])
fault = kw.pop('fault', None)
learn = fit_vae(cbs=[Fault(**fault)] if fault else None, **kw)
r = rank_distrib()
torch.save(learn.model.state_dict(), f'{prefix}_params{r}.pt')
json.dump(dict(values=[list(map(float, v)) for v in learn.recorder.values], names=list(learn.recorder.metric_names[1:-1]),
               writes=hasattr(learn, 'checkpoint_dir'), nan_stop=getattr(learn, 'nan_stop', None)), open(f'{prefix}_rank{r}.json', 'w'))
'''
# 8x8 digits, a 16-unit MLP: 300 training images (9 batches of 32), 101 validation images (odd: a padded shard would count one twice)
SMALL = dict(dataset='digits', arch={'kind': 'mlp', 'hidden': [16]}, latent_dim=2, device='cpu', bs=32, max_train=300, valid_pct=0.07,
             lr=0.01, quiet=True)
ENV = dict(os.environ, OMP_NUM_THREADS='1', ACCELERATE_USE_CPU='1', MPLBACKEND='Agg')

def torchrun(nproc:int) -> list:
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', f'--nproc_per_node={nproc}']

def launch(tmp:Path, name:str, nproc:int, timeout:float=120, **kw):
    "Run SCRIPT with fit_vae(**SMALL, **kw) on `nproc` processes (1: plain python); the completed process, its `seconds` and what each rank saved."
    script = tmp/'fit.py'
    script.write_text(SCRIPT)
    cmd = [sys.executable] if nproc == 1 else torchrun(nproc)
    start = time.perf_counter()
    r = subprocess.run([*cmd, str(script), str(tmp/name), json.dumps({**SMALL, **kw})], capture_output=True, text=True, env=ENV, timeout=timeout)
    r.seconds = time.perf_counter() - start
    r.ranks = [json.loads(p.read_text()) for p in sorted(tmp.glob(f'{name}_rank*.json'))]
    r.params = [torch.load(p) for p in sorted(tmp.glob(f'{name}_params*.pt'))]
    return r

def ok(r):
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    return r

@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "The same deterministic run (the plain autoencoder: no sampling noise) on 1 and on 2 processes, 3 epochs, each with a run folder."
    tmp = tmp_path_factory.mktemp('ddp')
    kw = dict(bottleneck='ae', epochs=3)
    return tmp, ok(launch(tmp, 'one', 1, out=str(tmp/'one'), **kw)), ok(launch(tmp, 'two', 2, out=str(tmp/'two'), **kw))

def test_two_processes_take_the_one_process_steps(runs):
    "Same data order, same global batch: DDP's gradient average is the big batch's gradient, so 27 Adam steps land on the same weights."
    _, one, two = runs
    assert len(two.params) == 2
    for k, v in one.params[0].items():
        torch.testing.assert_close(two.params[0][k], v, rtol=1e-4, atol=1e-5)
        assert torch.equal(two.params[0][k], two.params[1][k]), k         # and the ranks agree exactly

def test_recorded_metrics_cover_the_whole_split_once(runs):
    "The validation metrics the 2-process run records are the 1-process run's, the same bits on both ranks, and a 1-process evaluation of its checkpoint."
    tmp, one, two = runs
    a, b = two.ranks
    assert (a['writes'], b['writes']) == (True, False)                  # rank 0 alone writes the run folder
    assert a['values'] == b['values']
    torch.testing.assert_close(torch.tensor(a['values']), torch.tensor(one.ranks[0]['values']), rtol=1e-5, atol=1e-5)
    model, dls, c = load_run(tmp/'two', 'last')
    assert len(dls.valid.dataset) == 101
    parts = loss_parts(model, dls.valid)
    last = dict(zip(a['names'], a['values'][-1]))
    for k in ('loss', 'recon', 'elbo'): assert abs(last[f'valid_{k}'] - parts[k]) < 1e-4, (k, last[f'valid_{k}'], parts[k])

def test_resume_on_two_processes_continues_exactly(runs):
    "2 epochs on 2 processes, then resumed to 3 from `last.pt` on 2 processes: the weights of the uninterrupted 3-epoch runs (the loaders' random state brings the same permutation back on every rank)."
    tmp, one, two = runs
    ok(launch(tmp, 'first', 2, bottleneck='ae', epochs=2, out=str(tmp/'part')))
    resumed = ok(launch(tmp, 'resumed', 2, bottleneck='ae', epochs=3, out=str(tmp/'part'), resume=str(tmp/'part'/'checkpoints'/'last.pt')))
    for k, v in one.params[0].items():
        torch.testing.assert_close(resumed.params[0][k], v, rtol=1e-4, atol=1e-5)
        assert torch.equal(resumed.params[0][k], resumed.params[1][k]), k
    rows = [l for l in (tmp/'part'/'history.csv').read_text().splitlines() if not l.startswith('epoch')]   # (fastai's CSVLogger repeats the header on append)
    assert [r.split(',')[0] for r in rows] == ['0', '1', '2']

def test_early_stopping_stops_every_rank_at_once(tmp_path):
    "A Gaussian VAE (each rank draws its own noise): early stopping reads the reduced record, identical on both ranks, and stops both at the same epoch."
    r = ok(launch(tmp_path, 'es', 2, bottleneck='gaussian', epochs=6, patience=1, min_delta=2.))
    a, b = r.ranks
    assert a['values'] == b['values']
    assert len(a['values']) < 6

def test_nan_on_one_rank_stops_every_rank(tmp_path):
    "A non-finite loss on rank 1 only: both ranks stop at the same batch with NaNGuard's message, and the run ends (no rank waits for the other)."
    r = ok(launch(tmp_path, 'nan', 2, timeout=90, epochs=3, fault=dict(rank=1, epoch=1, kind='nan')))
    a, b = r.ranks
    assert a['nan_stop'] and a['nan_stop'] == b['nan_stop'] and 'epoch 1, batch 2' in a['nan_stop']

def test_error_on_one_rank_ends_every_rank(tmp_path):
    "An exception on rank 1 ends rank 0 too, within the timeout, with the error in the output."
    r = launch(tmp_path, 'err', 2, timeout=90, epochs=3, fault=dict(rank=1, epoch=1, kind='raise'))
    assert r.returncode != 0
    assert 'injected failure on rank 1' in r.stdout + r.stderr
    assert r.ranks == []                  # neither rank got past fit_vae

def vae_nb(*args, cwd):
    "The command in a process of its own (the ranks that --nproc starts print to its stdout), in the ranks' environment."
    return cli_process(*args, cwd=cwd, timeout=300, OMP_NUM_THREADS='1', ACCELERATE_USE_CPU='1')

def test_cli_two_process_run_folder(runs, tmp_path):
    "`vae-nb train --nproc 2` writes one complete run folder (rank 0 only) that `load_run`, `vae-nb evaluate` and `vae-nb compare` read."
    code, out, err = vae_nb('train', '--nproc', '2', 'quick', 'dataset=digits', 'arch={kind: mlp, hidden: [16]}', 'epochs=2', 'bs=32', 'max_train=300',
               'device=cpu', 'progress=false', 'viz_every=0', f'out={tmp_path/"run"}', cwd=tmp_path)
    assert code == 0, out[-2000:] + err[-3000:]
    assert out.count('vae-nb: training') == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run']                  # no second folder from another rank
    run = tmp_path/'run'
    for f in ['config.yaml', 'history.csv', 'metrics.json', 'checkpoints/last.pt', 'checkpoints/best.pt']: assert (run/f).exists(), f
    assert len((run/'history.csv').read_text().splitlines()) == 3
    m = json.loads((run/'metrics.json').read_text())
    assert (m['world_size'], m['precision'], m['epochs_run']) == (2, '32', 2)
    assert list(run.glob('figures/*.png'))
    model, dls, c = load_run(run)
    assert c.dataset == 'digits'
    code, out, err = cli('evaluate', run, '--k', 5, '--iw-n', 50, cwd=tmp_path)              # one process: this one will do
    assert code == 0, err[-3000:]
    code, out, err = cli('compare', run, runs[0]/'two', '--k', 5, '--iw-n', 50, '--out', tmp_path/'cmp', cwd=tmp_path)
    assert code == 0, err[-3000:]
    assert 'run' in out and 'two' in out
