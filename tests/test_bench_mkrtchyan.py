"The blur-use benchmark's quick path (benchmarks/bench_mkrtchyan.py --quick): the results file, the plot and every run, in seconds."
import pandas as pd
import pytest
from conftest import load_script



@pytest.fixture(scope='module')
def bench(): return load_script('bench_mkrtchyan')


@pytest.fixture(scope='module')
def quick(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')/'mkrtchyan_quick.md'
    cmp,path = bench.main(['--quick', '--out', str(out)])
    return cmp,path


def test_defaults_are_the_reduced_setting(bench):
    s = bench.setting(bench.parse_args([]))
    assert s == dict(seeds=[0, 1, 2], epochs=8, n_train=1000, n_test=500, bs=32, size=64, drops=(3, 6))
    q = bench.setting(bench.parse_args(['--quick', '--epochs', '3', '--seeds', '4,5']))
    assert (q['seeds'], q['epochs'], q['n_train'], q['size'], q['drops']) == ([4, 5], 3, 60, 32, (1, 2))


def test_every_contender_and_seed_ran_interleaved(bench, quick):
    cmp,_ = quick
    df = cmp.df
    assert sorted(set(df.contender)) == sorted(bench.BLUR_CONTENDERS) and len(df) == 2 * len(bench.BLUR_CONTENDERS)
    firsts = [g.sort_values('position').contender.iloc[0] for _,g in df.groupby('seed')]
    assert firsts == ['no blur', 'set 2 blur']                     # the order rotated by one for the second seed
    assert (df.steps == 2 * (60 // 20)).all()                      # equal epochs: two passes of three batches
    assert ((df.test_acc >= 0) & (df.test_acc <= 1)).all() and (df.seconds > 0).all()


def test_results_file_plot_and_runs(quick):
    cmp,path = quick
    md = path.read_text()
    for what in ('- command: `python benchmarks/bench_mkrtchyan.py --quick --out', '- date: ', '- machine: ',
                 '- load average (1, 5, 15 min): ', ' before, ', ' after ', '- versions: python ', 'torch ', 'fastai ',
                 '**equal epochs**', 'cut from the paper', '## Verdict', '- at one size: ', '- with progressive resizing: '):
        assert what in md, what
    for c in ('no blur', 'set 2 blur', 'Khor deblurring', 'set 2 blur + resizing', 'Khor deblurring + resizing'):
        assert f"| {c} | 2 | " in md, c                            # the summary: one row per contender, two runs each
    verdicts = [l for l in md.splitlines() if l.endswith(('| no difference beyond the spread of 2 seeds |', '| higher |', '| lower |'))]
    assert len(verdicts) == 3 * (4 + 2)                            # 3 measures x (4 against no blur + Khor against set 2, twice)
    assert md.count('- at one size: ') == 1
    png,csv = path.with_suffix('.png'),path.with_suffix('.csv')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and f"]({png.name})" in md
    runs = pd.read_csv(csv)
    assert len(runs) == 10 and {'contender', 'seed', 'position', 'test_acc', 'train_acc', 'gap', 'seconds', 'steps'} <= set(runs.columns)
