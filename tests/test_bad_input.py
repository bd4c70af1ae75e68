"""Issue #10, "Bad input, end to end": every public entry point, from Python and from the command line, refuses bad
input with a clear error (the right exception, naming the bad value and what would be valid) or skips bad image files
by name, and always before training starts: no training batch runs and the weights stay as they were."""
import contextlib, io, math, warnings
from pathlib import Path
import numpy as np
import pytest
import torch, torch.nn as nn
from PIL import Image, ImageFile
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.metrics import accuracy
import progfast.studies.khor
from progfast.all import (ConstSchedule, LinearSchedule, StepSchedule, StageSchedule, RampSchedule, RandomBlur,
                          ProgressiveResizeCallback, MixSize, mixsize_distribution, LearnedResizer, with_resizer, folder_dls,
                          BadImageWarning, progressive_learner, compare_regimes, compare_khor, khor_net, fashion_mnist_dls)
from progfast.core.schedule import as_schedule
from progfast.core.blur import gaussian_blur
from progfast.callbacks.mixsize import SizeSampler
from progfast.cli import main
from progfast.testing import messy_folder, stripes_folder, stripes_image, tiny_cnn

# --- helpers

@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path_factory, monkeypatch):
    "Folder caches (the command line uses the default one) go to a temporary folder, never to the user's"
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path_factory.getbasetemp()/'progfast-cache'))

class Spy(Callback):
    "Counts the training batches that started"
    order = -20
    def __init__(self): self.n = 0
    def before_batch(self):
        if self.training: self.n += 1

def snapshot(model) -> dict: return {k: v.detach().clone() for k,v in model.state_dict().items()}

def assert_unchanged(model, snap):
    sd = model.state_dict()
    assert list(sd) == list(snap), "the model's parameters changed names"
    for k,v in snap.items(): assert torch.equal(sd[k], v), f"{k} changed"

def check_message(e, words):
    for w in words: assert w in str(e), f"{w!r} not in the error message: {e}"

def refused(learn, fn, exc, words):
    "`fn(learn)` raises `exc` naming `words` before any training batch; weights, dropout and transforms are as before"
    spy,snap = Spy(),snapshot(learn.model)
    drops = [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)]
    tfms = [list(dl.after_batch.fs) + list(dl.after_item.fs) for dl in learn.dls.loaders]
    learn.add_cb(spy)
    try:
        with learn.no_bar(), learn.no_logging(), pytest.raises(exc) as e: fn(learn)
    finally: learn.remove_cb(spy)
    check_message(e.value, words)
    assert spy.n == 0, f"{spy.n} training batch(es) ran before the error"
    assert_unchanged(learn.model, snap)
    assert [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)] == drops
    assert [list(dl.after_batch.fs) + list(dl.after_item.fs) for dl in learn.dls.loaders] == tfms
    return e.value

def fixed_cnn(n_out:int=2, size:int=32) -> nn.Sequential:
    "A model that takes `size`x`size` images only: a Linear layer after the flattened feature map"
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Dropout(0.1), nn.Flatten(), nn.Linear(4*size*size, n_out))

def tiny_arch(n_out): return tiny_cnn(n_out=n_out)     # a factory: progressive_learner builds it without downloads

def fixed_arch(n_out): return fixed_cnn(n_out)

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return stripes_folder(tmp_path_factory.mktemp('data'), n_train=12, n_valid=4, size=32)

@pytest.fixture(scope='module')
def dls(data): return folder_dls(data, size=32, bs=8, cache=False, progress=False)

@pytest.fixture
def learn(dls): return Learner(dls, tiny_cnn(), metrics=accuracy)

@pytest.fixture
def fixed_learn(dls): return Learner(dls, fixed_cnn(), metrics=accuracy)

def raises(exc, fn, words):
    with pytest.raises(exc) as e: fn()
    check_message(e.value, words)

# --- schedules

SCHEDULES = [
    ('as_schedule-unknown-name', lambda: as_schedule('fast', 32), ValueError, ["'fast'", "'khor'", "'gradual'"]),
    ('as_schedule-name-without-final-size', lambda: as_schedule('gradual'), ValueError, ["'gradual'", 'needs the final size']),
    ('as_schedule-None', lambda: as_schedule(None), TypeError, ['None', 'Schedule', 'a number']),
    ('as_schedule-bool', lambda: as_schedule(True), TypeError, ['True']),
    ('as_schedule-dict', lambda: as_schedule({'start': 8}), TypeError, ["{'start': 8}"]),
    ('as_schedule-nan', lambda: as_schedule(float('nan')), ValueError, ['nan', 'finite']),
    ('as_schedule-inf', lambda: as_schedule(math.inf), ValueError, ['inf', 'finite']),
    ('const-string', lambda: ConstSchedule('32'), TypeError, ["'32'"]),
    ('stages-empty', lambda: as_schedule([]), ValueError, ['at least one value']),
    ('stages-string-value', lambda: StageSchedule([16, 'a']), TypeError, ["'a'"]),
    ('stages-not-monotonic', lambda: StageSchedule([16, 32, 24]), ValueError, ['[16, 32, 24]', 'monotonic=False']),
    ('stages-epochs-count', lambda: StageSchedule([16, 32], epochs=[1, 2, 3]), ValueError, ['3 stage lengths for 2 stages']),
    ('stages-zero-length', lambda: StageSchedule([16, 32], epochs=[0, 2]), ValueError, ['got 0']),
    ('stages-bool-length', lambda: StageSchedule([16, 32], epochs=[True]), TypeError, ['got True']),
    ('stages-more-than-epochs', lambda: StageSchedule([8, 16, 24]).epoch_values(2), ValueError, ['3 stages', 'do not fit in 2 epochs']),
    ('stages-lengths-sum', lambda: StageSchedule([16, 32], epochs=[2, 3]).epoch_values(4), ValueError, ['sum to 5', '4']),
    ('linear-bad-per', lambda: LinearSchedule(8, 32, per='batch'), ValueError, ["'batch'", "'epoch'", "'iter'"]),
    ('linear-multiple-zero', lambda: LinearSchedule(8, 32, multiple=0), ValueError, ['multiple', 'got 0']),
    ('linear-multiple-float', lambda: LinearSchedule(8, 32, multiple=2.5), TypeError, ['got 2.5']),
    ('linear-string-start', lambda: LinearSchedule('8', 32), TypeError, ['start', "'8'"]),
    ('step-zero-step', lambda: StepSchedule(8, 0, end=32), ValueError, ['step must not be 0']),
    ('step-zero-every', lambda: StepSchedule(8, 2, every=0, end=32), ValueError, ['every', 'got 0']),
    ('step-no-end', lambda: StepSchedule(8, 2), ValueError, ['end is required']),
    ('step-wrong-direction', lambda: StepSchedule(8, -2, end=32), ValueError, ['-2', 'end=32']),
    ('step-nan-start', lambda: StepSchedule(float('nan'), 2, end=32), ValueError, ['start', 'nan']),
    ('ramp-bad-unit', lambda: RampSchedule(8, 32, unit='iter'), ValueError, ["'iter'", "'pct'"]),
    ('ramp-fraction-above-1', lambda: RampSchedule(8, 32, start_at=0.5, end_at=1.5), ValueError, ['1.5', '[0, 1]']),
    ('ramp-start-after-end', lambda: RampSchedule(8, 32, start_at=0.8, end_at=0.2), ValueError, ['0.8', '0.2']),
    ('ramp-negative-epoch', lambda: RampSchedule(8, 32, start_at=-1, end_at=2, unit='epoch'), ValueError, ['-1']),
    ('ramp-negative-multiple', lambda: RampSchedule(8, 32, multiple=-8), ValueError, ['got -8']),
    ('call-with-zero-epochs', lambda: LinearSchedule(8, 32)(0, 0), ValueError, ['n_epoch must be >= 1, got 0']),
    ('check-out-of-range', lambda: LinearSchedule(0.2, 1.0).check(4, 'dropout', 0, 1, hi_open=True), ValueError,
     ['dropout', 'gives 1', '[0, 1)']),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in SCHEDULES], ids=[c[0] for c in SCHEDULES])
def test_schedule_arguments(fn, exc, words): raises(exc, fn, words)

# --- blur

_x = torch.rand(2, 3, 8, 8)
BLURS = [
    ('blur-not-a-tensor', lambda: gaussian_blur(np.zeros((2, 3, 8, 8), np.float32), 1), TypeError, ['ndarray']),
    ('blur-3d', lambda: gaussian_blur(_x[0], 1), ValueError, ['(3, 8, 8)', '(B,C,H,W)']),
    ('blur-uint8', lambda: gaussian_blur(_x.mul(255).byte(), 1), TypeError, ['torch.uint8', 'float32']),
    ('blur-negative-sigma', lambda: gaussian_blur(_x, -1), ValueError, ['-1', '>= 0']),
    ('blur-nan-sigma', lambda: gaussian_blur(_x, float('nan')), ValueError, ['nan']),
    ('blur-inf-sigma', lambda: gaussian_blur(_x, math.inf), ValueError, ['inf']),
    ('blur-string-sigma', lambda: gaussian_blur(_x, '1'), TypeError, ["'1'"]),
    ('blur-bool-sigma', lambda: gaussian_blur(_x, True), TypeError, ['True']),
    ('blur-sigmas-wrong-length', lambda: gaussian_blur(_x, torch.tensor([1., 2., 3.])), ValueError, ['2 values', '(3,)']),
    ('blur-sigmas-2d', lambda: gaussian_blur(_x, torch.ones(2, 1)), ValueError, ['(2, 1)']),
    ('blur-negative-per-image-sigma', lambda: gaussian_blur(_x, torch.tensor([1., -1.])), ValueError, ['-1']),
    ('blur-negative-radius', lambda: gaussian_blur(_x, 1, radius=-1), ValueError, ['radius', '-1']),
    ('blur-float-radius', lambda: gaussian_blur(_x, 1, radius=1.5), TypeError, ['radius', '1.5']),
    ('randomblur-p-negative', lambda: RandomBlur(p=-0.1), ValueError, ['p must be a probability in [0, 1]', '-0.1']),
    ('randomblur-p-above-1', lambda: RandomBlur(p=1.5), ValueError, ['1.5']),
    ('randomblur-p-string', lambda: RandomBlur(p='0.4'), TypeError, ["'0.4'"]),
    ('randomblur-p-bool', lambda: RandomBlur(p=True), TypeError, ['True']),
    ('randomblur-sigma-negative', lambda: RandomBlur(sigma=-1), ValueError, ['-1']),
    ('randomblur-sigma-range-reversed', lambda: RandomBlur(sigma=(2, 1)), ValueError, ['(2, 1)', 'low > high']),
    ('randomblur-sigma-range-of-3', lambda: RandomBlur(sigma=(1, 2, 3)), ValueError, ['(1, 2, 3)', '(low, high)']),
    ('randomblur-sigma-tensor', lambda: RandomBlur(sigma=torch.tensor([1.])), TypeError, ['tensor', 'gaussian_blur']),
    ('randomblur-sigma-string', lambda: RandomBlur(sigma='1'), TypeError, ["'1'"]),
    ('randomblur-per-pixel', lambda: RandomBlur(per='pixel'), ValueError, ["'pixel'", "'batch'", "'image'"]),
    ('randomblur-ref-size-zero', lambda: RandomBlur(ref_size=0), ValueError, ['ref_size', 'got 0']),
    ('randomblur-ref-size-negative', lambda: RandomBlur(ref_size=-32), ValueError, ['got -32']),
    ('randomblur-ref-size-inf', lambda: RandomBlur(ref_size=math.inf), ValueError, ['got inf']),
    ('randomblur-ref-size-string', lambda: RandomBlur(ref_size='32'), TypeError, ["'32'"]),
    ('randomblur-set-p-later', lambda: setattr(RandomBlur(), 'p', 2), ValueError, ['got 2']),
    ('randomblur-set-per-later', lambda: setattr(RandomBlur(), 'per', 'pixel'), ValueError, ["'pixel'"]),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in BLURS], ids=[c[0] for c in BLURS])
def test_blur_arguments(fn, exc, words): raises(exc, fn, words)

# --- MixSize

MIXSIZES = [
    ('sizes-empty', lambda: MixSize([]), ValueError, ['sizes is empty']),
    ('sizes-a-number', lambda: MixSize(32), TypeError, ['got 32', '(16, 24, 32, 48)']),
    ('sizes-a-string', lambda: MixSize('16,32'), TypeError, ["'16,32'"]),
    ('sizes-zero', lambda: MixSize([16, 0]), ValueError, ['whole number of pixels >= 1, got 0']),
    ('sizes-fraction', lambda: MixSize([16, 24.5]), TypeError, ['got 24.5']),
    ('sizes-twice', lambda: MixSize([16, 16]), ValueError, ['lists 16 twice']),
    ('probs-wrong-count', lambda: MixSize([16, 32], [1.]), ValueError, ['probs has 1 values for 2 sizes']),
    ('probs-negative', lambda: MixSize([16, 32], [1.5, -0.5]), ValueError, ['>= 0, got -0.5']),
    ('probs-sum', lambda: MixSize([16, 32], [0.5, 0.6]), ValueError, ['sum to 1.1', 'must sum to 1']),
    ('probs-nan', lambda: MixSize([16, 32], [0.5, float('nan')]), ValueError, ['got nan']),
    ('probs-a-string', lambda: MixSize([16, 32], '0.5,0.5'), TypeError, ["'0.5,0.5'"]),
    ('probs-without-sizes', lambda: MixSize(probs=[0.5, 0.5]), ValueError, ['probs were given without sizes']),
    ('mode-unknown', lambda: MixSize([16, 32], mode='batch'), ValueError, ["'batch'", "'batch_scale'", "'duplicates'", "'plain'"]),
    ('lr-rule-unknown', lambda: MixSize([16, 32], lr_rule='log'), ValueError, ["'log'", "'sqrt'"]),
    ('base-size-zero', lambda: MixSize([16, 32], base_size=0), ValueError, ['base_size', 'got 0']),
    ('eval-size-negative', lambda: MixSize([16, 32], eval_size=-1), ValueError, ['eval_size', 'got -1']),
    ('eval-size-fraction', lambda: MixSize([16, 32], eval_size=24.5), TypeError, ['got 24.5']),
    ('seed-negative', lambda: MixSize([16, 32], seed=-1), ValueError, ['seed', 'got -1']),
    ('seed-fraction', lambda: MixSize([16, 32], seed=1.5), TypeError, ['got 1.5 (float)']),
    ('copy-tfm-not-callable', lambda: MixSize([16, 32], mode='duplicates', copy_tfm=3), TypeError, ['copy_tfm', 'got 3']),
    ('sampler-sizes-empty', lambda: SizeSampler([]), ValueError, ['sizes is empty']),
    ('sampler-seed-string', lambda: SizeSampler([8, 16], seed='a'), TypeError, ["got 'a' (str)"]),
    ('distribution-base-too-small', lambda: mixsize_distribution(2), ValueError, ['base_size 2 is too small']),
    ('distribution-base-zero', lambda: mixsize_distribution(0), ValueError, ['base_size', 'got 0']),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in MIXSIZES], ids=[c[0] for c in MIXSIZES])
def test_mixsize_arguments(fn, exc, words): raises(exc, fn, words)

MIXSIZE_FITS = [   # (id, model kind, fit, exc, words): refused when the fit starts, before any batch
    ('with-progressive-resize', 'tiny', lambda l: l.fit(1, cbs=[MixSize([16, 32]), ProgressiveResizeCallback([16, 32])]), ValueError,
     ['MixSize cannot train together with ProgressiveResizeCallback']),
    ('batch-scale-step-larger-than-epoch', 'tiny', lambda l: l.fit(1, cbs=MixSize([4, 32])), ValueError,
     ['a step at 4 px holds 512 images', "mode='plain'"]),
    ('sizes-the-model-cannot-take', 'fixed', lambda l: l.fit(1, cbs=MixSize([16, 32], mode='plain')), ValueError,
     ['the model cannot take 16x16 images', '(16, 32)']),
    ('batch-scale-sizes-the-model-cannot-take', 'fixed', lambda l: l.fit_one_cycle(1, cbs=MixSize([24, 32, 48])), ValueError,
     ['the model cannot take 24x24 images']),
    ('evaluate-sizes-empty', 'tiny', lambda l: l.evaluate_sizes([]), ValueError, ['sizes is empty']),
    ('evaluate-sizes-zero', 'tiny', lambda l: l.evaluate_sizes([16, 0]), ValueError, ['got 0']),
    ('evaluate-keep-bn-without-recalibration', 'tiny', lambda l: l.evaluate_sizes([16], keep_bn=True), ValueError,
     ['also pass recalibrate_bn=True']),
    ('evaluate-keep-bn-two-sizes', 'tiny', lambda l: l.evaluate_sizes([16, 32], recalibrate_bn=True, keep_bn=True), ValueError,
     ['one size', '2 sizes']),
    ('evaluate-zero-bn-batches', 'tiny', lambda l: l.evaluate_sizes([16], recalibrate_bn=True, n_batches_bn=0), ValueError,
     ['n_batches_bn', 'got 0']),
    ('evaluate-sizes-the-model-cannot-take', 'fixed', lambda l: l.evaluate_sizes([32, 48], progress=False), ValueError,
     ['the model cannot take 48x48 images', 'test sizes (32, 48)']),
    ('tta-sizes-a-number', 'tiny', lambda l: l.tta_sizes(32), TypeError, ['got 32']),
    ('tta-sizes-empty', 'tiny', lambda l: l.tta_sizes([]), ValueError, ['sizes is empty']),
    ('tta-sizes-the-model-cannot-take', 'fixed', lambda l: l.tta_sizes([16, 32], progress=False), ValueError,
     ['the model cannot take 16x16 images']),
]

@pytest.mark.parametrize('kind,fn,exc,words', [c[1:] for c in MIXSIZE_FITS], ids=[c[0] for c in MIXSIZE_FITS])
def test_mixsize_and_evaluation_refuse_before_running(learn, fixed_learn, kind, fn, exc, words):
    l = learn if kind == 'tiny' else fixed_learn
    bn = [(m.running_mean.clone(), m.running_var.clone()) for m in l.model.modules() if isinstance(m, nn.BatchNorm2d)]
    refused(l, fn, exc, words)
    for m,(mean,var) in zip([m for m in l.model.modules() if isinstance(m, nn.BatchNorm2d)], bn):
        assert torch.equal(m.running_mean, mean) and torch.equal(m.running_var, var)

# --- the learned resizer

RESIZERS = [
    ('out-size-zero', lambda: LearnedResizer(0), ValueError, ['output size', 'got 0']),
    ('out-size-negative', lambda: LearnedResizer(-32), ValueError, ['got -32']),
    ('out-size-fraction', lambda: LearnedResizer(32.5), TypeError, ['got 32.5']),
    ('out-size-one-value-tuple', lambda: LearnedResizer((32,)), ValueError, ['(height, width)', 'got (32,)']),
    ('out-size-zero-width', lambda: LearnedResizer((32, 0)), ValueError, ['got (32, 0)']),
    ('out-size-string', lambda: LearnedResizer('32'), TypeError, ["got '32'"]),
    ('out-size-bool', lambda: LearnedResizer(True), TypeError, ['got True']),
    ('n-filters-zero', lambda: LearnedResizer(32, n_filters=0), ValueError, ['n_filters', 'got 0']),
    ('n-res-blocks-negative', lambda: LearnedResizer(32, n_res_blocks=-1), ValueError, ['n_res_blocks', 'got -1']),
    ('in-channels-zero', lambda: LearnedResizer(32, in_channels=0), ValueError, ['in_channels', 'got 0']),
    ('interpolation-unknown', lambda: LearnedResizer(32, interpolation='lanczos'), ValueError, ["'lanczos'", "'bilinear'"]),
    ('set-output-size-zero', lambda: LearnedResizer(32).set_output_size(0), ValueError, ['got 0']),
    ('input-wrong-channels', lambda: LearnedResizer(16)(torch.zeros(1, 1, 8, 8)), ValueError, ['3-channel', '(1, 1, 8, 8)']),
    ('input-3d', lambda: LearnedResizer(16)(torch.zeros(3, 8, 8)), ValueError, ['(3, 8, 8)']),
    ('with-resizer-not-a-model', lambda: with_resizer('resnet18', 32), TypeError, ['str', 'Learner or an nn.Module']),
    ('with-resizer-twice', lambda: with_resizer(with_resizer(tiny_cnn(), 32), 32), ValueError, ['already has a LearnedResizer']),
    ('with-resizer-no-convolution', lambda: with_resizer(nn.Linear(4, 2), 32), ValueError, ['no convolution', 'in_channels=']),
    ('with-resizer-bad-out-size', lambda: with_resizer(tiny_cnn(), 0), ValueError, ['got 0']),
    ('with-resizer-bad-setting', lambda: with_resizer(tiny_cnn(), 32, n_filters=0), ValueError, ['n_filters', 'got 0']),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in RESIZERS], ids=[c[0] for c in RESIZERS])
def test_resizer_arguments(fn, exc, words): raises(exc, fn, words)

def test_with_resizer_bad_setting_leaves_the_learner_alone(learn):
    model,splitter = learn.model,learn.splitter
    refused(learn, lambda l: with_resizer(l, 32, interpolation='lanczos'), ValueError, ["'lanczos'"])
    assert learn.model is model and learn.splitter is splitter

def test_resizer_in_front_of_a_model_that_takes_one_size(fixed_learn):
    with_resizer(fixed_learn, 32)
    refused(fixed_learn, lambda l: l.fit_progressive(4, 1e-3, sizes='khor'), ValueError, ['the model cannot take 24x24 images'])
    assert fixed_learn.model.resizer.output_size == 32

# --- fit_progressive and ProgressiveResizeCallback

FITS = [   # (id, fit_progressive arguments, exc, words); 4 epochs unless given
    ('sizes-unknown-name', dict(sizes='fast'), ValueError, ["'fast'", "'khor'"]),
    ('sizes-empty-list', dict(sizes=[]), ValueError, ['at least one value']),
    ('sizes-zero', dict(sizes=[0, 32]), ValueError, ['gives 0', 'valid size values are in (0, inf]']),
    ('sizes-negative', dict(sizes=-32), ValueError, ['gives -32']),
    ('sizes-reach-zero', dict(sizes=LinearSchedule(32, 0)), ValueError, ['gives 0']),
    ('sizes-nan', dict(sizes=[16, float('nan')]), ValueError, ['nan']),
    ('sizes-a-dict', dict(sizes={'start': 16}), TypeError, ["{'start': 16}"]),
    ('sizes-more-stages-than-epochs', dict(sizes=[8, 16, 24, 32, 40]), ValueError, ['5 stages', 'do not fit in 4 epochs']),
    ('final-size-zero', dict(sizes='khor', final_size=0), ValueError, ['final_size', 'got 0']),
    ('final-size-string', dict(sizes='khor', final_size='big'), TypeError, ['final_size', "got 'big'"]),
    ('blur-unknown-name', dict(blur='strong'), ValueError, ["'strong'", "'khor'", "'linear'"]),
    ('blur-negative', dict(blur=-1), ValueError, ['sigma', 'gives -1', '[0']),
    ('blur-stages-below-zero', dict(blur=[2, -1]), ValueError, ['gives -1']),
    ('blur-a-dict', dict(blur={'sigma': 2}), TypeError, ['blur sigma', "{'sigma': 2}"]),
    ('blur-p-negative', dict(blur='khor', blur_p=-0.1), ValueError, ['blur_p', 'got -0.1']),
    ('blur-p-above-1', dict(blur='khor', blur_p=1.5), ValueError, ['got 1.5']),
    ('blur-p-string', dict(blur='khor', blur_p='high'), TypeError, ["got 'high'"]),
    ('blur-p-without-blur', dict(blur_p=1.5), ValueError, ['p must be a probability in [0, 1], got 1.5']),
    ('blur-per-unknown', dict(blur='khor', blur_per='pixel'), ValueError, ["'pixel'", "'batch'", "'image'"]),
    ('blur-per-without-blur', dict(blur_per='pixel'), ValueError, ["'pixel'"]),
    ('blur-ref-size-zero', dict(blur='khor', blur_ref_size=0), ValueError, ['ref_size', 'got 0']),
    ('blur-ref-size-without-blur', dict(blur_ref_size=-32), ValueError, ['got -32']),
    ('regularization-not-a-dict', dict(regularization='dropout'), TypeError, ['regularization must be a dict', "'dropout'"]),
    ('regularization-unknown', dict(regularization=dict(weight_decay=0.1)), ValueError, ["'weight_decay'", "'dropout'", "'wd'"]),
    ('regularization-dropout-1', dict(regularization=dict(dropout=[0.2, 1.0])), ValueError, ['dropout', 'gives 1', '[0, 1)']),
    ('regularization-dropout-negative', dict(regularization=dict(dropout=[0.2, -0.1])), ValueError, ['gives -0.1']),
    ('regularization-dropout-name', dict(regularization=dict(dropout='khor')), ValueError, ["dropout schedule 'khor'"]),
    ('regularization-wd-negative', dict(regularization=dict(wd=-0.1)), ValueError, ['wd', 'gives -0.1']),
    ('regularization-mixup-zero', dict(regularization=dict(mixup=0)), ValueError, ['mixup', 'gives 0', '(0, inf]']),
    ('regularization-mixup-without-callback', dict(regularization=dict(mixup=0.4)), ValueError, ['no MixUp or CutMix callback']),
    ('policy-unknown', dict(policy='adam'), ValueError, ["'adam'", "'one_cycle'", "'sgdr'"]),
    ('mode-unknown', dict(mode='gpu'), ValueError, ["'gpu'", "'batch'", "'loader'"]),
    ('mode-loader-per-iteration', dict(mode='loader', sizes=LinearSchedule(16, 32, per='iter')), ValueError, ["per='epoch'"]),
    ('valid-size-unknown', dict(valid_size='largest'), ValueError, ["'largest'", "'final'", "'current'"]),
    ('start-epoch-negative', dict(start_epoch=-1), ValueError, ['start_epoch', 'from 0 to 3', 'got -1']),
    ('start-epoch-past-the-end', dict(start_epoch=4), ValueError, ['got 4']),
    ('start-epoch-fraction', dict(start_epoch=1.5), TypeError, ['got 1.5']),
    ('start-epoch-bool', dict(start_epoch=True), TypeError, ['got True']),
    ('freeze-epochs-zero', dict(policy='fine_tune', freeze_epochs=0), ValueError, ['freeze_epochs (0)', 'between 1 and']),
    ('freeze-epochs-all', dict(policy='fine_tune', freeze_epochs=4), ValueError, ['freeze_epochs (4)']),
    ('freeze-epochs-fraction', dict(policy='fine_tune', freeze_epochs=1.5), TypeError, ['freeze_epochs', 'got 1.5']),
    ('n-epoch-zero', dict(n_epoch=0), ValueError, ['n_epoch', 'got 0']),
    ('n-epoch-fraction', dict(n_epoch=2.5), TypeError, ['got 2.5']),
]

@pytest.mark.parametrize('kwargs,exc,words', [c[1:] for c in FITS], ids=[c[0] for c in FITS])
def test_fit_progressive_refuses_before_training(learn, kwargs, exc, words):
    kwargs = dict(kwargs); n = kwargs.pop('n_epoch', 4)
    refused(learn, lambda l: l.fit_progressive(n, 1e-3, **kwargs), exc, words)
    assert not hasattr(learn, 'progressive') or not learn.progressive.history

CALLBACKS = [   # ProgressiveResizeCallback given to fastai's own fit methods
    ('one-cycle-sizes-zero', lambda l: l.fit_one_cycle(2, 1e-3, cbs=ProgressiveResizeCallback([0, 32])), ValueError, ['gives 0']),
    ('fit-dropout-without-dropout-layers', lambda l: l.fit(2, 1e-3, cbs=ProgressiveResizeCallback(32, regularization=dict(dropout=0.3))),
     ValueError, ['no dropout modules']),
    ('constructor-bad-n-epoch', lambda l: ProgressiveResizeCallback(32, n_epoch=0), ValueError, ['n_epoch', 'got 0']),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in CALLBACKS], ids=[c[0] for c in CALLBACKS])
def test_progressive_resize_callback_refuses_before_training(dls, fn, exc, words):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    refused(Learner(dls, model), fn, exc, words)

def test_fit_progressive_sizes_the_model_cannot_take(fixed_learn):
    refused(fixed_learn, lambda l: l.fit_progressive(4, 1e-3, sizes='khor'), ValueError,
            ['the model cannot take 24x24 images', 'StepSchedule(24 -> 32'])
    refused(fixed_learn, lambda l: l.fit_progressive(2, 1e-3, sizes=[32, 64]), ValueError, ['cannot take 64x64 images'])

def test_loader_mode_needs_a_size_transform():
    dls = fashion_mnist_dls(bs=8, n_train=40, n_valid=20)     # in memory, no size transform
    learn = Learner(dls, tiny_cnn(n_in=1, n_out=10))
    refused(learn, lambda l: l.fit_progressive(2, 1e-3, sizes=[14, 28], mode='loader'), ValueError,
            ["mode='loader' needs a transform", "mode='batch'"])

# --- image folders

BAD_FILES = [('corrupt', 'corrupt.jpg', 'not an image Pillow can read'), ('truncated', 'truncated.jpg', 'truncated image data'),
             ('zero-byte', 'empty.jpg', 'empty file (0 bytes)'), ('non-image-extension', 'notes.txt', "not an image file (extension '.txt')"),
             ('text-named-jpg', 'text.jpg', 'not an image Pillow can read')]
SPECIAL = ['gray.png', 'gray16.png', 'rgba.png', 'cmyk.jpg', 'palette.png', 'exif_rotated.jpg', 'large.jpg']

@pytest.fixture(scope='module')
def messy(tmp_path_factory):
    path,bad = messy_folder(tmp_path_factory.mktemp('messy'))
    with pytest.warns(BadImageWarning) as rec:
        dls = folder_dls(path, size=32, bs=8, cache=tmp_path_factory.mktemp('messy-cache'), progress=False)
    return dls,'\n'.join(str(w.message) for w in rec if issubclass(w.category, BadImageWarning))

@pytest.mark.parametrize('name,reason', [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_bad_file_reported_by_name_and_skipped(messy, name, reason):
    dls,report = messy
    line = next((l for l in report.splitlines() if name in l), None)
    assert line is not None and reason in line, report
    assert [r for f,r in dls.bad_files.items() if f.name == name] == [next(r for f,r in dls.bad_files.items() if f.name == name)]
    assert reason in next(r for f,r in dls.bad_files.items() if f.name == name)
    used = {Path(dls.folder.sources[i]).name for i in list(dls.train_ds.items) + list(dls.valid_ds.items)}
    assert name not in used

def _item(dls, name):
    "The dataset and index of the item made from the source file `name`"
    for ds in (dls.train_ds, dls.valid_ds):
        for i,it in enumerate(ds.items):
            if Path(dls.folder.sources[it]).name == name: return ds,i
    raise AssertionError(f"{name} is not among the items")

@pytest.mark.parametrize('name', SPECIAL, ids=[n.split('.')[0].replace('_', '-') for n in SPECIAL])
def test_special_image_is_used_as_8bit_rgb(messy, name):
    dls,_ = messy
    ds,i = _item(dls, name)
    img = ds[i][0]
    assert img.mode == 'RGB'
    a = np.asarray(img)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    assert a.std() > 5, f"{name} came out flat: its values were clipped or lost"
    assert max(img.size) <= 250                                       # large images are stored downsized

def test_16bit_image_keeps_its_values(messy):
    "gray16.png holds the values of gray.png times 257: read as 8 bits they must come back, not be clipped to white"
    dls,_ = messy
    gray,gray16 = (np.asarray(ds[i][0], dtype=float) for ds,i in (_item(dls, 'gray.png'), _item(dls, 'gray16.png')))
    assert np.abs(gray16 - gray).max() <= 1 and gray16.std() > 20

def test_messy_folder_trains_one_epoch_on_every_good_image(messy):
    dls,_ = messy
    learn = Learner(dls, tiny_cnn(), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert len(learn.recorder.values) == 1 and all(math.isfinite(v) for v in learn.recorder.values[0])

def _record_decoded_sizes(monkeypatch) -> list:
    "Record the size of every image Pillow decodes (after any draft mode reduced it)"
    sizes,load = [],ImageFile.ImageFile.load
    def spy(self):
        sizes.append((getattr(self, 'filename', ''), self.size))
        return load(self)
    monkeypatch.setattr(ImageFile.ImageFile, 'load', spy)
    return sizes

def test_huge_jpeg_is_downsized_through_the_cache_without_full_decoding(tmp_path, monkeypatch):
    path = stripes_folder(tmp_path/'data', n_train=8, n_valid=2, size=32)
    h = np.linspace(0, 255, 4000, dtype=np.float32)[None, :, None]
    v = np.linspace(0, 255, 3000, dtype=np.float32)[:, None, None]
    huge = path/'train'/'horizontal'/'huge.jpg'
    Image.fromarray(((h + v) / 2 * np.ones(3, np.float32)).astype(np.uint8)).save(huge, quality=85)
    decoded = _record_decoded_sizes(monkeypatch)
    dls = folder_dls(path, size=32, bs=8, cache=tmp_path/'cache', progress=False)
    seen = [s for f,s in decoded if Path(f).name == 'huge.jpg']
    assert seen and max(max(s) for s in seen) <= 1000, f"huge.jpg was decoded at {seen}, not at a reduced scale"
    ds,i = _item(dls, 'huge.jpg')
    cached = Path(ds.items[i])
    assert tmp_path/'cache' in cached.parents and min(Image.open(cached).size) == 250   # the shorter side is capped
    assert Image.open(cached).size == (round(250*4000/3000), 250)
    xb,_ = dls.train.one_batch()
    assert xb.shape[1:] == (3, 32, 32)

def _bomb_folder(path, bomb_side):
    path = stripes_folder(path, n_train=4, n_valid=2, size=32)
    Image.fromarray(np.full((bomb_side, bomb_side, 3), 128, np.uint8)).save(path/'train'/'vertical'/'bomb.png')
    return path

def test_image_above_twice_the_decompression_bomb_limit_is_reported_and_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 64*64)           # 32 px stripes pass; 200x200 is over twice the limit
    path = _bomb_folder(tmp_path/'data', 200)
    with pytest.warns(BadImageWarning) as rec: dls = folder_dls(path, size=32, bs=4, cache=tmp_path/'cache', progress=False)
    msg = '\n'.join(str(w.message) for w in rec if issubclass(w.category, BadImageWarning))
    assert 'bomb.png' in msg and 'too many pixels' in msg
    assert [f.name for f in dls.bad_files] == ['bomb.png']
    assert 'bomb.png' not in {Path(dls.folder.sources[i]).name for i in dls.train_ds.items}
    assert len(dls.train_ds) == 8

def test_image_just_above_the_decompression_bomb_limit_is_used_with_pillows_warning(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 64*64)           # 80x80 is above the limit but below twice it
    path = _bomb_folder(tmp_path/'data', 80)
    with pytest.warns(Image.DecompressionBombWarning):
        dls = folder_dls(path, size=32, bs=4, cache=tmp_path/'cache', progress=False)
    assert not dls.bad_files
    ds,i = _item(dls, 'bomb.png')
    with pytest.warns(Image.DecompressionBombWarning): assert ds[i][0].size == (80, 80)

def _one_class(p):
    stripes_folder(p, n_train=4, n_valid=2, size=16); import shutil; shutil.rmtree(p/'train'/'vertical'); shutil.rmtree(p/'valid'/'vertical')
    return p

def _flat(p, classes, n=4, corrupt=()):
    rng = np.random.default_rng(0)
    for c in classes:
        (p/c).mkdir(parents=True)
        for i in range(n): stripes_image(c.startswith('h'), 16, rng).save(p/c/f'{i}.png')
    for c in corrupt:
        (p/c).mkdir(parents=True, exist_ok=True)
        for i in range(3): (p/c/f'bad{i}.jpg').write_bytes(b'not a jpeg at all')
    return p

def _file(p): p.parent.mkdir(parents=True, exist_ok=True); p.write_text('x'); return p
def _empty(p): p.mkdir(parents=True); return p

def _loose(p):
    p.mkdir(parents=True)
    for i in range(4): stripes_image(True, 16, i).save(p/f'{i}.png')
    return p

def _imagenet_differ(p):
    stripes_folder(p, n_train=2, n_valid=1, size=16); (p/'valid'/'vertical').rename(p/'valid'/'diagonal'); return p

def _both_valid(p): stripes_folder(p, n_train=2, n_valid=1, size=16); (p/'val').mkdir(); return p

FOLDERS = [   # (id, make(path) -> folder, exc, words)
    ('path-does-not-exist', lambda p: p/'nope', FileNotFoundError, ['nope', 'does not exist']),
    ('file-not-folder', lambda p: _file(p/'images.zip'), NotADirectoryError, ['images.zip', 'is a file, not a folder']),
    ('empty-folder', lambda p: _empty(p/'empty'), ValueError, ['empty', 'is empty']),
    ('one-class', lambda p: _one_class(p/'one'), ValueError, ["only one class folder ('horizontal')", 'at least two classes']),
    ('one-class-flat', lambda p: _flat(p/'one', ['ah']), ValueError, ["only one class folder ('ah')"]),
    ('images-without-class-folders', lambda p: _loose(p/'loose'), ValueError, ['no class subfolders', '4 file(s)']),
    ('class-with-one-image', lambda p: _flat(p/'few', ['ah', 'bv'], n=1), ValueError, ["'ah' (1)", "'bv' (1)", 'min_per_class=2']),
    ('class-of-bad-files-only', lambda p: _flat(p/'bad', ['ah'], corrupt=['bv']), ValueError, ["'bv' (0)", '3 bad file(s)']),
    ('train-and-valid-classes-differ', lambda p: _imagenet_differ(p/'inet'), ValueError, ["only in train/: ['vertical']", "['diagonal']"]),
    ('both-valid-and-val', lambda p: _both_valid(p/'inet'), ValueError, ['both valid/ and val/']),
]

@pytest.mark.parametrize('make,exc,words', [c[1:] for c in FOLDERS], ids=[c[0] for c in FOLDERS])
def test_folder_problems(tmp_path, make, exc, words):
    path = make(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', BadImageWarning)
        raises(exc, lambda: folder_dls(path, size=16, bs=2, cache=tmp_path/'cache', progress=False), words)

FOLDER_ARGS = [
    ('size-zero', dict(size=0), ['size', 'got 0']),
    ('size-above-max-side', dict(size=300), ['size=300', 'max_side=250']),
    ('bs-zero', dict(bs=0), ['bs', 'got 0']),
    ('bs-above-training-images', dict(bs=64), ['bs=64', 'training images', 'bs <= 24']),
    ('crop-unknown', dict(crop='middle'), ["'middle'", "'center'"]),
    ('min-scale-zero', dict(crop='random', min_scale=0), ['min_scale', 'got 0']),
    ('valid-pct-one', dict(valid_pct=1.0), ['valid_pct', 'got 1.0']),
    ('bad-files-unknown', dict(bad_files='ignore'), ["'ignore'", "'skip'", "'raise'"]),
    ('seed-negative', dict(seed=-1), ['seed', 'got -1']),
    ('min-per-class-one', dict(min_per_class=1), ['min_per_class', 'got 1']),
    ('max-side-zero', dict(max_side=0, size=16), ['max_side=0']),
]

@pytest.mark.parametrize('kwargs,words', [c[1:] for c in FOLDER_ARGS], ids=[c[0] for c in FOLDER_ARGS])
def test_folder_dls_arguments(data, tmp_path, kwargs, words):
    kw = dict(dict(size=32, bs=8, cache=tmp_path/'cache', progress=False), **kwargs)
    raises(ValueError, lambda: folder_dls(data, **kw), words)
    assert not (tmp_path/'cache').exists() or not any((tmp_path/'cache').rglob('*.png'))

def test_folder_dls_cache_argument_type(data):
    raises(TypeError, lambda: folder_dls(data, size=32, bs=8, cache=3, progress=False), ['cache', 'got 3'])

# --- one-line learners, fit_entr, weights

@pytest.fixture(scope='module')
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp('weights')
    torch.save(khor_net(n_out=2).state_dict(), d/'khor.pth')
    torch.save(khor_net(n_out=10).state_dict(), d/'khor10.pth')
    torch.save(tiny_cnn().state_dict(), d/'tiny.pth')
    (d/'garbage.pth').write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (d/'notes.pth').write_text('these are not weights\n')
    torch.save([torch.zeros(3)], d/'list.pth')
    torch.save({}, d/'empty.pth')
    torch.save(torch.zeros(3), d/'tensor.pth')
    (d/'garbage.safetensors').write_bytes(b'\x00' * 64)
    return d

LEARNERS = [   # (id, progressive_learner arguments (source: the stripes folder), exc, words)
    ('arch-unknown', dict(arch='resnet9000'), ValueError, ["unknown arch 'resnet9000'", 'resnet18', 'timm']),
    ('arch-a-model-instance', dict(arch=tiny_cnn()), TypeError, ['model instance', 'Sequential']),
    ('arch-a-number', dict(arch=42), TypeError, ['got 42']),
    ('regime-unknown', dict(arch='khor', pretrained=False, regime='fast'), ValueError, ["'fast'", "'gradual'"]),
    ('ps-one', dict(arch='khor', pretrained=False, ps=1.0), ValueError, ['ps', 'got 1.0']),
    ('size-zero', dict(arch='khor', pretrained=False, size=0), ValueError, ['size', 'got 0']),
    ('khor-pretrained-without-weights', dict(arch='khor', pretrained=True), ValueError, ['no pretrained weights', 'weights=']),
    ('weights-with-pretrained-false', dict(arch='khor', pretrained=False, weights='khor.pth'), ValueError, ['pretrained=False']),
    ('weights-missing', dict(arch='khor', weights='missing.pth'), FileNotFoundError, ['missing.pth', 'does not exist']),
    ('weights-missing-torchvision', dict(arch='resnet18', weights='missing.pth'), FileNotFoundError, ['missing.pth']),
    ('weights-garbage', dict(arch='khor', weights='garbage.pth'), ValueError, ['garbage.pth', 'cannot read weights']),
    ('weights-text', dict(arch='khor', weights='notes.pth'), ValueError, ['notes.pth', 'cannot read weights']),
    ('weights-garbage-safetensors', dict(arch='khor', weights='garbage.safetensors'), ValueError, ['garbage.safetensors']),
    ('weights-a-list', dict(arch='khor', weights='list.pth'), ValueError, ['holds a list, not a state dict']),
    ('weights-an-empty-dict', dict(arch='khor', weights='empty.pth'), ValueError, ['holds a dict, not a state dict']),
    ('weights-a-tensor', dict(arch='khor', weights='tensor.pth'), ValueError, ['holds a Tensor, not a state dict']),
    ('weights-of-another-arch', dict(arch='khor', weights='tiny.pth'), ValueError, ['tiny.pth', 'does not hold weights for khor', 'missing']),
    ('weights-other-number-of-classes', dict(arch='khor', weights='khor10.pth'), ValueError, ['of another shape', '(10, 64, 1, 1)']),
    ('weights-of-khor-for-resnet18', dict(arch='resnet18', weights='khor.pth'), ValueError, ['does not hold weights for resnet18']),
    ('weights-garbage-for-timm', dict(arch='resnet10t', weights='garbage.pth'), ValueError, ['cannot read weights']),
    ('source-not-a-folder', dict(source=42), TypeError, ['source', 'int']),
    ('source-missing', dict(source='missing-folder'), FileNotFoundError, ['missing-folder', 'does not exist']),
]

@pytest.mark.parametrize('kwargs,exc,words', [c[1:] for c in LEARNERS], ids=[c[0] for c in LEARNERS])
def test_progressive_learner_arguments(data, weights, tmp_path, kwargs, exc, words):
    kw = dict(kwargs)
    if isinstance(kw.get('weights'), str): kw['weights'] = weights/kw['weights']
    if kw.get('source') == 'missing-folder': kw['source'] = tmp_path/'missing-folder'
    source = kw.pop('source', data)
    kw = dict(dict(size=32, bs=8, dls_kwargs=dict(cache=tmp_path/'cache', progress=False)), **kw)
    raises(exc, lambda: progressive_learner(source, **kw), words)

ENTRS = [   # (id, fit_entr arguments, exc, words)
    ('regime-unknown', dict(regime='fast'), ValueError, ["'fast'"]),
    ('regime-more-stages-than-epochs', dict(regime=[8, 16, 24, 32, 40], sgdr_epochs=4), ValueError, ['do not fit in 4 epochs']),
    ('final-size-zero', dict(final_size=0), ValueError, ['final_size', 'got 0']),
    ('sgdr-epochs-zero', dict(sgdr_epochs=0), ValueError, ['sgdr_epochs', 'got 0']),
    ('sgdr-and-per-stage', dict(sgdr_epochs=4, epochs_per_stage=1), ValueError, ['not both']),
    ('epochs-per-stage-zero', dict(epochs_per_stage=0), ValueError, ['epochs_per_stage', 'got 0']),
    ('cyclic-epochs-negative', dict(cyclic_epochs=-1), ValueError, ['cyclic_epochs', 'got -1']),
    ('cycle-len-zero', dict(cycle_len=0), ValueError, ['cycle_len', 'got 0']),
    ('cycle-mult-zero', dict(cycle_mult=0), ValueError, ['cycle_mult', 'got 0']),
    ('unfreeze-epochs-fraction', dict(unfreeze_epochs=1.5), TypeError, ['unfreeze_epochs', 'got 1.5']),
    ('lr-negative', dict(lr=-1e-3), ValueError, ['lr must be a number > 0', 'got -0.001']),
    ('lr-string', dict(lr='fast'), TypeError, ["got 'fast'"]),
    ('no-lr-and-no-lr-finder', dict(lr=None, lr_find=False), ValueError, ['pass lr=']),
    ('lr-find-iters-zero', dict(lr=None, lr_find_iters=0), ValueError, ['lr_find_iters', 'got 0']),
    ('tta-n-zero', dict(tta_n=0), ValueError, ['tta_n', 'got 0']),
    ('mode-unknown', dict(mode='gpu'), ValueError, ["'gpu'"]),
    ('mode-unknown-with-lr-finder', dict(lr=None, mode='gpu'), ValueError, ["'gpu'"]),
]

@pytest.mark.parametrize('kwargs,exc,words', [c[1:] for c in ENTRS], ids=[c[0] for c in ENTRS])
def test_fit_entr_refuses_before_training(dls, kwargs, exc, words):
    learn = progressive_learner(dls, tiny_arch, regime='gradual')
    kw = dict(dict(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1, lr=1e-3, tta_n=1), **kwargs)
    if 'epochs_per_stage' in kwargs and 'sgdr_epochs' not in kwargs: kw.pop('sgdr_epochs')
    refused(learn, lambda l: l.fit_entr(**kw), exc, words)
    assert not hasattr(learn, 'entr_result')

@pytest.mark.parametrize('lr', [1e-3, None], ids=['lr-given', 'lr-finder'])
def test_one_line_learner_with_a_model_that_takes_one_size(dls, lr):
    learn = progressive_learner(dls, fixed_arch, regime='gradual')
    refused(learn, lambda l: l.fit_entr(sgdr_epochs=4, lr=lr, lr_find_iters=5), ValueError, ['the model cannot take 13x13 images'])
    refused(learn, lambda l: l.fit_progressive(4, 1e-3), ValueError, ['the model cannot take 13x13 images'])

COMPARES = [   # (id, compare_regimes arguments, exc, words)
    ('regimes-empty', dict(regimes=[]), ValueError, ['regimes is empty']),
    ('regimes-unknown', dict(regimes=['fixed', 'fast']), ValueError, ["'fast'"]),
    ('regimes-twice', dict(regimes=['fixed', 'fixed']), ValueError, ["'fixed' appears twice"]),
    ('seeds-empty', dict(seeds=[]), ValueError, ['seeds must be a seed or a non-empty list of seeds']),
    ('seeds-not-integers', dict(seeds=['a']), TypeError, ["got 'a' (str)"]),
    ('archs-empty', dict(archs=[]), ValueError, ['archs is empty']),
    ('archs-unknown', dict(archs=['resnet9000']), ValueError, ["unknown arch 'resnet9000'"]),
    ('fit-unknown', dict(fit='sgd'), ValueError, ["got 'sgd'", "'entr'"]),
    ('recipe-bad-epochs', dict(sgdr_epochs=0), ValueError, ['sgdr_epochs', 'got 0']),
    ('recipe-too-few-epochs-for-the-stages', dict(regimes=['gradual'], sgdr_epochs=2), ValueError, ['do not fit in 2 epochs']),
    ('source-missing', dict(source='missing-folder'), FileNotFoundError, ['does not exist']),
    ('source-not-a-folder', dict(source=42), TypeError, ['int']),
]

@pytest.mark.parametrize('kwargs,exc,words', [c[1:] for c in COMPARES], ids=[c[0] for c in COMPARES])
def test_compare_regimes_refuses_before_training(dls, tmp_path, kwargs, exc, words):
    spy,kw = Spy(),dict(kwargs)
    if kw.get('source') == 'missing-folder': kw['source'] = tmp_path/'missing-folder'
    source = kw.pop('source', dls)
    kw = dict(dict(archs=[tiny_arch], regimes=['fixed'], sgdr_epochs=4, lr=1e-3, learner_kwargs=dict(cbs=spy), quiet=True), **kw)
    fs = [list(dl.after_batch.fs) for dl in dls.loaders]
    raises(exc, lambda: compare_regimes(source, **kw), words)
    assert spy.n == 0 and [list(dl.after_batch.fs) for dl in dls.loaders] == fs

KHORS = [   # (id, compare_khor arguments, exc, words)
    ('approach-unknown', dict(approaches=['normal', 'fast']), ValueError, ["unknown approach 'fast'", "'proposed'"]),
    ('approach-a-string', dict(approaches='fast'), ValueError, ["unknown approach 'fast'"]),
    ('seeds-empty', dict(seeds=[]), ValueError, ['seeds must be a seed or a non-empty list of seeds']),
    ('seeds-not-integers', dict(seeds=['a']), TypeError, ["got 'a' (str)"]),
    ('seeds-negative', dict(seeds=[-1]), ValueError, ['got -1']),
    ('epochs-zero', dict(epochs=0), ValueError, ['epochs', 'got 0']),
    ('epochs-fraction', dict(epochs=1.5), TypeError, ['got 1.5']),
    ('lr-negative', dict(lr=-0.01), ValueError, ['lr must be a number > 0, got -0.01']),
    ('lr-zero', dict(lr=0), ValueError, ['got 0']),
    ('bs-zero', dict(bs=0), ValueError, ['bs', 'got 0']),
    ('n-train-zero', dict(n_train=0), ValueError, ['from 1 to 6000', 'got 0']),
    ('n-train-too-many', dict(n_train=10**6), ValueError, ['got 1000000']),
]

@pytest.mark.parametrize('kwargs,exc,words', [c[1:] for c in KHORS], ids=[c[0] for c in KHORS])
def test_compare_khor_refuses_before_training(monkeypatch, kwargs, exc, words):
    runs = []
    monkeypatch.setattr(progfast.studies.khor, 'run_khor', lambda *a, **k: runs.append(a))
    raises(exc, lambda: compare_khor(**dict(dict(epochs=1, n_train=100, show=False, log=None), **kwargs)), words)
    assert runs == []

MODELS_AND_DATA = [
    ('khor-n-in-zero', lambda: khor_net(n_in=0), ValueError, ['n_in', 'got 0']),
    ('khor-n-out-zero', lambda: khor_net(n_out=0), ValueError, ['n_out', 'got 0']),
    ('khor-n-in-fraction', lambda: khor_net(n_in=1.5), TypeError, ['got 1.5']),
    ('khor-p-one', lambda: khor_net(p=1.0), ValueError, ['[0, 1)', 'got 1.0']),
    ('khor-p-negative', lambda: khor_net(p=-0.1), ValueError, ['got -0.1']),
    ('khor-p-string', lambda: khor_net(p='0.4'), TypeError, ["got '0.4'"]),
    ('khor-p-nan', lambda: khor_net(p=float('nan')), ValueError, ['got nan']),
    ('fashion-bs-zero', lambda: fashion_mnist_dls(bs=0), ValueError, ['bs', 'got 0']),
    ('fashion-bs-negative', lambda: fashion_mnist_dls(bs=-1), ValueError, ['got -1']),
    ('fashion-size-zero', lambda: fashion_mnist_dls(size=0), ValueError, ['size', 'got 0']),
    ('fashion-size-one-value', lambda: fashion_mnist_dls(size=(28,)), ValueError, ['(height, width)', 'got (28,)']),
    ('fashion-n-train-zero', lambda: fashion_mnist_dls(n_train=0), ValueError, ['from 1 to 6000', 'got 0']),
    ('fashion-n-valid-too-many', lambda: fashion_mnist_dls(n_valid=5000), ValueError, ['from 1 to 1000', 'got 5000']),
    ('fashion-n-train-fraction', lambda: fashion_mnist_dls(n_train=2.5), TypeError, ['got 2.5']),
    ('fashion-seed-negative', lambda: fashion_mnist_dls(n_train=100, seed=-1), ValueError, ['seed', 'got -1']),
]

@pytest.mark.parametrize('fn,exc,words', [c[1:] for c in MODELS_AND_DATA], ids=[c[0] for c in MODELS_AND_DATA])
def test_khor_net_and_fashion_mnist_arguments(fn, exc, words): raises(exc, fn, words)

# --- the command line

@pytest.fixture(scope='module')
def cli_files(tmp_path_factory, weights):
    d = tmp_path_factory.mktemp('cli')
    stripes_folder(d/'data', n_train=8, n_valid=4, size=32)
    (d/'empty').mkdir()
    _one_class(d/'one')
    (d/'file.txt').write_text('not a folder\n')
    return dict(data=d/'data', empty=d/'empty', one=d/'one', file=d/'file.txt', missing=d/'missing', **{
        k: weights/f for k,f in (('garbage', 'garbage.pth'), ('khor_w', 'khor.pth'), ('list_w', 'list.pth'), ('no_w', 'no.pth'))})

def run_cli(*argv):
    "Run `progfast` with `argv`: (exit code, stdout, stderr)"
    out,err = io.StringIO(),io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main([str(a) for a in argv])
        except SystemExit as e: code = e.code     # the parser's own errors exit
    return code,out.getvalue(),err.getvalue()

TINY = ['--regime', 'fixed', '--size', '32', '--bs', '8', '--sgdr-epochs', '1', '--cyclic-epochs', '0',
        '--cycle-mult-cycles', '0', '--unfreeze-epochs', '0', '--lr', '1e-3']
CLI = [   # (id, argv ({name} is a file of cli_files; TINY settings are added to train and compare), exit code, words)
    ('unknown-command', ['fly'], 2, ["unknown command 'fly'", 'demo, train, compare']),
    ('unknown-option', ['train', '{data}', '--epoks', '3'], 2, ['unrecognized arguments: --epoks']),
    ('bad-int-value', ['train', '{data}', '--size', 'big'], 2, ["--size: invalid int value: 'big'"]),
    ('bad-float-value', ['train', '{data}', '--lr', 'fast'], 2, ["--lr: invalid float value: 'fast'"]),
    ('bad-bool-value', ['train', '{data}', '--pretrained', 'maybe'], 2, ["--pretrained: invalid bool_arg value: 'maybe'"]),
    ('missing-path-argument', ['train'], 2, ['the following arguments are required: path']),
    ('size-zero', ['train', '{data}', '--size', '0'], 1, ['size must be a whole number of pixels from 1 to 8192, got 0']),
    ('bs-zero', ['train', '{data}', '--bs', '0'], 1, ['bs must be a whole number >= 1, got 0']),
    ('unknown-regime', ['train', '{data}', '--regime', 'fast'], 1, ["unknown size schedule 'fast'"]),
    ('negative-lr', ['train', '{data}', '--lr', '-1'], 1, ['lr must be a number > 0, got -1.0']),
    ('too-few-sgdr-epochs', ['train', '{data}', '--regime', 'gradual', '--sgdr-epochs', '2'], 1, ['do not fit in 2 epochs']),
    ('path-does-not-exist', ['train', '{missing}'], 1, ['missing does not exist']),
    ('file-instead-of-folder', ['train', '{file}'], 1, ['file.txt is not a folder']),
    ('empty-folder', ['train', '{empty}'], 1, ['is empty']),
    ('one-class-folder', ['train', '{one}'], 1, ["only one class folder ('horizontal')"]),
    ('unknown-arch', ['train', '{data}', '--arch', 'resnet9000'], 1, ["unknown arch 'resnet9000'"]),
    ('weights-missing', ['train', '{data}', '--weights', '{no_w}'], 1, ['no.pth', 'does not exist']),
    ('weights-garbage', ['train', '{data}', '--weights', '{garbage}'], 1, ['garbage.pth', 'cannot read weights']),
    ('weights-of-another-arch', ['train', '{data}', '--weights', '{khor_w}'], 1, ['does not hold weights for resnet18']),
    ('weights-not-a-state-dict', ['train', '{data}', '--weights', '{list_w}'], 1, ['not a state dict']),
    ('khor-pretrained-without-weights', ['train', '{data}', '--arch', 'khor', '--pretrained', 'true'], 1, ['no pretrained weights']),
    ('compare-unknown-regime', ['compare', '{data}', '--regimes', 'fixed,fast'], 1, ["'fast'"]),
    ('compare-bad-seeds', ['compare', '{data}', '--seeds', '0,a'], 1, ["cannot read '0,a' as a comma-separated list of int"]),
    ('compare-unknown-arch', ['compare', '{data}', '--archs', 'resnet18,nope'], 1, ["unknown arch 'nope'"]),
    ('compare-one-weights-two-archs', ['compare', '{data}', '--archs', 'resnet18,resnet34', '--weights', '{khor_w}'], 1,
     ['--weights is one file']),
    ('compare-missing-path', ['compare', '{missing}'], 1, ['does not exist']),
    ('compare-empty-folder', ['compare', '{empty}'], 1, ['is empty']),
    ('compare-one-class-folder', ['compare', '{one}'], 1, ['only one class folder']),
    ('compare-weights-garbage', ['compare', '{data}', '--weights', '{garbage}'], 1, ['cannot read weights']),
    ('demo-unknown-approach', ['demo', '--approaches', 'normal,fast', '--quiet'], 1, ["unknown approach 'fast'"]),
    ('demo-bad-seeds', ['demo', '--seeds', 'a'], 1, ["cannot read 'a'"]),
    ('demo-zero-epochs', ['demo', '--epochs', '0', '--quiet'], 1, ['epochs must be a whole number of epochs from 1 to 10000, got 0']),
    ('demo-negative-lr', ['demo', '--lr', '-0.1', '--quiet'], 1, ['lr must be a number > 0, got -0.1']),
    ('demo-zero-bs', ['demo', '--bs', '0', '--quiet'], 1, ['bs must be a whole number of images per batch >= 1, got 0']),
    ('demo-zero-train-images', ['demo', '--n-train', '0', '--quiet'], 1, ['from 1 to 6000', 'got 0']),
]

@pytest.mark.parametrize('argv,code,words', [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_command_line(cli_files, tmp_path, argv, code, words):
    argv = [a.format(**{k: str(v) for k,v in cli_files.items()}) for a in argv]
    out = tmp_path/'out'
    if argv[0] in ('train', 'compare') and len(argv) > 1:
        for opt,val in zip(TINY[::2], TINY[1::2]):
            if argv[0] == 'compare' and opt == '--regime': opt = '--regimes'
            if opt not in argv: argv += [opt, val]
        argv += ['--out', out]
    elif argv[0] == 'demo': argv += ['--out', out]
    got,stdout,stderr = run_cli(*argv)
    assert got == code, (got, stderr)
    assert 'Traceback' not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith('progfast')
    check_message(stderr, words)
    assert not out.exists(), "a refused command wrote results"

FLAG_WORDS = [   # (id, argv (TINY added), words in the error line, Python words it must not use instead)
    ('download-fails', ['train', '{data}', '--arch', 'mobilenet_v3_small'],
     ['could not download the pretrained weights of mobilenet_v3_small', '--weights PATH', '--pretrained false'],
     ['progressive_learner', 'weights=', 'pretrained=']),
    ('compare-download-fails', ['compare', '{data}', '--archs', 'regnet_y_400mf'], ['--weights PATH', '--pretrained false'],
     ['progressive_learner', 'weights=']),
    ('weights-with-pretrained-false', ['train', '{data}', '--arch', 'khor', '--pretrained', 'false', '--weights', '{khor_w}'],
     ['khor.pth was given with --pretrained false; drop one of them'], ['weights=', 'pretrained=']),
    ('no-weights-to-download', ['train', '{data}', '--arch', 'khor', '--pretrained', 'true'],
     ['pass --pretrained false to train from scratch, or a local weights file as --weights PATH'], ['weights=', 'pretrained=']),
    ('cut-for-a-whole-model', ['train', '{data}', '--arch', 'khor', '--cut', '2'], ['--cut 2 applies to a backbone'], ['cut=']),
    ('cut-without-a-feature-map', ['train', '{data}', '--arch', 'resnet18', '--pretrained', 'false', '--cut', '20'],
     ['the body of resnet18 (--cut 20) cannot run on an image', 'pass --cut N'], ['cut=']),
    ('compare-cut-two-archs', ['compare', '{data}', '--archs', 'resnet18,mobilenet_v2', '--cut', '2'], ['--cut is one place to cut'], []),
    ('batch-larger-than-the-folder', ['train', '{data}', '--arch', 'khor', '--bs', '64'], ['--bs 64 is larger', 'pass --bs <= 16'], ['bs=']),
    ('a-size-above-the-default-cache-cap', ['train', '{data}', '--arch', 'khor', '--size', '300', '--bs', '64'], ['--bs 64 is larger'],
     ['max_side']),
    ('stages-do-not-fit', ['train', '{data}', '--regime', 'gradual', '--sgdr-epochs', '2'],
     ['do not fit in 2 epochs', '(--regime gradual, --sgdr-epochs 2)'], []),
    ('sgdr-epochs-zero', ['compare', '{data}', '--sgdr-epochs', '0'], ['--sgdr-epochs must be a whole number', '--regimes fixed'], ['sgdr_epochs']),
]

@pytest.mark.parametrize('argv,words,python', [c[1:] for c in FLAG_WORDS], ids=[c[0] for c in FLAG_WORDS])
def test_command_line_errors_name_flags(cli_files, tmp_path, monkeypatch, argv, words, python):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'no-downloads'))    # nothing cached; the network is refused (conftest)
    argv = [a.format(**{k: str(v) for k,v in cli_files.items()}) for a in argv]
    out = tmp_path/'out'
    for opt,val in zip(TINY[::2], TINY[1::2]):
        if argv[0] == 'compare' and opt == '--regime': opt = '--regimes'
        if opt not in argv: argv += [opt, val]
    code,stdout,stderr = run_cli(*argv, '--out', out)
    assert code == 1 and 'Traceback' not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    check_message(stderr, words)
    for w in python: assert w not in stderr, f"{w!r}, a Python argument, in the command line's error: {stderr}"
    assert not out.exists()

def test_command_line_without_a_command_prints_the_usage():
    code,out,err = run_cli()
    assert code == 2 and 'usage: progfast COMMAND' in out and err == ''
