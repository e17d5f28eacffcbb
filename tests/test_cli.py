"""The `vae-nb` command as a user runs it: presets, overrides, bad input, training into a run folder, resume."""
import json, subprocess, sys
from pathlib import Path
import pytest, yaml

from vae_nb.tools.cli import list_presets, main

from conftest import OFFLINE, cli, cli_process

def run_main(capsys, *args):
    "The command in this process, called directly: exit code, stdout, stderr."
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
    (['bottleneck=vqvae9'], "Unknown bottleneck 'vqvae9'. Allowed: ae, cc, concrete, correlated, dirichlet, "),
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
    (['lattent_dim=3'], "Unknown config key 'lattent_dim' (did you mean latent_dim?). Keys: bottleneck, "),
    (['kl_anneal=cosine'], "Unknown kl_anneal 'cosine'. Allowed"),
    (['device=tpu'], "Unknown device 'tpu'. Allowed: auto"),
    (['objective=elbow'], "Unknown objective 'elbow'. Allowed: beta_tc, dip_i, dip_ii, elbo, factor"),
    (['tc_beta=4'], "tc_beta=4 applies to objective beta_tc, not elbo: set objective=beta_tc"),
    (['objective=beta_tc', 'bottleneck=dirichlet', 'latent_dim=3'], "objective beta_tc needs a posterior and a prior that factorise"),
    (['objective=beta_tc', 'tc_estimator=iw'], "Unknown tc_estimator 'iw'. Allowed: mss, mws"),
    (['objective=factor', 'factor_gamma=-1'], "factor_gamma must be >= 0.0, got -1"),
    (['objective=dip_ii', 'bottleneck=vmf'], "objective dip_ii needs a diagonal Gaussian posterior and a N(0, I) prior: VMFBottleneck's posterior is VonMisesFisher"),
    (['lambda_od=5'], "lambda_od=5 applies to objectives dip_i, dip_ii, not elbo: set objective=dip_i"),
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

def error_of(code, out, err):
    "The one error line of a failed command (checked: non-zero exit, one `vae-nb: error:` line ending stderr, no traceback)."
    assert code != 0 and 'Traceback' not in err, err
    lines = err.strip().splitlines()
    assert lines and lines[-1].startswith('vae-nb: error: ') and err.count('vae-nb: error:') == 1, err
    return code, lines[-1]

def test_errors_are_one_line_with_the_closest_name(empty_data):
    presets = ', '.join(list_presets())
    assert error_of(*cli('train', 'qiuck')) == (
        2, f"vae-nb: error: No preset 'qiuck' (did you mean quick?). Presets: {presets} (or give a path to a .yaml file)")
    from vae_nb.train.config import config_fields
    assert error_of(*cli('config', 'quick', 'lattent_dim=3')) == (
        2, f"vae-nb: error: Unknown config key 'lattent_dim' (did you mean latent_dim?). Keys: {', '.join(config_fields())}")
    assert error_of(*cli('config', 'quick', 'latent_dim=0')) == (2, "vae-nb: error: latent_dim must be >= 1, got 0")
    assert error_of(*cli('config', 'quick', 'latent_dim=[1,')) == (
        2, "vae-nb: error: Cannot parse override 'latent_dim=[1,': no viable alternative at input '[1,' (quote a value with special characters: key='...')")
    assert error_of(*cli('config', 'quick', 'lr=1e-3,2e-3')) == (
        2, "vae-nb: error: Override 'lr=1e-3,2e-3' has several values: add -m to sweep them (one run each), or quote a value that holds a comma (key='a,b')")
    assert error_of(*cli('config', 'quick', 'dataset_kwarg.flag=x')) == (
        2, f"vae-nb: error: Unknown config key 'dataset_kwarg.flag' (did you mean dataset_kwargs?). Keys: {', '.join(config_fields())}")
    assert error_of(*cli('config', 'quick', 'dataset_kwargs=3')) == (2, "vae-nb: error: dataset_kwargs must be of type dict, got 3")
    assert list(empty_data.iterdir()) == []

def test_override_values_are_typed(empty_data, capsys):
    "Hydra's grammar through the real command: floats such as 1e-3, lists, nested lists, dicts, null, quoted strings, dotted keys."
    code, out, err = run_main(capsys, 'config', 'quick', 'lr=1e-3', 'classes=[0,1]', 'binarize=null', 'dataset_kwargs.size=28', "out='runs/a,b'",
                              'bottleneck=correlated', 'prior=[[1,0.4],[0.4,1]]')
    assert code == 0, err
    cfg = yaml.safe_load(out)
    assert cfg['lr'] == 1e-3 and isinstance(cfg['lr'], float) and cfg['classes'] == [0, 1] and cfg['binarize'] is None
    assert cfg['dataset_kwargs'] == {'size': 28} and cfg['out'] == 'runs/a,b' and cfg['prior'] == [[1, 0.4], [0.4, 1]]
    (empty_data.parent/'p.yaml').write_text('# a preset\nlr: 3e-4\nepochs: 2\n')
    code, out, err = run_main(capsys, 'config', empty_data.parent/'p.yaml')
    assert code == 0 and yaml.safe_load(out)['lr'] == 3e-4, err                 # YAML files too read 3e-4 as a float

def test_malformed_yaml_names_file_line_and_column(tmp_path, empty_data):
    (tmp_path/'my.yaml').write_text('# my experiment\nepochs: 3\nlr: [0.001\nbeta: 2\n')
    assert error_of(*cli('train', 'my.yaml', cwd=tmp_path)) == (
        2, "vae-nb: error: Malformed YAML in my.yaml, line 4, column 5: expected ',' or ']', but got ':'")
    assert error_of(*cli('train', 'nothere.yaml', cwd=tmp_path)) == (2, "vae-nb: error: No preset file nothere.yaml: there is no such file")
    assert not (tmp_path/'runs').exists()

def test_debug_shows_the_traceback(tmp_path, empty_data):
    code, out, err = cli_process('config', 'quick', 'latent_dim=0', cwd=tmp_path, VAE_NB_DEBUG='1')
    assert code != 0 and 'Traceback' in err and 'ValueError: latent_dim must be >= 1, got 0' in err, err
    assert 'vae-nb: error:' not in err

def test_missing_and_damaged_dataset_files(tmp_path):
    "An empty data root, and one whose MNIST download was cut short, with downloads impossible (as offline)."
    run = ['train', 'quick', 'max_train=300', 'epochs=1', 'quiet=true']
    empty = tmp_path/'empty'
    code, line = error_of(*cli(*run, f'out={tmp_path}/a', cwd=tmp_path, data=empty, **OFFLINE))
    files = 'train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz'
    assert (code, line) == (2, f"vae-nb: error: The 'MNIST' dataset is not in the data root and could not be downloaded "
                               f"(RuntimeError: Error downloading train-images-idx3-ubyte.gz:). Expected {files} in {empty}/MNIST/raw: "
                               f"download them there, or point $VAE_NB_DATA at a folder that has them.")
    from vae_nb.data.datasets import data_root
    raw = tmp_path/'damaged'/'MNIST'/'raw'
    raw.mkdir(parents=True)
    for f in files.split(', '): (raw/f).write_bytes((data_root()/'MNIST'/'raw'/f).read_bytes())
    (raw/'train-images-idx3-ubyte.gz').write_bytes((raw/'train-images-idx3-ubyte.gz').read_bytes()[:1_000_000])
    code, line = error_of(*cli(*run, f'out={tmp_path}/b', cwd=tmp_path, data=tmp_path/'damaged', **OFFLINE))
    assert (code, line) == (2, f"vae-nb: error: The 'MNIST' dataset file {raw}/train-images-idx3-ubyte.gz is there but damaged "
                               f"(its MD5 checksum is not the published one: a download cut short?). Delete it, and the next run downloads it again.")

def test_bad_run_folders_and_checkpoints(tmp_path):
    "Not a run folder, a run folder without checkpoints or with a malformed config, a checkpoint of another model."
    assert cli('train', 'quick', 'max_train=300', 'epochs=1', 'quiet=true', 'out=r', cwd=tmp_path)[0] == 0
    (tmp_path/'notrun').mkdir()
    assert error_of(*cli('evaluate', 'notrun', cwd=tmp_path)) == (2, "vae-nb: error: notrun is not a run folder (no config.yaml)")
    import shutil
    for name in ('nock', 'badcfg', 'other'): shutil.copytree(tmp_path/'r', tmp_path/name)
    shutil.rmtree(tmp_path/'nock'/'checkpoints')
    assert error_of(*cli('evaluate', 'nock', cwd=tmp_path)) == (2, "vae-nb: error: No checkpoint at nock/checkpoints/best.pt")
    with open(tmp_path/'badcfg'/'config.yaml', 'a') as f: f.write('notes: [unfinished\n')
    n = len((tmp_path/'badcfg'/'config.yaml').read_text().splitlines())
    assert error_of(*cli('evaluate', 'badcfg', cwd=tmp_path)) == (
        2, f"vae-nb: error: Malformed YAML in badcfg/config.yaml, line {n + 1}, column 1: expected ',' or ']', but got '<stream end>'")
    cfg = (tmp_path/'other'/'config.yaml').read_text()
    (tmp_path/'other'/'config.yaml').write_text(cfg.replace('latent_dim: 2\n', 'latent_dim: 5\n'))
    code, line = error_of(*cli('evaluate', 'other', cwd=tmp_path))
    assert code == 2 and line.startswith("vae-nb: error: The checkpoint does not match this model (decoder.net.0.weight: checkpoint (256, 2) vs model (256, 5);"), line

def test_the_installed_command_reports_bad_input(empty_data):
    "The real console entry point, in its own process: message on stderr, exit status 2, no traceback."
    code, out, err = cli_process('train', 'quick', 'bottleneck=vqvae9', data=empty_data)
    assert code == 2 and "Unknown bottleneck 'vqvae9'" in err and 'Traceback' not in err

def test_train_writes_a_run_folder_and_never_overwrites(tmp_path):
    args = ['quick', 'max_train=1500', 'epochs=2', 'valid_pct=0.05', 'quiet=true', f'out={tmp_path}/run']
    code, out, err = cli('train', *args, cwd=tmp_path)
    assert code == 0, err
    run = tmp_path/'run'
    assert {p.name for p in run.iterdir()} == {'checkpoints', 'config.yaml', 'figures', 'history.csv', 'metrics.json'}
    assert {p.name for p in (run/'checkpoints').iterdir()} == {'best.pt', 'last.pt'}
    m = json.loads((run/'metrics.json').read_text())
    assert m['epochs_run'] == 2 and -550 < m['test']['elbo'] < -100
    assert len((run/'history.csv').read_text().splitlines()) == 3
    code, _, err = cli('train', *args, cwd=tmp_path)
    assert code == 0, err
    assert (tmp_path/'run-2'/'metrics.json').exists() and (run/'metrics.json').read_text() == json.dumps(m, indent=1)

@pytest.mark.parametrize('objective,columns', [(['objective=beta_tc', 'tc_beta=6'], ['mi', 'tc', 'dim_kl']),
                                               (['objective=factor'], ['tc', 'disc_acc'])])
def test_train_with_a_total_correlation_objective(objective, columns, tmp_path):
    code, out, err = cli('train', 'quick', *objective, 'max_train=2000', 'epochs=2', 'quiet=true', f'out={tmp_path}/t', cwd=tmp_path)
    assert code == 0, err
    header = (tmp_path/'t'/'history.csv').read_text().splitlines()[0].split(',')
    assert all(f'{s}_{c}' in header for s in ('train', 'valid') for c in columns), header
    test = json.loads((tmp_path/'t'/'metrics.json').read_text())['test']
    assert all(c in test for c in columns) and -550 < test['elbo'] < -100, test

def test_resume_continues_and_mismatch_is_refused(tmp_path):
    base = ['quick', 'max_train=1500', 'valid_pct=0.05', 'quiet=true']
    assert cli('train', *base, 'epochs=1', f'out={tmp_path}/a', cwd=tmp_path)[0] == 0
    ck = tmp_path/'a'/'checkpoints'/'last.pt'
    code, _, err = cli('train', *base, 'epochs=2', f'resume={ck}', f'out={tmp_path}/b', cwd=tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path/'b'/'metrics.json').read_text())['epochs_run'] == 2   # the run's epochs, the resumed one included
    assert len((tmp_path/'b'/'history.csv').read_text().splitlines()) == 2            # only the missing epoch ran here
    code, _, err = cli('train', *base, 'epochs=2', 'latent_dim=5', f'resume={ck}', f'out={tmp_path}/c', cwd=tmp_path)
    assert code == 2 and 'does not match this model: latent_dim=2' in err, err
    (tmp_path/'junk.pt').write_bytes(b'junk')
    code, _, err = cli('train', *base, f'resume={tmp_path}/junk.pt', cwd=tmp_path)
    assert code == 2 and 'not a readable vae_nb checkpoint' in err, err

def test_evaluate_and_compare_commands(tmp_path):
    base = ['quick', 'classes=[0,1]', 'max_train=1000', 'epochs=1', 'valid_pct=0.05', 'quiet=true', 'latent_dim=3']
    for family in ('gaussian', 'dirichlet'):
        code, _, err = cli('train', *base, f'bottleneck={family}', f'out={tmp_path}/{family}', cwd=tmp_path)
        assert code == 0, err
    code, out, err = cli('evaluate', tmp_path/'gaussian', '--k', '20', cwd=tmp_path)
    assert code == 0, err
    res = json.loads((tmp_path/'gaussian'/'evaluation.json').read_text())
    assert res['nll'] < -res['elbo'] + 5 and res['active_units'] <= 3
    assert res['nll_n'] == 1000 and res['nll_k'] == 20
    code, out, err = cli('evaluate', tmp_path/'gaussian', '--k', '5', '--iw-n', '0', '--which', 'last', cwd=tmp_path)
    assert code == 0, err
    assert json.loads((tmp_path/'gaussian'/'evaluation.json').read_text())['nll_n'] == 2115    # every test 0 and 1
    assert {'latent_stats.png', 'covariances.png', 'traversals.png'} <= {p.name for p in (tmp_path/'gaussian'/'figures').iterdir()}
    code, out, err = cli('compare', tmp_path/'gaussian', tmp_path/'dirichlet', '--out', tmp_path/'cmp', '--k', '10', cwd=tmp_path)
    assert code == 0, err
    assert {'comparison.csv', 'comparison.md', 'comparison.png'} <= {p.name for p in (tmp_path/'cmp').iterdir()}
    import pandas as pd
    table = pd.read_csv(tmp_path/'cmp'/'comparison.csv')
    assert len(table) == 2 and 'gaussian' in out and 'dirichlet' in out
    code, _, err = cli('evaluate', tmp_path/'nowhere', cwd=tmp_path)
    assert code == 2 and 'not a run folder' in err

def test_bench_on_a_missing_gpu_says_so(tmp_path):
    import torch
    if torch.cuda.is_available(): pytest.skip('this machine has a GPU')
    code, _, err = cli('bench', '--device', 'cuda', '--rounds', '1', '--epochs', '1', cwd=tmp_path)
    assert code == 2 and 'torch sees no CUDA GPU' in err, err

def readme_commands():
    "The `vae-nb ...` lines of the README's shell blocks, in order (comments dropped)."
    import re
    text = (Path(__file__).parent.parent/'README.md').read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    lines = [l.split('#')[0].strip() for b in blocks for l in b.splitlines()]
    return [c for l in lines for c in l.split('&&') if c.strip().startswith('vae-nb')]

# README commands that another test runs as they stand (its own real processes, the same flags), so the sequence below
# skips them rather than paying for them twice; each must still be in the README, or the skip is stale.
RUN_ELSEWHERE = {'vae-nb train -m --launcher local --jobs 2 quick latent_dim=2,3 seed=0,1': 'test_sweeps.py::test_local_sweep_runs_in_parallel_skips_finished_runs_and_groups_seeds',
                 'vae-nb train --nproc 2 quick': 'test_distributed.py::test_cli_two_process_run_folder'}

def test_the_readme_sequence_runs_from_a_clean_folder(tmp_path):
    "Every `vae-nb` command of the README, in order, in an empty folder (but those of `RUN_ELSEWHERE`); training commands shortened by appended overrides."
    import shlex
    cmds = [c.strip() for c in readme_commands()]
    assert any(c.startswith('vae-nb train -m') for c in cmds) and any(c.startswith('vae-nb compare') for c in cmds), cmds
    assert set(RUN_ELSEWHERE) <= set(cmds), set(RUN_ELSEWHERE) - set(cmds)
    short = ['max_train=400', 'epochs=1', 'valid_pct=0.05', 'quiet=true']
    for c in cmds:
        if c in RUN_ELSEWHERE: continue
        args = shlex.split(c)[1:]
        if args[0] == 'compare':                                   # the shell would expand the glob
            args = args[:1] + [str(p.relative_to(tmp_path)) for a in args[1:] for p in sorted(tmp_path.glob(a))] + ['--k', '5', '--iw-n', '50']
        code, out, err = cli(*args, *(short if args[0] == 'train' else []), cwd=tmp_path)
        assert code == 0, (c, err)
    sweep = tmp_path/'runs'/'quick_sweep'
    runs = sorted(p.parent.name for p in sweep.glob('*/config.yaml'))
    assert runs == ['bottleneck=cc', 'bottleneck=dirichlet', 'bottleneck=gaussian']
    assert [yaml.safe_load((sweep/r/'config.yaml').read_text())['bottleneck'] for r in runs] == ['cc', 'dirichlet', 'gaussian']
    assert {'sweep.yaml', 'sweep.json', 'comparison.csv', 'comparison.md', 'comparison.png'} <= {p.name for p in sweep.iterdir()}
    assert (tmp_path/'runs'/'quick'/'metrics.json').exists() and (tmp_path/'comparison'/'comparison.png').exists()

def test_compare_skips_what_is_not_a_run(tmp_path):
    assert cli('train', 'quick', 'max_train=300', 'epochs=1', 'quiet=true', 'out=r', cwd=tmp_path)[0] == 0
    code, out, err = cli('compare', 'r', 'r/checkpoints', 'r/figures', '--k', '5', '--iw-n', '20', cwd=tmp_path)
    assert code == 0, err
    assert 'vae-nb: skipping r/checkpoints: not a run folder (no config.yaml)' in err and 'skipping r/figures' in err
    code, out, err = cli('compare', 'r/checkpoints', cwd=tmp_path)
    assert code == 2 and 'none of r/checkpoints is a run folder' in err, err

def test_commands_print_nothing_on_stderr_and_importing_vae_nb_leaves_the_warning_filters_alone():
    "fastai's import-time FutureWarning (torch.jit.script is deprecated) is silenced around fastai's imports only: `vae-nb presets` has an empty stderr, and a user's warning filters are untouched."
    code, out, err = cli_process('presets')
    assert code == 0 and 'quick' in out
    assert err == '', err
    probe = '\n'.join(['import warnings',
        'warnings.simplefilter("error", FutureWarning)                 # a user who makes FutureWarnings errors: the warning would fail the import',
        'import vae_nb.tools.cli, vae_nb.train.fit, vae_nb.train.checkpoints, vae_nb.evaluation.evaluate, vae_nb.evaluation.viz',
        'assert ("error", None, FutureWarning, None, 0) in warnings.filters, "the user\'s filter was removed"',
        'assert not any(f[1] is not None and "jit" in f[1].pattern for f in warnings.filters if f[2] is FutureWarning), "a global filter was left"',
        'try: warnings.warn("yours", FutureWarning)',
        'except FutureWarning: print("ok")'])
    r = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout == 'ok\n', r.stderr
