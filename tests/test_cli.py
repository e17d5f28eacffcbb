"""The `vae-nb` command as a user runs it: presets, overrides, bad input, training into a run folder, resume."""
import json, os, subprocess, sys
from pathlib import Path
import pytest, yaml

from vae_nb.cli import list_presets, main

def vae_nb(*args, cwd=None, data=None):
    env = dict(os.environ, MPLBACKEND='Agg')
    if data is not None: env['VAE_NB_DATA'] = str(data)
    cmd = [sys.executable, '-c', 'import sys; from vae_nb.cli import main; sys.exit(main(sys.argv[1:]))']   # what the vae-nb script runs
    r = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    return r.returncode, r.stdout, r.stderr

def run_main(capsys, *args):
    "The command in this process (fast): exit code, stdout, stderr."
    code = main(list(map(str, args)))
    out, err = capsys.readouterr()
    return code, out, err

@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    "A data root with no datasets in it: a command that tried to load data would fail with a different error."
    d = tmp_path/'no-data'
    d.mkdir()
    monkeypatch.setenv('VAE_NB_DATA', str(d))
    return d

@pytest.mark.parametrize('preset', sorted(list_presets()))
def test_every_preset_is_a_valid_config(preset, empty_data, capsys):
    code, out, err = run_main(capsys, 'config', preset)
    assert code == 0, err
    cfg = yaml.safe_load(out)
    assert cfg['bottleneck'] and cfg['epochs'] >= 1

BAD = [
    (['bottleneck=vq'], "Unknown bottleneck 'vq'. Allowed: ae, cc, correlated, dirichlet, gaussian"),
    (['dataset=imagenet'], "Unknown dataset 'imagenet'. Allowed: cifar10"),
    (['arch=resnet'], "Unknown arch 'resnet'. Allowed: mlp400"),
    (['likelihood=poisson'], "Unknown likelihood 'poisson'"),
    (['latent_dim=0'], "latent_dim must be >= 1, got 0"),
    (['beta=-1'], "beta must be >= 0.0, got -1"),
    (['classes=[0,10]'], "Class 10 is not in this dataset"),
    (['dataset=fashion_mnist', 'classes=[Boot]'], "Class 'Boot' is not in this dataset"),
    (['bottleneck=dirichlet', 'latent_dim=1'], "latent_dim"),
    (['bottleneck=cc', 'latent_dim=1'], "latent_dim"),
    (['epochs=0'], "epochs must be >= 1, got 0"),
    (['lattent_dim=3'], "Unknown config key 'lattent_dim' (did you mean latent_dim?)"),
    (['kl_anneal=cosine'], "Unknown kl_anneal 'cosine'. Allowed"),
    (['device=tpu'], "Unknown device 'tpu'. Allowed: auto"),
]

@pytest.mark.parametrize('overrides,message', BAD)
def test_bad_input_fails_before_any_data_loads(overrides, message, empty_data, tmp_path, capsys):
    code, out, err = run_main(capsys, 'train', 'quick', *overrides, f'out={tmp_path}/run')
    assert code == 2, (code, err)
    assert message in err, err
    assert 'Traceback' not in err
    assert not (tmp_path/'run').exists()          # nothing was written
    assert list(empty_data.iterdir()) == []       # no dataset was looked for or downloaded

def test_unknown_preset(empty_data, capsys):
    code, out, err = run_main(capsys, 'train', 'nope')
    assert code == 2 and "No preset 'nope'" in err

def test_the_installed_command_reports_bad_input(empty_data):
    "The real console entry point, in its own process: message on stderr, exit status 2, no traceback."
    code, out, err = vae_nb('train', 'quick', 'bottleneck=vq', data=empty_data)
    assert code == 2 and "Unknown bottleneck 'vq'" in err and 'Traceback' not in err

def test_train_writes_a_run_folder_and_never_overwrites(tmp_path):
    args = ['quick', 'max_train=1500', 'epochs=2', 'valid_pct=0.05', 'quiet=true', f'out={tmp_path}/run']
    code, out, err = vae_nb('train', *args, cwd=tmp_path)
    assert code == 0, err
    run = tmp_path/'run'
    assert {p.name for p in run.iterdir()} == {'checkpoints', 'config.yaml', 'figures', 'history.csv', 'metrics.json'}
    assert {p.name for p in (run/'checkpoints').iterdir()} == {'best.pt', 'last.pt'}
    m = json.loads((run/'metrics.json').read_text())
    assert m['epochs_run'] == 2 and -550 < m['test']['elbo'] < -100
    assert len((run/'history.csv').read_text().splitlines()) == 3
    code, _, err = vae_nb('train', *args, cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path/'run-2'/'metrics.json').exists() and (run/'metrics.json').read_text() == json.dumps(m, indent=1)

def test_resume_continues_and_mismatch_is_refused(tmp_path):
    base = ['quick', 'max_train=1500', 'valid_pct=0.05', 'quiet=true']
    assert vae_nb('train', *base, 'epochs=1', f'out={tmp_path}/a', cwd=tmp_path)[0] == 0
    ck = tmp_path/'a'/'checkpoints'/'last.pt'
    code, _, err = vae_nb('train', *base, 'epochs=2', f'resume={ck}', f'out={tmp_path}/b', cwd=tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path/'b'/'metrics.json').read_text())['epochs_run'] == 2   # the run's epochs, the resumed one included
    assert len((tmp_path/'b'/'history.csv').read_text().splitlines()) == 2            # only the missing epoch ran here
    code, _, err = vae_nb('train', *base, 'epochs=2', 'latent_dim=5', f'resume={ck}', f'out={tmp_path}/c', cwd=tmp_path)
    assert code == 2 and 'does not match this model: latent_dim=2' in err, err
    (tmp_path/'junk.pt').write_bytes(b'junk')
    code, _, err = vae_nb('train', *base, f'resume={tmp_path}/junk.pt', cwd=tmp_path)
    assert code == 2 and 'not a readable vae_nb checkpoint' in err, err

def test_sweep_runs_every_combination(tmp_path):
    code, out, err = vae_nb('train', '-m', 'quick', 'latent_dim=2,3', 'max_train=800', 'epochs=1', 'valid_pct=0.05', 'quiet=true',
                            f'out={tmp_path}/sweep', cwd=tmp_path)
    assert code == 0, err
    runs = sorted(p.name for p in (tmp_path/'sweep').iterdir())
    assert runs == ['latent_dim=2', 'latent_dim=3']
    assert [yaml.safe_load((tmp_path/'sweep'/r/'config.yaml').read_text())['latent_dim'] for r in runs] == [2, 3]

def test_evaluate_and_compare_commands(tmp_path):
    base = ['quick', 'classes=[0,1]', 'max_train=1000', 'epochs=1', 'valid_pct=0.05', 'quiet=true', 'latent_dim=3']
    for family in ('gaussian', 'dirichlet'):
        code, _, err = vae_nb('train', *base, f'bottleneck={family}', f'out={tmp_path}/{family}', cwd=tmp_path)
        assert code == 0, err
    code, out, err = vae_nb('evaluate', tmp_path/'gaussian', '--k', '20', cwd=tmp_path)
    assert code == 0, err
    res = json.loads((tmp_path/'gaussian'/'evaluation.json').read_text())
    assert res['nll'] < -res['elbo'] + 5 and res['active_units'] <= 3
    assert res['nll_n'] == 1000 and res['nll_k'] == 20
    code, out, err = vae_nb('evaluate', tmp_path/'gaussian', '--k', '5', '--iw-n', '0', '--which', 'last', cwd=tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path/'gaussian'/'evaluation.json').read_text())['nll_n'] == 2115    # every test 0 and 1
    assert {'latent_stats.png', 'covariances.png', 'traversals.png'} <= {p.name for p in (tmp_path/'gaussian'/'figures').iterdir()}
    code, out, err = vae_nb('compare', tmp_path/'gaussian', tmp_path/'dirichlet', '--out', tmp_path/'cmp', '--k', '10', cwd=tmp_path)
    assert code == 0, err
    assert {'comparison.csv', 'comparison.md', 'comparison.png'} <= {p.name for p in (tmp_path/'cmp').iterdir()}
    import pandas as pd
    table = pd.read_csv(tmp_path/'cmp'/'comparison.csv')
    assert len(table) == 2 and 'gaussian' in out and 'dirichlet' in out
    code, _, err = vae_nb('evaluate', tmp_path/'nowhere', cwd=tmp_path)
    assert code == 2 and 'not a run folder' in err

def test_bench_on_a_missing_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    code, _, err = vae_nb('bench', '--device', 'cuda', '--rounds', '1', '--epochs', '1', cwd=tmp_path)
    assert code == 2 and 'torch sees no CUDA GPU' in err, err
