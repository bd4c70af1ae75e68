"The scale-resiliency benchmark's core on a tiny setting: one row per method, one column per test size, accuracies in [0, 1]."
import importlib.util, math
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location('bench_scale', ROOT/'benchmarks'/'bench_scale.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

@pytest.fixture(scope='module')
def tiny(bench):
    # 300 training images: a MixSize step at 14 px holds 4 x 64 = 256 of them
    return bench.run_benchmark(seeds=(0, 1), n_train=300, n_valid=100, n_epoch=1, sizes=(16, 28), bs=64,
                               n_batches_bn=2, log=lambda s: None)

def test_result_table_shape(bench, tiny):
    results,times = tiny
    assert len(results) == 3 * 2 * 2 * 2          # methods x seeds x batch-norm modes x sizes
    for bn in bench.BN_MODES:
        mean,std = bench.accuracy_table(results, bn)
        assert list(mean.index) == list(bench.METHODS) and list(mean.columns) == [16, 28]
        assert mean.shape == std.shape == (3, 2)
        assert ((mean >= 0) & (mean <= 1)).all().all() and (std >= 0).all().all()
    assert sorted(times['method']) == sorted(bench.METHODS * 2)
    assert (times['seconds'] > 0).all()

def test_flatness_and_markdown(bench, tiny):
    results,_ = tiny
    f = bench.flatness(results)
    assert len(f) == 3 * 2 and (f['spread'] >= 0).all() and set(f['best_size']) <= {16, 28}
    assert all(math.isclose(r.spread, r.best - r.worst) for r in f.itertuples())
    mean,std = bench.accuracy_table(results)
    table = bench.markdown_table(mean, std, n_seeds=2)
    assert len(table) == 2 + 3 and all(l.count('|') == 4 for l in table) and '±' in table[2]
    rows = bench.verdict_rows(results, 2)[2:]
    assert len(rows) == 2 * 4                       # four targets, with and without batch-norm recalibration
    assert all(l.endswith('| met |') or '| **missed**: ' in l for l in rows)

def test_evaluation_at_28px_matches_validate(bench):
    "Evaluating at the loader's own size changes nothing: the benchmark's 28 px figure is the model's plain accuracy"
    learn = bench.make_learner(0, n_train=300, n_valid=100, bs=64)
    bench.train(learn, 'fixed', 1, 5e-3, seed=0)
    acc = bench.evaluate(learn, [28], recalibrate=False)[28]
    assert math.isclose(acc, float(learn.validate()[1]), abs_tol=1e-6)
