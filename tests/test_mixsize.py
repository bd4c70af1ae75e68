"MixSize: size draws, compute scaling, fit integration (AMP, channels_last, RandomBlur), evaluation across sizes, TTA."
import numpy as np, pytest, torch
from fastai.callback.core import Callback
import fastai.callback.fp16, fastai.callback.channelslast  # noqa: F401 (they add Learner.to_bf16, Learner.to_channelslast)
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from progfast.core.blur import RandomBlur
from progfast.data.embedded import fashion_mnist_dls
from progfast.core.sizing import bn_layers
from progfast.callbacks.mixsize import (MIXSIZE_CIFAR, MixSize, SizeSampler, mixsize_distribution, n_copies,
                                        plot_scale_resiliency, scaled_batch_size)
from progfast.callbacks.progressive import ProgressiveResizeCallback
from progfast.core.sizing import fit_state
from progfast.callbacks.learned_resizer import with_resizer
from progfast.testing import tiny_cnn

def fm_learner(n_train=640, n_valid=96, bs=32, batch_tfms=None):
    set_seed(0)
    dls = fashion_mnist_dls(bs=bs, n_train=n_train, n_valid=n_valid, after_batch=batch_tfms or [])
    return Learner(dls, tiny_cnn(n_in=1, n_out=10), metrics=accuracy)

def watch(module):
    "(training, batch size, height, channels_last) of every batch `module` receives, but the 2-image checks of each size before a fit"
    seen = []
    def hook(m, inp):
        if m.training or inp[0].shape[0] != 2:
            seen.append((m.training, inp[0].shape[0], inp[0].shape[-1], inp[0].is_contiguous(memory_format=torch.channels_last)))
    module.register_forward_pre_hook(hook)
    return seen

def quiet_fit(learn, method='fit', n=1, lr=1e-3, cbs=None):
    with learn.no_logging(), learn.no_bar(): getattr(learn, method)(n, lr, cbs=cbs)

# --- the size distribution
def test_empirical_distribution_matches_probabilities():
    s = SizeSampler(**MIXSIZE_CIFAR, seed=123)
    draws = np.array(s.draw(20_000))
    counts = np.array([(draws == sz).sum() for sz in s.sizes])
    expected = 20_000 * np.array(MIXSIZE_CIFAR['probs'])
    chi2 = ((counts - expected)**2 / expected).sum()
    assert chi2 < 16.27, (counts, chi2)              # 99.9% quantile of chi-square, 3 degrees of freedom

def test_same_seed_same_draws_and_global_rng_untouched():
    state = torch.get_rng_state()
    a,b = SizeSampler([8, 16, 24], seed=5),SizeSampler([8, 16, 24], seed=5)
    seq = [a.draw() for _ in range(300)]
    assert seq == b.draw(300)
    assert seq != SizeSampler([8, 16, 24], seed=6).draw(300)
    assert torch.equal(torch.get_rng_state(), state)

def test_same_seed_same_steps_in_two_trainings():
    "Two processes of a data-parallel run: same seed, same size at every step, whatever else used the global RNG"
    plans = []
    for other_seed in (0, 1):
        learn = fm_learner()
        torch.manual_seed(other_seed)                   # the processes' global RNGs differ
        cb = MixSize([14, 21, 28, 42], seed=11)
        quiet_fit(learn, cbs=cb)
        plans.append(cb.df[['size', 'images']].values.tolist())
    assert plans[0] == plans[1]

@pytest.mark.parametrize('sizes,probs,msg', [
    ([], None, 'sizes is empty'),
    ([16, 32], [0.5, 0.6], 'must sum to 1'),
    ([16, 32], [0.5, 0.5 + 1e-5], 'must sum to 1'),
    ([16, 32], [1.2, -0.2], '>= 0, got -0.2'),
    ([16, 0], None, 'whole number of pixels >= 1, got 0'),
    ([16, -4], None, 'got -4'),
    ([16, 32], [1.0], 'probs has 1 values for 2 sizes'),
    ([16, 16], None, 'lists 16 twice'),
])
def test_bad_distributions(sizes, probs, msg):
    with pytest.raises(ValueError, match=None) as e: MixSize(sizes, probs)
    assert msg in str(e.value)

def test_a_fractional_size_is_a_type_error():
    with pytest.raises(TypeError, match='got 24.5'): MixSize([16, 24.5])

# --- compute kept constant
@pytest.mark.parametrize('base_bs', [8, 32, 64])
def test_batch_scaling_keeps_pixels_within_half_an_image(base_bs):
    for base in (28, 32, 224):
        for s in range(base // 2, 2 * base + 1):
            n = scaled_batch_size(s, base, base_bs)
            assert n == 1 or abs(n * s * s - base_bs * base * base) <= s * s / 2, (base, s, n)

def test_batch_scale_fit_steps_within_tolerance():
    learn = fm_learner()
    seen = watch(learn.model)
    cb = MixSize(**mixsize_distribution(28), seed=0)
    quiet_fit(learn, 'fit_one_cycle', 2, 3e-3, cbs=cb)
    df = cb.df
    assert [(n, s) for t,n,s,_ in seen if t] == list(zip(df['batch'], df['size']))   # what the model saw
    tol = df['size']**2 / 2                                  # half an image at that size
    assert ((df['pixels'] - 32 * 28 * 28).abs() <= tol).all()
    assert ((df['pixels'] - 32 * 28 * 28).abs() / (32 * 28 * 28) < 0.02).all()
    assert set(df['size']) == {14, 21, 28, 42}
    for e in (0, 1): assert 0 <= 640 - df[df.epoch == e]['images'].sum() < scaled_batch_size(14, 28, 32)
    assert {(n, s) for t,n,s,_ in seen if not t} == {(32, 28)}   # validation: loader batches at the eval size

def test_lr_scaled_for_the_step_only():
    class Spy(Callback):
        order = MixSize.order + 1
        def before_fit(self): self.lrs = []
        def before_step(self): self.lrs.append(self.opt.hypers[-1]['lr'])
    learn,spy = fm_learner(),Spy()
    cb = MixSize([14, 28, 42], seed=0, lr_rule='linear')
    quiet_fit(learn, 'fit', 1, 1e-3, cbs=[cb, spy])
    np.testing.assert_allclose(np.array(spy.lrs) / 1e-3, cb.df['images'] / 32, rtol=1e-9)
    assert set(learn.recorder.lrs) == {1e-3}
    assert learn.opt.hypers[0]['lr'] == 1e-3

def test_duplicates_carry_augmented_copies():
    class Peek(Callback):
        order = MixSize.order + 1
        def before_fit(self): self.batches = []
        def before_batch(self):
            if self.training: self.batches.append((self.xb[0].clone(), self.yb[0].clone()))
    learn,peek = fm_learner(n_train=128),Peek()
    cb = MixSize([14, 21, 28, 42], mode='duplicates', seed=0)
    quiet_fit(learn, cbs=[cb, peek])
    assert cb.base_size == 42
    for (x,y),(size,copies) in zip(peek.batches, zip(cb.df['size'], cb.df['copies'])):
        assert copies == n_copies(size, 42) and x.shape == (32 * copies, 1, size, size)
        assert (y.view(copies, 32) == y[:32]).all()
        if copies > 1: assert (x.view(copies, 32, -1)[1:] - x[:32].reshape(1, 32, -1)).abs().mean() > 0.01
    assert set(cb.df['lr_mult']) == {1.0}

# --- fit integration
@pytest.mark.parametrize('method', ['fit', 'fit_one_cycle', 'fit_flat_cos'])
def test_fit_methods_apply_the_drawn_sizes(method):
    learn = fm_learner(n_train=320)
    seen = watch(learn.model)
    cb = MixSize([14, 28, 42], mode='plain', eval_size=21, seed=3)
    quiet_fit(learn, method, 2, 1e-3, cbs=cb)
    assert [s for t,_,s,_ in seen if t] == cb.df['size'].tolist()
    assert {s for t,_,s,_ in seen if not t} == {21}

def test_with_random_blur_bf16_and_channels_last():
    blur = RandomBlur(p=1., sigma=1.)
    learn = fm_learner(batch_tfms=[blur]).to_bf16().to_channelslast(use_amp=False)
    seen = watch(learn.model)
    cb = MixSize(**mixsize_distribution(28), seed=0)
    quiet_fit(learn, 'fit_one_cycle', 1, 1e-3, cbs=cb)
    assert [(n, s) for t,n,s,_ in seen if t] == list(zip(cb.df['batch'], cb.df['size']))
    assert len(set(cb.df['size'])) > 1
    assert blur.last_sigmas is not None and len(blur.last_sigmas) == 32   # blurred in the loader, before the resize
    assert learn.model[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert fit_state(learn).to_restore == []

def test_refuses_progressive_resize_alongside():
    learn = fm_learner(n_train=128)
    with pytest.raises(ValueError, match='cannot train together with ProgressiveResizeCallback'):
        quiet_fit(learn, cbs=[MixSize([14, 28]), ProgressiveResizeCallback([14, 28])])

def test_too_few_images_for_the_largest_step():
    learn = fm_learner(n_train=100)
    with pytest.raises(ValueError, match='a step at 7 px holds 512 images'): quiet_fit(learn, cbs=MixSize([7, 28]))

def test_mixsize_sets_a_learned_resizers_output_size():
    learn = with_resizer(fm_learner(n_train=160), 28, n_filters=4)
    seen_body,seen_resizer = watch(learn.model.body),watch(learn.model.resizer)
    cb = MixSize([14, 21, 28], mode='plain', seed=0)
    quiet_fit(learn, cbs=cb)
    assert [s for t,_,s,_ in seen_body if t] == cb.df['size'].tolist()
    assert {s for _,_,s,_ in seen_resizer} == {28}            # the loader's images, untouched
    assert learn.model.resizer.output_size == 28              # put back

# --- evaluation across sizes
def trained():
    learn = fm_learner(n_train=320)
    quiet_fit(learn, 'fit_one_cycle', 1, 3e-3)
    return learn

def state(model): return {k: v.clone() for k,v in model.state_dict().items()}

def assert_same_state(model, sd):
    for k,v in model.state_dict().items(): assert torch.equal(v, sd[k]), k

def test_evaluate_sizes_one_row_per_size_and_bn_restored():
    learn = trained()
    sd = state(learn.model)
    seen = watch(learn.model)
    res = learn.evaluate_sizes([14, 21, 28, 42], progress=False)
    assert list(res.columns) == ['size', 'loss', 'accuracy'] and res['size'].tolist() == [14, 21, 28, 42]
    assert [s for t,_,s,_ in seen if not t][::3] == [14, 21, 28, 42]       # 96 images: 3 batches a size
    rec = learn.evaluate_sizes([14, 42], recalibrate_bn=True, n_batches_bn=4, progress=False)
    assert len(rec) == 2
    assert_same_state(learn.model, sd)
    assert not learn.model.training
    assert rec['loss'].tolist() != res.set_index('size').loc[[14, 42], 'loss'].tolist()
    ax = plot_scale_resiliency({'plain': res, 'recalibrated': rec}, train_size=28)
    assert len(ax.lines) == 3

def test_keep_bn_keeps_the_recalibrated_statistics():
    learn = trained()
    sd = state(learn.model)
    learn.evaluate_sizes([14], recalibrate_bn=True, keep_bn=True, n_batches_bn=3, progress=False)
    bn = bn_layers(learn.model)[0]
    assert not torch.equal(bn.running_mean, sd['0.1.running_mean'])
    assert bn.num_batches_tracked.item() == 3 and bn.momentum == 0.1
    assert all(torch.equal(v, sd[k]) for k,v in learn.model.state_dict().items() if 'weight' in k or 'bias' in k)

def test_evaluation_with_size_callbacks_attached():
    learn = trained()
    plain = learn.evaluate_sizes([14, 28, 42], progress=False)
    for cb in (ProgressiveResizeCallback([14, 28], check_model=False), MixSize([14, 42], eval_size=42)):
        learn.add_cb(cb)
        assert learn.evaluate_sizes([14, 28, 42], progress=False).values.tolist() == plain.values.tolist()
        assert cb in learn.cbs
        learn.remove_cb(cb)

def test_evaluate_sizes_bad_input():
    learn = trained()
    for kw,msg in [(dict(sizes=[]), 'sizes is empty'), (dict(sizes=[14, -1]), 'got -1'),
                   (dict(sizes=[14, 28], recalibrate_bn=True, keep_bn=True), 'one size'),
                   (dict(sizes=[14], keep_bn=True), 'also pass recalibrate_bn=True')]:
        with pytest.raises(ValueError) as e: learn.evaluate_sizes(**kw)
        assert msg in str(e.value)

def test_tta_sizes_shapes_and_model_unchanged():
    learn = trained()
    sd,tfms = state(learn.model),list(learn.dls.valid.after_batch.fs)
    with learn.no_bar(): ref_probs,ref_targs = learn.get_preds()
    probs,targs = learn.tta_sizes([21, 28, 35], progress=False)
    assert probs.shape == (96, 10) and torch.allclose(probs.sum(1), torch.ones(96), atol=1e-5)
    assert torch.equal(targs, ref_targs)
    assert not torch.allclose(probs, ref_probs)
    torch.testing.assert_close(learn.tta_sizes([28], flip=False, progress=False)[0], ref_probs)
    assert_same_state(learn.model, sd)
    assert list(learn.dls.valid.after_batch.fs) == tfms
