"The scale-resiliency benchmark (benchmarks/bench_scale.py): its quick path, the interleaving, equal compute, per-seed verdicts."
import math
import numpy as np
import pandas as pd
import pytest
from conftest import load_script



@pytest.fixture(scope='module')
def bench(): return load_script('bench_scale')


@pytest.fixture(scope='module')
def quick(bench, tmp_path_factory):
    "The quick path: 2 seeds, 256 images, 1 epoch, test sizes 16, 28, 40"
    out = tmp_path_factory.mktemp('bench')/'scale_quick.md'
    bench.main(['--quick', '--out', str(out)])
    return out,pd.read_csv(out.with_suffix('.csv'))


def test_equal_compute_epochs(bench):
    # MixSize's CIFAR distribution at 28 px: 14/21/28/42 px with 0.2/0.3/0.3/0.2; a step at s holds (28/s)^2 base batches,
    # so an image is trained at 1 / (0.2*4 + 0.3*(28/21)^2 + 0.3*1 + 0.2*(28/42)^2) = 0.581 of the pixels of 28 px
    assert bench.mixsize_pixel_share() == pytest.approx(0.5806, abs=1e-4)
    assert bench.equal_compute_epochs(8) == 14 and bench.equal_compute_epochs(1) == 2


def test_quick_runs_interleaved_with_every_method(bench, quick):
    _,runs = quick
    t = runs.drop_duplicates(['method', 'seed'])
    assert sorted(t.method) == sorted(bench.METHODS * 2)
    order = {s: list(g.sort_values('position').method) for s,g in t.groupby('seed')}
    assert order[0] == list(bench.METHODS) and order[1] == order[0][1:] + order[0][:1]   # rotated by one per seed
    ep = t.set_index(['method', 'seed'])['epochs']
    assert ep['fixed', 0] == ep['mixsize', 0] == 1 and ep['mixsize_eq', 0] == bench.equal_compute_epochs(1)
    px = t.groupby('method')['pixels'].mean()
    assert px['fixed'] == pytest.approx(1.) and px['mixsize'] < 1 and px['mixsize_eq'] > px['mixsize']
    assert (t.seconds > 0).all()
    # every method x seed x batch-norm mode x test size has an accuracy
    assert len(runs) == 4 * 2 * 2 * 3 and runs.accuracy.between(0, 1).all()


def test_quick_results_file(bench, quick):
    out,_ = quick
    md = out.read_text()
    for what in ('- command: `python benchmarks/bench_scale.py --quick --out', '- date: ', '- machine: ',
                 '- load average (1, 5, 15 min): ', '- versions: python ', '**equal epochs**', '**equal compute**',
                 '## Training time and compute', '## Targets', 'MixSize, equal compute'):
        assert what in md, what
    targets = md[md.index('## Targets'):].splitlines()
    rows = [l for l in targets if l.startswith('| ') and not l.startswith(('| target', '|---'))]
    assert len(rows) == 2 * (3 * 2 + 1)          # batch-norm modes x (3 claims x 2 MixSize runs + the fixed peak)
    ok = ('| met |', '| **missed**', '| inconclusive: ')
    assert all(any(k in l for k in ok) for l in rows), rows
    assert out.with_suffix('.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_tables_from_made_up_results(bench):
    "Accuracy table and spreads: one row per method, one column per size; spread = best - worst per seed"
    rows = [dict(method=m, seed=s, bn='trained', size=z, accuracy=a)   # binary fractions: exact differences
            for m,base in (('fixed', .75), ('progressive', .625), ('mixsize', .5), ('mixsize_eq', .5625)) for s in (0, 1, 2)
            for z,a in ((16, base - .25), (28, base), (40, base - .125 - s/64))]
    res = pd.DataFrame(rows)
    mean,std = bench.accuracy_table(res)
    assert list(mean.index) == list(bench.METHODS) and list(mean.columns) == [16, 28, 40]
    assert mean.loc['fixed', 28] == pytest.approx(.75) and (std >= 0).all().all()
    f = bench.flatness(res)
    assert all(math.isclose(r.spread, r.best - r.worst) for r in f.itertuples())
    assert set(f.best_size) == {28}
    lines = bench.verdict_rows(res, 3)[2:]
    assert len(lines) == 3 * 2 + 1
    flat = [l for l in lines if l.startswith('| mixed-size flatter')]
    # MixSize's spread equals fixed's in every seed (all 0.25 wide): no difference, not "met"
    assert all('inconclusive: no difference beyond the spread of 3 seeds' in l for l in flat)
    at28 = [l for l in lines if 'training size (28 px)' in l]
    assert all('**missed**' in l for l in at28)    # 0.5 and 0.5625 vs 0.75 in every seed


def test_claim_verdicts(bench):
    assert bench.claim_verdict(np.array([-5., -6., -4.]), 'lower') == 'met'
    assert bench.claim_verdict(np.array([5., 6., 4.]), 'lower').startswith('**missed**')
    assert bench.claim_verdict(np.array([-5., 6., -4.]), 'lower') == 'inconclusive: no difference beyond the spread of 3 seeds'
    assert bench.claim_verdict(np.array([-5., -6., -4.]), 'not lower').startswith('**missed**')
    assert bench.claim_verdict(np.array([1., 2., 1.5]), 'not lower') == 'met'


def test_evaluation_at_28px_matches_validate(bench):
    "Evaluating at the loader's own size changes nothing: the benchmark's 28 px figure is the model's plain accuracy"
    learn = bench.make_learner(0, n_train=128, n_valid=64, bs=64)
    bench.train(learn, 'fixed', 1, 5e-3, seed=0)
    acc = bench.evaluate(learn, [28], recalibrate=False)[28]
    assert math.isclose(acc, float(learn.validate()[1]), abs_tol=1e-6)


def test_time_limit_stops_new_seeds(bench):
    "--minutes: past the limit no seed starts beyond the first two, and the cut is recorded"
    import time
    from benchlib import Budget
    budget = Budget(0.01, start=time.perf_counter() - 60)
    res,trials = bench.run_benchmark([0, 1, 2], n_train=64, n_valid=32, n_epoch=1, sizes=[28], bs=16, methods=('fixed', 'mixsize'),
                                     recalibrate=False, log=lambda *a: None, budget=budget)
    assert sorted(set(trials.seed)) == [0, 1] and sorted(set(res.seed)) == [0, 1]
    assert budget.cut == ['seeds: 2 of 3 repeats']
