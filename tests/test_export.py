"""A clean export: after progfast's fits, `learn.export()` carries none of progfast's training state, `load_learner` opens
it in a process where progfast cannot be imported (fastai's own DataLoaders), and the loaded learner predicts what the
trained one predicts. With progfast's folder loaders it loads and predicts where progfast is installed."""
import json, pickle, pickletools, subprocess, sys, textwrap, zipfile
from pathlib import Path
import numpy as np, pytest, torch
from torch import nn
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.torch_core import set_seed
from fastai.callback.mixup import MixUp
from fastai.vision.augment import Resize, aug_transforms
from fastai.vision.data import ImageDataLoaders
import progfast, progfast.all  # noqa: F401  (every Learner method and property progfast adds)
from progfast.callbacks.mixsize import MixSize
from progfast.core.sizing import RecalibrateBN, fit_state
from progfast.testing import stripes_folder

def torch_only_model():
    "A model made of torch modules only, so unpickling it needs no progfast"
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Dropout(0.2),
                         nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))

@pytest.fixture(scope='module')
def data(tmp_path_factory): return stripes_folder(tmp_path_factory.mktemp('export')/'stripes', n_train=12, n_valid=6, size=32)

def fastai_learner(data, tmp_path):
    set_seed(0)
    dls = ImageDataLoaders.from_folder(data, item_tfms=Resize(32), batch_tfms=aug_transforms(size=32), bs=8, num_workers=0, seed=0)
    return Learner(dls, torch_only_model(), metrics=accuracy, path=tmp_path)

def progfast_objects(obj, seen=None) -> list:
    "Names of the progfast objects reachable from the learner's attributes, the way pickle would walk them (one level of containers)"
    found = []
    for k,v in vars(obj).items():
        vals = list(v.values()) if isinstance(v, dict) else list(v) if isinstance(v, (list, tuple)) else [v]
        found += [k for o in vals if type(o).__module__.startswith('progfast')]
    return found

def pickled_strings(fname) -> list:
    "Every string in the pickle of a `torch.save` archive: module and class names, and the source files of functions pickled by value"
    with zipfile.ZipFile(fname) as z:
        data = z.read(next(n for n in z.namelist() if n.endswith('data.pkl')))
    return [arg for _,arg,_ in pickletools.genops(data) if isinstance(arg, str)]

def progfast_references(fname) -> list:
    "The pickled strings that name a progfast module or a file of progfast's package (a path that merely contains the word is fine)"
    package = str(Path(progfast.__file__).parent)
    return [s for s in pickled_strings(fname)
            if s.split(' ')[0] == 'progfast' or s.startswith('progfast.') or package in s]

def test_progfast_references_finds_a_progfast_function_and_ignores_a_path(tmp_path):
    from progfast.core.sizing import scaled_batch_size
    torch.save({'f': scaled_batch_size, 'path': '/root/.cache/progfast-ci/venv/x.py'}, tmp_path/'x.pt', pickle_module=pickle)
    assert progfast_references(tmp_path/'x.pt') == ['progfast.core.sizing scaled_batch_size']   # pickle's GLOBAL: module and name

BLOCKED = textwrap.dedent("""
    import importlib.abc, json, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == 'progfast' or name.startswith('progfast.'): raise ImportError(f'{name} is blocked in this process')
    sys.meta_path.insert(0, Block())
    import torch
    from fastai.learner import load_learner
    learn = load_learner(sys.argv[1])
    dl = learn.dls.test_dl(json.loads(open(sys.argv[2]).read()))
    preds, _ = learn.get_preds(dl=dl)
    assert 'progfast' not in sys.modules
    torch.save(preds, sys.argv[3])
""")

def test_export_after_every_kind_of_fit_loads_without_progfast(data, tmp_path):
    learn = fastai_learner(data, tmp_path)
    learn.add_cb(MixUp(0.2))
    with learn.no_bar(), learn.no_logging():
        learn.fit_progressive(3, 1e-2, sizes=[16, 24, 32], regularization=dict(dropout=[0.1, 0.2, 0.3], mixup=[0.1, 0.2, 0.4]),
                              blur='linear', batch_scale=True, cbs=RecalibrateBN(2))
        learn.fit(1, 1e-3, cbs=MixSize([16, 32], mode='plain', seed=0))
        learn.evaluate_sizes([16, 32], recalibrate_bn=True, progress=False)
    learn.remove_cb(MixUp)
    assert progfast_objects(learn) == [] and progfast_objects(learn.recorder) == []
    assert learn.progressive.bn_recalibrated['size'] == 32          # still reachable, through progfast's own state
    learn.export('export.pkl')
    assert progfast_references(tmp_path/'export.pkl') == []          # not one progfast class, function, module or source file
    items = [str(f) for f in sorted((data/'valid').rglob('*.png'))]
    (tmp_path/'items.json').write_text(json.dumps(items))
    script = tmp_path/'load.py'; script.write_text(BLOCKED)
    res = subprocess.run([sys.executable, str(script), str(tmp_path/'export.pkl'), str(tmp_path/'items.json'), str(tmp_path/'preds.pt')],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    with learn.no_bar(): expected,_ = learn.get_preds(dl=learn.dls.test_dl(items))
    torch.testing.assert_close(torch.load(tmp_path/'preds.pt'), expected)

def test_export_of_a_folder_learner_loads_and_predicts_with_progfast(data, tmp_path):
    from progfast.learner import progressive_learner
    from fastai.learner import load_learner
    set_seed(0)
    learn = progressive_learner(data, 'khor', regime='gradual', size=32, bs=8, path=tmp_path)
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(4, 1e-2)
    assert set(progfast_objects(learn)) <= {'model'}             # Khor's network is progfast's; no training state
    assert not {'regime', 'regime_size', 'arch_name', 'progressive', 'entr_result'} & set(vars(learn))
    assert learn.regime == 'gradual' and learn.progressive.bn_recalibrated is not None
    learn.export('folder.pkl')
    loaded = load_learner(tmp_path/'folder.pkl')
    items = sorted((data/'valid').rglob('*.png'))
    with learn.no_bar(), loaded.no_bar():
        a,_ = learn.get_preds(dl=learn.dls.test_dl(items))
        b,_ = loaded.get_preds(dl=loaded.dls.test_dl(items))
    torch.testing.assert_close(a, b)

def test_state_is_kept_out_of_the_learner_and_released_with_it(data, tmp_path):
    import gc, weakref
    learn = fastai_learner(data, tmp_path)
    with learn.no_bar(), learn.no_logging(): learn.fit_progressive(2, 1e-3, sizes=[16, 32])
    for name in ('progressive', 'fitting', 'to_restore'): assert name not in vars(learn)
    assert fit_state(learn).fitting == 0 and fit_state(learn).to_restore == []
    ref = weakref.ref(learn)
    del learn; gc.collect()
    assert ref() is None                                             # progfast's state does not keep a learner alive
