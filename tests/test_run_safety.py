"Runs that never lose work, tried with real processes: a crash while a checkpoint is written, Ctrl-C and SIGTERM at a random moment, plain logs in a file, resume into the same run folder."
import json, os, random, shlex, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest, torch

from vae_nb.train.checkpoints import load_checkpoint
from conftest import MAIN, cli, cli_env as env

QUICK = ['max_train=1500', 'valid_pct=0.05', 'quiet=true']

def weights(run:Path) -> dict: return load_checkpoint(run/'checkpoints'/'last.pt')['model']

def assert_same_weights(a:Path, b:Path):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa: assert torch.equal(wa[k], wb[k]), k

def epochs_in(history:Path) -> list: return list(pd.read_csv(history).epoch)

def rows(history:Path) -> int: return len(history.read_text().splitlines()) - 1 if history.exists() else 0

def wait_for_rows(history:Path, n:int, proc, timeout=300) -> float:
    "Wait until `history` holds `n` epochs; returns the time."
    end = time.time() + timeout
    while rows(history) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, 'timed out'
        time.sleep(0.02)
    return time.time()

DYING_SAVE = '''
import io, os, sys, torch
from vae_nb.train import fit_vae
real_save, calls = torch.save, []
def dying_save(obj, f, *args, **kwargs):
    "The second checkpoint (epoch 2's last.pt): write half of it, then the process dies, as in an out-of-memory kill."
    calls.append(f)
    if len(calls) < 2: return real_save(obj, f, *args, **kwargs)
    buf = io.BytesIO(); real_save(obj, buf)
    with open(f, 'wb') as out: out.write(buf.getvalue()[:len(buf.getvalue()) // 2]); out.flush()
    os._exit(9)
torch.save = dying_save
fit_vae(dataset='digits', epochs=3, out=sys.argv[1], device='cpu', seed=0, quiet=True)
'''

def test_a_crash_while_writing_a_checkpoint_keeps_the_last_one_and_resumes(tmp_path):
    train = [sys.executable, '-c', 'import sys; from vae_nb.train import fit_vae; fit_vae(dataset="digits", epochs=3, out=sys.argv[1], device="cpu", seed=0, quiet=True, resume=sys.argv[2] if len(sys.argv) > 2 else None)']
    killed = subprocess.run([sys.executable, '-c', DYING_SAVE, tmp_path/'run'], capture_output=True, text=True, env=env(), timeout=600)
    assert killed.returncode == 9, killed.stderr
    last = tmp_path/'run'/'checkpoints'/'last.pt'
    assert load_checkpoint(last)['epoch'] == 1                 # epoch 1's checkpoint, whole: the half-written file was a temporary one
    assert epochs_in(tmp_path/'run'/'history.csv') == [0, 1]   # the history got epoch 2 before the checkpoint did: dropped on resume
    r = subprocess.run([*train, tmp_path/'run', last], capture_output=True, text=True, env=env(), timeout=600)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([*train, tmp_path/'whole'], capture_output=True, env=env(), timeout=600).returncode == 0
    assert_same_weights(tmp_path/'run', tmp_path/'whole')
    assert epochs_in(tmp_path/'run'/'history.csv') == [0, 1, 2]
    assert json.loads((tmp_path/'run'/'metrics.json').read_text())['epochs_run'] == 3

@pytest.mark.parametrize('signum,schedule', [(signal.SIGINT, 'one_cycle'), (signal.SIGTERM, 'flat_cos')])
def test_a_signal_at_a_random_moment_stops_cleanly_and_resumes_exactly(signum, schedule, tmp_path):
    args = ['train', 'quick', *QUICK, 'epochs=4', f'schedule={schedule}']
    assert cli(*args, f'out={tmp_path}/whole', cwd=tmp_path)[0] == 0
    proc = subprocess.Popen([*MAIN, *args, f'out={tmp_path}/stopped'], cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = tmp_path/'stopped'/'history.csv'
    epoch = -wait_for_rows(history, 1, proc) + wait_for_rows(history, 2, proc)
    delay = random.uniform(0, epoch)
    time.sleep(delay)                                          # somewhere in epoch 3 (of 4)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, (delay, err)
    assert 'Traceback' not in err, err
    line = f"vae-nb: training stopped by {signal.Signals(signum).name} after epoch "
    assert [l for l in err.splitlines() if l.startswith('vae-nb:')] == [err.strip().splitlines()[-1]] and err.strip().splitlines()[-1].startswith(line), err
    command = err.strip().split('resume with: ')[1]
    assert command == f"vae-nb train --resume {tmp_path/'stopped'}"
    saved = load_checkpoint(tmp_path/'stopped'/'checkpoints'/'last.pt')['epoch']
    assert f'after epoch {saved} of 4' in err and saved in (2, 3), (delay, err)
    assert epochs_in(history) == list(range(saved))            # the history holds exactly the saved epochs
    assert not (tmp_path/'stopped'/'metrics.json').exists()
    code, _, err = cli(*shlex.split(command)[1:], cwd=tmp_path)
    assert code == 0, err
    assert_same_weights(tmp_path/'stopped', tmp_path/'whole')
    assert epochs_in(history) == [0, 1, 2, 3]
    assert json.loads((tmp_path/'stopped'/'metrics.json').read_text())['epochs_run'] == 4
    assert not (tmp_path/'stopped-2').exists()

def test_a_second_ctrl_c_stops_at_once(tmp_path):
    proc = subprocess.Popen([*MAIN, 'train', 'quick', *QUICK, 'epochs=50', f'out={tmp_path}/run'], cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = tmp_path/'run'/'checkpoints'/'last.pt'
    while not last.exists(): assert proc.poll() is None; time.sleep(0.02)
    proc.send_signal(signal.SIGINT); time.sleep(0.01); proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and 'Traceback' not in err, err
    assert err.strip().splitlines()[-1].endswith(f"resume with: vae-nb train --resume {tmp_path/'run'}"), err
    saved = load_checkpoint(last)['epoch']
    assert 1 <= saved < 50
    assert epochs_in(tmp_path/'run'/'history.csv') in (list(range(saved)), list(range(saved + 1)))   # a row may be one epoch ahead of last.pt (dropped on resume), never behind
    assert not [p.name for p in last.parent.iterdir() if p.name.startswith('.')]          # a write cut short removes its temporary file

def test_a_log_file_gets_one_plain_line_per_epoch(tmp_path):
    with open(tmp_path/'log', 'w') as log:
        r = subprocess.run([*MAIN, 'train', 'quick', 'max_train=1000', 'valid_pct=0.05', 'epochs=3', f'out={tmp_path}/run'], stdout=log, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=env(), timeout=600)
    code, err = r.returncode, r.stderr
    assert code == 0, err
    text = (tmp_path/'log').read_bytes().decode()      # bytes: read_text would turn carriage returns into newlines
    assert '\r' not in text
    lines = text.splitlines()
    header = [l for l in lines if l.split()[:2] == ['epoch', 'train_loss']]
    epochs = [l for l in lines if l.split() and l.split()[0].isdigit()]
    assert len(header) == 1 and [l.split()[0] for l in epochs] == ['0', '1', '2'], text
    assert all(len(l.split()) == len(header[0].split()) for l in epochs)

def test_resume_continues_the_same_run_folder(tmp_path):
    run = tmp_path/'r'
    assert cli('train', 'quick', *QUICK, 'epochs=1', f'out={run}', cwd=tmp_path)[0] == 0
    code, _, err = cli('train', 'quick', *QUICK, 'epochs=2', f'out={run}', f'resume={run}/checkpoints/last.pt', cwd=tmp_path)
    assert code == 0, err
    code, _, err = cli('train', '--resume', run, 'epochs=3', cwd=tmp_path)
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['r']            # no r-2
    h = pd.read_csv(run/'history.csv')
    assert list(h.epoch) == [0, 1, 2] and h.valid_elbo.dtype == float
    assert json.loads((run/'metrics.json').read_text())['epochs_run'] == 3
    code, _, err = cli('evaluate', run, '--k', '5', '--iw-n', '100', cwd=tmp_path)
    assert code == 0, err
    assert (run/'figures'/'history.png').exists() and (run/'evaluation.json').exists()
    code, _, err = cli('train', '--resume', run, 'latent_dim=3', cwd=tmp_path)
    assert code == 2 and 'latent_dim cannot change' in err, err
    code, _, err = cli('train', '--resume', tmp_path/'nowhere', cwd=tmp_path)
    assert code == 2 and 'is not a run folder' in err, err

def test_a_run_folder_is_never_overwritten(tmp_path):
    run = tmp_path/'r'
    assert cli('train', 'quick', *QUICK, 'epochs=1', f'out={run}', cwd=tmp_path)[0] == 0
    before = {p.relative_to(run): p.read_bytes() for p in run.rglob('*') if p.is_file()}
    assert cli('train', 'quick', *QUICK, 'epochs=1', 'seed=1', f'out={run}', cwd=tmp_path)[0] == 0
    assert {p.relative_to(run): p.read_bytes() for p in run.rglob('*') if p.is_file()} == before
    assert (tmp_path/'r-2'/'metrics.json').exists()

HANGING_WRITE = '''
import sys, time
from vae_nb.core.basics import atomic_write
def write_forever(p):
    p.write_bytes(b'half a checkpoint'); print('writing', flush=True); time.sleep(600)
atomic_write(sys.argv[1], write_forever)
'''

def test_a_hard_kill_mid_write_leaves_a_temporary_file_that_the_next_run_in_the_folder_removes(tmp_path):
    "SIGKILL (kill -9, the out-of-memory killer) cannot be caught: atomic_write's temporary file stays. Opening the folder again removes it, and only it."
    from vae_nb.train import fit_vae
    run = tmp_path/'run'
    fit_vae(dataset='digits', epochs=1, out=run, device='cpu', seed=0, quiet=True)
    writer = subprocess.Popen([sys.executable, '-c', HANGING_WRITE, run/'checkpoints'/'last.pt'], stdout=subprocess.PIPE, text=True, env=env())
    assert writer.stdout.readline() == 'writing\n'
    writer.send_signal(signal.SIGKILL); writer.wait(timeout=60)
    left = list(run.rglob('.last-*.tmp.pt'))
    assert len(left) == 1 and left[0].read_bytes() == b'half a checkpoint'
    alive = subprocess.Popen([sys.executable, '-c', HANGING_WRITE, run/'figures'/'final.png'], stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert alive.stdout.readline() == 'writing\n'                 # a writer still at work in the same folder
        fit_vae(dataset='digits', epochs=2, out=run, device='cpu', seed=0, quiet=True, resume=run/'checkpoints'/'last.pt')
        assert not left[0].exists()                                    # the killed writer's file is gone
        assert len(list(run.rglob('.final-*.tmp.png'))) == 1           # the live writer's is not
        assert load_checkpoint(run/'checkpoints'/'last.pt')['epoch'] == 2
    finally: alive.kill(); alive.wait(timeout=60)

def test_fit_vae_refuses_to_write_into_a_finished_run_unless_it_resumes_it(tmp_path):
    "From Python as from the command line, a finished run is never overwritten: a clear error naming both ways on, before any data loads."
    from vae_nb.train import fit_vae
    run = tmp_path/'run'
    fit_vae(dataset='digits', epochs=1, out=run, device='cpu', seed=0, quiet=True)
    before = (run/'checkpoints'/'last.pt').read_bytes()
    with pytest.raises(ValueError, match=r"already holds a run .*give another out= folder, or continue that run with resume="):
        fit_vae(dataset='digits', epochs=1, out=run, device='cpu', seed=1, quiet=True)
    assert (run/'checkpoints'/'last.pt').read_bytes() == before
    fit_vae(dataset='digits', epochs=2, out=run, device='cpu', seed=0, quiet=True, resume=run/'checkpoints'/'last.pt')
    assert load_checkpoint(run/'checkpoints'/'last.pt')['epoch'] == 2
