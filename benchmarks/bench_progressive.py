"""Speed of progressive training: realized vs theoretical savings with and without batch scaling, the callback's
overhead, the cost of RecalibrateBN, and size-aware loading.

    python benchmarks/bench_progressive.py              # the full run: about 15-20 minutes on 2 quiet CPU cores
    python benchmarks/bench_progressive.py --minutes 8  # bounded: after 8 minutes no comparison starts a repeat beyond its first 2
    python benchmarks/bench_progressive.py --quick      # tiny data, under a minute: the test suite runs it

The full run's time on 2 cores, from single trials timed under load 6 (about 20 minutes there): section 1 about
two thirds of it (4 setting/mode groups x 5 repeats x 3 fits of Khor's network), 1b about a fifth (15 resnet18 fits),
sections 2-4 a few minutes together. `--minutes M` keeps a run near M minutes plus the first two repeats of each
comparison still to come; the results file then says which comparisons were cut and how many repeats they kept.

1. Realized vs theoretical savings. Khor's network on the embedded Fashion-MNIST, two settings: 24 -> 32 px (Khor's
   own +2 px schedule, `sizes='khor'`, images upsized to 32 px by `fashion_mnist_dls(size=32)`) and 11 -> 28 px
   (ENTR's 'gradual' stages 11-17-22-28), in both modes ('batch': the callback resizes each batch; 'loader': the
   loader's own size transform follows the schedule). Three contenders per repeat: fixed-size training, progressive
   training, and progressive training with `batch_scale=True` (a step at size s takes about bs*(final/s)^2 images,
   learning rate times sqrt of that over bs). Realized = the progressive fit's training seconds over the fixed fit's
   of the SAME repeat; theoretical = the mean pixels per image over training over full-size pixels (from the
   callback's per-step record). Target: realized / theoretical <= 1.10, judged on the interval of the median over
   the repeats ("inconclusive" where it crosses 1.10). The same runs give the accuracy at equal epochs (each repeat
   is a seed: same initial weights and batch order for every contender of the repeat). Also resnet18 64 -> 128 px
   on a folder of JPEGs in loader mode (images opened at the current size).
2. The callback's overhead: `ProgressiveResizeCallback` with a constant schedule against plain `fit` (paired A/B), and the
   seconds spent inside its handlers (direct).
3. RecalibrateBN's cost per epoch (paired: a fit with and without it).
4. Loading: images per second opening 500 px JPEGs at 64 px and at 256 px (`progfast.data.folders.OpenImage`), every
   contender in every repeat.

Every comparison runs through `progfast.studies.comparison` (interleaved contenders, order rotated per repeat, an untimed
warm-up, ratios within a repeat). Results: benchmarks/results/progressive_<device>.md (+ .png, + .csv of every trial).
"""
from __future__ import annotations
import argparse, sys, tempfile, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT/'benchmarks')]
from fastai.vision.all import Learner, accuracy, set_seed, resnet18, vision_learner, Resize   # noqa: E402
from progfast.studies.comparison import (paired, summarize_pairs, seed_summary, plot_pairs, write_files,  # noqa: E402
                                         median_interval, target_verdict)
from progfast.core.schedule import ConstSchedule, StageSchedule, as_schedule                          # noqa: E402
from progfast.core.clock import EpochClock                                                            # noqa: E402
from progfast.callbacks.progressive import ProgressiveResizeCallback                                              # noqa: E402
from progfast.core.sizing import BN_BATCHES, RecalibrateBN, scaled_batch_size, even_steps              # noqa: E402
from progfast.data.embedded import fashion_mnist_dls, BatchResize                                          # noqa: E402
from progfast.models import khor_net                                                              # noqa: E402
from progfast.data.folders import folder_dls, OpenImage                                                # noqa: E402
from benchlib import (Run, SkipValidation, mean_pixels, photo_folder, stripes_jpegs, realized_pairs,  # noqa: E402
                      summary_rows, values_cell, verdict_cell, pair_cells, interval_cell, device_name)

TARGET_REALIZED = 1.10   # realized / theoretical time ratio at most this
TARGET_OVERHEAD = 1.01   # fit with the callback (constant schedule) over plain fit at most this
TARGET_LOADING = 3.0     # opening at 64 px at least 3x the images/s of opening at 256 px
SETTINGS = {'24 -> 32 px': dict(sizes='khor', final=32), '11 -> 28 px': dict(sizes='gradual', final=28)}
MODES = ('batch', 'loader')
METHODS = ('fixed', 'progressive', 'progressive + batch_scale')

FULL = dict(n_train=512, n_valid=1000, epochs=6, bs=64, lr=5e-3, repeats=5, overhead_repeats=9, bn_repeats=5,
            load_repeats=7, n_photos=150, n_stripes=40, res_per_class=16, res_bs=16, res_sizes=(64, 96, 128))
QUICK = dict(n_train=32, n_valid=20, epochs=4, bs=32, lr=5e-3, repeats=2, overhead_repeats=2, bn_repeats=2,
             load_repeats=2, n_photos=4, n_stripes=2, res_per_class=4, res_bs=4, res_sizes=(24, 32, 40))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='tiny data, 2 repeats (seconds; no verdict can be reached)')
    ap.add_argument('--threads', type=int, default=1,
                    help='torch CPU threads (default 1: on a shared 2-core machine 2 threads ran Khor\'s net 4-8x slower)')
    ap.add_argument('--repeats', type=int, default=None, help='repeats of section 1 (default 5, the fewest for a 90%% interval)')
    ap.add_argument('--minutes', type=float, default=None,
                    help='time limit: after it no comparison starts a repeat beyond its first 2 (default: none)')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/progressive_<device>[_quick].md)')
    return ap.parse_args(argv)


def setting(a) -> dict:
    s = dict(QUICK if a.quick else FULL)
    if a.repeats: s['repeats'] = a.repeats
    return s


# --- 1. Khor's network ---------------------------------------------------------------------------------------------
def khor_dls(name, mode, s, n_train=None, bs=None, **kwargs):
    "The embedded Fashion-MNIST for a setting: at 32 px through the loader's BatchResize, or at 28 px"
    final = SETTINGS[name]['final']
    n_train,bs = n_train or s['n_train'],bs or s['bs']
    if final != 28: return fashion_mnist_dls(bs=bs, size=final, n_train=n_train, n_valid=s['n_valid'], **kwargs)
    extra = [BatchResize(28)] if mode == 'loader' else []   # loader mode needs a size-setting transform to follow
    return fashion_mnist_dls(bs=bs, n_train=n_train, n_valid=s['n_valid'], after_batch=extra, **kwargs)


def khor_trial(name, mode, method, s, n_epoch=None, n_train=None):
    "A contender: function(seed) training Khor's network, returning its training seconds, theoretical ratio, accuracy"
    sizes,final = SETTINGS[name]['sizes'],SETTINGS[name]['final']
    n_epoch = n_epoch or s['epochs']
    def run(seed):
        set_seed(seed)
        learn = Learner(khor_dls(name, mode, s, n_train), khor_net(n_in=1), metrics=accuracy)
        timer = EpochClock()
        cbs = [timer, SkipValidation()]
        with learn.no_bar(), learn.no_logging():
            if method == 'fixed':
                learn.fit_one_cycle(n_epoch, s['lr'], cbs=cbs)
                th,steps = 1.,n_epoch * len(learn.dls.train)
            else:
                learn.fit_progressive(n_epoch, s['lr'], sizes=sizes, mode=mode, batch_scale=method.endswith('batch_scale'),
                                      recalibrate_bn=False, cbs=cbs)
                df = learn.progressive.df
                th,steps = mean_pixels(df, final),len(df)
            acc = float(learn.validate()[1])
            learn.recalibrate_bn(final, BN_BATCHES)
            acc_bn = float(learn.validate()[1])
        return dict(seconds=timer.train_total, theoretical=th, steps=steps, accuracy=acc, accuracy_bn=acc_bn)
    return run


def khor_sizes(name, n_epoch) -> list:
    sched = as_schedule(SETTINGS[name]['sizes'], SETTINGS[name]['final'])
    return [round(sched(e, n_epoch)) for e in range(n_epoch)]


def run_khor(s, run) -> pd.DataFrame:
    "Section 1 for Khor's network: every setting and mode, the three methods interleaved per repeat (= seed)"
    parts = []
    for name in SETTINGS:
        for mode in MODES:
            run.log(f"1. {name}, {mode} mode")
            contenders = {m: khor_trial(name, mode, m, s) for m in METHODS}
            warm = lambda: [khor_trial(name, mode, m, s, n_epoch=4, n_train=s['bs'])(0) for m in METHODS]
            t = run.budget.interleaved(f'1. {name}, {mode} mode', contenders, s['repeats'], warmup=warm, log=run.log)
            parts.append(t.assign(setting=name, mode=mode))
    return pd.concat(parts, ignore_index=True)


def time_per_size(s, run) -> pd.DataFrame:
    "One epoch at a constant size: 28, 20, 11 px, and 11 px with the batches batch_scale would give"
    n,bs = s['n_train'],s['bs']
    scaled = max(even_steps(n, scaled_batch_size(11, 28, bs)))
    def epoch(size, step_bs):
        def go(seed):
            set_seed(seed)
            dls = fashion_mnist_dls(bs=step_bs, size=None if size == 28 else size, n_train=n, n_valid=s['n_valid'],
                                    drop_last=False)
            learn,timer = Learner(dls, khor_net(n_in=1)),EpochClock()
            with learn.no_bar(), learn.no_logging(): learn.fit(1, s['lr'], cbs=[timer, SkipValidation()])
            return dict(seconds=timer.train_total, pixels=(size/28)**2, bs=step_bs)
        return go
    contenders = {'28 px': epoch(28, bs), '20 px': epoch(20, bs), '11 px': epoch(11, bs),
                  f'11 px, batches of {scaled}': epoch(11, scaled)}
    return run.budget.interleaved('1. one epoch per size', contenders, s['repeats'], log=run.log)


# --- 1b. resnet18 on JPEGs ----------------------------------------------------------------------------------------
def resnet_trial(path, method, s):
    def run(seed):
        set_seed(seed)
        sizes = list(s['res_sizes'])
        dls = folder_dls(path, size=sizes[-1], bs=s['res_bs'], cache=False, progress=False)
        learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
        timer = EpochClock()
        cbs = [timer, SkipValidation()]
        n = len(sizes)
        with learn.no_bar(), learn.no_logging():
            if method == 'fixed': learn.fit_one_cycle(n, 1e-3, cbs=cbs); th = 1.
            else:
                learn.fit_progressive(n, 1e-3, sizes=StageSchedule(sizes), mode='loader', recalibrate_bn=False,
                                      batch_scale=method.endswith('batch_scale'), cbs=cbs)
                th = mean_pixels(learn.progressive.df, sizes[-1])
        return dict(seconds=timer.train_total, theoretical=th, images_per_s=n * len(dls.train_ds) / timer.train_total)
    return run


def run_resnet(path, s, run) -> pd.DataFrame:
    contenders = {m: resnet_trial(path, m, s) for m in METHODS}
    return run.budget.interleaved('1b. resnet18', contenders, s['repeats'], log=run.log)


# --- 2. overhead -----------------------------------------------------------------------------------------------------
class TimedProgressiveResize(ProgressiveResizeCallback):
    "ProgressiveResizeCallback that adds up the seconds spent in its own event handlers: in the training phases, and the rest"
    def __call__(self, event_name):
        if event_name == 'before_fit': self.in_training,self.elsewhere = 0.,0.
        t = time.perf_counter()
        try: return super().__call__(event_name)
        finally:
            took = time.perf_counter() - t
            if getattr(self, 'training', False) and event_name not in ('before_fit', 'after_fit'): self.in_training += took
            else: self.elsewhere += took


def overhead_trial(with_cb: bool, s):
    def run(seed):
        set_seed(seed)
        learn,timer = Learner(khor_dls('11 -> 28 px', 'batch', s), khor_net(n_in=1)),EpochClock()
        cbs = [timer, SkipValidation()]
        cb = TimedProgressiveResize(ConstSchedule(28), final_size=28, show=False) if with_cb else None
        with learn.no_bar(), learn.no_logging(): learn.fit(2, s['lr'], cbs=cbs + ([cb] if cb else []))
        res = dict(seconds=timer.train_total)
        if cb: res.update(handler_share=cb.in_training / timer.train_total, once_per_fit_s=cb.elsewhere)
        return res
    return run


# --- 3. RecalibrateBN ------------------------------------------------------------------------------------------------
def bn_trial(with_cb: bool, s, n_epoch=2):
    def run(seed):
        set_seed(seed)
        learn = Learner(khor_dls('11 -> 28 px', 'batch', s), khor_net(n_in=1), metrics=accuracy)
        cbs = [RecalibrateBN(20)] if with_cb else []
        t = time.perf_counter()
        with learn.no_bar(), learn.no_logging(): learn.fit(n_epoch, s['lr'], cbs=cbs)
        secs = time.perf_counter() - t
        return dict(seconds=secs, seconds_per_epoch=secs / n_epoch, bn_batches=min(20, len(learn.dls.train)))
    return run


# --- 4. loading ------------------------------------------------------------------------------------------------------
def loading_trials(files, repeats, run) -> pd.DataFrame:
    "Every repeat opens all `files` at 64 and 256 px, with draft decoding and without, in a rotated order"
    def opener(size, draft):
        op,rs = OpenImage(size=size, draft=draft),Resize(size)
        def go(_):
            t = time.perf_counter()
            for f in files: rs(op(f, split_idx=0), split_idx=0)
            return dict(seconds=time.perf_counter() - t)
        return go
    contenders = {f'{sz} px|{d}': opener(sz, d == 'draft') for d in ('draft', 'full') for sz in (64, 256)}
    t = run.budget.interleaved(f'4. loading {len(files)} JPEGs', contenders, repeats, log=run.log)
    t[['size', 'decoding']] = t['contender'].str.split('|', expand=True)
    t['images_per_s'] = len(files) / t['seconds']
    return t


# --- the report -----------------------------------------------------------------------------------------------------
def khor_tables(trials: pd.DataFrame, s) -> tuple:
    "Markdown lines of section 1 (speed and accuracy) and the realized / theoretical pairs"
    realized,rt = realized_pairs(trials, within=['setting', 'mode'])
    srt = summarize_pairs(rt, 0.9, TARGET_REALIZED, 'lower')
    order = lambda col, vals: srt[col].map({v: i for i,v in enumerate(vals)})
    srt = srt.assign(_s=order('setting', list(SETTINGS)), _m=order('mode', MODES), _c=order('contender', METHODS))
    srt = srt.sort_values(['_s', '_m', '_c']).drop(columns=['_s', '_m', '_c'])
    L = ["| setting | mode | contender | sizes per epoch | theoretical | realized, per repeat | realized / theoretical, "
         "per repeat | median [range] | 90% interval of the median | target <= 1.10 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in srt.to_dict('records'):
        th = trials[(trials.setting == r['setting']) & (trials['mode'] == r['mode']) & (trials.contender == r['contender'])].theoretical.median()
        m = dict(setting=r['setting'], mode=r['mode'], contender=r['contender'])
        L.append(f"| {r['setting']} | {r['mode']} | {r['contender']} | {khor_sizes(r['setting'], s['epochs'])} | {th:.3f} | "
                 f"{values_cell(realized, **m)} | {values_cell(rt, **m)} | {pair_cells(r)} | {interval_cell(r)} | "
                 f"{verdict_cell(r['verdict'])} |")
    return L,rt,srt


def accuracy_lines(trials: pd.DataFrame) -> list:
    "Accuracy at equal epochs: per contender mean over seeds, and per-seed differences with a verdict"
    L = ["| setting | mode | contender | accuracy, BN re-estimated (mean ± sd) | with training BN statistics | "
         "difference to fixed per seed (points, BN re-estimated) | mean | verdict | batch_scale minus progressive per seed | mean | verdict |",
         "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (name,mode),g in trials.groupby(['setting', 'mode'], sort=False):
        d_fixed = paired(g, 'accuracy_bn', 'fixed', 'difference')
        d_prog = paired(g[g.contender != 'fixed'], 'accuracy_bn', 'progressive', 'difference')
        d_fixed['value'] *= 100; d_prog['value'] *= 100
        sf,sp = seed_summary(d_fixed),seed_summary(d_prog)
        for c in METHODS:
            a = g[g.contender == c]
            row = [name, mode, c, f"{100*a.accuracy_bn.mean():.2f} ± {100*a.accuracy_bn.std(ddof=1):.2f}",
                   f"{100*a.accuracy.mean():.2f} ± {100*a.accuracy.std(ddof=1):.2f}"]
            f = sf[sf.contender == c]
            row += ['', '', ''] if f.empty else [', '.join(f"{v:+.2f}" for v in f.iloc[0]['values']),
                                                 f"{f.iloc[0]['mean']:+.2f}", f.iloc[0]['verdict']]
            p = sp[sp.contender == c]
            row += ['', '', ''] if p.empty else [', '.join(f"{v:+.2f}" for v in p.iloc[0]['values']),
                                                 f"{p.iloc[0]['mean']:+.2f}", p.iloc[0]['verdict']]
            L.append('| ' + ' | '.join(row) + ' |')
    return L


def plot(panels, fn: Path):
    "One panel of paired values per section: (pairs, target, title)"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    widths = [max(2, p[0]['contender'].nunique()) for p in panels]
    fig,axs = plt.subplots(1, len(panels), figsize=(sum(widths) * 1.1 + 2, 4.5), gridspec_kw=dict(width_ratios=widths))
    for ax,(pairs,target,title) in zip(np.atleast_1d(axs), panels):
        plot_pairs(pairs, target=target, ax=ax, title=title)
        for lbl in ax.get_xticklabels(): lbl.set_rotation(30); lbl.set_ha('right')
    fig.tight_layout(); fig.savefig(fn, dpi=100); plt.close(fig)


def labelled(pairs: pd.DataFrame, label) -> pd.DataFrame:
    "`pairs` with their grouping folded into the contender's name (for a plot)"
    res = pairs.copy()
    res['contender'] = [label(r) for r in res.to_dict('records')]
    return res[['repeat', 'contender', 'reference', 'measure', 'how', 'value']]


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    s = setting(a)
    dev = device_name()
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f"progressive_{dev}{'_quick' if a.quick else ''}.md"
    run = Run('bench_progressive.py', argv, a.threads, a.minutes)

    khor = run_khor(s, run)
    per_size = time_per_size(s, run)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        res_path = d/'stripes'
        for split,n in (('train', s['res_per_class']), ('valid', max(2, s['res_per_class'] // 10))):
            stripes_jpegs(res_path/split, n, round(1.25 * s['res_sizes'][-1]), seed=len(split))
        run.log("1b. resnet18, loader mode"); res = run_resnet(res_path, s, run)
        run.log("2. overhead")
        over = run.budget.interleaved('2. overhead', {'plain fit': overhead_trial(False, s), 'with the callback': overhead_trial(True, s)},
                               s['overhead_repeats'], log=run.log)
        run.log("3. RecalibrateBN")
        bn = run.budget.interleaved('3. RecalibrateBN', {'fit': bn_trial(False, s), 'fit + RecalibrateBN(20)': bn_trial(True, s)},
                             s['bn_repeats'], log=run.log)
        folders = {'photos': photo_folder(d/'photos', s['n_photos'], 500),
                   'noisy stripes': stripes_jpegs(d/'big', s['n_stripes'], 500)}
        loads = {k: loading_trials(sorted(f.rglob('*.jpg')), s['load_repeats'], run) for k,f in folders.items()}
    text,files = report(a, s, run, khor, per_size, res, over, bn, loads, out)
    write_files(out.parent, files)
    print(text)
    print(f"\nwritten to {out}")
    return out


def report(a, s, run, khor, per_size, res, over, bn, loads, out) -> tuple:
    L = [f"# Progressive training speed on the {device_name().upper()}", ""]
    body = []
    p = body.append
    # 1.
    k_lines,k_rt,k_sum = khor_tables(khor, s)
    p(f"## 1. Realized vs theoretical savings, Khor's network, embedded Fashion-MNIST\n")
    p(f"{s['n_train']} training images, {s['epochs']} epochs, batch {s['bs']}, one-cycle LR peak {s['lr']:g} (Adam), "
      f"{s['repeats']} repeats; a repeat is a seed, the same for its three contenders, which ran one after another in "
      "an order rotated by one per repeat, after an untimed warm-up. Seconds: the training phases only (no validation "
      "ran during training). Realized: the progressive fit's seconds over the fixed fit's of the same repeat. "
      "Theoretical: mean pixels per image over training / full-size pixels, from the callback's per-step record "
      "(batch_scale trains the same images at the same sizes, in fewer, larger steps). In the 24 -> 32 px setting the "
      "loader's `BatchResize` sets the size in both modes, so the two modes run the same code there.\n")
    body.extend(k_lines)
    p("")
    p("Where the time goes at these sizes: one epoch at a constant size against its share of the pixels (paired "
      "with the 28 px epoch of the same repeat). Costs that do not shrink with the image (Python, the optimizer step, "
      "the loader, per-layer calls) keep small images from being proportionally cheaper; larger batches at the small "
      "size (what batch_scale does) spread them over more images.\n")
    ps = paired(per_size, 'seconds', '28 px')
    sps = summarize_pairs(ps)
    p("| epoch at | pixels / 28 px pixels | time / 28 px time, per repeat | median [range] |\n|---|---|---|---|")
    for r in sps.to_dict('records'):
        px = per_size[per_size.contender == r['contender']]['pixels'].iloc[0]
        p(f"| {r['contender']} | {px:.3f} | {values_cell(ps, contender=r['contender'])} | {pair_cells(r)} |")
    p("")
    # 1b.
    r_real,r_rt = realized_pairs(res)
    srr = summarize_pairs(r_rt, 0.9, TARGET_REALIZED, 'lower')
    rs = list(s['res_sizes'])
    p(f"## 1b. resnet18 (random init), {rs[0]} -> {rs[-1]} px on a folder of JPEGs, loader mode\n")
    p(f"{2*s['res_per_class']} training JPEGs ({round(1.25*rs[-1])} px noisy stripes, two classes), batch {s['res_bs']}, "
      f"{len(rs)} epochs at {rs} px, {s['repeats']} repeats; loader mode opens each image at the current size "
      "(draft JPEG decoding) and resizes it there.\n")
    p("| contender | theoretical | realized, per repeat | realized / theoretical, per repeat | median [range] | "
      "90% interval of the median | target <= 1.10 | images/s (median) |\n|---|---|---|---|---|---|---|---|")
    for r in srr.to_dict('records'):
        g = res[res.contender == r['contender']]
        p(f"| {r['contender']} | {g.theoretical.median():.3f} | {values_cell(r_real, contender=r['contender'])} | "
          f"{values_cell(r_rt, contender=r['contender'])} | {pair_cells(r)} | {interval_cell(r)} | {verdict_cell(r['verdict'])} | "
          f"{g.images_per_s.median():.1f} |")
    p(f"| fixed | 1.000 | | | | | | {res[res.contender == 'fixed'].images_per_s.median():.1f} |")
    p("")
    # accuracy
    p(f"## 1c. Accuracy at equal epochs ({s['epochs']} epochs for every contender), {s['repeats']} seeds\n")
    p(f"Test accuracy of the runs of section 1, on {s['n_valid']} test images evaluated once after training (nothing was "
      f"chosen on them), with the batch-norm statistics re-estimated at the final size on {BN_BATCHES} sharp training "
      "batches (what `fit_progressive` does by default; done the same way for fixed-size training) and with the "
      "statistics of training. Differences are taken per seed; the verdict is 'higher' or 'lower' only where every seed "
      "agrees and the 95% t interval of the mean excludes 0. Equal epochs means progressive training spent less "
      "compute (its theoretical ratio) than fixed-size training.\n")
    body.extend(accuracy_lines(khor))
    p("")
    # 2.
    op = paired(over, 'seconds', 'plain fit')
    so = summarize_pairs(op, 0.9, TARGET_OVERHEAD, 'lower')
    r = so.iloc[0]
    cbt = over[over.contender == 'with the callback']
    share,once = cbt.handler_share.median(),cbt.once_per_fit_s.median()
    p("## 2. Overhead of the callback (constant schedule) against plain fit, Khor's network\n")
    p(f"Two epochs at 28 px, {s['n_train']} images, {s['overhead_repeats']} repeats. A/B: the training seconds of the "
      "two fits of a repeat, their ratio. Direct: the seconds spent inside the callback's own event handlers during the "
      "training phases, as a share of them.\n")
    p("| measurement | per repeat | median [range] | 90% interval of the median | target <= 1% |\n|---|---|---|---|---|")
    p(f"| A/B: with the callback / plain fit | {values_cell(op)} | {pair_cells(r)} | {interval_cell(r)} | {verdict_cell(r['verdict'])} |")
    shares = cbt.sort_values('repeat').handler_share.to_numpy()
    lo,hi,cov = median_interval(shares)
    p(f"| direct: time in the callback's handlers / training time | {', '.join(f'{100*v:.2f}%' for v in shares)} | "
      f"{100*share:.2f}% [{100*shares.min():.2f}%, {100*shares.max():.2f}%] | [{100*lo:.2f}%, {100*hi:.2f}%] ({100*cov:.0f}%) | "
      f"{verdict_cell(target_verdict(shares, TARGET_OVERHEAD - 1))} |")
    p(f"\nOnce per fit, outside the training phases (the dry run at the smallest and largest size, saving and restoring "
      f"the transforms): {1000*once:.0f} ms (median).\n")
    # 3.
    bd = paired(bn, 'seconds_per_epoch', 'fit', 'difference')
    br = paired(bn, 'seconds', 'fit')
    sbd,sbr = summarize_pairs(bd).iloc[0],summarize_pairs(br).iloc[0]
    nb = int(bn.bn_batches.iloc[0])
    p("## 3. Cost of RecalibrateBN per epoch\n")
    p(f"Khor's network, two epochs at 28 px with validation on the {s['n_valid']} test images after each, with and "
      f"without `RecalibrateBN(20)` (the loader has {nb} batches, so it re-estimates on {nb}); {s['bn_repeats']} repeats, "
      "paired. The cost is the extra forward passes before each validation.\n")
    p("| measure | per repeat | median [range] | 90% interval of the median |\n|---|---|---|---|")
    p(f"| extra seconds per epoch | {values_cell(bd)} | {pair_cells(sbd)} | {interval_cell(sbd)} |")
    p(f"| fit time with / without | {values_cell(br)} | {pair_cells(sbr)} | {interval_cell(sbr)} |")
    p(f"\nAn epoch (training and validation) without it took {bn[bn.contender == 'fit'].seconds_per_epoch.median():.2f} s (median).\n")
    # 4.
    p(f"## 4. Loading 500 px JPEGs (OpenImage + Resize)\n")
    p(f"Photos: random crops of scikit-image's bundled photos and textures ({s['n_photos']}), the target's case. Noisy "
      f"stripes ({2*s['n_stripes']}): the tests' synthetic images, whose noise makes JPEG's entropy decoding (which "
      f"draft mode cannot shrink) most of the work. {s['load_repeats']} repeats; in each, all four contenders (64 or "
      "256 px, draft or full decoding) open the whole folder, in a rotated order. Ratio: seconds at 256 px over seconds "
      "at 64 px in the same repeat (= how many times the images/s at 64 px).\n")
    p("| folder | decoding | images/s at 64 px (median) | at 256 px | ratio per repeat | median [range] | "
      "90% interval of the median | target >= 3x |\n|---|---|---|---|---|---|---|---|")
    load_pairs = []
    for name,t in loads.items():
        t = t.assign(contender=t['size'])
        lp = paired(t, 'seconds', '64 px', within=['decoding'])
        sl = summarize_pairs(lp, 0.9, TARGET_LOADING, 'higher')
        for r in sl.to_dict('records'):
            g = t[t.decoding == r['decoding']]
            ips = g.groupby('size').images_per_s.median()
            verdict = verdict_cell(r['verdict']) if (name == 'photos' and r['decoding'] == 'draft') else '(reference)'
            p(f"| {name} | {r['decoding']} | {ips['64 px']:.0f} | {ips['256 px']:.0f} | "
              f"{values_cell(lp, decoding=r['decoding'])} | {pair_cells(r)} | {interval_cell(r)} | {verdict} |")
        load_pairs.append(lp.assign(folder=name))
    p("")
    lp = pd.concat(load_pairs, ignore_index=True)
    L += run.header() + [""] + body
    png = out.with_suffix('.png')
    plot([(labelled(k_rt, lambda r: f"{r['setting']}, {r['mode']}\n{r['contender']}"), TARGET_REALIZED,
           '1. realized / theoretical (Khor net)'),
          (labelled(r_rt, lambda r: f"resnet18\n{r['contender']}"), TARGET_REALIZED, '1b. resnet18'),
          (labelled(op, lambda r: 'callback / plain'), TARGET_OVERHEAD, '2. overhead'),
          (labelled(lp, lambda r: f"{r['folder']}\n{r['decoding']}"), TARGET_LOADING, '4. 256 px time / 64 px time')], png)
    L += [f"![paired values per repeat: realized/theoretical, overhead, loading]({png.name})", "",
          f"Every trial is in [{out.with_suffix('.csv').name}]({out.with_suffix('.csv').name}).", ""]
    if a.quick: L += ["*Quick run: tiny data and 2 repeats, too few for a 90% interval: every verdict is inconclusive by "
                      "construction. The full run is the one to judge by.*", ""]
    trials = pd.concat([khor.assign(section='1'), per_size.assign(section='1, per size'), res.assign(section='1b'),
                        over.assign(section='2'), bn.assign(section='3'),
                        *[t.assign(section='4', folder=k) for k,t in loads.items()]], ignore_index=True)
    text = '\n'.join(L)
    import io
    buf = io.StringIO(); trials.to_csv(buf, index=False)
    return text,{out.name: text + '\n', out.with_suffix('.csv').name: buf.getvalue()}


if __name__ == '__main__': main()
