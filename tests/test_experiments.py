"Integration: compare_regimes on a tiny generated folder and on DataLoaders; its table, plots and files."
import pytest, torch
import pandas as pd
from fastai.data.transforms import Normalize
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
from progfast.experiments import Comparison, compare_regimes
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
    assert md.count('\n') == 3 and '| tiny_cnn | gradual | 2 |' in md and ' ± ' in md
    # files
    files = cmp.save(tmp_path/'out'/'report')
    assert sorted(p.name for p in (tmp_path/'out'/'report').iterdir()) == sorted(['runs.csv', 'summary.csv', 'histories.csv', 'comparison.md', 'comparison.png'])
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
                       (dict(seeds=(0, '1')), "seeds must be integers, got '1'"),
                       (dict(fit=None), "fit must be 'entr' or a function"),
                       (dict(fit=fit, bs=64), 'bs=64 is larger than the 32 training images')]:
        with pytest.raises(ValueError, match=msg): compare_regimes(stripes, archs=kwargs.pop('archs', (tiny_cnn,)), size=32, **kwargs)
    with pytest.raises(ValueError, match=r'2 stages \[13, 32\] do not fit in 1 epochs'):
        compare_regimes(stripes, regimes=('fixed', 'stepwise'), archs=(tiny_cnn,), size=32, bs=8, sgdr_epochs=1)
    with pytest.raises(TypeError, match='fit returned a str'):
        compare_regimes(stripes, regimes=('fixed',), archs=(tiny_cnn,), size=32, bs=8, fit=lambda learn: 'done', quiet=True)
    assert calls == []
