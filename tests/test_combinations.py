"""Issue #25, "Nothing silently wrong": progfast combined with fastai's own callbacks and odd data. One test per finding
of the issue (each failed on the main of 2026-12-07), then the neighbours of each finding that were tried too."""
import errno, math, os, warnings
from pathlib import Path
import numpy as np
import pytest
import torch, torch.nn as nn
from PIL import Image
from fastai.callback.core import Callback, CancelBatchException
from fastai.callback.mixup import MixUp, CutMix
from fastai.callback.training import GradientAccumulation, BnFreeze
from fastai.callback.tracker import SaveModelCallback, EarlyStoppingCallback
from fastai.data.transforms import IndexSplitter
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.vision.all import ImageDataLoaders, Resize, DataBlock, ImageBlock, CategoryBlock, parent_label
import progfast.data.folders
from progfast.cli import main
from progfast.data.folders import read_folder, folder_dls, ImageCache, BadImageWarning, open_image
from progfast.core.schedule import RampSchedule, StageSchedule
from progfast.core.sizing import bn_layers, bn_state
from progfast.callbacks.progressive import ProgressiveResizeCallback
from progfast.callbacks.mixsize import MixSize
from progfast.testing import stripes_folder, stripes_image, tiny_cnn

@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path_factory.getbasetemp()/'progfast-cache'))

def learner(src, bs=8, size=32, model=None, cbs=None, **kwargs):
    dls = ImageDataLoaders.from_folder(src, item_tfms=Resize(size), bs=bs, num_workers=0, seed=0)
    return Learner(dls, model or tiny_cnn(), metrics=accuracy, cbs=cbs, **kwargs)

def quiet(learn): return learn.no_bar(), learn.no_logging()

def stats_of(model): return [(m.running_mean.clone(), m.running_var.clone()) for m in bn_layers(model)]

def same_stats(a, b): return all(torch.equal(x, y) and torch.equal(u, v) for (x,u),(y,v) in zip(a, b))

# --- 1. a finished training thrown away: `progfast train --out` that cannot be written

@pytest.mark.parametrize('kind', ['file', 'inside_a_file'])
def test_train_checks_out_before_training(stripes, tmp_path, monkeypatch, capsys, kind):
    blocker = tmp_path/'taken'; blocker.write_text('a file')
    out = blocker if kind == 'file' else blocker/'run'
    import progfast.learner
    def no_training(*a, **k): raise AssertionError("a learner was built before --out was checked")
    monkeypatch.setattr(progfast.learner, 'progressive_learner', no_training)
    rc = main(['train', str(stripes), '--arch', 'khor', '--size', '32', '--out', str(out), '--lr', '1e-3'])
    err = capsys.readouterr().err
    assert rc != 0 and '--out' in err and str(blocker) in err, err
    assert len(err.strip().splitlines()) == 1, err

# --- 2. BN re-estimation undone by SaveModelCallback (or any callback that loads weights after the fit)

def recalibrated_again(learn, size, n):
    "The statistics a fresh re-estimation gives (it is seeded, so it repeats exactly)"
    saved = bn_state(learn.model)
    learn.recalibrate_bn(size, n)
    res = stats_of(learn.model)
    from progfast.core.sizing import load_bn_state
    load_bn_state(learn.model, saved)
    return res

@pytest.mark.parametrize('extra', [[], [EarlyStoppingCallback(patience=0)]])
def test_bn_reestimation_comes_after_save_model_callback(stripes, tmp_path, extra):
    learn = learner(stripes, path=tmp_path)
    cbs = [SaveModelCallback(monitor='valid_loss', comp=np.less, fname='best')] + extra
    with learn.no_bar(), learn.no_logging():
        learn.fit_progressive(3, 1e-2, sizes=[16, 24, 32], cbs=cbs, recalibrate_bn=4)
    assert learn.progressive.bn_recalibrated is not None
    assert same_stats(stats_of(learn.model), recalibrated_again(learn, 32, 4)), \
        "the statistics after the fit are not the re-estimated ones (a checkpoint was loaded over them)"

# --- 3. BN statistics wiped by a loader that yields no batch

def six_images(tmp_path):
    path = stripes_folder(tmp_path/'six', n_train=3, n_valid=2, size=32)   # 6 training images
    return learner(path, bs=8)       # fastai's default drop_last=True: no full batch of 8

def test_recalibration_with_fewer_images_than_a_batch_uses_them(tmp_path):
    learn = six_images(tmp_path)
    assert len(learn.dls.train) == 0
    before = stats_of(learn.model)
    learn.recalibrate_bn(32, 4)
    after = stats_of(learn.model)
    assert not same_stats(before, after)
    for m,_ in after: assert not torch.equal(m, torch.zeros_like(m)), "statistics were reset and never re-estimated"

def test_recalibration_from_an_empty_loader_keeps_the_statistics_and_says_so(tmp_path):
    learn = six_images(tmp_path)
    before = stats_of(learn.model)
    empty = learn.dls.train.new(drop_last=True)
    with pytest.raises(ValueError, match='no batch'): learn.recalibrate_bn(32, 4, dl=empty)
    assert same_stats(before, stats_of(learn.model))

def test_a_fit_whose_recalibration_finds_no_batch_warns_and_keeps_the_statistics(tmp_path, monkeypatch):
    learn = six_images(tmp_path)
    import progfast.core.sizing
    real = progfast.core.sizing.sharp_loader
    monkeypatch.setattr(progfast.core.sizing, 'sharp_loader', lambda dl, seed=0: real(dl, seed).new(bs=100, drop_last=True))
    class Keep(Callback):
        order = 100
        def after_fit(self): self.stats = stats_of(self.learn.model)
    keep = Keep()
    with learn.no_bar(), learn.no_logging(), pytest.warns(UserWarning, match='not re-estimated'):
        learn.fit_progressive(1, 1e-3, sizes=32, cbs=keep, recalibrate_bn=2)
    assert learn.progressive.bn_recalibrated is None
    assert same_stats(keep.stats, stats_of(learn.model))

# --- 4. blurry images from the cache: the shorter side is what training needs

def test_the_cache_keeps_the_shorter_side_of_wide_images(tmp_path):
    src = tmp_path/'wide'
    for cls,horizontal in (('h', True), ('v', False)):
        (src/cls).mkdir(parents=True)
        for i in range(4):
            img = stripes_image(horizontal, 1000, np.random.default_rng(i)).resize((1000, 250))
            img.save(src/cls/f"{i}.png")
    data = read_folder(src, valid_pct=0.25, max_side=200, cache=tmp_path/'cache', progress=False)
    sizes = {open_image(f).size for f in data.train + data.valid}
    assert sizes == {(800, 200)}, sizes     # the shorter side capped at max_side, the aspect ratio kept
    dls = folder_dls(src, size=200, bs=2, valid_pct=0.25, max_side=200, cache=tmp_path/'cache', num_workers=0)
    assert dls.one_batch()[0].shape[-2:] == (200, 200)

def test_a_size_above_max_side_is_refused_for_any_aspect_ratio(tmp_path):
    with pytest.raises(ValueError, match='max_side'): folder_dls(tmp_path, size=300, max_side=250)

# --- 5. the LR multiplier of batch scaling applied twice under GradientAccumulation

class StepLRs(Callback):
    "The learning rate of each optimizer step that really ran (after GradientAccumulation decided)"
    order = GradientAccumulation.order + 1
    def __init__(self): self.lrs = []
    def before_step(self): self.lrs.append((self.opt.hypers[0]['lr'], self.learn.progressive_lr_mult()))

@pytest.mark.parametrize('how', ['fit', 'constant', 'mixsize'])
def test_batch_scaling_lr_under_gradient_accumulation(stripes, how):
    learn = learner(stripes, bs=4)
    lr = 1e-2
    ga = GradientAccumulation(n_acc=24)      # 16 images a step at 16 px: every other step cancelled
    spy = StepLRs()
    mults = []
    learn.progressive_lr_mult = lambda: next((cb.lr_mult for cb in learn.cbs if hasattr(cb, 'lr_mult') and cb.lr_mult != 1), 1.)
    with learn.no_bar(), learn.no_logging():
        if how == 'fit':
            learn.fit(3, lr, cbs=[ProgressiveResizeCallback([16, 16, 32], batch_scale=True, check_model=False), ga, spy])
        elif how == 'constant':
            learn.fit_progressive(3, lr, sizes=[16, 16, 32], batch_scale=True, policy='constant', cbs=[ga, spy],
                                  recalibrate_bn=False)
        else:
            learn.fit(2, lr, cbs=[MixSize([16, 24], mode='batch_scale', seed=0), ga, spy])
    assert spy.lrs, "no step ran"
    for step_lr,mult in spy.lrs: assert math.isclose(step_lr, lr*mult, rel_tol=1e-6), spy.lrs
    assert math.isclose(learn.opt.hypers[0]['lr'], lr, rel_tol=1e-9), "the optimizer kept a multiplied learning rate"

def test_a_cancelled_step_leaves_no_multiplier(stripes):
    "Any callback that cancels a batch before the step (not only GradientAccumulation)"
    class CancelEveryOther(Callback):
        order = 0
        def before_step(self):
            if self.iter % 2 == 0: raise CancelBatchException()
    learn = learner(stripes, bs=4)
    with learn.no_bar(), learn.no_logging():
        learn.fit(3, 1e-2, cbs=[ProgressiveResizeCallback([16, 16, 32], batch_scale=True, check_model=False),
                                CancelEveryOther()])
    assert math.isclose(learn.opt.hypers[0]['lr'], 1e-2, rel_tol=1e-9)

# --- 6. a one-image step: batch scaling with a per-iteration schedule

def test_plan_steps_never_leaves_a_tiny_last_step():
    from progfast.core.sizing import plan_steps
    for n_items in range(1, 200):
        for cap in (1, 3, 8, 32):
            steps = plan_steps(n_items, lambda seen: (16, cap))
            assert sum(n for _,n in steps) == n_items
            if n_items >= 2 and cap >= 2: assert min(n for _,n in steps) >= 2, (n_items, cap, steps)
            assert max(n for _,n in steps) <= max(cap + cap//2, 2), (n_items, cap, steps)

def test_per_iteration_batch_scaling_with_a_remainder_of_one(tmp_path):
    path = stripes_folder(tmp_path/'odd', n_train=17, n_valid=2, size=32)
    (path/'train'/'vertical'/'vertical_000.png').unlink()                    # 33 training images
    learn = learner(path, bs=32, model=nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1),
                                                     nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 2)))
    sched = RampSchedule(16, 32, start_at=0, end_at=0.5, multiple=1, per='iter')   # the second epoch at 32 px: 32 + 1
    with learn.no_bar(), learn.no_logging():
        learn.fit_progressive(2, 1e-3, sizes=sched, batch_scale=True, recalibrate_bn=False)
    assert learn.progressive.df.bs.min() >= 2

# --- 7. fastai's BnFreeze (and train_bn=False) respected by the re-estimation

def frozen_learner(path, **kwargs):
    body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    head = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 2))
    learn = learner(path, model=nn.Sequential(body, head), splitter=lambda m: [list(m[0].parameters()), list(m[1].parameters())],
                    train_bn=False, **kwargs)
    learn.freeze()
    return learn

def test_recalibration_leaves_frozen_bn_layers_alone(stripes):
    learn = frozen_learner(stripes)
    frozen,free = bn_layers(learn.model)
    f0,g0 = frozen.running_mean.clone(),free.running_mean.clone()
    learn.recalibrate_bn(32, 2)
    assert torch.equal(frozen.running_mean, f0), "a frozen BN layer was re-estimated"
    assert not torch.equal(free.running_mean, g0)
    learn.recalibrate_bn(32, 2, frozen_bn=True)
    assert not torch.equal(frozen.running_mean, f0)

def test_fit_progressive_with_bnfreeze_keeps_the_frozen_statistics(stripes):
    learn = frozen_learner(stripes, cbs=BnFreeze())
    frozen = bn_layers(learn.model)[0]
    f0 = frozen.running_mean.clone()
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(2, 1e-3, sizes=[16, 32], recalibrate_bn=2)
    assert torch.equal(frozen.running_mean, f0)
    assert learn.progressive.bn_recalibrated['layers'] == 1

# --- 8. errors without a way out

def test_a_cache_that_cannot_be_written_falls_back_to_the_source(stripes, tmp_path, monkeypatch):
    def full(*a, **k): raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(progfast.data.folders, '_write_atomic', full)
    with pytest.warns(UserWarning) as rec:
        data = read_folder(stripes, cache=tmp_path/'cache', max_side=16, progress=False)
    msgs = [str(w.message) for w in rec if 'cache' in str(w.message)]
    assert len(msgs) == 1, msgs
    assert str(tmp_path/'cache') in msgs[0] and 'cache=' in msgs[0], msgs[0]
    assert rec[0].filename == __file__, "the warning points at progfast's line, not the caller's"
    assert all(Path(f).exists() for f in data.train + data.valid)

@pytest.mark.parametrize('args,flag', [
    (['--cycle-mult-cycles', '100'], '--cycle-mult-cycles'),
    (['--sgdr-epochs', str(10**12)], '--sgdr-epochs'),
    (['--size', str(10**9)], '--size'),
    (['--unfreeze-epochs', str(10**9)], '--unfreeze-epochs'),
    (['--unfreeze-epochs', '3', '--cyclic-epochs', str(10**6)], '--cyclic-epochs'),
])
def test_huge_numbers_are_refused_in_one_line(stripes, tmp_path, capsys, args, flag):
    rc = main(['train', str(stripes), '--arch', 'khor', '--lr', '1e-3', '--out', str(tmp_path/'out'), *args])
    err = capsys.readouterr().err
    assert rc != 0 and flag in err and len(err.strip().splitlines()) == 1, err

def test_flags_are_not_abbreviated(stripes, tmp_path, capsys):
    "`--cycle-mult 9` silently meant --cycle-mult-cycles 9 (argparse's prefix matching)"
    with pytest.raises(SystemExit) as e: main(['train', str(stripes), '--arch', 'khor', '--lr', '1e-3', '--out', str(tmp_path/'o'), '--cycle-mult', '9'])
    err = capsys.readouterr().err
    assert e.value.code == 2 and '--cycle-mult' in err, err

def test_an_extreme_blur_sigma_is_refused():
    from progfast.core.blur import gaussian_blur
    with pytest.raises(ValueError, match='sigma'): gaussian_blur(torch.rand(1, 3, 8, 8), 1e12)

def test_bad_image_warning_points_at_the_callers_line(tmp_path):
    from progfast.testing import messy_folder
    path,_ = messy_folder(tmp_path/'messy')
    with pytest.warns(BadImageWarning) as rec: read_folder(path, cache=False, progress=False)
    assert rec[0].filename == __file__, rec[0].filename

def test_cli_messages_name_flags_not_python_arguments(tmp_path, capsys):
    path = stripes_folder(tmp_path/'one', n_train=1, n_valid=1, size=32)
    (path/'train'/'horizontal'/'horizontal_000.png').unlink()
    rc = main(['train', str(path), '--arch', 'khor', '--lr', '1e-3', '--size', '32', '--out', str(tmp_path/'out')])
    err = capsys.readouterr().err
    assert rc != 0 and 'min_per_class' not in err and '=' not in err.split('error:')[1], err

# --- 9. MixUp's loss function after an interrupted fit

class Interrupt(Callback):
    order = 100
    def after_batch(self):
        if self.training: raise KeyboardInterrupt()

@pytest.mark.parametrize('mix', [MixUp, CutMix])
def test_an_interrupted_mixup_fit_leaves_the_loss_function(stripes, mix):
    learn = learner(stripes)
    lf = learn.loss_func
    m = mix()
    with learn.no_bar(), learn.no_logging():
        with pytest.raises(KeyboardInterrupt):
            learn.fit_progressive(2, 1e-3, sizes=[16, 32], cbs=[m, Interrupt()], regularization=dict(mixup=[0.2, 0.4]))
        assert learn.loss_func is lf
        learn.fit_progressive(1, 1e-3, sizes=32, cbs=m)     # the next fit works
