from progfast.sizing import is_fitting
"Integration: progressive_learner (folders, torchvision/timm/local weights, errors) and the ENTR recipe end to end on CPU."
import math, pytest, torch
from pathlib import Path
from torch import nn
from fastai.callback.core import Callback
from fastai.data.transforms import Normalize
from fastai.torch_core import set_seed
from fastai.vision.augment import Resize
from fastai.vision.data import ImageDataLoaders
from torchvision.models import resnet18, resnet34
from progfast.learner import (EntrResult, WeightsUnavailableError, as_dls, entr_plan, load_weights_file,
                              progressive_learner)
from progfast.resize import size_tfms
from progfast.testing import tiny_cnn

@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    "folder_dls's cache and torchvision's downloads stay in the test's folder"
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path/'progfast-cache'))
    monkeypatch.setenv('TORCH_HOME', str(tmp_path/'torch-home'))

def dls_for(path, size=32, bs=8):
    return ImageDataLoaders.from_folder(path, item_tfms=Resize(size), bs=bs, num_workers=0, seed=0)

def has_normalize(dls): return bool(dls.after_batch.fs.filter(lambda t: isinstance(t, Normalize)))

def watch(learn):
    seen = []
    learn.model.register_forward_pre_hook(lambda m, inp: seen.append((m.training, inp[0].shape[-1])))
    return seen

# --- the one-line learner

def test_folder_route_builds_folder_dls_with_augmentation(stripes):
    learn = progressive_learner(stripes, tiny_cnn, regime='stepwise', size=32, bs=8)
    dls = learn.dls
    assert (len(dls.train_ds), len(dls.valid_ds), dls.c, dls.bs) == (32, 16, 2, 8)
    assert dls.one_batch()[0].shape[-2:] == (32, 32)
    assert [type(t).__name__ for t in size_tfms(dls.train)] == ['Flip']          # aug_transforms' affine transform
    assert (learn.regime, learn.regime_size, learn.pretrained, learn.arch_name) == ('stepwise', 32, False, 'tiny_cnn')
    assert learn.model[4].p == 0.5                                                 # ps reaches the factory's p
    plain = progressive_learner(stripes, tiny_cnn, size=32, bs=8, dls_kwargs=dict(batch_tfms=None))
    assert size_tfms(plain.dls.train) == []

def test_torchvision_finds_weights_where_its_download_would_go(stripes, tmp_path):
    ckpt = tmp_path/'torch-home'/'hub'/'checkpoints'/'resnet18-f37072fd.pth'
    ckpt.parent.mkdir(parents=True)
    sd = resnet18().state_dict()
    torch.save(sd, ckpt)
    learn = progressive_learner(dls_for(stripes), 'resnet18')
    assert torch.equal(learn.model[0][0].weight, sd['conv1.weight'])
    assert learn.pretrained and has_normalize(learn.dls)
    assert not any(p.requires_grad for n,p in learn.model[0].named_parameters() if n.endswith('conv1.weight'))

def test_failed_download_says_how_to_pass_a_file_and_leaves_dls(stripes):
    dls = dls_for(stripes)
    with pytest.raises(WeightsUnavailableError, match=r"pass a local weights file: progressive_learner\(\.\.\., arch='resnet34', weights="):
        progressive_learner(dls, 'resnet34')
    assert not has_normalize(dls)

def test_failed_timm_download_says_how_to_pass_a_file(stripes):
    from huggingface_hub import constants
    if not constants.HF_HUB_OFFLINE: pytest.skip("needs HF_HUB_OFFLINE=1 (as make test sets): a failing hub download retries for ~46 s")
    with pytest.raises(WeightsUnavailableError, match="weights=.*Hugging Face Hub"): progressive_learner(dls_for(stripes), 'test_resnet')

@pytest.mark.parametrize('wrap', [False, True])
def test_torchvision_local_file_and_fastai_checkpoint(stripes, tmp_path, wrap):
    sd = resnet18().state_dict()
    fn = tmp_path/'r18.pth'
    torch.save({'model': sd, 'opt': {}} if wrap else sd, fn)
    learn = progressive_learner(dls_for(stripes), 'resnet18', weights=fn)
    assert torch.equal(learn.model[0][7][1].conv2.weight, sd['layer4.1.conv2.weight'])
    assert torch.equal(learn.model[0][1].running_mean, sd['bn1.running_mean'])     # buffers too

def test_a_file_without_the_old_head_is_enough(stripes, tmp_path):
    sd = {k:v for k,v in resnet18().state_dict().items() if not k.startswith('fc.')}
    torch.save(sd, tmp_path/'body.pth')
    learn = progressive_learner(dls_for(stripes), 'resnet18', weights=tmp_path/'body.pth')
    assert torch.equal(learn.model[0][0].weight, sd['conv1.weight'])

@pytest.mark.parametrize('ext', ['pth', 'safetensors'])
def test_timm_local_file(stripes, tmp_path, ext):
    import timm
    sd = timm.create_model('test_resnet').state_dict()
    fn = tmp_path/f'test_resnet.{ext}'
    if ext == 'pth': torch.save(sd, fn)
    else:
        from safetensors.torch import save_file
        save_file(sd, str(fn))
    learn = progressive_learner(dls_for(stripes), 'test_resnet', weights=fn)
    assert torch.equal(learn.model[0].model.layer1[0].conv1.weight, sd['layer1.0.conv1.weight'])
    assert has_normalize(learn.dls) and learn.pretrained

def test_bad_weight_files_are_named(stripes, tmp_path):
    dls = dls_for(stripes)
    torch.save(resnet34().state_dict(), tmp_path/'r34.pth')
    with pytest.raises(ValueError, match=r"r34.pth' does not hold weights for resnet18: 96 unexpected"):
        progressive_learner(dls, 'resnet18', weights=tmp_path/'r34.pth')
    with pytest.raises(ValueError, match=r"r34.pth' does not hold weights for test_resnet"):
        progressive_learner(dls, 'test_resnet', weights=tmp_path/'r34.pth')
    (tmp_path/'photo.pth').write_bytes(b'\xff\xd8\xff\xe0 not a checkpoint')
    with pytest.raises(ValueError, match="cannot read weights from .*photo.pth"):
        progressive_learner(dls, 'resnet18', weights=tmp_path/'photo.pth')
    (tmp_path/'empty.safetensors').write_bytes(b'')
    with pytest.raises(ValueError, match="empty.safetensors"): progressive_learner(dls, 'test_resnet', weights=tmp_path/'empty.safetensors')
    torch.save({'epoch': 3}, tmp_path/'meta.pth')
    with pytest.raises(ValueError, match="meta.pth' holds a dict, not a state dict"): load_weights_file(tmp_path/'meta.pth')
    with pytest.raises(FileNotFoundError, match="missing.pth"): progressive_learner(dls, 'resnet18', weights=tmp_path/'missing.pth')
    assert not has_normalize(dls)

def test_unknown_arch_names_the_choices(stripes):
    dls = dls_for(stripes)
    with pytest.raises(ValueError, match=r"unknown arch 'resnet19'.*'resnet18', 'resnet34', 'resnet50'.*closest names: \['resnet18'"):
        progressive_learner(dls, 'resnet19')
    with pytest.raises(ValueError, match=r"closest names: \[.*'convnext_tiny'"): progressive_learner(dls, 'convnext_tiyn')

def test_bad_arguments(stripes):
    dls = dls_for(stripes)
    with pytest.raises(ValueError, match=r"ps must be a dropout probability in \[0, 1\), got -0.1"): progressive_learner(dls, ps=-0.1)
    with pytest.raises(ValueError, match="size must be a positive number of pixels, got 0"): progressive_learner(dls, size=0)
    with pytest.raises(ValueError, match="not monotonic"): progressive_learner(dls, regime=[32, 16, 24])
    with pytest.raises(TypeError, match="source must be a folder of images"): progressive_learner(None)

def test_khor_from_scratch_and_grayscale_channels():
    from progfast.data import fashion_mnist_dls
    dls = fashion_mnist_dls(bs=16, n_train=64, n_valid=32)          # 1 channel
    learn = progressive_learner(dls, 'khor', ps=0.4)
    assert type(learn.model).__name__ == 'KhorNet' and learn.model[0][0].in_channels == 1
    assert learn.model[10].p == 0.4 and not learn.pretrained
    with pytest.raises(ValueError, match="khor has no pretrained weights"): progressive_learner(dls, 'khor', pretrained=True)

# --- the regime is the default of fit_progressive

def test_fit_progressive_uses_the_learners_regime_and_final_size(stripes):
    learn = progressive_learner(dls_for(stripes, 40), tiny_cnn, regime='stepwise')
    seen = watch(learn)
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(4, 1e-3)
    assert [s for t,s in seen if t][::4] == [16, 16, 40, 40]
    learn = progressive_learner(dls_for(stripes, 40), tiny_cnn, regime='gradual', size=20)
    seen = watch(learn)
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(4, 1e-3, sizes=[10, 30])   # explicit sizes win
    assert [s for t,s in seen if t][::4] == [10, 10, 30, 30]
    seen.clear()
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(4, 1e-3, check_model=False)
    assert [s for t,s in seen if t][::4] == [8, 12, 16, 20] and {s for t,s in seen if not t} == {20}   # 'gradual' ending at size=20

# --- the ENTR recipe

class Spy(Callback):
    "Per fit: each parameter group's largest learning rate, whether the body trains, and the lr at each epoch start"
    order = 61   # after the ParamScheduler (60) has set the batch's learning rates
    def __init__(self): self.fits,self.lr_find_sizes = [],[]
    def before_fit(self):
        if not is_fitting(self.learn) or hasattr(self.learn, 'lr_finder'): self.cur = None; return
        self.cur = dict(n_epoch=self.n_epoch, max_lr=[0.]*len(self.opt.hypers), starts=[],
                        body_trains=self.learn.model[0][0].weight.requires_grad)
        self.fits.append(self.cur)
    def before_batch(self):
        if hasattr(self.learn, 'lr_finder') and self.training: self.lr_find_sizes.append(self.xb[0].shape[-1])
        if self.cur is None or not self.training: return
        lrs = [h['lr'] for h in self.opt.hypers]
        self.cur['max_lr'] = [max(a, b) for a,b in zip(self.cur['max_lr'], lrs)]
        if self.iter == 0: self.cur['starts'].append(lrs[-1])

def test_fit_entr_end_to_end(stripes, tmp_path):
    set_seed(0)
    fn = tmp_path/'r18.pth'
    torch.save(resnet18().state_dict(), fn)
    learn = progressive_learner(dls_for(stripes), 'resnet18', weights=fn, ps=0.4)
    conv0 = learn.model[0][0].weight.detach().clone()
    seen,spy = watch(learn),Spy()
    with learn.no_bar(), learn.no_logging():
        res = learn.fit_entr(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=2, unfreeze_epochs=1, lr_find_iters=6, tta_n=2, cbs=spy)
    assert isinstance(res, EntrResult) and learn.entr_result is res
    # lr_find ran first, at the start size (6 batches), then the steps at their sizes
    assert spy.lr_find_sizes == [13]*6
    h = res.history
    assert h.step.tolist() == ['sgdr']*4 + ['cyclic'] + ['cmult']*3 + ['retrain']
    assert h['size'].tolist() == [13, 19, 26, 32] + [32]*5
    assert res.lr_source == 'lr_find' and res.lr > 0
    # the learning rates of each step: SGDR restarts at each size, CMult at epochs 0 and 1 (cycles of 1 and 2 epochs),
    # the body is frozen until the retraining, which uses lr/100 .. lr/10 across the parameter groups
    sgdr,cyc,cmult,rpl = spy.fits
    assert [f['n_epoch'] for f in spy.fits] == [4, 1, 3, 1]
    assert all(math.isclose(s, res.lr, rel_tol=1e-6) for s in sgdr['starts'])
    assert math.isclose(cmult['starts'][0], res.lr, rel_tol=1e-6) and math.isclose(cmult['starts'][1], res.lr, rel_tol=1e-6)
    assert cmult['starts'][2] < res.lr
    assert [f['body_trains'] for f in spy.fits] == [False, False, False, True]
    assert math.isclose(rpl['max_lr'][0], res.lr/100, rel_tol=1e-3) and math.isclose(rpl['max_lr'][-1], res.lr/10, rel_tol=1e-3)
    assert not torch.equal(learn.model[0][0].weight, conv0)             # retrained
    # what was measured
    for a in (res.accuracy_pre, res.accuracy, res.tta_accuracy, res.train_accuracy): assert 0 <= a <= 1
    assert math.isclose(res.generalization_gap, res.train_accuracy - res.accuracy)
    assert 0 < res.pre_seconds < res.train_seconds and h.seconds.sum() <= res.train_seconds
    assert math.isclose(res.standardized_accuracy, math.sqrt(res.accuracy/res.train_seconds))
    assert math.isclose(res.standardized_accuracy_pre, math.sqrt(res.accuracy_pre/res.pre_seconds))
    assert res.inference_seconds_per_image > 0
    assert set(res.as_dict()) >= {'accuracy', 'tta_accuracy', 'standardized_accuracy', 'train_seconds'} and 'history' not in res.as_dict()
    assert {s for t,s in seen[-20:] if not t} == {32}                  # the evaluations at the final size
    assert not (stripes/'models').exists() and not (stripes/'train'/'models').exists()

def test_fit_entr_learns(stripes):
    set_seed(0)
    learn = progressive_learner(dls_for(stripes), tiny_cnn)
    with learn.no_bar(), learn.no_logging():
        res = learn.fit_entr(sgdr_epochs=4, cyclic_epochs=2, cycle_mult_cycles=1, unfreeze_epochs=1, lr=1e-2, tta_n=2)
    assert res.accuracy > 0.7, res.accuracy

class FailAt(Callback):
    def __init__(self, fit_no, exc): self.fit_no,self.exc,self.fits = fit_no,exc,0
    def before_fit(self):
        if is_fitting(self.learn): self.fits += 1
    def before_epoch(self):
        if self.fits == self.fit_no: raise self.exc

@pytest.mark.parametrize('fit_no,exc', [(1, RuntimeError('boom')), (3, KeyboardInterrupt()), (4, RuntimeError('boom'))])
def test_a_failed_fit_entr_puts_everything_back(stripes, tmp_path, fit_no, exc):
    import timm
    fn = tmp_path/'test_resnet.pth'
    torch.save(timm.create_model('test_resnet').state_dict(), fn)
    learn = progressive_learner(dls_for(stripes), 'test_resnet', weights=fn)      # a tiny pretrained-style (frozen) learner
    state = {k: v.clone() for k,v in learn.model.state_dict().items()}
    grads = [p.requires_grad for p in learn.model.parameters()]
    tfms = [(t, t.size) for t in size_tfms(learn.dls.train, 'loader') + size_tfms(learn.dls.valid, 'loader')]
    opt,hypers = learn.opt,[dict(h) for h in learn.opt.hypers]
    drops = [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)]
    with learn.no_bar(), learn.no_logging(), pytest.raises(type(exc)):
        learn.fit_entr('fixed', sgdr_epochs=1, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1, lr=1e-3, cbs=FailAt(fit_no, exc))
    assert all(torch.equal(v, state[k]) for k,v in learn.model.state_dict().items())
    assert [p.requires_grad for p in learn.model.parameters()] == grads
    assert [t.size for t,_ in tfms] == [s for _,s in tfms]
    assert learn.opt is opt and [dict(h) for h in learn.opt.hypers] == hypers
    assert [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)] == drops
    assert not hasattr(learn, 'entr_result') and learn.cbs.filter(lambda c: type(c).__name__ in ('EntrLog', 'ProgressiveResize')) == []

def test_fit_entr_refuses_bad_arguments_before_training(stripes):
    learn = progressive_learner(dls_for(stripes), tiny_cnn)
    w = learn.model[0][0].weight.detach().clone()
    for kwargs,msg in [(dict(lr=None, lr_find=False), 'pass lr=, or lr_find=True'),
                       (dict(lr=-1e-3), 'lr must be a positive number, got -0.001'),
                       (dict(lr=1e-3, sgdr_epochs=2), r'4 stages \[13, 19, 26, 32\] do not fit in 2 epochs'),
                       (dict(lr=1e-3, regime='linear'), "unknown size schedule 'linear'"),
                       (dict(lr=1e-3, unfreeze_epochs=1.5), 'unfreeze_epochs must be a whole number of epochs >= 0, got 1.5'),
                       (dict(lr=1e-3, tta_n=0), 'tta_n must be a whole number of passes >= 1, got 0')]:
        with pytest.raises(ValueError, match=msg): learn.fit_entr(**kwargs)
    assert torch.equal(learn.model[0][0].weight, w)

def test_epochs_per_stage_and_the_plan():
    assert entr_plan('stepwise', 250, epochs_per_stage=3).sizes[1] == [100]*3 + [250]*3
    assert entr_plan('fixed', 250, epochs_per_stage=3).sizes[1] == [250]*3
    assert entr_plan('gradual', 40, cycle_mult_cycles=3, cycle_len=2).set_index('step').epochs['cmult'] == 2 + 4 + 8
