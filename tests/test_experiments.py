"""The comparison harness (order rotation, warm-up, per-pair ratios, intervals, verdicts) on made-up contenders, and
compare_regimes and compare_khor run through it: compare_regimes on a tiny generated folder and on DataLoaders."""
import math
import numpy as np
import pytest, torch
import pandas as pd
from fastai.callback.core import Callback
from fastai.data.transforms import Normalize
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
import progfast.studies.khor
from progfast.studies.comparison import (Comparison, compare_regimes, run_interleaved, paired, summarize_pairs, seed_summary,
                                         median_interval, mean_interval, t_quantile, target_verdict, seed_verdict, repeats_needed)
from progfast.studies.khor import KhorRun, compare_khor
from progfast.testing import tiny_cnn

@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path/'progfast-cache'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch-home'))

ENTR_SHORT = dict(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1, lr=1e-2, tta_n=2)

def has_normalize(dls): return bool(dls.after_batch.fs.filter(lambda t: isinstance(t, Normalize)))

def test_two_regimes_two_seeds_on_a_folder(stripes, tmp_path):
    cmp = compare_regimes(stripes, regimes=('fixed', 'gradual'), archs=(tiny_cnn,), seeds=(0, 1), size=32, bs=8,
                          quiet=True, **ENTR_SHORT)
    assert isinstance(cmp, Comparison)
    df = cmp.df
    assert df.shape[0] == 4
    assert df[['arch', 'regime', 'seed']].values.tolist() == [['tiny_cnn', 'fixed', 0], ['tiny_cnn', 'fixed', 1],
                                                              ['tiny_cnn', 'gradual', 0], ['tiny_cnn', 'gradual', 1]]
    assert {'accuracy_pre', 'accuracy', 'tta_accuracy', 'generalization_gap', 'train_seconds', 'standardized_accuracy'} <= set(df.columns)
    # the regimes really trained at different sizes: the SGDR epochs of the recorded histories
    h = cmp.histories
    assert len(h) == 4 * (4 + 1 + 1 + 1)
    sgdr = h[h.step == 'sgdr']
    for seed in (0, 1):
        assert sgdr[(sgdr.regime == 'fixed') & (sgdr.seed == seed)]['size'].tolist() == [32, 32, 32, 32]
        assert sgdr[(sgdr.regime == 'gradual') & (sgdr.seed == seed)]['size'].tolist() == [13, 19, 26, 32]
    # different seeds are different runs
    first = h.groupby(['regime', 'seed'])['train_loss'].first()
    assert first['fixed', 0] != first['fixed', 1]
    # the summary: one row per regime, mean and spread over the two seeds
    s = cmp.summary
    assert s[['arch', 'regime', 'runs']].values.tolist() == [['tiny_cnn', 'fixed', 2], ['tiny_cnn', 'gradual', 2]]
    t = df[df.regime == 'gradual']['train_seconds']
    assert s.loc[1, 'train_seconds_mean'] == pytest.approx(t.mean()) and s.loc[1, 'train_seconds_std'] == pytest.approx(t.std())
    md = cmp.to_markdown()
    assert '| tiny_cnn | gradual | 2 |' in md and ' ± ' in md and md.startswith('Accuracy at equal epochs')
    # interleaved: seed 0 ran fixed then gradual, seed 1 gradual then fixed; each regime paired with fixed of its seed
    assert df['position'].tolist() == [0, 1, 1, 0]
    t = df.set_index(['regime', 'seed'])['train_seconds']
    assert cmp.pairs('train_seconds').value.tolist() == pytest.approx([t['gradual', 0]/t['fixed', 0], t['gradual', 1]/t['fixed', 1]])
    # files
    files = cmp.save(tmp_path/'out'/'report')
    assert sorted(p.name for p in (tmp_path/'out'/'report').iterdir()) == sorted(['runs.csv', 'summary.csv', 'pairs.csv', 'histories.csv', 'comparison.md', 'comparison.png'])
    runs = pd.read_csv(files['runs.csv'])
    assert runs.shape[0] == 4 and runs['accuracy'].tolist() == pytest.approx(df['accuracy'].tolist())
    assert pd.read_csv(files['histories.csv']).shape == h.shape
    assert files['comparison.png'].read_bytes()[:4] == b'\x89PNG'
    assert md in files['comparison.md'].read_text()

def test_dataloaders_are_given_back_as_they_were(stripes, tmp_path):
    import timm
    fn = tmp_path/'test_resnet.pth'
    torch.save(timm.create_model('test_resnet').state_dict(), fn)
    dls = ImageDataLoaders.from_folder(stripes, item_tfms=Resize(32), bs=8, num_workers=0, seed=0)
    tfms,rngs = [list(dl.after_batch.fs) for dl in dls.loaders],[dl.rng for dl in dls.loaders]
    normalized = []
    def fit(learn, epochs):
        normalized.append(has_normalize(learn.dls))
        learn.fit_progressive(epochs, 1e-2, check_model=False)
        return dict(accuracy=learn.validate()[1], note='mine')
    cmp = compare_regimes(dls, regimes={'two sizes': [16, 32]}, archs=('test_resnet', tiny_cnn), weights={'test_resnet': fn},
                          fit=fit, quiet=True, epochs=2)
    assert normalized == [True, False]          # each arch gets its own normalization: none for the untrained tiny_cnn
    assert [list(dl.after_batch.fs) for dl in dls.loaders] == tfms and [dl.rng for dl in dls.loaders] == rngs
    assert cmp.df[['arch', 'regime', 'note']].values.tolist() == [['test_resnet', 'two sizes', 'mine'], ['tiny_cnn', 'two sizes', 'mine']]
    assert cmp.histories.groupby('arch')['size'].apply(list).to_dict() == {'test_resnet': [16, 32], 'tiny_cnn': [16, 32]}
    assert cmp.metrics == ['accuracy']

def test_a_failing_run_stops_the_comparison_and_leaves_the_dls(stripes):
    dls = ImageDataLoaders.from_folder(stripes, item_tfms=Resize(32), bs=8, num_workers=0, seed=0)
    tfms,rngs = [list(dl.after_batch.fs) for dl in dls.loaders],[dl.rng for dl in dls.loaders]
    calls = []
    def fit(learn):
        calls.append(learn.regime)
        if len(calls) == 2: raise KeyboardInterrupt()
    with pytest.raises(KeyboardInterrupt):
        compare_regimes(dls, regimes=('fixed', 'stepwise', 'gradual'), archs=(tiny_cnn,), fit=fit, quiet=True)
    assert calls == ['fixed', 'stepwise']
    assert [list(dl.after_batch.fs) for dl in dls.loaders] == tfms and [dl.rng for dl in dls.loaders] == rngs

def test_bad_input_is_refused_before_training(stripes):
    calls = []
    fit = lambda learn: calls.append(1)
    for kwargs,msg in [(dict(regimes=()), 'regimes is empty'),
                       (dict(regimes=('fixed', 'fixed')), "regime label 'fixed' appears twice"),
                       (dict(archs=('resnet19',)), "unknown arch 'resnet19'"),
                       (dict(seeds=(0, -1)), "each of seeds must be a whole number from 0 to 4294967295, got -1"),
                       (dict(fit=None), "fit must be 'entr' or a function"),
                       (dict(fit=fit, bs=64), 'bs=64 is larger than the 32 training images')]:
        with pytest.raises(ValueError, match=msg): compare_regimes(stripes, archs=kwargs.pop('archs', (tiny_cnn,)), size=32, **kwargs)
    with pytest.raises(TypeError, match="each of seeds must be a whole number .* got '1' \\(str\\)"):
        compare_regimes(stripes, archs=(tiny_cnn,), size=32, seeds=(0, '1'))
    with pytest.raises(ValueError, match=r'2 stages \[13, 32\] do not fit in 1 epochs'):
        compare_regimes(stripes, regimes=('fixed', 'stepwise'), archs=(tiny_cnn,), size=32, bs=8, sgdr_epochs=1)
    with pytest.raises(TypeError, match='fit returned a str'):
        compare_regimes(stripes, regimes=('fixed',), archs=(tiny_cnn,), size=32, bs=8, fit=lambda learn: 'done', quiet=True)
    assert calls == []


# --- the harness on made-up contenders

def recorder(calls, name, seconds):
    def trial(r):
        calls.append((name, r))
        return dict(seconds=seconds)
    return trial

def test_each_repeat_runs_the_contenders_in_an_order_rotated_by_one():
    calls = []
    t = run_interleaved({k: recorder(calls, k, 1.) for k in 'abcd'}, repeats=[7, 8, 9, 10, 11])
    assert calls[0] == ('a', 7)                                   # the warm-up: the first contender, first repeat
    order = [''.join(n for n,r in calls[1:] if r == rep) for rep in (7, 8, 9, 10, 11)]
    assert order == ['abcd', 'bcda', 'cdab', 'dabc', 'abcd']
    assert t[t.repeat == 9].sort_values('position')['contender'].tolist() == list('cdab')
    assert len(t) == 20 and all(set(p) == {0, 1, 2, 3} for p in t.groupby('contender')['position'].apply(list))   # every place

def test_warmup_options():
    calls = []
    run_interleaved({'a': recorder(calls, 'a', 1.), 'b': recorder(calls, 'b', 1.)}, repeats=1, warmup=lambda: calls.append('w'))
    assert calls == ['w', ('a', 0), ('b', 0)]
    calls.clear(); run_interleaved({'a': recorder(calls, 'a', 1.)}, repeats=2, warmup=False)
    assert calls == [('a', 0), ('a', 1)]
    with pytest.raises(ValueError, match='warmup must be True, False or a function'): run_interleaved({'a': recorder(calls, 'a', 1.)}, warmup=3)

def drifting(machine):
    "Contenders whose time is their work times the machine's slowness at the moment they run (it slows by 5% per trial)"
    def contender(work):
        def trial(r):
            machine['trials'] += 1
            return dict(seconds=work * (1 + 0.05 * machine['trials']))
        return trial
    return contender

def test_pairs_cancel_drift_that_blocks_of_one_contender_do_not():
    machine = dict(trials=0)
    c = drifting(machine)
    t = run_interleaved({'fixed': c(10.), 'progressive': c(5.)}, repeats=6, warmup=False)
    ratios = paired(t, 'seconds', 'fixed')['value']
    assert ratios.between(0.45, 0.55).all()                       # true ratio 0.5, each pair run back to back
    machine['trials'] = 0                                         # the same contenders timed in blocks, one after the other
    blocks = {k: [f(0)['seconds'] for _ in range(6)] for k,f in (('fixed', c(10.)), ('progressive', c(5.)))}
    assert np.median(blocks['progressive']) / np.median(blocks['fixed']) > 0.6   # a median over a median: drift, not speed

def test_paired_ratios_and_differences_within_each_repeat():
    t = pd.DataFrame(dict(repeat=[0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2], mode=['batch']*6 + ['loader']*6, contender=['fixed', 'prog']*6,
                          seconds=[10, 6, 20, 12, 15, 9, 10, 8, 20, 16, 15, 12], acc=[.8, .82, .8, .81, .8, .79]*2))
    r = paired(t, 'seconds', 'fixed', within='mode')
    assert r[['mode', 'repeat', 'contender', 'reference', 'how']].values.tolist()[:2] == [['batch', 0, 'prog', 'fixed', 'ratio'], ['batch', 1, 'prog', 'fixed', 'ratio']]
    assert r.value.tolist() == pytest.approx([.6, .6, .6, .8, .8, .8])
    d = paired(t, 'acc', 'fixed', how='difference', within='mode')
    assert d.value.tolist() == pytest.approx([.02, .01, -.01]*2)
    s = summarize_pairs(r, target=0.7)
    assert s[['mode', 'n', 'median', 'min', 'max', 'verdict']].values.tolist() == [['batch', 3, .6, .6, .6, 'inconclusive'],
                                                                                 ['loader', 3, .8, .8, .8, 'inconclusive']]
    with pytest.raises(ValueError, match='more than one trial'): paired(t, 'seconds', 'fixed')   # two modes per repeat: say `within`

def test_target_verdicts():
    noisy = [0.82, 1.31, 0.97, 1.24, 0.90, 1.18]                  # a noisy pair: median 1.07, the pairs straddle 1.10
    assert target_verdict(noisy, 1.10) == 'inconclusive'
    assert target_verdict([0.97, 1.01, 1.03, 0.99, 1.05], 1.10) == 'met'
    assert target_verdict([1.21, 1.32, 1.18, 1.25, 1.28], 1.10) == 'missed'
    assert target_verdict([0.97, 1.01, 1.03], 1.10) == 'inconclusive'      # 3 repeats cannot hold the median with 90%
    assert repeats_needed(0.9) == 5 and repeats_needed(0.95) == 6
    assert target_verdict([3.5, 3.8, 3.1, 4.0, 3.3], 3., better='higher') == 'met'
    lo,hi,cov = median_interval([5, 1, 4, 2, 3])
    assert (lo, hi) == (1, 5) and cov == pytest.approx(1 - 2/32)

def test_seed_verdicts():
    assert seed_verdict([-0.020, -0.024, -0.017]) == 'lower'
    assert seed_verdict([0.011, 0.013, 0.016]) == 'higher'
    assert seed_verdict([-0.020, 0.004, -0.030]) == 'no difference beyond the spread of 3 seeds'   # both sides
    assert seed_verdict([-0.001, -0.040, -0.020]) == 'no difference beyond the spread of 3 seeds'  # one side, mean 1.7 sd from 0
    assert seed_verdict([0.93, 0.95, 0.94], null=1.) == 'lower'
    assert seed_verdict([0.7]) == 'no verdict from 1 seed'
    assert t_quantile(0.95, 2) == pytest.approx(4.303, abs=1e-3)
    m,lo,hi = mean_interval([1., 2., 3.])
    assert (m, lo, hi) == pytest.approx((2., 2 - 4.3027/math.sqrt(3), 2 + 4.3027/math.sqrt(3)), abs=1e-3)
    t = pd.DataFrame(dict(repeat=[0, 0, 1, 1, 2, 2], contender=['normal', 'proposed']*3, gap=[.06, .04, .07, .05, .05, .03]))
    s = seed_summary(paired(t, 'gap', 'normal', how='difference'))
    assert s.loc[0, 'values'] == pytest.approx([-.02, -.02, -.02]) and s.loc[0, 'verdict'] == 'lower'

def test_scipy_agrees_on_the_t_quantiles():
    st = pytest.importorskip('scipy.stats')
    for df in (1, 2, 3, 7, 30):
        for conf in (0.9, 0.95, 0.99): assert t_quantile(conf, df) == pytest.approx(st.t.ppf((1 + conf)/2, df), rel=1e-7)


# --- compare_regimes and compare_khor on the harness

class FitCounter(Callback):
    "Counts fits and training batches of every learner it is given to"
    order = -20
    def __init__(self): self.fits,self.batches = 0,[]
    def before_fit(self): self.fits += 1; self.batches.append(0)
    def before_batch(self):
        if self.training: self.batches[-1] += 1

def test_compare_regimes_rotates_the_regimes_per_seed_after_a_warmup(stripes):
    order = []
    def fit(learn):
        order.append(learn.regime)
        learn.fit_progressive(4, 1e-2, check_model=False)
    counter = FitCounter()
    cmp = compare_regimes(stripes, regimes=('fixed', 'gradual', 'stepwise'), archs=(tiny_cnn,), seeds=(0, 1, 2), size=32, bs=8,
                          fit=fit, quiet=True, learner_kwargs=dict(cbs=counter))
    assert order == ['fixed', 'gradual', 'stepwise', 'gradual', 'stepwise', 'fixed', 'stepwise', 'fixed', 'gradual']
    assert counter.batches[0] <= 3 and counter.fits == 1 + 9 * 2   # a short warm-up fit; each run: its fit and its evaluation
    assert cmp.df[['regime', 'seed', 'position']].values.tolist()[:3] == [['fixed', 0, 0], ['fixed', 1, 2], ['fixed', 2, 1]]
    counter.batches.clear()
    compare_regimes(stripes, regimes=('fixed',), archs=(tiny_cnn,), seeds=(0,), size=32, bs=8, fit=fit, quiet=True,
                    learner_kwargs=dict(cbs=counter), warmup=False)
    assert counter.batches[0] > 3                                # no warm-up: the first fit is the run

def test_compare_khor_rotates_the_approaches_per_seed_after_a_warmup(monkeypatch):
    calls = []
    def fake_run(approach, dls=None, epochs=15, seed=0, **kwargs):
        calls.append((approach, seed, epochs))
        acc = [.5, .6 + 0.01*seed]
        return KhorRun(approach, seed, [.7, .8], acc, 2., [28, 28], [1., 2.], final_test_acc=.6, held_out=True)
    monkeypatch.setattr(progfast.studies.khor, 'run_khor', fake_run)
    cmp = compare_khor(seeds=(0, 1, 2), epochs=4, n_train=100, show=False, log=None)
    assert calls[:3] == [('normal', 0, 1), ('progressive', 0, 1), ('proposed', 0, 1)]   # the warm-up: one epoch of each
    assert [a[0] for a in calls[3:]] == ['normal', 'progressive', 'proposed', 'progressive', 'proposed', 'normal',
                                         'proposed', 'normal', 'progressive']
    assert all(e == 4 for _,_,e in calls[3:])
    assert cmp.df[['approach', 'seed', 'position']].values.tolist()[:3] == [['normal', 0, 0], ['progressive', 0, 1], ['proposed', 0, 2]]
    assert cmp.df.loc[cmp.df.seed == 1, 'position'].tolist() == [2, 0, 1]
    v = cmp.verdicts()
    assert set(v.measure) == {'gap', 'test_acc', 'seconds', 'time_to_accuracy'}
    assert (v[v.measure == 'seconds'].values[:, -1] == 'no difference beyond the spread of 3 seeds').all()   # all ratios 1
    calls.clear()
    compare_khor(seeds=(0,), epochs=4, n_train=100, show=False, log=None, warmup=False)
    assert [c[2] for c in calls] == [4, 4, 4]
