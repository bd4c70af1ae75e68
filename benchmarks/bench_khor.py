"""Khor's Figure 8 reproduced seed by seed, and the batch-norm study behind what Khor's runs report (issue 15).

    python benchmarks/bench_khor.py                       # Figure 8: 3 seeds, all 6,000 embedded training images, 15 epochs
    python benchmarks/bench_khor.py --quick               # 1 seed, 1,000 images, 4 epochs (about a minute)
    python benchmarks/bench_khor.py --data cifar10        # the paper's dataset: fastai downloads CIFAR-10 once (130 MB)
    python benchmarks/bench_khor.py --bn-study            # the BN study: 5 seeds, 1,000 images, 15 epochs (~10 min, 1 thread)
    python benchmarks/bench_khor.py --bn-study --quick    # 2 seeds, 300 images, 3 epochs
    python benchmarks/bench_khor.py --threads 1           # on a busy machine (2 torch threads then thrash)

Figure 8: `compare_khor` runs the three approaches interleaved, in an order rotated per seed, after an untimed warm-up;
every approach of a seed starts from the same weights and sees the batches in the same order, and is compared with Normal
of the same seed. Results: benchmarks/results/khor_<data>_<device>.md with the curves (PNG), every run (CSV) and the
per-seed pairs.

The BN study (--bn-study) trains each of Khor's approaches twice per seed on the embedded Fashion-MNIST: plainly, and
with `RecalibrateBN` re-estimating the batch-norm statistics before every validation (six contenders of the harness,
interleaved and rotated per seed, after an untimed one-epoch warm-up of each). It reports, per approach and paired by
seed: the test accuracy with the statistics training left and after re-estimating them once after training
(`Learner.recalibrate_bn`, 50 sharp training batches at the final size, dropout off), the epoch-to-epoch swing of the
held-out accuracy without and with the per-validation re-estimation, and what that costs in seconds per epoch.
Results: benchmarks/results/khor_bn_<device>.md with a plot and every run (CSV).
"""
from __future__ import annotations
import argparse, datetime, math, os, platform, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'
sys.path.insert(0, str(ROOT))
import fastai, fastcore                                                                   # noqa: E402
import progfast                                                                           # noqa: E402
from progfast.studies.comparison import (markdown_table, mean_pm_std, median_range, paired, plot_pairs,   # noqa: E402
                                         run_interleaved, seed_summary, target_verdict)
from progfast.studies.khor import KHOR_APPROACHES, KHOR_DATA, KhorComparison, compare_khor, khor_dls, run_khor   # noqa: E402
from progfast.core.sizing import BN_BATCHES                                                    # noqa: E402

TARGET_TIME_TO_ACC = 0.6   # issue 8: progressive (+ blur) reaches normal training's final accuracy in at most 0.6x its time
PLAIN,EACH = 'plain', 'RecalibrateBN'   # the two variants of the BN study: without and with re-estimation before every validation


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--bn-study', action='store_true', help="the batch-norm study instead of Figure 8")
    ap.add_argument('--quick', action='store_true', help='Figure 8: 1 seed, 1,000 images, 4 epochs; BN study: 2 seeds, 300 images, 3 epochs')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default: Figure 8 0,1,2, BN study 0,1,2,3,4)')
    ap.add_argument('--epochs', type=int, default=None, help='epochs per run (default 15, the paper)')
    ap.add_argument('--n-train', type=int, default=None, help='training images (default: Figure 8 all, BN study 1,000)')
    ap.add_argument('--data', default='fashion-mnist', choices=KHOR_DATA, help='dataset (Figure 8)')
    ap.add_argument('--data-path', default=None, help='a local copy of CIFAR-10 instead of the download')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--out', default=None, help='markdown results file')
    return ap.parse_args(argv)


def setting_lines(argv, a, started, load0, elapsed, n_runs) -> list:
    "The command, date, machine, load and versions of a result file"
    cmd = 'python benchmarks/bench_khor.py' + ''.join(f' {x}' for x in (sys.argv[1:] if argv is None else argv))
    return [f"- command: `{cmd}`",
            f"- date: {started}, {elapsed/60:.1f} min for {n_runs} runs (and the warm-up)",
            f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, torch threads {a.threads}, "
            f"{torch.cuda.get_device_name(0) if DEVICE == 'cuda' else 'no GPU'}; load average (1 min) {load0:.1f} at the start, "
            f"{os.getloadavg()[0]:.1f} at the end",
            f"- versions: Python {platform.python_version()}, torch {torch.__version__}, fastai {fastai.__version__}, "
            f"fastcore {fastcore.__version__}, numpy {np.__version__}, pandas {pd.__version__}, progfast {progfast.__version__}"]


# --- the batch-norm study

def bn_study(seeds=(0, 1, 2, 3, 4), epochs:int=15, n_train:int=1000, bs:int=64, lr:float=0.01,
             bn_batches:int=BN_BATCHES, log=print):
    "Each approach without and with `RecalibrateBN`, per seed, on the harness: ({(approach, variant, seed): KhorRun}, trials)"
    runs,cache = {},{}
    def dls_for(seed):
        if seed not in cache: cache.clear(); cache[seed] = khor_dls(bs=bs, n_train=n_train, seed=seed)
        return cache[seed]
    def contender(a, variant):
        def trial(seed):
            if log: log(f"run {len(runs)+1}/{6*len(seeds)}: {a}, {variant}, seed {seed}")
            r = run_khor(a, dls_for(seed), epochs=epochs, seed=seed, lr=lr, show=False, test_curve=False,
                         bn_batches=bn_batches, bn_each_epoch=variant == EACH)
            runs[a, variant, seed] = r
            return dict(approach=a, variant=variant, seconds=r.seconds, seconds_per_epoch=r.seconds / epochs,
                        bn_seconds_per_epoch=float(np.mean(r.bn_epoch_seconds)) if r.bn_epoch_seconds else 0.)
        return trial
    def warm():
        for a in KHOR_APPROACHES:
            for v in (PLAIN, EACH): run_khor(a, dls_for(seeds[0]), epochs=1, seed=seeds[0], lr=lr, show=False,
                                             test_curve=False, bn_batches=bn_batches, bn_each_epoch=v == EACH)
    contenders = {f"{a} {v}": contender(a, v) for a in KHOR_APPROACHES for v in (PLAIN, EACH)}
    return runs,run_interleaved(contenders, list(seeds), warmup=warm)


def _per_seed_rows(pairs, digits_scale=100., ratio=False) -> pd.DataFrame:
    "`seed_summary` of `pairs` with the per-seed values, median [min, max] and mean [interval] as text"
    s = seed_summary(pairs)
    k = 1. if ratio else digits_scale
    fmt = (lambda x: f"{x:.3f}") if ratio else (lambda x: f"{k*x:+.2f}")
    return pd.DataFrame({'approach': s['contender'].str.capitalize() if 'approach' not in s else s['approach'].str.capitalize(),
                         'per seed': [', '.join(map(fmt, v)) for v in s['values']],
                         'median [min, max]': [median_range(k*np.median(v), k*min(v), k*max(v), 3 if ratio else 2) for v in s['values']],
                         'mean [95% interval]': [f"{k*m:.{3 if ratio else 2}f} [{k*lo:.{3 if ratio else 2}f}, {k*hi:.{3 if ratio else 2}f}]"
                                                 for m,lo,hi in zip(s['mean'], s['lo'], s['hi'])],
                         'verdict': s['verdict']})


def bn_accuracy(runs) -> tuple:
    "Per approach: test (and held-out) accuracy without and with re-estimation after training, and the paired differences"
    plain = KhorComparison([r for (a,v,s),r in runs.items() if v == PLAIN])
    d = plain.df.assign(valid_acc_running=[r.final_valid_acc for r in plain.runs], valid_acc_bn=[r.final_valid_acc_bn for r in plain.runs])
    g = d.groupby('approach', sort=False)
    pm = lambda c: [mean_pm_std(100*m, 100*sd, 2) + '%' for m,sd in zip(g[c].mean(), g[c].std(ddof=1))]
    means = pd.DataFrame({'approach': [a.capitalize() for a in g.groups], "test, training's statistics": pm('test_acc_running'),
                          'test, re-estimated': pm('test_acc_bn'), "held-out, training's statistics": pm('valid_acc_running'),
                          'held-out, re-estimated': pm('valid_acc_bn')})
    return plain,means,_per_seed_rows(plain.bn_pairs())


def bn_swing(runs) -> tuple:
    "Per approach: the swing of the held-out accuracy without and with `RecalibrateBN`, and the paired differences (with - without)"
    rows = [dict(approach=a, variant=v, repeat=s, swing=r.swing()) for (a,v,s),r in runs.items()]
    t = pd.DataFrame(rows)
    g = t.groupby(['approach', 'variant'], sort=False)['swing']
    means = pd.DataFrame({'approach': [a.capitalize() for a in KHOR_APPROACHES],
                          'swing without (points)': [mean_pm_std(100*g.mean()[a, PLAIN], 100*g.std()[a, PLAIN], 2) for a in KHOR_APPROACHES],
                          'swing with RecalibrateBN (points)': [mean_pm_std(100*g.mean()[a, EACH], 100*g.std()[a, EACH], 2) for a in KHOR_APPROACHES]})
    p = paired(t, 'swing', PLAIN, 'difference', contender='variant', within='approach')
    return means,_per_seed_rows(p.assign(contender=p['approach']))


def bn_cost(trials) -> tuple:
    "Per approach: seconds per epoch without and with `RecalibrateBN` (paired ratios) and the re-estimation's own seconds per epoch"
    g = trials.groupby(['approach', 'variant'], sort=False)
    spe,own = g['seconds_per_epoch'],g['bn_seconds_per_epoch']
    means = pd.DataFrame({'approach': [a.capitalize() for a in KHOR_APPROACHES],
                          's/epoch without': [mean_pm_std(spe.mean()[a, PLAIN], spe.std()[a, PLAIN], 2) for a in KHOR_APPROACHES],
                          's/epoch with': [mean_pm_std(spe.mean()[a, EACH], spe.std()[a, EACH], 2) for a in KHOR_APPROACHES],
                          're-estimation s/epoch (timed inside)': [mean_pm_std(own.mean()[a, EACH], own.std()[a, EACH], 2) for a in KHOR_APPROACHES],
                          'its share of an epoch': [f"{100*own.mean()[a, EACH]/spe.mean()[a, EACH]:.1f}%" for a in KHOR_APPROACHES]})
    p = paired(trials, 'seconds_per_epoch', PLAIN, 'ratio', contender='variant', within='approach')
    return means,_per_seed_rows(p.assign(contender=p['approach']), ratio=True),p


def training_unchanged(runs) -> float:
    "The largest difference, between the runs without and with `RecalibrateBN` of one approach and seed, of any training accuracy or final test accuracy"
    diffs = [max(max(abs(x - y) for x,y in zip(r.train_acc, runs[a, EACH, s].train_acc)),
                 abs(r.final_test_acc - runs[a, EACH, s].final_test_acc), abs(r.final_test_acc_bn - runs[a, EACH, s].final_test_acc_bn))
             for (a,v,s),r in runs.items() if v == PLAIN]
    return max(diffs)


def bn_plot(runs, cost_pairs, path):
    "Test accuracy without/with re-estimation per seed; mean held-out curves without/with RecalibrateBN; paired cost"
    import matplotlib.pyplot as plt
    from progfast.studies.khor import _COLOURS
    fig,axs = plt.subplots(1, 3, figsize=(18, 4.5))
    for i,a in enumerate(KHOR_APPROACHES):
        rs = [r for (aa,v,s),r in runs.items() if aa == a and v == PLAIN]
        for r in rs: axs[0].plot([2*i, 2*i + 1], [100*r.final_test_acc, 100*r.final_test_acc_bn], '.-', color=_COLOURS[a], alpha=.7)
        for v,style in ((PLAIN, '--'), (EACH, '-')):
            y = np.array([r.valid_acc for (aa,vv,s),r in runs.items() if aa == a and vv == v])
            ep = np.arange(1, y.shape[1] + 1)
            what = 're-estimated before each validation' if v == EACH else "training's statistics"
            axs[1].plot(ep, 100*y.mean(0), style, color=_COLOURS[a], label=f"{a}, {what}")
            axs[1].fill_between(ep, 100*y.min(0), 100*y.max(0), color=_COLOURS[a], alpha=.08, lw=0)
    axs[0].set_xticks(range(6), [f"{a}\n{w}" for a in KHOR_APPROACHES for w in ("training's", 're-estimated')], fontsize=8)
    axs[0].set_ylabel('test accuracy (%)'); axs[0].grid(alpha=.3, axis='y')
    axs[0].set_title('test accuracy after training, per seed: BN statistics as training left them, re-estimated', fontsize=9)
    axs[1].set_xlabel('epoch'); axs[1].set_ylabel('held-out accuracy (%)'); axs[1].legend(fontsize=7); axs[1].grid(alpha=.3)
    axs[1].set_title('held-out accuracy per epoch: mean over seeds, band lowest to highest', fontsize=9)
    plot_pairs(cost_pairs.assign(contender=cost_pairs['approach']).drop(columns='approach'), ax=axs[2],
               title='seconds per epoch with RecalibrateBN over without, per seed')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def bn_rule(acc_rows) -> str:
    "The decision rule of the khor notebook applied to the study's verdicts"
    v = acc_rows['verdict'].tolist()
    met = 'lower' not in v and 'higher' in v
    return (f"Rule: Khor's runs report the test accuracy after re-estimating the BN statistics when re-estimating lowers no "
            f"approach's accuracy beyond the spread of the seeds and raises at least one's. Verdicts here: "
            f"{', '.join(f'{a} {x}' for a,x in zip(acc_rows['approach'], v))}: the rule is {'met' if met else '**not met**'}.")


def bn_main(a, argv):
    seeds = [int(s) for s in (a.seeds or ('0,1' if a.quick else '0,1,2,3,4')).split(',')]
    epochs = a.epochs or (3 if a.quick else 15)
    n_train = a.n_train or (300 if a.quick else 1000)
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f"khor_bn_{DEVICE}{'_quick' if a.quick else ''}.md"
    started,t0,load0 = datetime.datetime.now().isoformat(timespec='seconds'),time.perf_counter(),os.getloadavg()[0]
    runs,trials = bn_study(seeds, epochs, n_train)
    elapsed = time.perf_counter() - t0
    plain,acc_means,acc_rows = bn_accuracy(runs)
    swing_means,swing_rows = bn_swing(runs)
    cost_means,cost_rows,cost_pairs = bn_cost(trials)
    out.parent.mkdir(parents=True, exist_ok=True)
    png,csv = out.with_suffix('.png'),out.with_suffix('.csv')
    bn_plot(runs, cost_pairs, png)
    pd.DataFrame([dict(approach=k[0], variant=k[1], seed=k[2], position=int(trials.loc[(trials.contender == f"{k[0]} {k[1]}") & (trials.repeat == k[2]), 'position'].iloc[0]),
                       test_acc_running=r.final_test_acc, test_acc_bn=r.final_test_acc_bn, valid_acc_running=r.final_valid_acc,
                       valid_acc_bn=r.final_valid_acc_bn, swing=r.swing(), seconds=r.seconds, bn_seconds=r.bn_seconds,
                       bn_epoch_seconds=' '.join(f"{x:.3f}" for x in r.bn_epoch_seconds),
                       valid_curve=' '.join(f"{x:.4f}" for x in r.valid_acc), train_curve=' '.join(f"{x:.4f}" for x in r.train_acc))
                  for k,r in runs.items()]).to_csv(csv, index=False)
    n,held = len(seeds),int(round(0.1 * n_train))
    L = ["# The batch-norm study: what Khor's runs report (issue 15)", "",
         *setting_lines(argv, a, started, load0, elapsed, len(runs)),
         f"- setting: Khor's network, the embedded Fashion-MNIST, {n_train:,} training images per seed ({held} of them held out "
         f"to validate on; the benchmark of Figure 8 uses all 6,000: cut to fit about 10 minutes on this machine), the 1,000 test "
         f"images; {epochs} epochs, batch 64, SGD lr 0.01 decayed by 0.9 every 2 epochs; seeds {', '.join(map(str, seeds))}; "
         f"each approach plainly and with `RecalibrateBN({BN_BATCHES})` before every validation: {6*n} runs, six contenders "
         f"interleaved and rotated per seed after an untimed one-epoch warm-up of each",
         f"- re-estimation after training: `learn.recalibrate_bn(final size, {BN_BATCHES})` on sharp training batches, dropout off"
         + (f" (at {n_train - held:,} training images and batch 64: every training batch once)" if (n_train - held) // 64 <= BN_BATCHES else ''), "",
         "## 1. Test accuracy with the statistics training left and after re-estimating them", "",
         f"Mean ± standard deviation over {n} seeds (the plain runs):", "", markdown_table(acc_means), "",
         "Re-estimated minus training's statistics, the same model, in points, paired per seed; the verdict is 'higher' or "
         "'lower' only when every seed is on that side and the 95% t interval of the mean excludes 0:", "",
         markdown_table(acc_rows), "", bn_rule(acc_rows), "",
         "## 2. Epoch-to-epoch swing of the held-out accuracy", "",
         f"The swing of a run: the mean absolute change of its held-out accuracy from one epoch to the next over the last half "
         f"of the epochs ({epochs // 2} changes), in points. Without: fastai's validation with the statistics training "
         f"keeps; with: `RecalibrateBN` re-estimates them before every validation and puts them back after.", "",
         markdown_table(swing_means), "", "With minus without, paired per seed (points):", "", markdown_table(swing_rows), "",
         "## 3. What `RecalibrateBN` costs", "",
         "Seconds per epoch (training and validation) without and with it, and its own seconds per epoch timed inside the "
         "callback:", "", markdown_table(cost_means), "",
         "With over without, paired per seed (the same approach and seed, run one after the other in the rotated order):", "",
         markdown_table(cost_rows), "",
         f"The per-validation re-estimation changes nothing in the training: the largest difference between the runs without "
         f"and with it of one approach and seed, over every epoch's training accuracy and both final test accuracies, is "
         f"{training_unchanged(runs):.2g}.", "",
         f"![test accuracy, held-out curves, cost]({png.name})", "",
         f"## Figure 8 and Khor's findings from the plain runs ({n} seeds)", "", plain.report(), "",
         f"Every run, with its curves, is in [{csv.name}]({csv.name})."]
    if a.quick: L += ["", "*Quick run: few seeds, images and epochs; the full run is the one to judge by.*"]
    out.write_text('\n'.join(L) + '\n')
    print('\n'.join(L)); print(f"\nwritten to {out}")
    return out


# --- Figure 8

def fig8_main(a, argv):
    seeds = [int(s) for s in (a.seeds or ('0' if a.quick else '0,1,2')).split(',')]
    epochs = a.epochs or (4 if a.quick else 15)
    n_train = a.n_train or (1000 if a.quick else None)
    stem = f"khor_{a.data.replace('-', '_')}_{DEVICE}{'_quick' if a.quick else ''}"
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f'{stem}.md'
    started,t0,load0 = datetime.datetime.now().isoformat(timespec='seconds'),time.perf_counter(),os.getloadavg()[0]
    cmp = compare_khor(seeds=seeds, epochs=epochs, n_train=n_train, show=False, data=a.data, path=a.data_path)
    elapsed = time.perf_counter() - t0
    out.parent.mkdir(parents=True, exist_ok=True)
    cmp.df.to_csv(out.with_suffix('.csv'), index=False)
    cmp.pairs().to_csv(out.with_name(out.stem + '_pairs.csv'), index=False)
    fig = cmp.plot(); fig.savefig(out.with_name(out.stem + '_curves.png'), dpi=110)
    reach = cmp.time_to_accuracy()
    n_imgs = f"{n_train:,}" if n_train else ('all 6,000' if a.data == 'fashion-mnist' else 'all 50,000')
    L = [f"# Khor's Figure 8 on {'the embedded Fashion-MNIST' if a.data == 'fashion-mnist' else 'CIFAR-10'}", "",
         *setting_lines(argv, a, started, load0, elapsed, len(cmp.runs)),
         f"- setting: Khor's network (Figure 5), {n_imgs} training images (a tenth held out to validate on), the test images "
         f"tested after training; {epochs} epochs, batch 64, SGD lr 0.01 decayed by 0.9 every 2 epochs, seeds {seeds}; "
         f"the approaches interleaved and rotated per seed after an untimed warm-up", "",
         cmp.report(), "", f"![accuracy per epoch, against seconds, time ratios]({out.stem}_curves.png)", "",
         "## Time to accuracy against the target of issue 8", "",
         f"Per seed, the time a run took to first reach Normal's final held-out accuracy over the time Normal took to first "
         f"reach it. Target: at most {TARGET_TIME_TO_ACC}x; the verdict is the harness's `target_verdict` on the interval of "
         f"the median (inconclusive with too few seeds for an interval at 90%).", ""]
    for ap_,grp in reach[reach.approach != 'normal'].groupby('approach', sort=False):
        ratios = grp.ratio.tolist()
        L.append(f"- {ap_}: per seed {', '.join('never' if r == math.inf else f'{r:.2f}' for r in ratios)}: "
                 f"{target_verdict(ratios, TARGET_TIME_TO_ACC, 'lower')}")
    L += ["", cmp.pairs_markdown(), "", f"Every run is in [{out.with_suffix('.csv').name}]({out.with_suffix('.csv').name})."]
    if a.quick: L += ["", "*Quick run: one seed, few images and epochs; the full run is the one to judge by.*"]
    out.write_text('\n'.join(L) + '\n')
    print('\n'.join(L)); print(f"\nwritten to {out}")
    return out


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    return bn_main(a, argv) if a.bn_study else fig8_main(a, argv)


if __name__ == '__main__': main()
