"""RandomBlur as a fastai RandTransform: its own seeded generator, one draw per batch shared by every image of an item,
image-to-image targets left sharp unless asked, and no shift in the other augmentations' draws (issue 17, point 6);
`kernel_size` for Mkrtchyan's augmentation set 2 (issue 19)."""
import random
import numpy as np
import pytest, torch
from fastai.data.block import CategoryBlock, DataBlock
from fastai.torch_core import TensorCategory, TensorImage, set_seed
from fastai.vision.augment import Resize, aug_transforms
from fastai.vision.core import PILImage
from fastai.vision.data import ImageBlock
from progfast.core.blur import RandomBlur, gaussian_blur, gaussian_kernel1d

def photos(n=12, size=32, seed=0):
    "`n` random smooth-ish RGB images (uint8 arrays), made without touching the global generators"
    rng = np.random.default_rng(seed)
    return [np.kron(rng.integers(0, 256, (size // 4, size // 4, 3)), np.ones((4, 4, 1))).astype(np.uint8)
            for _ in range(n)]

def block_dls(blocks, batch_tfms, n_inp=None, images=None, bs=4):
    ("DataLoaders of `images` (the last 4 for validation) whose every block reads the same image (the category block "
     "reads its index's parity)")
    images = photos() if images is None else images
    getters = [(lambda i: PILImage.create(images[i])) if b is ImageBlock else (lambda i: str(i % 2)) for b in blocks]
    split = lambda items: (list(range(len(items) - 4)), list(range(len(items) - 4, len(items))))
    block = DataBlock(blocks=blocks, getters=getters, n_inp=n_inp, splitter=split, item_tfms=Resize(32),
                      batch_tfms=batch_tfms)
    return block.dataloaders(list(range(len(images))), bs=bs, num_workers=0)

def global_states():
    return random.getstate(), np.random.get_state()[1].tolist(), torch.get_rng_state().tolist()

# --- kernel_size (issue 19: "Gaussian blur, kernel 5, sigma in (0.1, 2)")
def test_kernel_size_sets_the_taps():
    x = torch.zeros(1, 1, 15, 15); x[..., 7, 7] = 1.
    out = gaussian_blur(x, 2., kernel_size=5)[0, 0]
    k = gaussian_kernel1d(2., radius=2)
    expected = torch.zeros(15, 15); expected[5:10, 5:10] = torch.outer(k, k)
    torch.testing.assert_close(out, expected)
    assert (out[:5] == 0).all() and (gaussian_blur(x, 2.)[0, 0, :5] > 0).any()   # the default radius is 6

def test_mkrtchyan_set2_blur():
    x = torch.rand(64, 3, 16, 16)
    tfm = RandomBlur(p=1., sigma=(0.1, 2.), per='image', kernel_size=5, seed=0)
    y = tfm.blur_batch(x)
    s = tfm.last_sigmas
    assert (s >= 0.1).all() and (s <= 2.).all() and s.unique().numel() == 64
    for i in (0, 31, 63): torch.testing.assert_close(y[i:i+1], gaussian_blur(x[i:i+1], s[i].item(), kernel_size=5))

@pytest.mark.parametrize('bad', [4, 2, 1, 0, -5, 5.0, '5', True])
def test_kernel_size_bad_values(bad):
    assert RandomBlur(kernel_size=None).kernel_size is None and RandomBlur(kernel_size=np.int64(3)).kernel_size == 3
    for make in (lambda: RandomBlur(kernel_size=bad),
                 lambda: gaussian_blur(torch.rand(1, 1, 8, 8), 1., kernel_size=bad)):
        with pytest.raises(ValueError, match=r'kernel_size must be None or an odd whole number >= 3') as e: make()
        assert repr(bad) in str(e.value)

# --- its own generator
@pytest.mark.parametrize('per', ['batch', 'image'])
def test_seeded_from_set_seed_when_built(per):
    def decisions(seed):
        set_seed(seed)
        tfm = RandomBlur(p=0.5, sigma=(0.1, 2.), per=per)
        return torch.stack([tfm.draw(8, 32) for _ in range(30)])
    a,b,c = decisions(0),decisions(0),decisions(1)
    assert torch.equal(a, b)
    assert not torch.equal(a > 0, c > 0)
    assert torch.equal(RandomBlur(seed=5, per=per).draw(40, 32), RandomBlur(seed=5, per=per).draw(40, 32))

def test_no_global_generator_is_touched(monkeypatch):
    batches = [(TensorImage(torch.rand(4, 3, 16, 16)), TensorCategory(torch.arange(4))) for _ in range(8)]
    tfm = RandomBlur(p=0.5, sigma=(0.5, 2.), per='image', seed=0)
    before = global_states()
    monkeypatch.setattr(random, 'random', lambda: pytest.fail('RandomBlur drew from Python\'s random'))
    blurred = []
    for b in batches:
        tfm(b, split_idx=0); blurred.append(tfm.last_blurred)
        tfm.blur_batch(b[0]); blurred.append(tfm.last_blurred)
    monkeypatch.undo()
    assert global_states() == before
    assert 0 < np.mean(blurred) < 1

@pytest.mark.parametrize('per', ['batch', 'image'])
def test_other_augmentations_draw_the_same_with_and_without_blur(per):
    "A training epoch through `aug_transforms(...) + [RandomBlur(...)]` is the epoch without it, blurred as recorded"
    def epoch(with_blur):
        set_seed(3)
        blur = RandomBlur(p=0.5, sigma=(0.5, 2.), per=per)
        tfms = aug_transforms(size=24, min_scale=0.6, max_rotate=10., flip_vert=True) + ([blur] if with_blur else [])
        dl = block_dls((ImageBlock, CategoryBlock), tfms, images=photos(28)).train
        out = [(x, y, blur.last_sigmas) for x,y in dl]
        return out,global_states()
    (sharp,st0),(blurred,st1) = epoch(False),epoch(True)
    assert len(sharp) == len(blurred) == 6
    sig = torch.cat([s for *_,s in blurred])
    assert (sig > 0).any() and (sig == 0).any(), sig
    for (xs,ys,_),(xb,yb,s) in zip(sharp, blurred):
        torch.testing.assert_close(xb, gaussian_blur(xs, s), rtol=0, atol=1e-6)
        assert torch.equal(yb, ys)
    assert st0 == st1

# --- one draw per item, targets
@pytest.mark.parametrize('per', ['batch', 'image'])
@pytest.mark.parametrize('blur_targets', [False, True])
def test_image_to_image_batch(per, blur_targets):
    x,y = TensorImage(torch.rand(16, 3, 12, 12)),TensorImage(torch.rand(16, 3, 12, 12))
    tfm = RandomBlur(p=1. if per == 'batch' else 0.5, sigma=(0.5, 2.), per=per, blur_targets=blur_targets, seed=1)
    twin = RandomBlur(p=1. if per == 'batch' else 0.5, sigma=(0.5, 2.), per=per, seed=1)
    xo,yo = tfm((x, y), split_idx=0)
    s = tfm.last_sigmas
    assert torch.equal(s, twin.draw(16, 12))                         # one draw for the whole tuple
    assert torch.equal(tfm.draw(16, 12), twin.draw(16, 12))          # and nothing else drawn
    if per == 'image': assert 0 < (s > 0).sum() < 16 and s[s > 0].unique().numel() == (s > 0).sum()
    else: assert (s == s[0]).all() and s[0] > 0
    torch.testing.assert_close(xo, gaussian_blur(x, s))
    if blur_targets: torch.testing.assert_close(yo, gaussian_blur(y, s))   # the same sigma as its own input
    else: assert yo is y

@pytest.mark.parametrize('blur_targets', [False, True])
def test_image_to_image_dataloaders(blur_targets):
    "Items (image, image): the target is the input's own image, so it is the sharp input or the blurred input itself"
    blur = RandomBlur(p=1., sigma=(0.5, 2.), per='image', blur_targets=blur_targets)
    x,y = block_dls((ImageBlock, ImageBlock), [blur]).train.one_batch()
    if blur_targets: assert torch.equal(x, y)
    else: torch.testing.assert_close(x, gaussian_blur(y, blur.last_sigmas), rtol=0, atol=1e-5)
    assert not torch.equal(x, y) or blur_targets

def test_n_inp_read_from_the_dataset():
    blur = RandomBlur(p=1., sigma=1.5)
    dls = block_dls((ImageBlock, ImageBlock, ImageBlock), [blur], n_inp=2)
    assert blur.n_inp == 2
    a,b,t = dls.train.one_batch()
    torch.testing.assert_close(a, b)                                 # both inputs blurred alike
    torch.testing.assert_close(a, gaussian_blur(t, 1.5), rtol=0, atol=1e-5)

def test_validation_batches_untouched_and_nothing_drawn():
    blur = RandomBlur(p=1., sigma=2., seed=0)
    dls = block_dls((ImageBlock, CategoryBlock), [blur])
    state = blur.generator.get_state()
    xv,_ = dls.valid.one_batch()
    assert torch.equal(blur.generator.get_state(), state)
    xs,_ = block_dls((ImageBlock, CategoryBlock), []).valid.one_batch()
    assert torch.equal(xv, xs)
