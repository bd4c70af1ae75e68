"""Scale resiliency (MixSize, Hoffer et al.): accuracy against test image size for fixed-size, progressive and mixed-size training.

    python benchmarks/bench_scale.py                  # the full run: 3 seeds, all 6,000 images, 8 epochs (~6 min, 2 idle cores)
    python benchmarks/bench_scale.py --quick          # 1 seed, 2,000 images, 4 epochs (~1 min)
    python benchmarks/bench_scale.py --quick --threads 1   # on a busy machine (2 torch threads then thrash)
    python benchmarks/bench_scale.py --seeds 0,1,2,3 --epochs 10 --out /tmp/scale.md

Khor's network (`khor_net(n_in=1)`, global average pooling, so it takes any input size) is trained on progfast's
embedded Fashion-MNIST (28 px grayscale; the same images for every seed) three ways, with the same epochs, batch size
and one-cycle learning-rate policy (peak 5e-3):

- fixed: every step at 28 px (`fit_one_cycle`);
- progressive: `fit_progressive` with a linear size schedule (Khor's Algorithm 1) from 14 px at the first epoch
  to 28 px at the last (14, 16, ..., 28 px over 8 epochs; MixSize's smallest size to the training size);
- mixsize: the `MixSize` callback in its default 'batch_scale' mode with MixSize's CIFAR distribution scaled to
  28 px (14/21/28/42 px with probabilities 0.2/0.3/0.3/0.2; a step at 14 px holds 4 times the images of one at
  28 px, so every step holds about the same pixels), learning rate scaled per step by sqrt(images / base batch).

Each model is then evaluated on the 1,000 test images resized to each test size (`Learner.evaluate_sizes`), with the
batch-norm statistics it trained with and with statistics re-estimated at each test size on 20 training batches
(`recalibrate_bn=True`). The table gives the mean +- standard deviation over seeds; the plot (PNG next to the
markdown) draws the mean with a band of +- one standard deviation. "Flatness" is the spread of a curve: its best
minus its worst accuracy over the test sizes, computed per seed. Training times are the wall time of the fits (no
validation during training: every model is evaluated once, after training). Results go to
benchmarks/results/scale_cpu.md (scale_cpu_quick.md with --quick).
"""
from __future__ import annotations
import argparse, datetime, os, platform, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'   # results are kept apart by device
sys.path.insert(0, str(ROOT))
import fastai, fastcore                                                       # noqa: E402
from fastai.vision.all import Callback, CancelValidException, Learner, accuracy, set_seed   # noqa: E402
import progfast                                                               # noqa: E402
from progfast.experiments import mean_pm_std                                 # noqa: E402
from progfast.data import fashion_mnist_dls                                   # noqa: E402
from progfast.mixsize import MixSize, mixsize_distribution                    # noqa: E402
from progfast.models import khor_net                                          # noqa: E402
import progfast.resize                                                        # noqa: E402,F401 (Learner.fit_progressive)
from progfast.schedule import LinearSchedule                                    # noqa: E402

TRAIN_SIZE = 28
METHODS = ('fixed', 'progressive', 'mixsize')
LABELS = {'fixed': 'fixed 28 px', 'progressive': 'progressive (linear 14 -> 28 px)',
          'mixsize': 'MixSize (batch_scale, 14-42 px)'}
BN_MODES = ('trained', 'recalibrated')
TEST_SIZES = (12, 16, 20, 24, 28, 32, 40, 48)
def progressive_schedule(): return LinearSchedule(14, TRAIN_SIZE)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='1 seed, 2,000 training images, 4 epochs')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default 0,1,2; quick 0)')
    ap.add_argument('--epochs', type=int, default=None, help='epochs of every method (default 8; quick 4)')
    ap.add_argument('--n-train', type=int, default=None, help='training images (default all 6,000; quick 2,000)')
    ap.add_argument('--sizes', default=','.join(map(str, TEST_SIZES)), help='comma-separated test sizes in pixels')
    ap.add_argument('--lr', type=float, default=5e-3, help='peak learning rate of the one-cycle policy')
    ap.add_argument('--bs', type=int, default=64, help='batch size (the base batch of MixSize)')
    ap.add_argument('--no-recalibrate', action='store_true', help='skip the evaluation with recalibrated batch norm')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--out', default=None, help='markdown results file (the PNG goes next to it)')
    return ap.parse_args(argv)


def int_list(s: str) -> list:
    return [int(v) for v in s.split(',') if v.strip()]


class SkipValidation(Callback):
    "No validation during training: the models are evaluated once, after training, at every test size"
    def before_validate(self): raise CancelValidException()


def make_learner(seed: int, n_train, n_valid, bs: int) -> Learner:
    "Khor's network on the embedded Fashion-MNIST at 28 px; the images are the same for every seed (data seed 0)"
    set_seed(seed, reproducible=True)
    dls = fashion_mnist_dls(bs=bs, n_train=n_train, n_valid=n_valid, seed=0)
    return Learner(dls, khor_net(n_in=1, n_out=10), metrics=accuracy)


def train(learn: Learner, method: str, n_epoch: int, lr: float, seed: int) -> float:
    "Train `learn` by `method` for `n_epoch` epochs (one-cycle, peak `lr`); the wall time of the fit in seconds"
    cbs = [SkipValidation()]
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        if method == 'fixed': learn.fit_one_cycle(n_epoch, lr, cbs=cbs)
        elif method == 'progressive':
            learn.fit_progressive(n_epoch, lr, sizes=progressive_schedule(), final_size=TRAIN_SIZE, policy='one_cycle', cbs=cbs)
        elif method == 'mixsize': learn.fit_one_cycle(n_epoch, lr, cbs=cbs + [MixSize(mode='batch_scale', seed=seed)])
        else: raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    return time.perf_counter() - t


def evaluate(learn: Learner, sizes, recalibrate: bool, n_batches_bn: int = 20) -> dict:
    "Test accuracy at each size: {size: accuracy}"
    df = learn.evaluate_sizes(sizes, recalibrate_bn=recalibrate, n_batches_bn=n_batches_bn, progress=False)
    return dict(zip(df['size'].astype(int), df['accuracy'].astype(float)))


def run_benchmark(seeds=(0,), n_train=None, n_valid=None, n_epoch=8, sizes=TEST_SIZES, lr=5e-3, bs=64,
                  methods=METHODS, recalibrate=True, n_batches_bn=20, log=print):
    "Train every method with every seed and evaluate it at `sizes`: (accuracies, times), two long DataFrames"
    rows,times = [],[]
    for seed in seeds:
        for method in methods:
            learn = make_learner(seed, n_train, n_valid, bs)
            secs = train(learn, method, n_epoch, lr, seed)
            times.append(dict(method=method, seed=seed, seconds=secs))
            for bn in BN_MODES if recalibrate else BN_MODES[:1]:
                for size,acc in evaluate(learn, sizes, bn == 'recalibrated', n_batches_bn).items():
                    rows.append(dict(method=method, seed=seed, bn=bn, size=size, accuracy=acc))
            acc28 = next((r['accuracy'] for r in rows[::-1] if r['size'] == TRAIN_SIZE and r['bn'] == 'trained'
                          and r['method'] == method and r['seed'] == seed), float('nan'))
            log(f"  seed {seed} {method:<11} trained in {secs:5.1f} s; accuracy at {TRAIN_SIZE} px {acc28:.4f}")
    return pd.DataFrame(rows),pd.DataFrame(times)


def accuracy_table(results: pd.DataFrame, bn: str = 'trained'):
    "Mean and standard deviation over seeds: two DataFrames, one row per method, one column per test size"
    d = results[results['bn'] == bn]
    g = d.groupby(['method', 'size'])['accuracy']
    order = [m for m in METHODS if m in set(d['method'])]
    mean = g.mean().unstack('size').reindex(order)
    std = g.std(ddof=1).unstack('size').reindex(order).fillna(0.)
    return mean,std


def flatness(results: pd.DataFrame, bn: str = 'trained') -> pd.DataFrame:
    "Per method and seed: best and worst accuracy over the test sizes, their difference (the spread), the best size"
    d = results[results['bn'] == bn]
    rows = []
    for (method,seed),g in d.groupby(['method', 'seed']):
        acc = g.set_index('size')['accuracy']
        rows.append(dict(method=method, seed=seed, best=acc.max(), worst=acc.min(), spread=acc.max() - acc.min(),
                         best_size=int(acc.idxmax()), mean=acc.mean()))
    return pd.DataFrame(rows)


def pm(mean: float, std: float, n: int, scale: float = 100., digits: int = 1) -> str:
    return mean_pm_std(mean * scale, std * scale if n > 1 else float('nan'), digits)


def markdown_table(mean: pd.DataFrame, std: pd.DataFrame, n_seeds: int) -> list:
    cols = list(mean.columns)
    lines = ['| method | ' + ' | '.join(f'{s} px' for s in cols) + ' |', '|---' * (len(cols) + 1) + '|']
    for m in mean.index:
        lines.append(f'| {LABELS.get(m, m)} | ' + ' | '.join(pm(mean.loc[m, s], std.loc[m, s], n_seeds) for s in cols) + ' |')
    return lines


def plot(results: pd.DataFrame, path: Path, n_seeds: int):
    "Accuracy against test size, one line per method (mean over seeds) with a band of +- one standard deviation"
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bns = [b for b in BN_MODES if b in set(results['bn'])]
    fig,axs = plt.subplots(1, len(bns), figsize=(5.5 * len(bns), 4), sharey=True, squeeze=False)
    for ax,bn in zip(axs[0], bns):
        mean,std = accuracy_table(results, bn)
        for m in mean.index:
            x,y,e = np.array(mean.columns),mean.loc[m].values * 100,std.loc[m].values * 100
            ax.plot(x, y, 'o-', label=LABELS.get(m, m))
            if n_seeds > 1: ax.fill_between(x, y - e, y + e, alpha=0.2)
        ax.axvline(TRAIN_SIZE, color='grey', ls=':', lw=1)
        ax.set_xlabel('test image size (px)'); ax.set_title(f'batch norm: {bn}')
        ax.grid(alpha=0.3)
    axs[0][0].set_ylabel(f'test accuracy (%), {"mean ± std over %d seeds" % n_seeds if n_seeds > 1 else "1 seed"}')
    axs[0][0].legend(fontsize=8, loc='lower center')
    fig.suptitle('Scale resiliency, Khor net on Fashion-MNIST (trained at 28 px)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def verdict_rows(results: pd.DataFrame, n_seeds: int) -> list:
    "The issue's targets, with the measured figures, 'met' or '**missed**' and a reason"
    lines = ['| target (from the MixSize paper) | batch norm | measured | verdict |', '|---|---|---|---|']
    for bn in [b for b in BN_MODES if b in set(results['bn'])]:
        f = flatness(results, bn).groupby('method')
        spread = f['spread'].agg(['mean', 'std']).fillna(0.)
        fx,mx = spread.loc['fixed'],spread.loc['mixsize']
        ok = mx['mean'] < fx['mean']
        lines.append(f"| mixed-size flatter across test sizes than fixed-size (smaller best-minus-worst spread) | {bn} | "
                     f"spread MixSize {pm(mx['mean'], mx['std'], n_seeds)} vs fixed {pm(fx['mean'], fx['std'], n_seeds)} "
                     f"points | {'met' if ok else '**missed**: MixSize spread is not smaller here'} |")
        mean,_ = accuracy_table(results, bn)
        away = [c for c in mean.columns if c != TRAIN_SIZE]
        fa,ma = mean.loc['fixed', away].mean(),mean.loc['mixsize', away].mean()
        lines.append(f"| mixed-size stays accurate over a wide range: higher mean accuracy than fixed-size over the test sizes "
                     f"other than 28 px | {bn} | MixSize {ma*100:.1f}% vs fixed {fa*100:.1f}% | "
                     f"{'met' if ma > fa else '**missed**: fixed-size is as accurate or better away from 28 px here'} |")
        f28,m28 = mean.loc['fixed', TRAIN_SIZE],mean.loc['mixsize', TRAIN_SIZE]
        lines.append(f"| mixed-size at least as accurate as fixed-size at the training size (28 px) | {bn} | "
                     f"MixSize {m28*100:.1f}% vs fixed {f28*100:.1f}% | "
                     f"{'met' if m28 >= f28 else '**missed**: likely because, with the same epochs, MixSize makes fewer, larger steps (about 1.7x fewer per epoch) and trains only 30% of its steps at 28 px'} |")
        best = flatness(results, bn).query("method == 'fixed'")['best_size']
        near = best.isin([TRAIN_SIZE, min((s for s in results['size'].unique() if s > TRAIN_SIZE), default=TRAIN_SIZE)])
        lines.append(f"| fixed-size peaks at its training size (28 px, or the next test size above it) | {bn} | "
                     f"best size per seed: {', '.join(map(str, best.tolist()))} px | "
                     f"{'met' if near.all() else '**missed**: the fixed-size curve peaks elsewhere'} |")
    return lines


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = int_list(a.seeds) if a.seeds else ([0] if a.quick else [0, 1, 2])
    n_epoch = a.epochs or (4 if a.quick else 8)
    n_train = a.n_train or (2000 if a.quick else None)
    sizes = int_list(a.sizes)
    started,load0,lines = time.time(),os.getloadavg()[0],[]
    p = lambda s='': (print(s), lines.append(s))
    cmd = ' '.join(['python', 'benchmarks/bench_scale.py'] + sys.argv[1:]) if argv is None else \
          ' '.join(['python', 'benchmarks/bench_scale.py'] + list(argv))
    print(f"training {len(METHODS)} methods x {len(seeds)} seeds, {n_epoch} epochs, {n_train or 6000} images")
    results,times = run_benchmark(seeds, n_train, None, n_epoch, sizes, a.lr, a.bs, METHODS, not a.no_recalibrate)
    out = Path(a.out or ROOT/'benchmarks'/'results'/f"scale_{DEVICE}{'_quick' if a.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix('.png')
    plot(results, png, len(seeds))
    n = len(seeds)

    p("# Scale resiliency: accuracy against test size for fixed-size, progressive and mixed-size training\n")
    p(f"- command: `{cmd}`")
    p(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    p(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, torch threads {a.threads}, "
      f"load average {load0:.1f} at the start; no GPU")
    p(f"- versions: python {platform.python_version()}, torch {torch.__version__}, fastai {fastai.__version__}, "
      f"fastcore {fastcore.__version__}, progfast {progfast.__version__}, numpy {np.__version__}")
    p(f"- setup: Khor's network (`khor_net(n_in=1)`), embedded Fashion-MNIST, {n_train or 6000} training images "
      f"(the same for every seed), the 1,000 test images; {n_epoch} epochs, batch size {a.bs}, one-cycle LR peak "
      f"{a.lr:g}; seeds {', '.join(map(str, seeds))}")
    sched = progressive_schedule()
    p(f"- progressive sizes per epoch (linear): {[round(sched(e, n_epoch)) for e in range(n_epoch)]}; "
      f"MixSize distribution: {mixsize_distribution(TRAIN_SIZE)}, mode batch_scale, lr_scale sqrt\n")

    for bn in [b for b in BN_MODES if b in set(results['bn'])]:
        title = ("batch-norm statistics as trained" if bn == 'trained'
                 else "batch-norm statistics re-estimated at each test size (20 training batches)")
        p(f"## Test accuracy (%), {title}{', mean ± std over %d seeds' % n if n > 1 else ', 1 seed'}\n")
        mean,std = accuracy_table(results, bn)
        for l in markdown_table(mean, std, n): p(l)
        f = flatness(results, bn).groupby('method').agg(['mean', 'std']).fillna(0.).reindex(mean.index)
        p("\n| method | best | worst | spread (best - worst) | mean over sizes |\n|---|---|---|---|---|")
        for m in f.index:
            p(f"| {LABELS[m]} | " + ' | '.join(pm(f.loc[m, (c, 'mean')], f.loc[m, (c, 'std')], n)
                                               for c in ('best', 'worst', 'spread', 'mean')) + ' |')
        p()
    p(f"![accuracy against test size]({png.name})\n")

    p("## Training time (s, wall time of the fit, no validation during training)\n")
    t = times.groupby('method')['seconds'].agg(['mean', 'std']).fillna(0.).reindex([m for m in METHODS])
    p("| method | seconds | relative to fixed |\n|---|---|---|")
    for m in t.index:
        p(f"| {LABELS[m]} | {pm(t.loc[m, 'mean'], t.loc[m, 'std'], n, 1., 1)} | {t.loc[m, 'mean'] / t.loc['fixed', 'mean']:.2f} |")
    p()
    p("## Targets\n")
    for l in verdict_rows(results, n): p(l)
    p()
    p(plain_reading(results, n))
    p(f"\nTotal benchmark time: {time.time()-started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end.")
    out.write_text('\n'.join(lines) + '\n')
    print(f"\nwritten to {out} and {png}")


def plain_reading(results: pd.DataFrame, n_seeds: int) -> str:
    "One paragraph: is mixed-size training flatter across sizes than fixed-size, as in the paper?"
    out = []
    for bn in [b for b in BN_MODES if b in set(results['bn'])]:
        s = flatness(results, bn).groupby('method')['spread'].mean()
        mean,_ = accuracy_table(results, bn)
        flatter = s['mixsize'] < s['fixed']
        out.append(f"With batch-norm statistics {bn}, mixed-size training is {'flatter' if flatter else 'NOT flatter'} "
                   f"across test sizes than fixed-size training (spread {s['mixsize']*100:.1f} vs {s['fixed']*100:.1f} "
                   f"points; progressive {s['progressive']*100:.1f}); at 28 px MixSize scores "
                   f"{mean.loc['mixsize', TRAIN_SIZE]*100:.1f}% vs fixed {mean.loc['fixed', TRAIN_SIZE]*100:.1f}%.")
    note = f" ({n_seeds} seed{'s' if n_seeds > 1 else ''}" + ('; one seed says little' if n_seeds == 1 else '') + ')'
    return "Reading" + note + ": " + ' '.join(out)


if __name__ == '__main__': main()
