"Mkrtchyan's recipe: the M1/M4 shapes and parameter counts, set 2's blur, the step LR per epoch, Tiny ImageNet's layout, the steps of 'both sets'."
import math, random
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import TensorImage
from progfast.models import mkrtchyan_m1, mkrtchyan_m4
from progfast.data.embedded import fashion_mnist_dls
from progfast.studies.mkrtchyan import (FASHION_MNIST_STATS, fit_mkrtchyan, mkrtchyan_augment, mkrtchyan_lr, mkrtchyan_radam,
                                        tiny_imagenet_dls, tiny_imagenet_items)
from fastai.data.transforms import Normalize


# ------------------------------------------------------------------------------------------------------------ models
# The layer lists of the paper (Mkrtchyan 2022, after Ting): (kernel, filters) per ConvReLU, a 2x2 max-pool after each block
M1 = [[(5, 16)], [(3, 16)], [(3, 32)]]
M4 = [[(5, 32), (5, 32)], [(3, 64), (3, 64)], [(3, 64), (3, 128)]]

def paper_count(blocks, n_in=3, n_out=200, side=64):
    "Weights k*k*i*o plus o biases per convolution; FC i*o + o; 'same' convolutions, three halvings of the side"
    n,ch = 0,n_in
    for block in blocks:
        for k,o in block: n += k*k*ch*o + o; ch = o
        side //= 2
    return n + ch*side*side*256 + 256 + 256*n_out + n_out

def test_parameter_counts_for_200_classes_at_64px():
    n = lambda m: sum(p.numel() for p in m.parameters())
    assert paper_count(M1) == 584_120 and paper_count(M4) == 2_343_080
    assert n(mkrtchyan_m1(n_in=3, n_out=200)) == 584_120
    assert n(mkrtchyan_m4(n_in=3, n_out=200)) == 2_343_080
    assert n(mkrtchyan_m4(n_in=1, n_out=10)) == paper_count(M4, 1, 10)

@pytest.mark.parametrize('make', [mkrtchyan_m1, mkrtchyan_m4])
def test_shapes(make):
    with torch.no_grad():
        for n_in,n_out,size in ((3, 200, 64), (1, 10, 64), (4, 7, 48), (3, 5, 80)):
            assert make(n_in=n_in, n_out=n_out).eval()(torch.randn(2, n_in, size, size)).shape == (2, n_out)
        assert make(size=32)(torch.randn(3, 3, 32, 32)).shape == (3, 200)
    with pytest.raises(ValueError, match='n_out must be a whole number of classes >= 1'): make(n_out=0)


# ------------------------------------------------------------------------------------------------------------ set 2's blur
def test_set2_blur_sigma_range_and_kernel5():
    blur = [t for t in mkrtchyan_augment(2) if type(t).__name__ == 'RandomBlur'][0]
    torch.manual_seed(1)
    blur(TensorImage(torch.rand(512, 3, 16, 16)), split_idx=0)
    s = blur.last_sigmas
    assert len(s) == 512 and (s >= 0.1).all() and (s <= 2.0).all()           # every image, its own sigma in (0.1, 2)
    assert s.min() < 0.15 and s.max() > 1.95 and s.std() > 0.4                 # drawn over the whole range
    delta = torch.zeros(1, 1, 21, 21); delta[..., 10, 10] = 1.
    blur.sigma = (2., 2.)                      # the widest sigma of the range: every tap of the 5x5 kernel is nonzero
    out = blur.blur_batch(delta)[0, 0]
    rows,cols = (out > 0).any(1).nonzero().flatten(),(out > 0).any(0).nonzero().flatten()
    assert (rows.tolist(), cols.tolist()) == (list(range(8, 13)), list(range(8, 13)))   # a 5x5 kernel
    assert math.isclose(out.sum().item(), 1., rel_tol=1e-5)


# ------------------------------------------------------------------------------------------------------------ fit
class _Spy(Callback):
    "The learning rate of every training step, and the number of steps"
    order = 90
    def before_fit(self): self.lrs = []
    def after_step(self): self.lrs.append(self.opt.hypers[-1]['lr'])

def _learner(n_train=64, bs=16):
    dls = fashion_mnist_dls(bs=bs, size=32, n_train=n_train, n_valid=32, after_batch=[Normalize.from_stats(*FASHION_MNIST_STATS)])
    return Learner(dls, mkrtchyan_m1(n_in=1, n_out=10, size=32), metrics=accuracy)

def test_step_lr_values_per_epoch_and_radam():
    learn,spy = _learner(),_Spy()
    res = fit_mkrtchyan(learn, 4, lr=2e-3, drops=(1, 3), measure=False, cbs=spy)
    n = len(learn.dls.train)
    assert res['steps'] == len(spy.lrs) == 4 * n
    per_epoch = [sorted(set(spy.lrs[e*n:(e+1)*n])) for e in range(4)]
    assert per_epoch == [[2e-3], [2e-4], [2e-4], [2e-5]]
    assert mkrtchyan_lr().epoch_values(20) == [1e-3]*7 + [1e-4]*7 + [1e-5]*6
    h = learn.opt.hypers[0]
    assert learn.opt_func is mkrtchyan_radam and (h['mom'], h['sqr_mom'], h['eps'], h['wd']) == (0.9, 0.999, 1e-8, 1e-4)

def test_both_sets_take_twice_the_steps():
    learn = _learner()
    n = len(learn.dls.train)
    tfms = list(learn.dls.train.after_batch.fs)
    spy = _Spy()
    assert fit_mkrtchyan(learn, 2, drops=(1,), augment='both', measure=False, cbs=spy)['steps'] == 2 * 2 * n
    assert len(spy.lrs) == 4 * n
    assert fit_mkrtchyan(learn, 2, drops=(1,), augment=1, measure=False)['steps'] == 2 * n
    assert list(learn.dls.train.after_batch.fs) == tfms                        # the loaders are as they were


# ------------------------------------------------------------------------------------------------------------ Tiny ImageNet
WNIDS = ['n01443537', 'n01629819']

def _standin(root: Path, rng) -> Path:
    "Tiny ImageNet's layout, written out literally: wnids.txt, train/<wnid>/images, val/images + val_annotations.txt, test/images"
    root = root/'tiny-imagenet-200'
    img = lambda: Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    (root/'val'/'images').mkdir(parents=True); (root/'test'/'images').mkdir(parents=True)
    (root/'wnids.txt').write_text('n01443537\nn01629819\n')
    (root/'words.txt').write_text('n01443537\tgoldfish, Carassius auratus\nn01629819\tEuropean fire salamander\n')
    for w in WNIDS:
        (root/'train'/w/'images').mkdir(parents=True)
        for i in range(3): img().save(root/'train'/w/'images'/f'{w}_{i}.JPEG')
        (root/'train'/w/f'{w}_boxes.txt').write_text(''.join(f'{w}_{i}.JPEG\t0\t0\t63\t63\n' for i in range(3)))
    labels = {'val_0.JPEG': 'n01629819', 'val_1.JPEG': 'n01443537', 'val_2.JPEG': 'n01629819'}
    for f in labels: img().convert('L').save(root/'val'/'images'/f)                 # grayscale, as some real ones are
    (root/'val'/'val_annotations.txt').write_text(''.join(f'{f}\t{w}\t1\t2\t60\t61\n' for f,w in labels.items()))
    img().save(root/'test'/'images'/'test_0.JPEG')
    return root

def test_tiny_imagenet_layout_on_a_standin(tmp_path):
    root = _standin(tmp_path, np.random.default_rng(0))
    wnids,train,val,labels = tiny_imagenet_items(root)
    assert wnids == WNIDS and len(train) == 6 and [f.name for f in val] == ['val_0.JPEG', 'val_1.JPEG', 'val_2.JPEG']
    assert labels == {'val_0.JPEG': 'n01629819', 'val_1.JPEG': 'n01443537', 'val_2.JPEG': 'n01629819'}
    dls = tiny_imagenet_dls(tmp_path, bs=2, aug_set=1)                          # the folder that holds tiny-imagenet-200/
    assert list(dls.vocab) == WNIDS and (len(dls.train_ds), len(dls.valid_ds)) == (6, 3)
    got = {f.name: dls.vocab[y] for f,(_,y) in zip(dls.valid_ds.items, dls.valid_ds)}
    assert got == labels                                                        # labels from val_annotations.txt
    assert all(dls.vocab[y] == f.parent.parent.name for f,(_,y) in zip(dls.train_ds.items, dls.train_ds))
    assert not any('test' in f.parts for f in dls.train_ds.items + dls.valid_ds.items)
    assert dls.valid.one_batch()[0].shape == (2, 3, 64, 64)
    (root/'val'/'images'/'val_1.JPEG').unlink()
    with pytest.raises(FileNotFoundError, match='val_annotations.txt names 1 images not in'): tiny_imagenet_items(root)
