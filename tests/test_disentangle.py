"""`vae-nb evaluate RUN --disentanglement` and `vae-nb compare` on tiny dSprites runs (small sample sizes), and its bad input."""
import json, os
import pandas as pd

from conftest import cli

TINY = ['dsprites_beta', 'dataset_kwargs.n=1200', 'epochs=1', 'quiet=true', 'latent_dim=4']
SCORES = {'beta_vae', 'factor_vae', 'mig', 'dci_disentanglement', 'dci_completeness', 'dci_informativeness', 'sap'}

def test_evaluate_disentanglement_then_compare(tmp_path):
    for beta in (1, 4):
        code, _, err = cli('train', *TINY, f'beta={beta}', f'out=b{beta}', cwd=tmp_path)
        assert code == 0, err
    code, out, err = cli('evaluate', 'b1', '--disentanglement', '--dis-scale', '0.005', '--k', '5', '--iw-n', '20', cwd=tmp_path)
    assert code == 0, err
    res = json.loads((tmp_path/'b1'/'disentanglement.json').read_text())
    assert set(res['scores']) == SCORES and all(0 <= v <= 1 for v in res['scores'].values())
    assert res['settings']['beta_vae'] == dict(batch_size=64, n_train=50, n_eval=25, seed=0)   # 10,000 and 5,000 times 0.005
    assert res['settings']['mig'] == dict(n=50, bins=20, seed=0)
    assert res['details']['factor_names'] == ['shape', 'scale', 'orientation', 'posX', 'posY']
    assert len(res['details']['mi']) == 4 and len(res['details']['mi'][0]) == 5                # (latent coordinates, factors)
    assert (tmp_path/'b1'/'figures'/'disentanglement.png').stat().st_size > 1000
    assert 'disentanglement:' in out and '"mig"' in out
    assert json.loads((tmp_path/'b1'/'evaluation.json').read_text())['disentanglement'] == res['scores']
    assert not list((tmp_path/'b1').glob('.*.tmp*'))                                          # atomic writes leave no temporary file
    code, out, err = cli('compare', 'b1', 'b4', '--out', 'cmp', '--k', '5', '--iw-n', '20', cwd=tmp_path)
    assert code == 0, err
    table = pd.read_csv(tmp_path/'cmp'/'comparison.csv', index_col='run')
    assert SCORES <= set(table.columns) and 'mig' in out
    assert abs(table.loc['b1', 'mig'] - res['scores']['mig']) < 1e-9 and pd.isna(table.loc['b4', 'mig'])   # b4 has no scores yet
    code, out, err = cli('evaluate', 'b4', '--disentanglement', '--dis-scale', '0.005', '--dci-regressor', 'lasso', '--k', '5', '--iw-n', '20', cwd=tmp_path)
    assert code == 0, err
    lasso = json.loads((tmp_path/'b4'/'disentanglement.json').read_text())
    assert lasso['settings']['dci'] == dict(n_train=50, n_test=25, regressor='lasso', seed=0) and 0 <= lasso['scores']['dci_disentanglement'] <= 1
    code, out, err = cli('evaluate', 'b4', '--disentanglement', '--dci-regressor', 'ridge', cwd=tmp_path)
    assert code == 2 and "invalid choice: 'ridge'" in err, err

def test_dsprites_objective_presets_train_and_log(tmp_path):
    "The β-TCVAE, FactorVAE, DIP-VAE and capacity presets on dSprites: one tiny epoch each from the command line, with their own terms in the history."
    logged = dict(beta_tc_dsprites={'mi', 'tc', 'dim_kl'}, factor_dsprites={'tc', 'disc_acc'}, dip_i_dsprites={'dip_od', 'dip_d'},
                  dip_ii_dsprites={'dip_od', 'dip_d'}, capacity_dsprites={'capacity'})
    for preset, columns in logged.items():
        code, _, err = cli('train', preset, 'dataset_kwargs.n=640', 'epochs=1', 'quiet=true', f'out={preset}', cwd=tmp_path)
        assert code == 0, err
        history = pd.read_csv(tmp_path/preset/'history.csv')
        assert {f'{split}_{c}' for c in columns for split in ('train', 'valid')} <= set(history.columns), (preset, list(history.columns))
        assert history.notna().all().all(), history

def test_disentanglement_needs_a_factor_table(tmp_path):
    assert cli('train', 'quick', 'max_train=300', 'epochs=1', 'quiet=true', 'out=r', cwd=tmp_path)[0] == 0
    code, out, err = cli('evaluate', 'r', '--disentanglement', cwd=tmp_path)
    assert code == 2 and "vae-nb: error: dataset 'mnist' has no factor table, so no disentanglement metrics. Datasets with one: dsprites" in err, err
    assert not (tmp_path/'r'/'evaluation.json').exists()                                        # it failed before the evaluation
    code, out, err = cli('evaluate', 'r', '--disentanglement', '--dis-scale', '0', cwd=tmp_path)
    assert code == 2 and 'scale must be > 0' in err, err
