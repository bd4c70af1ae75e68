"""Determinism: with the same seed (`set_seed(seed, reproducible=True)`), two runs on the CPU apply the same sizes, blur
decisions and sigmas, dropout and MixSize draws, and reach the same weights; another seed makes other random choices."""
import numpy as np
import pytest, torch
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
import progfast.callbacks.progressive  # noqa: F401  (Learner.fit_progressive)
from progfast.data.embedded import fashion_mnist_dls
from progfast.callbacks.mixsize import MixSize
from progfast.models import khor_net
from progfast.testing import tiny_cnn

APPLIED = ['size', 'blurred', 'blur_sigma', 'sigma', 'dropout']    # what fit_progressive records for every batch

def weights(model) -> np.ndarray:
    "All parameters and buffers (batch-norm statistics included) of `model` as one vector"
    return torch.cat([t.detach().double().flatten() for t in model.state_dict().values()]).numpy()

def stripes_learner(path):
    return lambda: Learner(ImageDataLoaders.from_folder(path, item_tfms=Resize(32), bs=8, num_workers=0, seed=0),
                           tiny_cnn(), metrics=accuracy)

def fashion_learner():
    return Learner(fashion_mnist_dls(bs=64, n_train=200, n_valid=100), khor_net(n_in=1), metrics=accuracy)

def train(make_learner, seed, n_epoch=3, lr=1e-2, cbs=None, **kwargs):
    "Seed, build the data and model, train; the learner afterwards"
    set_seed(seed, reproducible=True)
    learn = make_learner()
    with learn.no_logging(), learn.no_bar():
        if cbs is None: learn.fit_progressive(n_epoch, lr, **kwargs)
        else: learn.fit(n_epoch, lr, cbs=cbs)
    return learn

def check_repeatable(make_learner, record, seed=0, **kwargs):
    "Two runs with `seed` record the same and end with the same weights; a run with another seed records otherwise"
    a,b,c = (train(make_learner, s, **kwargs) for s in (seed, seed, seed + 1))
    ra,rb,rc = record(a),record(b),record(c)
    assert ra.equals(rb), f"same seed, different record:\n{ra}\n{rb}"
    np.testing.assert_allclose(weights(a.model), weights(b.model), rtol=1e-5, atol=1e-6)
    assert not np.allclose(weights(a.model), weights(c.model))
    return ra,rc

def applied(learn): return learn.progressive.df[APPLIED]

SETTINGS = [  # mode, blur_per, sizes, blur schedule
    ('batch', 'batch', [16, 24, 32], 'khor'),
    ('batch', 'image', 'khor', [1.5, 1.0, 0.5]),
    ('loader', 'batch', [16, 24, 32], [1.5, 1.0, 0.5]),
    ('loader', 'image', [16, 24, 32], 'khor'),
]

@pytest.mark.parametrize('mode,blur_per,sizes,blur', SETTINGS)
def test_same_seed_same_sizes_blur_dropout_and_weights(stripes, mode, blur_per, sizes, blur):
    same,other = check_repeatable(stripes_learner(stripes), applied, sizes=sizes, mode=mode, blur=blur, blur_p=0.4,
                                  blur_per=blur_per, regularization=dict(dropout=[0.1, 0.2, 0.3]))
    assert 0 < same['blurred'].sum() < len(same)                         # some batches blurred, some sharp
    assert not same['blurred'].equals(other['blurred'])                  # another seed: other blur decisions
    assert same[['size', 'sigma', 'dropout']].equals(other[['size', 'sigma', 'dropout']])   # schedules do not depend on it

def test_same_seed_same_run_with_fashion_mnist_and_khor_net():
    same,other = check_repeatable(fashion_learner, applied, lr=3e-3, sizes=[14, 21, 28], blur='khor', blur_p=0.4,
                                  regularization=dict(dropout=[0.2, 0.3, 0.4]))
    assert not same['blurred'].equals(other['blurred'])

@pytest.mark.parametrize('mode', ['plain', 'batch_scale'])
def test_same_seed_same_mixsize_draws(stripes, mode):
    "MixSize draws from its own generator, seeded from torch's seed (which `set_seed` sets) unless given a seed"
    draws = lambda learn: next(cb for cb in learn.cbs if isinstance(cb, MixSize)).df[['epoch', 'iter', 'size', 'images']]
    learner = stripes_learner(stripes)
    def make():
        learn = learner()
        learn.add_cb(MixSize(sizes=(16, 24, 32), mode=mode))   # created after set_seed, like the rest of the run
        return learn
    same,other = check_repeatable(make, draws, cbs=[])
    assert same['size'].nunique() > 1, same
    assert not same['size'].equals(other['size'])
