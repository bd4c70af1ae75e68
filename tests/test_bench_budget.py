"""benchmarks/bench_budget.py (accuracy against training time, issue 23): the budget arithmetic, the ENTR shortening,
the time-to-reach interpolation, the pairs with plain fastai, the stratified subset, and the reduced run end to end on
tiny data (a stand-in with ELPV's layout, no network, no ELPV image)."""
import math, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
from conftest import load_script
from progfast.learner import fine_tune_budget, fine_tune_cost, progressive_sizes, schedule_sizes

sys.path.insert(0, str(Path(__file__).parent))
from test_build_elpv import write_source   # noqa: E402  the stand-in of elpv_dataset/data


@pytest.fixture(scope='module')
def bench():
    return load_script('bench_budget')


# ---- the arithmetic ----

def test_every_contender_fits_its_budget(bench):
    "Each contender's planned cost is at most the budget, and one more epoch would exceed it"
    s, cost = bench.ELPV, bench.epoch_cost(bench.ELPV.final)
    for b in s.budgets:
        n = fine_tune_budget(b, s.final, cost=cost)
        assert fine_tune_cost(n, s.final, cost=cost) <= b < fine_tune_cost(n + 1, s.final, cost=cost)
        r = s.recipe
        n = fine_tune_budget(b, s.final, start=r['start'], full_share=r['full_share'], cost=cost)
        assert fine_tune_cost(n, s.final, 1, r['start'], r['full_share'], cost) <= b
        assert fine_tune_cost(n + 1, s.final, 1, r['start'], r['full_share'], cost) > b
    assert fine_tune_budget(4, 128, start=0.5, cost=cost) > fine_tune_budget(4, 128, cost=cost)   # small epochs are cheaper


def test_entr_is_shortened_to_the_budget(bench):
    s = bench.ELPV
    for regime in ('gradual', 'stepwise', 'fixed'):
        for b in s.budgets if regime == 'fixed' else (4, 8):     # gradual and stepwise do not fit in 2
            assert b in s.only_at.get(f"entr-{regime}" if regime == 'fixed' else regime, s.budgets)
            ep = bench.entr_epochs(s, regime, b)
            assert ep['cyclic_epochs'] == ep['cycle_mult_cycles'] == 0 and ep['unfreeze_epochs'] >= 1
            stages = {'gradual': 4, 'stepwise': 2, 'fixed': 1}[regime]
            assert ep['sgdr_epochs'] % stages == 0
            from progfast.learner import regime_schedule
            cost = bench.epoch_cost(s.final)
            spent = sum(cost(x) for x in schedule_sizes(regime_schedule(regime, s.final), ep['sgdr_epochs'])) + ep['unfreeze_epochs']
            assert spent <= b + 1e-9, (regime, b, ep, spent)


def test_from_scratch_epochs_grow_with_the_budget(bench):
    r = bench.FMNIST.recipe
    ns = [bench.epochs_from_scratch(b, 28, r) for b in (3, 6, 12)]
    assert ns == sorted(ns) and ns[0] >= 3 and ns[-1] > 12           # small epochs: more of them than the budget
    assert bench.epochs_from_scratch(3, 28, r, 'gradual') >= 4         # one epoch per stage at least


def test_recipe_options_are_parsed_and_bad_ones_refused(bench):
    s = bench.ELPV
    r, kw = bench.recipe_of('progfast[start=0.75,loader,nobn]', s)
    assert r['start'] == 0.75 and kw == dict(batch_scale=False, mode='loader', recalibrate_bn=False)
    assert bench.recipe_of('progfast+bs', s)[1] == dict(batch_scale=True)
    with pytest.raises(ValueError, match='unknown option'): bench.recipe_of('progfast[fast]', s)
    with pytest.raises(ValueError, match='unknown contender'): bench.recipe_of('quick', s)


# ---- what the runs say ----

def test_reach_interpolates_and_says_never(bench):
    assert bench.reach([10, 20, 40], [0.5, 0.7, 0.9], 0.8) == pytest.approx(30)
    assert bench.reach([10, 20], [0.9, 0.95], 0.8) == 10
    assert bench.reach([10, 20], [0.5, 0.6], 0.8) == math.inf


def fake_runs(rows):
    return pd.DataFrame([dict(setting='elpv', arch='net', contender=c, budget=b, seed=s, seconds=t, accuracy=a,
                              balanced_accuracy=a, epochs=1, sizes='32') for c, b, s, t, a in rows])


def test_time_to_reach_and_pairs(bench):
    rows = []
    for seed in (0, 1, 2):
        rows += [('fastai', 2, seed, 20, 0.70), ('fastai', 4, seed, 40, 0.80), ('fastai', 8, seed, 80, 0.84 + seed/100)]
        rows += [('progfast', 2, seed, 19, 0.78), ('progfast', 4, seed, 38, 0.86 + seed/100), ('progfast', 8, seed, 79, 0.88)]
    df = fake_runs(rows)
    t = bench.time_to_reach(df, 'progfast', 'net')
    assert t.target.tolist() == [0.84, 0.85, 0.86]
    assert t.ratio.iloc[0] == pytest.approx((19 + 19 * (0.84 - 0.78) / (0.86 - 0.78)) / 80)
    p = bench.pairs_with_fastai(df)
    acc = p[(p.measure == 'accuracy') & (p.budget == 4)]
    assert acc.value.tolist() == pytest.approx([6, 7, 8])
    secs = p[(p.measure == 'seconds') & (p.budget == 2)]
    assert secs.value.tolist() == pytest.approx([0.95] * 3)
    table, verdicts = bench.reach_table(df.assign(setting='elpv'), [bench.Setting(**{**bench.ELPV.__dict__, 'arch': 'net', 'extra': {}})])
    assert verdicts[('elpv', 'net', 'progfast')] == 'met' and 'progfast' in table


# ---- data ----

def test_stratified_subset_keeps_each_class_share(bench, tmp_path):
    root = tmp_path/'classes'
    for c, n in (('a', 60), ('b', 30), ('c', 10)):
        (root/c).mkdir(parents=True)
        for i in range(n): (root/c/f"{i}.png").write_bytes(b'x')
    sub = bench.stratified_subset(root, 50)
    counts = {c: len(list((sub/c).iterdir())) for c in 'abc'}
    assert counts == {'a': 30, 'b': 15, 'c': 5}
    assert bench.stratified_subset(root, 50) == sub and bench.stratified_subset(root, None) == root


# ---- end to end ----

@pytest.mark.parametrize('setting', ['fmnist', 'elpv'])
def test_reduced_run_end_to_end(bench, tmp_path, monkeypatch, setting):
    "The reduced form on tiny data: a results file with its tables and plot, every run from its own seed"
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path/'cache'))
    fmnist = bench.Setting('fmnist', final=28, small=16, bs=16, budgets=(2, 3), lr=1e-2, pretrained=False, arch='khor',
                           n_images=60, valid_pct=0.2, recipe=dict(start=0.6, full_share=0.25))
    monkeypatch.setattr(bench, 'QUICK_FMNIST', fmnist)
    elpv = bench.Setting('elpv', final=32, small=20, bs=4, budgets=(2, 3), lr=2e-3, pretrained=True, arch='mobilenet_v2',
                         weights='deepsort', n_images=24, valid_pct=0.3, recipe=bench.RECIPE)
    monkeypatch.setattr(bench, 'QUICK_ELPV', elpv)
    if setting == 'elpv':    # random weights stand in for the ImageNet ones (no package needed)
        import torch, torchvision
        fn = tmp_path/'mnv2.pth'
        torch.save(torchvision.models.mobilenet_v2().state_dict(), fn)
        monkeypatch.setattr(bench, 'weights_for', lambda s, cache, log: {'deepsort': fn})
        src = write_source(tmp_path/'src', per_class=(10, 6, 6, 6))
        argv = ['--quick', '--settings', 'elpv', '--source', str(src), '--data', str(tmp_path/'data'),
                '--only', 'fastai@2,progfast@2,small@2,entr-fixed@2']
    else: argv = ['--quick', '--settings', 'fmnist', '--only', 'fastai@2,fastai@3,progfast@2,progfast@3,gradual@2']
    out = tmp_path/'res'/'budget.md'
    df = bench.main(argv + ['--out', str(out), '--threads', '1'])
    md = out.read_text()
    assert (out.parent/'budget.png').is_file() and (out.parent/'budget.csv').is_file()
    assert set(df.contender) == ({'fastai', 'progfast', 'small', 'entr-fixed'} if setting == 'elpv' else {'fastai', 'progfast', 'gradual'})
    assert df.accuracy.between(0, 1).all() and (df.seconds > 0).all()
    assert '- command: `python benchmarks/bench_budget.py --quick' in md and 'load average' in md
    assert 'Paired with plain fastai' in md and "Time to reach plain fastai's best accuracy" in md
    if setting == 'elpv': assert 'accuracy@final' in df and df['accuracy@final'].notna().any()
    # a run reruns alone with the same result (same machine): --only one label, the same seed
    again = bench.main(argv[:-1] + [argv[-1].split(',')[0], '--out', str(tmp_path/'again'/'b.md'), '--threads', '1'])
    a = df[df.label == again.label.iloc[0]].accuracy.iloc[0]
    assert again.accuracy.iloc[0] == pytest.approx(a)
