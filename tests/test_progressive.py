"Integration: ProgressiveResizeCallback and fit_progressive with fastai's fit methods, pretrained-style learners, AMP and channels_last."
import pytest, torch
from torch import nn
from fastai.vision.all import (ImageDataLoaders, Learner, Resize, accuracy, aug_transforms, resnet18, set_seed,
                               vision_learner)
from progfast.core.schedule import *
from progfast.callbacks.progressive import *
from progfast.core.sizing import *
from progfast.testing import tiny_cnn

def dls_for(path, size=32, batch_tfms=None):
    return ImageDataLoaders.from_folder(path, item_tfms=Resize(size), batch_tfms=batch_tfms, bs=8, num_workers=0, seed=0)

def watch(learn):
    seen = []
    learn.model.register_forward_pre_hook(lambda m, inp: seen.append((m.training, inp[0].shape[-1])))
    return seen

def per_epoch(seen, n_iter=4): return [s for t,s in seen if t][::n_iter]

@pytest.mark.parametrize('method', ['fit', 'fit_one_cycle', 'fit_sgdr', 'fit_flat_cos'])
def test_fit_methods_apply_the_schedule(stripes, method):
    learn = Learner(dls_for(stripes), tiny_cnn(), metrics=accuracy)
    seen = watch(learn)
    cb = ProgressiveResizeCallback(StageSchedule([16, 24, 32]), check_model=False)
    with learn.no_logging(), learn.no_bar():
        if method == 'fit_sgdr': learn.fit_sgdr(1, 3, cbs=cb)      # 1 cycle of 3 epochs
        else: getattr(learn, method)(3, 1e-3, cbs=cb)
    assert per_epoch(seen) == [16, 24, 32]
    assert {s for t,s in seen if not t} == {32}

def test_fine_tune_spans_frozen_and_unfrozen(stripes):
    learn = vision_learner(dls_for(stripes), resnet18, pretrained=False, metrics=accuracy)
    seen = watch(learn)
    cb = ProgressiveResizeCallback([16, 24, 32, 32], n_epoch=4, check_model=False)
    with learn.no_logging(), learn.no_bar(): learn.fine_tune(3, freeze_epochs=1, cbs=cb)
    assert per_epoch(seen) == [16, 24, 32, 32]       # not restarted at the unfreeze
    assert cb.done == 0                              # the span is complete: a new fit starts over

def test_vision_learner_torchvision_and_timm(stripes):
    for arch in (resnet18, 'resnet18'):
        learn = vision_learner(dls_for(stripes, 48), arch, pretrained=False, metrics=accuracy)
        seen = watch(learn)
        with learn.no_logging(), learn.no_bar():
            learn.fit_progressive(2, 1e-3, sizes='stepwise', policy='fine_tune', regularization=dict(dropout=[0.1, 0.5]))
        assert per_epoch(seen) == [19, 48]            # 0.4 x 48 rounds to 19
        drops = [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)]
        assert drops == [0.25, 0.5]                      # fastai's head dropouts, put back

@pytest.mark.parametrize('precision', ['bf16', 'channels_last'])
def test_mixed_precision_and_channels_last(stripes, precision):
    learn = Learner(dls_for(stripes, batch_tfms=aug_transforms(size=32)), tiny_cnn(), metrics=accuracy)
    learn = learn.to_bf16() if precision == 'bf16' else learn.to_channelslast()
    seen = []
    learn.model.register_forward_pre_hook(lambda m, inp: seen.append((m.training, inp[0].shape[-1], inp[0].is_contiguous(memory_format=torch.channels_last))))
    with learn.no_logging(), learn.no_bar(): learn.fit_progressive(2, 1e-3, sizes=[16, 32], check_model=False)
    assert [s for t,s,_ in seen if t][::4] == [16, 32]
    if precision == 'channels_last':   # fastai converts the model; the callback must not undo it
        assert learn.model[0][0].weight.is_contiguous(memory_format=torch.channels_last)

def test_resized_batches_keep_channels_last():
    x = torch.rand(4, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    assert resize_batch(x, 16).is_contiguous(memory_format=torch.channels_last)
    assert resize_batch(x, 48).is_contiguous(memory_format=torch.channels_last)

def test_a_second_fit_progressive_starts_over(stripes):
    learn = Learner(dls_for(stripes), tiny_cnn(), metrics=accuracy)
    seen = watch(learn)
    with learn.no_logging(), learn.no_bar():
        learn.fit_progressive(2, sizes=[16, 32], check_model=False)
        learn.fit_progressive(2, sizes=[16, 32], check_model=False)
    assert per_epoch(seen) == [16, 32, 16, 32]
    assert learn.validate() is not None and len(learn.validate()) == 2   # loss and accuracy only: no extra columns left

def test_progressive_training_learns(stripes):
    set_seed(0)
    learn = Learner(dls_for(stripes), tiny_cnn(), metrics=accuracy)
    with learn.no_logging(), learn.no_bar(): learn.fit_progressive(8, 1e-2, sizes='khor', regularization=dict(dropout=khor_dropout()))
    loss, acc = learn.validate()
    assert acc > 0.7, acc

def test_the_callback_reads_and_writes_through_its_collaborators(stripes):
    "What the plan, the steps, the knobs and the record keep are the callback's attributes, as before they were split"
    cb = ProgressiveResizeCallback([16, 24, 32], n_epoch=3, regularization=dict(dropout=[0.1, 0.2, 0.3]),
                                   blur=[1., .5, 0.], check_model=False)
    assert (cb.done, cb.current_size, cb.lr_mult, cb.history, cb.final) == (0, None, 1., [], 32)
    cb.done = 1
    assert cb.plan.done == 1
    cb.done = 0
    learn = Learner(dls_for(stripes), tiny_cnn(), metrics=accuracy)
    with learn.no_logging(), learn.no_bar(): learn.fit(3, 1e-3, cbs=cb)
    assert cb.current_size == cb.final == 32 and cb.n_total == 3 and cb.done == 0
    assert cb.history is cb.record.rows and len(cb.df) == 3 * len(learn.dls.train)
    assert [k.name for k in cb.knobs] == ['dropout'] and [k.name for k in cb.extra] == ['sigma']
    assert cb.sched is cb.plan.sched and cb.df['size'].tolist()[::len(learn.dls.train)] == [16, 24, 32]
