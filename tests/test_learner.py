from progfast.core.sizing import is_fitting
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
from progfast.core.sizing import size_tfms
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
    with pytest.raises(ValueError, match=r"unknown arch 'resnet19'.*torchvision's classification models.*closest names: \['resnet18'"):
        progressive_learner(dls, 'resnet19')
    with pytest.raises(ValueError, match=r"closest names: \[.*'convnext_tiny'"): progressive_learner(dls, 'convnext_tiyn')

def test_bad_arguments(stripes):
    dls = dls_for(stripes)
    with pytest.raises(ValueError, match=r"ps must be a dropout probability in \[0, 1\), got -0.1"): progressive_learner(dls, ps=-0.1)
    with pytest.raises(ValueError, match="size must be a whole number of pixels from 1 to 8192 or None, got 0"): progressive_learner(dls, size=0)
    with pytest.raises(ValueError, match="not monotonic"): progressive_learner(dls, regime=[32, 16, 24])
    with pytest.raises(TypeError, match="source must be a folder of images"): progressive_learner(None)

def test_khor_from_scratch_and_grayscale_channels():
    from progfast.data.embedded import fashion_mnist_dls
    dls = fashion_mnist_dls(bs=16, n_train=64, n_valid=32)          # 1 channel
    learn = progressive_learner(dls, 'khor', ps=0.4)
    assert type(learn.model).__name__ == 'KhorNet' and learn.model[0][0].in_channels == 1
    assert learn.model[10].p == 0.4 and not learn.pretrained
    with pytest.raises(ValueError, match="khor has no pretrained weights"): progressive_learner(dls, 'khor', pretrained=True)

# --- any backbone

TV_BACKBONES = [   # (name, given as: the name or torchvision's constructor, features of the body)
    ('mobilenet_v2', 'name', 1280), ('mobilenet_v3_small', 'callable', 576), ('mobilenet_v3_large', 'name', 960),
    ('efficientnet_b0', 'callable', 1280), ('convnext_tiny', 'name', 768), ('regnet_y_400mf', 'callable', 440)]

def pretrained_warnings(caught):
    "torchvision's deprecation warnings about `pretrained=` (or weights that are not an enum) among `caught`"
    return [str(w.message) for w in caught if issubclass(w.category, (UserWarning, DeprecationWarning, FutureWarning))
            and ('pretrained' in str(w.message) or 'weight enum' in str(w.message))]

def random_weights(build, fn):
    sd = build().state_dict()
    torch.save(sd, fn)
    return sd

@pytest.mark.parametrize('name,given,features', TV_BACKBONES, ids=[b[0] for b in TV_BACKBONES])
def test_torchvision_backbones_with_local_weights(stripes, tmp_path, name, given, features):
    import torchvision, warnings
    build = getattr(torchvision.models, name)
    sd = random_weights(build, tmp_path/f'{name}.pth')
    dls = dls_for(stripes, size=32, bs=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        learn = progressive_learner(dls, name if given == 'name' else build, weights=tmp_path/f'{name}.pth')
    assert pretrained_warnings(caught) == []
    body = learn.model[0].state_dict()                     # the body is the first children of the model, weights from the file
    assert len(body) > 10 and all(torch.equal(v, w) for v,w in zip(body.values(), list(sd.values())[:len(body)]))
    assert learn.model[1][2].num_features == 2*features    # fastai's head: concat pooling, then batch norm
    xb,_ = dls.one_batch()
    with torch.no_grad(): assert learn.model.eval()(xb).shape == (4, 2)
    assert learn.pretrained and has_normalize(dls) and not next(learn.model[0].parameters()).requires_grad

def test_a_small_fit_with_a_mobilenet_fastai_does_not_know(stripes, tmp_path):
    "torchvision's MobileNetV2 is not in fastai's model_meta: its body was a bare StopIteration before"
    import torchvision
    from fastai.vision.learner import model_meta
    assert torchvision.models.mobilenet_v2 not in model_meta
    def mobilenet_v2(pretrained=False):                     # a wrapper of the kind the ENTR benchmark uses
        assert not pretrained
        return torchvision.models.mobilenet_v2(weights=None)
    random_weights(mobilenet_v2, tmp_path/'mnv2.pth')
    set_seed(0)
    learn = progressive_learner(dls_for(stripes, size=32, bs=16), mobilenet_v2, weights=tmp_path/'mnv2.pth')
    head0,body0 = learn.model[1][-1].weight.detach().clone(),learn.model[0][0][0][0].weight.detach().clone()
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)        # one batch
    assert not torch.equal(learn.model[1][-1].weight, head0) and torch.equal(learn.model[0][0][0][0].weight, body0)  # frozen body
    assert math.isfinite(learn.recorder.values[-1][1])

def test_cut_split_and_stats_pass_through(stripes, tmp_path):
    import torchvision, timm
    dls = dls_for(stripes, size=32, bs=4)
    thirds = lambda m: [list(m[0][:3].parameters()), list(m[0][3:].parameters()), list(m[1].parameters())]
    learn = progressive_learner(dls, 'mobilenet_v3_small', pretrained=False, cut=lambda m: m.features[:4], split=thirds)
    assert learn.model[1][2].num_features == 2*24 and len(learn.splitter(learn.model)) == 3 and not has_normalize(dls)
    learn = progressive_learner(dls, torchvision.models.regnet_y_400mf, pretrained=False, stats=([0.5]*3, [0.2]*3))
    norm = dls.after_batch.fs.filter(lambda t: isinstance(t, Normalize))[0]
    assert torch.allclose(norm.std.flatten(), torch.tensor([0.2]*3))
    fn = tmp_path/'test_resnet.pth'
    torch.save(timm.create_model('test_resnet').state_dict(), fn)
    learn = progressive_learner(dls_for(stripes, size=32, bs=4), 'test_resnet', weights=fn, cut=-2)   # timm, cut before the pooling
    assert type(learn.model[0]).__name__ == 'Sequential' and torch.equal(learn.model[0][0][0].weight, timm.create_model(
        'test_resnet', pretrained=True, pretrained_cfg_overlay=dict(file=str(fn))).conv1[0].weight)
    timm_thirds = lambda m: [list(m[0].parameters()), list(m[1][:4].parameters()), list(m[1][4:].parameters())]
    learn = progressive_learner(dls_for(stripes), 'timm:resnet18', pretrained=False, splitter=timm_thirds)   # fastai's name works too
    assert type(learn.model[0]).__name__ == "TimmBody" and len(learn.splitter(learn.model)) == 3
    with pytest.raises(ValueError, match="give the splitter once"): progressive_learner(dls, 'khor', split=thirds, splitter=thirds)
    with pytest.raises(ValueError, match=r"stats has 3 channels, the images have 1"):
        progressive_learner(dls, 'khor', stats=([0.5]*3, [0.2]*3), n_in=1)
    with pytest.raises(ValueError, match=r"stats must be \(mean, std\)"): progressive_learner(dls, 'khor', stats=0.5)
    with pytest.raises(ValueError, match="khor builds the whole model"): progressive_learner(dls, 'khor', cut=2)

def test_a_body_that_cannot_be_found_names_cut(stripes):
    dls = dls_for(stripes, size=32, bs=4)
    def flat(weights=None): return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten())
    with pytest.raises(ValueError, match=r"cannot find the body of flat: none of its top-level children \(0, 1, 2\).*pass cut="):
        progressive_learner(dls, flat, pretrained=False)
    with pytest.raises(ValueError, match=r"the body of flat \(cut=3\) gives \(1, \d+\), not a feature map.*pass cut="):
        progressive_learner(dls, flat, pretrained=False, cut=3)
    assert progressive_learner(dls, flat, pretrained=False, cut=2).model[1][2].num_features == 16
    def no_weights(): return flat()
    with pytest.raises(ValueError, match="no_weights takes neither weights= nor pretrained="):
        progressive_learner(dls, no_weights, pretrained=True)
    assert not has_normalize(dls)

def test_wrong_weights_for_a_backbone_are_named(stripes, tmp_path):
    import torchvision
    random_weights(torchvision.models.mobilenet_v3_small, tmp_path/'mnv3s.pth')
    with pytest.raises(ValueError, match=r"mnv3s.pth' does not hold weights for mobilenet_v2: .*unexpected"):
        progressive_learner(dls_for(stripes), 'mobilenet_v2', weights=tmp_path/'mnv3s.pth')

def test_no_deprecation_warnings_where_fastai_would_pass_pretrained(stripes, tmp_path, monkeypatch):
    "Registered in model_meta without a 'weights' entry (as the ENTR benchmark did), fastai builds it with pretrained=False"
    import torchvision, warnings
    from fastai.vision.learner import model_meta, default_split
    from fastai.vision.core import imagenet_stats
    monkeypatch.setitem(model_meta, torchvision.models.mobilenet_v2, dict(cut=-1, split=default_split, stats=imagenet_stats))
    random_weights(torchvision.models.mobilenet_v2, tmp_path/'mnv2.pth')
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        progressive_learner(dls_for(stripes), torchvision.models.mobilenet_v2, weights=tmp_path/'mnv2.pth')
        progressive_learner(dls_for(stripes), torchvision.models.mobilenet_v2, pretrained=False)
    assert pretrained_warnings(caught) == []

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
    "Raise `exc` after the second training batch of the `fit_no`-th fit of `fit_entr`, noting the weights"
    def __init__(self, fit_no, exc): self.fit_no,self.exc,self.fits = fit_no,exc,0
    def before_fit(self):
        if is_fitting(self.learn) and not hasattr(self.learn, 'lr_finder'): self.fits += 1
    def after_batch(self):
        if self.fits == self.fit_no and self.training and self.iter == 1:
            self.weights = {k: v.clone() for k,v in self.learn.model.state_dict().items()}
            raise self.exc

def frozen_learner(stripes, tmp_path):
    "A tiny timm learner with local weights: frozen body, an optimizer, loader-mode size transforms"
    import timm
    fn = tmp_path/'test_resnet.pth'
    torch.save(timm.create_model('test_resnet').state_dict(), fn)
    return progressive_learner(dls_for(stripes), 'test_resnet', weights=fn)

def tfm_sizes(learn): return [(t, t.size) for t in size_tfms(learn.dls.train, 'loader') + size_tfms(learn.dls.valid, 'loader')]

@pytest.mark.parametrize('fit_no,exc', [(1, RuntimeError('boom')), (3, KeyboardInterrupt())], ids=['error-in-sgdr', 'ctrl-c-in-retraining'])
def test_an_interrupted_fit_entr_keeps_the_training_and_undoes_progfasts_changes(stripes, tmp_path, fit_no, exc):
    learn = frozen_learner(stripes, tmp_path)
    start = {k: v.clone() for k,v in learn.model.state_dict().items()}
    grads,sizes,opt = [p.requires_grad for p in learn.model.parameters()],tfm_sizes(learn),learn.opt
    fail = FailAt(fit_no, exc)
    with learn.no_bar(), learn.no_logging(), pytest.raises(type(exc)):
        learn.fit_entr('stepwise', sgdr_epochs=2, cyclic_epochs=0, cycle_mult_cycles=1, unfreeze_epochs=1, lr=1e-3,
                       final_size=24, mode='loader', cbs=fail)   # the loaders' transforms at 10 and 24 px, not their 32
    now = learn.model.state_dict()
    assert all(torch.equal(v, fail.weights[k]) for k,v in now.items())                  # the weights at the interruption
    assert not all(torch.equal(v, start[k]) for k,v in now.items())                      # which were trained
    assert [p.requires_grad for p in learn.model.parameters()] == grads                  # frozen as before (also after retraining)
    assert learn.opt.frozen_idx == 1 and learn.opt is opt
    assert [t.size for t,_ in sizes] == [s for _,s in sizes]                              # the DataLoaders' sizes
    assert not hasattr(learn, 'entr_result') and not hasattr(learn, 'progressive')
    assert learn.cbs.filter(lambda c: type(c).__name__ in ('EntrLog', 'ProgressiveResizeCallback')) == []

class InterruptLrFind(Callback):
    def after_batch(self):
        if hasattr(self.learn, 'lr_finder') and self.iter == 2: raise KeyboardInterrupt()

def test_an_interrupted_lr_finder_puts_the_weights_back(stripes, tmp_path):
    learn = frozen_learner(stripes, tmp_path)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)                            # an optimizer with a state
    start = {k: v.clone() for k,v in learn.model.state_dict().items()}
    opt_state = [{k: v.clone() for k,v in s.items() if torch.is_tensor(v)} for s in learn.opt.state_dict()['state']]
    sizes = tfm_sizes(learn)
    with learn.no_bar(), learn.no_logging(), pytest.raises(KeyboardInterrupt):
        learn.fit_entr('stepwise', sgdr_epochs=2, lr_find_iters=10, final_size=24, mode='loader', cbs=InterruptLrFind())
    assert all(torch.equal(v, start[k]) for k,v in learn.model.state_dict().items())     # its trial steps are undone
    now = [{k: v for k,v in s.items() if torch.is_tensor(v)} for s in learn.opt.state_dict()['state']]
    assert sum(len(s) for s in opt_state) > 0
    assert all(s.keys() == t.keys() and all(torch.equal(s[k], t[k]) for k in s) for s,t in zip(opt_state, now))
    assert [t.size for t,_ in sizes] == [s for _,s in sizes]
    assert not (stripes/'models').exists()

def test_fit_entr_refuses_bad_arguments_before_training(stripes):
    learn = progressive_learner(dls_for(stripes), tiny_cnn)
    w = learn.model[0][0].weight.detach().clone()
    for kwargs,msg in [(dict(lr=None, lr_find=False), 'pass lr=, or lr_find=True'),
                       (dict(lr=-1e-3), 'lr must be a number > 0, got -0.001'),
                       (dict(lr=1e-3, sgdr_epochs=2), r'4 stages \[13, 19, 26, 32\] do not fit in 2 epochs'),
                       (dict(lr=1e-3, regime='linear'), "unknown size schedule 'linear'"),
                       (dict(lr=1e-3, tta_n=0), 'tta_n must be a whole number of passes from 1 to 1000, got 0')]:
        with pytest.raises(ValueError, match=msg): learn.fit_entr(**kwargs)
    with pytest.raises(TypeError, match='unfreeze_epochs must be a whole number of epochs from 0 to 10000, got 1.5'):
        learn.fit_entr(lr=1e-3, unfreeze_epochs=1.5)
    assert torch.equal(learn.model[0][0].weight, w)

def test_epochs_per_stage_and_the_plan():
    assert entr_plan('stepwise', 250, epochs_per_stage=3).sizes[1] == [100]*3 + [250]*3
    assert entr_plan('fixed', 250, epochs_per_stage=3).sizes[1] == [250]*3
    assert entr_plan('gradual', 40, cycle_mult_cycles=3, cycle_len=2).set_index('step').epochs['cmult'] == 2 + 4 + 8


def test_entr_log_does_not_shadow_a_learner_attribute():
    "fastai warned 'You are shadowing an attribute (size)' in fit_mkrtchyan's runs: EntrLog kept the epoch's size as `size`"
    import warnings
    from types import SimpleNamespace
    from fastai.learner import Learner
    from progfast.data.embedded import fashion_mnist_dls
    from progfast.models import khor_net
    from progfast.learner import EntrLog
    log,learn = EntrLog(),Learner(fashion_mnist_dls(bs=8, n_train=16, n_valid=8), khor_net(n_in=1))
    learn.size,learn.progressive = 32,SimpleNamespace(current_size=16)
    log.learn = learn
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        log.before_train()
