"Sweeps as a user runs them (`vae-nb train -m`): real launchers (local processes, submitit's LocalExecutor), reruns that skip finished runs and resume interrupted ones, a failing job, the compare table with mean ± sd over seeds."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest

from vae_nb.tools.sweeps import cores
from conftest import MAIN, OFFLINE, cli, cli_env as env

TINY = ['dataset=digits', 'bs=64', 'quiet=true', 'device=cpu']

def last(err:str) -> str:
    "The error line a failed command ends with (checked: one `vae-nb: error:` line, no traceback)."
    assert 'Traceback' not in err and err.count('vae-nb: error:') == 1, err
    return err.strip().splitlines()[-1]

def statuses(sweep:Path) -> dict:
    return {j['label']: j['status'] for j in json.loads((sweep/'sweep.json').read_text())['jobs']}

def job(sweep:Path, label:str) -> dict:
    f = sweep/'jobs'/f'{label}.json'
    return json.loads(f.read_text()) if f.exists() else {}

def stamps(sweep:Path) -> dict:
    return {p.parent.name: p.stat().st_mtime_ns for p in sweep.glob('*/metrics.json')}

def rows(history:Path) -> int: return len(history.read_text().splitlines()) - 1 if history.exists() else 0

def mark_first_epoch(history:Path):
    "Write a marker into the time column of epoch 0: a resumed run keeps the rows before its checkpoint as they are, a restarted one rewrites them."
    lines = history.read_text().splitlines()
    lines[1] = ','.join(lines[1].split(',')[:-1] + ['kept'])
    history.write_text('\n'.join(lines) + '\n')

def kill_when_training(proc, sweep:Path, label:str, signum, epochs_done:int=2, timeout=300) -> int:
    "Send `signum` to job `label`'s own process once its run folder holds `epochs_done` epochs; returns that pid."
    history, end = sweep/label/'history.csv', time.time() + timeout
    while rows(history) < epochs_done or job(sweep, label).get('status') != 'running':
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, 'timed out'
        time.sleep(0.02)
    pid = job(sweep, label)['pid']
    assert pid != proc.pid                                     # the job's process, not the launcher's
    os.kill(pid, signum)
    return pid

def test_local_sweep_runs_in_parallel_skips_finished_runs_and_groups_seeds(tmp_path):
    args = ['train', '-m', 'quick', *TINY, 'latent_dim=2,3', 'seed=0,1', 'epochs=1', 'out=sw', '--launcher', 'local', '--jobs', '2', '--compare-k', '10', '--compare-n', '100']
    code, out, err = cli(*args, cwd=tmp_path)
    assert code == 0, err
    sweep = tmp_path/'sw'
    labels = ['latent_dim=2-seed=0', 'latent_dim=2-seed=1', 'latent_dim=3-seed=0', 'latent_dim=3-seed=1']
    assert statuses(sweep) == dict.fromkeys(labels, 'done')
    assert {job(sweep, l)['threads'] for l in labels} == {max(1, cores() // 2)}       # each process its share of the cores
    assert len({job(sweep, l)['pid'] for l in labels}) == 4                           # one process per job
    per_run = pd.read_csv(sweep/'comparison.csv', index_col='run')
    assert sorted(per_run.index) == labels
    g = pd.read_csv(sweep/'comparison_seeds.csv', index_col='group')
    assert list(g.index) == ['latent_dim=2', 'latent_dim=3'] and g['n'].tolist() == [2, 2]
    for z in (2, 3):
        two = per_run.loc[[f'latent_dim={z}-seed=0', f'latent_dim={z}-seed=1'], 'elbo']
        assert g.loc[f'latent_dim={z}', 'elbo_mean'] == pytest.approx(two.mean()) and g.loc[f'latent_dim={z}', 'elbo_sd'] == pytest.approx(two.std(ddof=1))
    md = (sweep/'comparison_seeds.md').read_text()
    assert f"{g.loc['latent_dim=2', 'elbo_mean']:.3f} ± {g.loc['latent_dim=2', 'elbo_sd']:.3f}" in md, md
    assert json.loads((sweep/'comparison_seeds.json').read_text())['latent_dim=3']['n'] == 2
    assert (sweep/'comparison.png').exists() and '±' in out
    before = stamps(sweep)
    code, out, err = cli(*args, cwd=tmp_path)                                       # the same command again
    assert code == 0, err
    assert 'vae-nb: sweep sw: 4 jobs, 4 done before, 0 to run (local)' in out, out
    assert stamps(sweep) == before and not (tmp_path/'sw-2').exists()

def test_local_sweep_resumes_a_job_stopped_by_sigterm(tmp_path):
    args = ['train', '-m', 'quick', *TINY, 'latent_dim=2,3', 'epochs=25', 'out=sw', '--launcher', 'local', '--jobs', '2', '--compare-k', '5', '--compare-n', '50']
    proc = subprocess.Popen([*MAIN, *args], cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep = tmp_path/'sw'
    kill_when_training(proc, sweep, 'latent_dim=2', signal.SIGTERM)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err                                                   # reported at the end, not fatal to the other
    assert statuses(sweep) == {'latent_dim=2': 'interrupted', 'latent_dim=3': 'done'}
    line = last(err)
    assert line.startswith('vae-nb: error: 1 of 2 runs of sw did not finish: latent_dim=2 (interrupted: training stopped by SIGTERM after epoch '), line
    saved = pd.read_csv(sweep/'latent_dim=2'/'history.csv').epoch.tolist()
    assert 2 <= len(saved) < 25 and not (sweep/'latent_dim=2'/'metrics.json').exists()
    mark_first_epoch(sweep/'latent_dim=2'/'history.csv')
    before = stamps(sweep)
    code, out, err = cli(*args, cwd=tmp_path)
    assert code == 0, err
    assert '2 jobs, 1 done before, 1 to run' in out
    assert pd.read_csv(sweep/'latent_dim=2'/'history.csv').time[0] == 'kept'                 # resumed, not restarted
    assert job(sweep, 'latent_dim=2')['resumed'] is True
    assert pd.read_csv(sweep/'latent_dim=2'/'history.csv').epoch.tolist() == list(range(25))    # continued, not restarted
    assert json.loads((sweep/'latent_dim=2'/'metrics.json').read_text())['epochs_run'] == 25
    assert stamps(sweep)['latent_dim=3'] == before['latent_dim=3']
    assert len(pd.read_csv(sweep/'comparison.csv')) == 2

def test_submitit_local_sweep_reports_a_failing_job_and_resumes_a_killed_one(tmp_path):
    "submitit's LocalExecutor runs real job processes: one job fails (its dataset is missing, offline) while the other trains on, until it is killed with SIGKILL; the rerun resumes it."
    empty = tmp_path/'no-data'; empty.mkdir()
    args = ['train', '-m', 'quick', 'bs=64', 'quiet=true', 'device=cpu', 'max_train=300', 'dataset=digits,mnist', 'epochs=25', 'out=sw',
            '--launcher', 'submitit', '--submitit-cluster', 'local', '--compare-k', '5', '--compare-n', '50']
    proc = subprocess.Popen([*MAIN, *args], cwd=tmp_path, env=env(VAE_NB_DATA=str(empty), **OFFLINE), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sweep, digits, mnist = tmp_path/'sw', 'dataset=digits', 'dataset=mnist'
    kill_when_training(proc, sweep, digits, signal.SIGKILL)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err
    assert statuses(sweep) == {digits: 'failed', mnist: 'failed'}
    assert job(sweep, mnist)['error'].startswith("The 'MNIST' dataset is not in the data root and could not be downloaded")
    assert job(sweep, digits)['error'].startswith('the job did not finish (')
    assert job(sweep, digits)['job_id'] and (sweep/'submitit').is_dir()
    line = last(err)
    assert line.startswith('vae-nb: error: 2 of 2 runs of sw did not finish: dataset=digits (failed: the job did not finish') and "dataset=mnist (failed: The 'MNIST' dataset" in line, line
    killed_at = len(pd.read_csv(sweep/digits/'history.csv'))
    assert 2 <= killed_at < 25 and not (sweep/'comparison.csv').exists()
    mark_first_epoch(sweep/digits/'history.csv')
    code, out, err = cli(*args, cwd=tmp_path, VAE_NB_DATA=str(empty), **OFFLINE)                 # MNIST still missing: it fails again
    assert code == 1 and '2 jobs, 0 done before, 2 to run (submitit)' in out, (out, err)
    assert statuses(sweep) == {digits: 'done', mnist: 'failed'} and job(sweep, digits)['resumed'] is True
    assert pd.read_csv(sweep/digits/'history.csv').epoch.tolist() == list(range(25))
    assert pd.read_csv(sweep/digits/'history.csv').time[0] == 'kept'                          # resumed, not restarted
    assert pd.read_csv(sweep/'comparison.csv', index_col='run').index.tolist() == [digits]       # the table of what finished

def test_sweep_bad_input_is_one_line_before_any_job(tmp_path):
    code, out, err = cli('train', '-m', 'quick', *TINY, 'latent_dim=2,0', 'out=sw', '--launcher', 'local', cwd=tmp_path)
    assert code == 2 and last(err) == 'vae-nb: error: latent_dim must be >= 1, got 0', err
    code, out, err = cli('train', 'quick', *TINY, 'latent_dim=2,3', cwd=tmp_path)
    assert code == 2 and last(err) == ("vae-nb: error: Override 'latent_dim=2,3' has several values: add -m to sweep them (one run each), "
                                         "or quote a value that holds a comma (key='a,b')"), err
    code, out, err = cli('train', '-m', 'quick', *TINY, 'latent_dim=2,3', 'out=bad', '--launcher', 'local', '--nproc', '2', cwd=tmp_path)
    assert code == 2 and 'only with --launcher sequential' in err, err
    (tmp_path/'opts.yaml').write_text('foo: 1\n')
    code, out, err = cli('train', '-m', 'quick', *TINY, 'latent_dim=2,3', 'out=bad2', '--launcher', 'submitit', '--submitit-yaml', 'opts.yaml', cwd=tmp_path)
    assert code == 2 and last(err) == "vae-nb: error: submitit parameters: Parameter 'foo' need to be prefixed by an executor name.", err
    no_submitit = [sys.executable, '-c', "import sys; sys.modules['submitit'] = None; from vae_nb.tools.cli import main; sys.exit(main(sys.argv[1:]))"]
    r = subprocess.run([*no_submitit, 'train', '-m', 'quick', *TINY, 'latent_dim=2,3', 'out=bad3', '--launcher', 'submitit'], capture_output=True, text=True, cwd=tmp_path, env=env())
    assert r.returncode == 2 and last(r.stderr) == "vae-nb: error: --launcher submitit needs the submitit package: pip install 'vae_nb[slurm]' (or pip install submitit)", r.stderr
