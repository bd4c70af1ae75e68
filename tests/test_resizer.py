"LearnedResizer: shapes, gradients, training in a learner, bad input, with_resizer, and the progressive size schedule."
import pytest, torch
from torch import nn
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
from fastai.vision.learner import vision_learner
from fastai.vision.models import resnet18
from progfast.core.sizing import resize_batch
import progfast.callbacks.mixsize  # noqa: F401 (adds Learner.evaluate_sizes)
from progfast.callbacks.learned_resizer import LearnedResizer, ResizedModel, with_resizer
from progfast.testing import tiny_cnn

@pytest.mark.parametrize('in_hw', [(64, 64), (50, 70), (16, 16), (9, 13)])
@pytest.mark.parametrize('out', [8, 32, (12, 20)])
def test_output_shape(in_hw, out):
    r = LearnedResizer(out, n_filters=4, n_res_blocks=2)
    want = (out, out) if isinstance(out, int) else out
    assert r(torch.rand(2, 3, *in_hw)).shape == (2, 3, *want)

def test_output_size_can_change_and_channels():
    r = LearnedResizer(32, in_channels=1, n_filters=4)
    r.set_output_size(14)
    assert r.output_size == 14 and r(torch.rand(2, 1, 56, 56)).shape == (2, 1, 14, 14)

def test_starts_as_the_plain_interpolation():
    x = torch.rand(3, 3, 40, 40)
    torch.testing.assert_close(LearnedResizer(20).eval()(x), resize_batch(x, 20))

def test_gradient_reaches_the_input():
    r = LearnedResizer(16)
    nn.init.normal_(r.out.weight, std=0.1)
    x = torch.rand(2, 3, 40, 40, requires_grad=True)
    r(x).square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    skip = torch.autograd.grad(resize_batch(x, 16).square().mean(), x)[0]
    assert not torch.allclose(x.grad, skip)                    # also through the CNN
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in r.parameters())

@pytest.fixture
def dls64(stripes):
    return ImageDataLoaders.from_folder(stripes, item_tfms=Resize(64), bs=8, num_workers=0, seed=0)

def test_learner_with_a_resizer_trains(dls64):
    set_seed(0)
    learn = with_resizer(Learner(dls64, tiny_cnn(), metrics=accuracy), 24, n_filters=8)
    before = [p.detach().clone() for p in learn.model.resizer.parameters()]
    with learn.no_logging(), learn.no_bar(): learn.fit(4, 1e-2)
    losses = learn.recorder.losses
    assert losses[-1] < losses[0]
    assert all(not torch.equal(a, b) for a,b in zip(before, learn.model.resizer.parameters()))

@pytest.mark.parametrize('kw,exc,msg', [
    (dict(out_size=0), ValueError, 'got 0'), (dict(out_size=-8), ValueError, 'got -8'),
    (dict(out_size=(8, 0)), ValueError, 'got (8, 0)'), (dict(out_size=7.5), TypeError, 'got 7.5'),
    (dict(out_size=16, n_filters=0), ValueError, 'n_filters must be a whole number >= 1, got 0'),
    (dict(out_size=16, n_filters=2.5), TypeError, 'n_filters must be a whole number >= 1, got 2.5'),
    (dict(out_size=16, n_res_blocks=-1), ValueError, 'n_res_blocks must be'),
    (dict(out_size=16, interpolation='lanczos'), ValueError, 'interpolation must be one of'),
])
def test_bad_settings(kw, exc, msg):
    with pytest.raises(exc) as e: LearnedResizer(**kw)
    assert msg in str(e.value)

def test_bad_input_and_sizes():
    r = LearnedResizer(16)
    with pytest.raises(ValueError, match=r'3-channel images'): r(torch.rand(2, 1, 32, 32))
    with pytest.raises(ValueError, match='got 0'): r.set_output_size(0)
    assert r.output_size == 16

def test_with_resizer_keeps_the_body_frozen(dls64):
    learn = vision_learner(dls64, resnet18, pretrained=False, metrics=accuracy)
    learn.freeze()
    n = len(learn.splitter(learn.model))
    with_resizer(learn, 32)
    assert isinstance(learn.model, ResizedModel) and len(learn.splitter(learn.model)) == n
    assert all(p.requires_grad for p in learn.model.resizer.parameters())
    assert not learn.model.body[0][0].weight.requires_grad
    with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)    # the resizer trains with the body frozen
    with pytest.raises(ValueError, match='already has a LearnedResizer'): with_resizer(learn, 32)

def test_progressive_resize_drives_the_resizer(dls64):
    "The loader supplies 64 px images; the size schedule sets the resizer's output size; it is put back after the fit"
    learn = with_resizer(Learner(dls64, tiny_cnn(), metrics=accuracy), 32, n_filters=4)
    seen_body,seen_in = [],[]
    learn.model.body.register_forward_pre_hook(lambda m, inp: seen_body.append((m.training, inp[0].shape[-1])))
    learn.model.resizer.register_forward_pre_hook(lambda m, inp: seen_in.append(inp[0].shape[-1]))
    with learn.no_logging(), learn.no_bar(): learn.fit_progressive(2, 1e-3, sizes=[16, 32], check_model=False)
    assert [s for t,s in seen_body if t][::4] == [16, 32]      # 32 images, bs 8: 4 batches an epoch
    assert set(seen_in) == {64}
    assert learn.model.resizer.output_size == 32

def test_evaluate_sizes_sets_the_resizer(dls64):
    learn = with_resizer(Learner(dls64, tiny_cnn(), metrics=accuracy), 32, n_filters=4)
    seen = []
    def hook(m, inp):
        if inp[0].shape[0] != 2: seen.append(inp[0].shape[-1])    # not the 2-image check of each size beforehand
    learn.model.body.register_forward_pre_hook(hook)
    res = learn.evaluate_sizes([16, 24], progress=False)
    assert res['size'].tolist() == [16, 24] and seen == [16, 16, 24, 24]   # 16 valid images, 2 batches a size
    assert learn.model.resizer.output_size == 32
