"benchmarks/bench_khor.py on a tiny setting: the batch-norm study's tables and files, and Figure 8's result file."
import pandas as pd
import pytest
from conftest import load_script



@pytest.fixture(scope='module')
def bench(): return load_script('bench_khor')


@pytest.fixture(scope='module')
def study(bench):
    return bench.bn_study(seeds=(0, 1), epochs=2, n_train=200, log=None)


def test_bn_study_runs_every_approach_both_ways_interleaved(bench, study):
    runs,trials = study
    assert sorted(runs) == sorted((a, v, s) for a in bench.KHOR_APPROACHES for v in (bench.PLAIN, bench.EACH) for s in (0, 1))
    orders = trials.groupby('repeat')['contender'].apply(list)
    assert len(orders[0]) == 6 and orders[1] == orders[0][1:] + orders[0][:1]      # the order rotated by one per seed
    for (a,v,s),r in runs.items():
        assert (len(r.bn_epoch_seconds) == 2) == (v == bench.EACH) and r.final_test_acc_bn is not None
    assert bench.training_unchanged(runs) == 0          # the per-validation re-estimation leaves the training as it was


def test_bn_tables(bench, study):
    runs,trials = study
    plain,means,rows = bench.bn_accuracy(runs)
    assert len(plain.runs) == 6 and rows['approach'].tolist() == ['Normal', 'Progressive', 'Proposed']
    for r,want in zip(rows.itertuples(), [plain.bn_pairs().query('contender == @a').value.tolist() for a in bench.KHOR_APPROACHES]):
        assert r[2] == ', '.join(f"{100*x:+.2f}" for x in want)     # the per-seed differences, in points
    assert set(rows['verdict']) <= {'lower', 'higher', 'no difference beyond the spread of 2 seeds'}
    swing_means,swing_rows = bench.bn_swing(runs)
    assert len(swing_means) == len(swing_rows) == 3
    cost_means,cost_rows,cost_pairs = bench.bn_cost(trials)
    assert len(cost_pairs) == 6 and (cost_pairs['value'] > 0).all() and (cost_pairs['reference'] == bench.PLAIN).all()
    assert all(s.endswith('%') for s in cost_means['its share of an epoch'])
    rule = bench.bn_rule(rows)
    assert rule.startswith("Rule: Khor's runs report") and ('is met' in rule) == ('lower' not in set(rows['verdict']) and 'higher' in set(rows['verdict']))


@pytest.mark.slow   # 12 more runs and their warm-ups: `make test-slow`
def test_bn_main_writes_its_files(bench, tmp_path):
    out = bench.main(['--bn-study', '--seeds', '0,1', '--epochs', '2', '--n-train', '200', '--threads', '1', '--out', str(tmp_path/'bn.md')])
    text = out.read_text()
    for part in ('- command: `python benchmarks/bench_khor.py --bn-study', '- machine:', 'load average', '- versions:',
                 '## 1. Test accuracy', '## 2. Epoch-to-epoch swing', '## 3. What `RecalibrateBN` costs', 'Rule:', "Khor's findings"):
        assert part in text, part
    assert (tmp_path/'bn.png').read_bytes()[:4] == b'\x89PNG'
    runs = pd.read_csv(tmp_path/'bn.csv')
    assert len(runs) == 12 and set(runs['variant']) == {bench.PLAIN, bench.EACH}


def test_figure8_main_writes_its_files(bench, tmp_path):
    out = bench.main(['--seeds', '0,1', '--epochs', '2', '--n-train', '200', '--threads', '1', '--out', str(tmp_path/'k.md')])
    text = out.read_text()
    assert "| Approach (equal epochs: 2) |" in text and "Khor's findings, seed by seed" in text and 'target_verdict' in text
    assert text.count('- progressive: per seed') == 1 and (tmp_path/'k_curves.png').exists()
    assert pd.read_csv(tmp_path/'k.csv').shape[0] == 6
