"What spans processes in chapter peers (vae_nb next to Pythae): jobs in fresh one-thread processes, a failing job, and a study killed half-way that continues where it stopped."
import json, os, signal, subprocess, sys, time
import pytest

pytest.importorskip('pythae', reason="pythae is not installed (pip install 'vae_nb[peers]')")
from vae_nb.tools.peers import job_path, peer_study, peer_table, run_peer_job

TINY = dict(epochs=1, seeds=(0,), k=5, n_train=200, n_test=20, pairs=['gaussian'])
STUDY = "from vae_nb.tools.peers import peer_study; peer_study(folder={!r}, **{!r})"

def test_killed_study_continues(tmp_path):
    study = tmp_path/'study'
    proc = subprocess.Popen([sys.executable, '-c', STUDY.format(str(study), TINY)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first, end = job_path(study, 'gaussian', 'vae_nb', 0), time.time() + 300
    while not first.exists():                                            # the first job done, the second one running
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < end, 'the first job never finished'
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)                                  # the study and the job it runs now
    proc.wait(); proc.stderr.close()
    done = {p.name: p.read_text() for p in study.glob('*.json')}
    assert list(done) == [first.name]
    table = peer_study(folder=study, **TINY)
    after = {p.name: p.read_text() for p in study.glob('*.json')}
    assert sorted(after) == ['gaussian-pythae-seed0.json', 'gaussian-vae_nb-seed0.json'] and after[first.name] == done[first.name]   # kept, not rerun
    assert not [p for p in study.iterdir() if p.name.startswith('.')]    # no temporary file left
    recs = [json.loads(t) for t in after.values()]
    assert all(r['pid'] not in (os.getpid(), proc.pid) and r['threads'] == 1 for r in recs)   # each job its own process, one thread
    assert len({r['pid'] for r in recs}) == 2 and all(r['n_scored'] == 20 and 0 < r['nll'] < r['neg_elbo'] for r in recs)
    assert list(table.index) == [('gaussian', 'vae_nb'), ('gaussian', 'pythae')] and table.time_ratio.notna().all()
    stamps = {p.name: p.stat().st_mtime_ns for p in study.glob('*.json')}
    assert peer_study(folder=study, **TINY).equals(table)                # finished: nothing runs again
    assert stamps == {p.name: p.stat().st_mtime_ns for p in study.glob('*.json')}

def test_failed_job_says_why(tmp_path):
    with pytest.raises(RuntimeError, match=r'peer job gaussian-vae_nb-seed0 failed:[\s\S]*max_train must be >= 1'):
        run_peer_job(tmp_path, 'gaussian', 'vae_nb', 0, epochs=1, k=5, n_train=0, n_test=20)
    assert not list(tmp_path.iterdir())
