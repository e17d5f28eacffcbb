"""Learned priors (prior=mog|vamp) and the IWAE objective (iw_k) from the command line: bad input, train, evaluate, compare."""
import json, os
import pytest

from vae_nb.tools.cli import main

from conftest import cli

BAD = [
    (['prior=vampp'], "Unknown prior 'vampp'. Allowed: mog, vamp"),
    (['prior=vamp', 'bottleneck_kwargs.component=10'], "bottleneck_kwargs: gaussian takes no argument 'component' (did you mean components?)"),
    (['prior=vamp', 'bottleneck_kwargs.init=random'], "the VampPrior's init is one of data, mean, constant, got 'random'"),
    (['prior=mog', 'bottleneck_kwargs.components=0'], "components must be an integer >= 1, got 0"),
    (['bottleneck_kwargs.components=10'], "bottleneck_kwargs: gaussian takes no argument 'components'. Its arguments: logvar_range"),
    (['iw_k=0'], "iw_k must be >= 1, got 0"),
    (['bottleneck=ae', 'iw_k=5'], "iw_k=5 needs a family with a prior"),
    (['iw_k=5', 'beta=4'], "iw_k=5 trains the importance-weighted bound, which has no KL term to weight: beta=4"),
]

@pytest.mark.parametrize('overrides,message', BAD)
def test_bad_input_fails_before_any_data_loads(overrides, message, tmp_path, monkeypatch, capsys):
    empty = tmp_path/'no-data'; empty.mkdir()
    monkeypatch.setenv('VAE_NB_DATA', str(empty))
    code = main(['train', 'quick', *overrides, f'out={tmp_path}/run'])
    err = capsys.readouterr().err
    assert code == 2 and message in err and 'Traceback' not in err, err
    assert not (tmp_path/'run').exists() and list(empty.iterdir()) == []

def test_vamp_and_iwae_train_evaluate_and_compare(tmp_path):
    small = ['max_train=1000', 'epochs=2', 'valid_pct=0.05', 'quiet=true']
    assert cli('train', 'quick', 'prior=vamp', 'bottleneck_kwargs.components=100', *small, 'out=vamp', cwd=tmp_path)[0] == 0
    code, _, err = cli('train', 'quick', 'iw_k=5', *small, 'out=iwae', cwd=tmp_path)
    assert code == 0, err
    assert 'manifold.png' in os.listdir(tmp_path/'vamp'/'figures')                     # a 2-D mixture prior gets its manifold figure
    header = (tmp_path/'iwae'/'history.csv').read_text().splitlines()[0].split(',')
    assert 'train_iw_bound' in header and 'valid_iw_bound' in header and 'valid_elbo' in header
    m = json.loads((tmp_path/'iwae'/'metrics.json').read_text())['test']
    assert m['loss'] == -m['iw_bound'] and m['iw_bound'] > m['elbo'] - 1, m
    code, out, err = cli('evaluate', 'vamp', '--k', '50', '--iw-n', '100', cwd=tmp_path)
    assert code == 0, err
    ev = json.loads((tmp_path/'vamp'/'evaluation.json').read_text())
    assert ev['prior'] == 'vamp' and ev['nll'] < -ev['elbo'] + 2 and len(ev['prior_variance']) == 2, ev
    code, out, err = cli('compare', 'vamp', 'iwae', '--k', '20', '--iw-n', '100', '--out', 'cmp', cwd=tmp_path)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path/'cmp')) == ['comparison.csv', 'comparison.md', 'comparison.png']
    table = (tmp_path/'cmp'/'comparison.md').read_text()
    assert '| vamp ' in table and '| iwae ' in table and 'iw_k' in table
