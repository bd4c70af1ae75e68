"""Scale resiliency (MixSize, Hoffer et al.): accuracy against test image size for fixed-size, progressive and mixed-size training.

    python benchmarks/bench_scale.py                  # the full run: 3 seeds, 3,000 images, 8 epochs (~15 min on 2 cores)
    python benchmarks/bench_scale.py --minutes 10     # bounded: no seed starts after 10 minutes beyond the first 2
    python benchmarks/bench_scale.py --quick          # 2 seeds, 256 images, 1 epoch (seconds; the test suite runs it)
    python benchmarks/bench_scale.py --seeds 0,1,2,3 --epochs 10 --n-train 6000 --out /tmp/scale.md

Khor's network (`khor_net(n_in=1)`, global average pooling, so it takes any input size) is trained on progfast's
embedded Fashion-MNIST (28 px grayscale; the same images for every seed), with the same batch size and one-cycle
learning-rate policy (peak 5e-3):

- fixed: every step at 28 px (`fit_one_cycle`);
- progressive: `fit_progressive` with a linear size schedule (Khor's Algorithm 1) from 14 px at the first epoch
  to 28 px at the last (14, 16, ..., 28 px over 8 epochs; MixSize's smallest size to the training size), its
  batch-norm statistics left as trained (`recalibrate_bn=False`, like the others);
- mixsize: the `MixSize` callback in its default 'batch_scale' mode with MixSize's CIFAR distribution scaled to
  28 px (14/21/28/42 px with probabilities 0.2/0.3/0.3/0.2; a step at 14 px holds 4 times the images of one at
  28 px, so every step holds about the same pixels), learning rate scaled per step by sqrt(images / base batch);
- mixsize (equal compute): the same, trained for more epochs, so that it sees about as many pixels as fixed-size
  training (at equal epochs MixSize's batch scaling puts most images in the small-size steps: an image is seen at
  about 58% of the pixels of 28 px on average).

The first three train for the same number of epochs (equal epochs: every image seen as often, at unequal compute);
the fourth for equal compute. For each seed the methods run one after another in an order rotated by one per seed,
after an untimed warm-up (`progfast.studies.comparison.run_interleaved`); times and accuracies are compared to fixed-size
training of the same seed. Each model is then evaluated on the 1,000 test images resized to each test size
(`Learner.evaluate_sizes`), with the batch-norm statistics it trained with and with statistics re-estimated at each
test size on 20 training batches. "Spread" is a curve's best minus its worst accuracy over the test sizes, per seed.
Training times are the wall time of the fits (no validation during training). Results go to
benchmarks/results/scale_<device>.md (scale_<device>_quick.md with --quick), with a PNG and a CSV of every run.
"""
from __future__ import annotations
import argparse, io, math, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT/'benchmarks')]
from fastai.vision.all import Learner, accuracy, set_seed                     # noqa: E402
from progfast.studies.comparison import (mean_pm_std, paired, seed_summary, seed_verdict,  # noqa: E402
                                         write_files)
from progfast.data.embedded import fashion_mnist_dls                                   # noqa: E402
from progfast.callbacks.mixsize import MixSize, mixsize_distribution                    # noqa: E402
from progfast.models import khor_net                                          # noqa: E402
import progfast.callbacks.progressive                                                        # noqa: E402,F401 (Learner.fit_progressive)
from progfast.core.schedule import LinearSchedule                                  # noqa: E402
from benchlib import Budget, Run, SkipValidation, device_name                # noqa: E402

TRAIN_SIZE = 28
METHODS = ('fixed', 'progressive', 'mixsize', 'mixsize_eq')
EQUAL_EPOCHS = ('fixed', 'progressive', 'mixsize')
LABELS = {'fixed': 'fixed 28 px', 'progressive': 'progressive (linear 14 -> 28 px)',
          'mixsize': 'MixSize (batch_scale, 14-42 px)', 'mixsize_eq': 'MixSize, equal compute'}
BN_MODES = ('trained', 'recalibrated')
TEST_SIZES = (12, 16, 20, 24, 28, 32, 40, 48)
def progressive_schedule(): return LinearSchedule(14, TRAIN_SIZE)


def mixsize_pixel_share(base_size: int = TRAIN_SIZE) -> float:
    """Expected pixels per image of MixSize's batch_scale mode over those of `base_size`: a step at size s holds
    ~(base/s)^2 base batches of images, so the images fall on the sizes in proportion to p_s (base/s)^2"""
    d = mixsize_distribution(base_size)
    return 1 / sum(p * (base_size / s)**2 for s,p in zip(d['sizes'], d['probs']))


def equal_compute_epochs(n_epoch: int) -> int:
    "Epochs of MixSize that see about the pixels of `n_epoch` epochs at the training size"
    return max(1, round(n_epoch / mixsize_pixel_share()))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='2 seeds, 256 training images, 1 epoch (seconds)')
    ap.add_argument('--seeds', default=None, help='comma-separated seeds (default 0,1,2; quick 0,1)')
    ap.add_argument('--epochs', type=int, default=None, help='epochs at equal epochs (default 8; quick 1)')
    ap.add_argument('--n-train', type=int, default=None, help='training images (default 3,000 of 6,000; quick 256)')
    ap.add_argument('--sizes', default=None, help=f"comma-separated test sizes in pixels (default {','.join(map(str, TEST_SIZES))}; quick 16,28,40)")
    ap.add_argument('--lr', type=float, default=5e-3, help='peak learning rate of the one-cycle policy')
    ap.add_argument('--bs', type=int, default=64, help='batch size (the base batch of MixSize)')
    ap.add_argument('--no-recalibrate', action='store_true', help='skip the evaluation with recalibrated batch norm')
    ap.add_argument('--no-equal-compute', action='store_true', help='leave out the equal-compute MixSize run')
    ap.add_argument('--threads', type=int, default=1, help='torch CPU threads (default 1: the machines are shared)')
    ap.add_argument('--minutes', type=float, default=None,
                    help='time limit: no seed starts after it, beyond the first 2 (default: none)')
    ap.add_argument('--out', default=None, help='markdown results file (the PNG and CSV go next to it)')
    return ap.parse_args(argv)


def int_list(s: str) -> list:
    return [int(v) for v in s.split(',') if v.strip()]


def make_learner(seed: int, n_train, n_valid, bs: int) -> Learner:
    "Khor's network on the embedded Fashion-MNIST at 28 px; the images are the same for every seed (data seed 0)"
    set_seed(seed, reproducible=True)
    dls = fashion_mnist_dls(bs=bs, n_train=n_train, n_valid=n_valid, seed=0)
    return Learner(dls, khor_net(n_in=1, n_out=10), metrics=accuracy)


def epochs_of(method: str, n_epoch: int) -> int:
    return equal_compute_epochs(n_epoch) if method == 'mixsize_eq' else n_epoch


def train(learn: Learner, method: str, n_epoch: int, lr: float, seed: int) -> dict:
    """Train `learn` by `method` (`n_epoch` epochs at equal epochs, more for 'mixsize_eq'), one-cycle, peak `lr`:
    the wall time of the fit, its epochs and the pixels it trained on over those of `n_epoch` epochs at 28 px"""
    cbs,n = [SkipValidation()],epochs_of(method, n_epoch)
    full = n_epoch * len(learn.dls.train) * learn.dls.train.bs * TRAIN_SIZE**2
    t = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        if method == 'fixed':
            learn.fit_one_cycle(n, lr, cbs=cbs)
            pixels = full
        elif method == 'progressive':
            learn.fit_progressive(n, lr, sizes=progressive_schedule(), final_size=TRAIN_SIZE, policy='one_cycle', cbs=cbs,
                                  recalibrate_bn=False)
            df = learn.progressive.df
            pixels = float((df['bs'] * df['size'].astype(float)**2).sum())
        elif method in ('mixsize', 'mixsize_eq'):
            ms = MixSize(mode='batch_scale', seed=seed)
            learn.fit_one_cycle(n, lr, cbs=cbs + [ms])
            pixels = float(ms.df['pixels'].sum())
        else: raise ValueError(f"unknown method {method!r}; one of {METHODS}")
    return dict(seconds=time.perf_counter() - t, epochs=n, pixels=pixels / full)


def evaluate(learn: Learner, sizes, recalibrate: bool, n_batches_bn: int = 20) -> dict:
    "Test accuracy at each size: {size: accuracy}"
    df = learn.evaluate_sizes(sizes, recalibrate_bn=recalibrate, n_batches_bn=n_batches_bn, progress=False)
    return dict(zip(df['size'].astype(int), df['accuracy'].astype(float)))


def run_benchmark(seeds=(0,), n_train=None, n_valid=None, n_epoch=8, sizes=TEST_SIZES, lr=5e-3, bs=64,
                  methods=METHODS, recalibrate=True, n_batches_bn=20, log=print, budget=None):
    """Train every method with every seed (interleaved: an order rotated per seed, after an untimed warm-up) and
    evaluate it at `sizes`: (accuracies, trials), two long DataFrames. `budget` (a `benchlib.Budget`): no seed starts
    past its time limit after the first two"""
    rows = []
    def contender(method):
        def run(seed):
            learn = make_learner(seed, n_train, n_valid, bs)
            res = train(learn, method, n_epoch, lr, seed)
            for bn in BN_MODES if recalibrate else BN_MODES[:1]:
                for size,acc in evaluate(learn, sizes, bn == 'recalibrated', n_batches_bn).items():
                    rows.append(dict(method=method, seed=seed, bn=bn, size=size, accuracy=acc))
            res['acc_train_size'] = next((r['accuracy'] for r in rows[::-1] if r['size'] == TRAIN_SIZE and r['bn'] == 'trained'
                                          and r['method'] == method and r['seed'] == seed), math.nan)
            log(f"  seed {seed} {method:<11} {res['epochs']} epochs in {res['seconds']:5.1f} s, pixels x{res['pixels']:.2f}; "
                f"accuracy at {TRAIN_SIZE} px {res['acc_train_size']:.4f}")
            return res
        return run
    def warm_up():
        for m in methods:
            learn = make_learner(seeds[0], min(n_train or 6000, 4 * bs), 20, bs)
            train(learn, 'mixsize' if m == 'mixsize_eq' else m, 1, lr, seeds[0])
    trials = (budget or Budget()).interleaved('seeds', {m: contender(m) for m in methods}, list(seeds), warmup=warm_up)
    return pd.DataFrame(rows),trials.rename(columns={'contender': 'method', 'repeat': 'seed'})


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


def per_seed(results: pd.DataFrame, bn: str, measure) -> pd.DataFrame:
    "One row per method and seed: `measure(accuracies by size)` (a Series indexed by size -> a number)"
    d = results[results['bn'] == bn]
    rows = [dict(contender=m, repeat=seed, value=float(measure(g.set_index('size')['accuracy'])))
            for (m,seed),g in d.groupby(['method', 'seed'])]
    return pd.DataFrame(rows)


def seed_differences(values: pd.DataFrame, method: str, reference: str = 'fixed', scale: float = 100.) -> np.ndarray:
    "`method`'s values minus `reference`'s, seed by seed (x `scale`)"
    p = paired(values, 'value', reference, 'difference')
    return scale * p[p.contender == method].sort_values('repeat')['value'].to_numpy()


_TARGETS = (  # (claim, measure of a curve, what counts for the claim: 'lower' or 'higher' than fixed)
    ("mixed-size flatter across test sizes than fixed-size (smaller best-minus-worst spread)",
     lambda a: a.max() - a.min(), 'lower'),
    ("mixed-size stays accurate over a wide range: higher mean accuracy than fixed-size over the test sizes other than 28 px",
     lambda a: a.drop(TRAIN_SIZE, errors='ignore').mean(), 'higher'),
    ("mixed-size at least as accurate as fixed-size at the training size (28 px)",
     lambda a: a.get(TRAIN_SIZE, math.nan), 'not lower'))


def claim_verdict(diffs: np.ndarray, want: str) -> str:
    "'met', '**missed**' or 'inconclusive' from the per-seed differences (MixSize minus fixed) and what the claim wants"
    v = seed_verdict(diffs, unit='seed')
    if want == 'not lower':
        return ('**missed**: lower at the training size in every seed' if v == 'lower' else 'met' if v == 'higher'
                else f'inconclusive: {v}')
    if v == want: return 'met'
    return f'inconclusive: {v}' if v.startswith('no ') else f'**missed**: {v} than fixed-size in every seed'


def verdict_rows(results: pd.DataFrame, n_seeds: int) -> list:
    """The MixSize paper's claims, each judged on per-seed differences to fixed-size training (the same seed), for
    MixSize at equal epochs and, where it ran, at equal compute"""
    lines = ['| target (from the MixSize paper) | batch norm | MixSize run | MixSize minus fixed, per seed | mean | verdict |',
             '|---|---|---|---|---|---|']
    runs = [m for m in ('mixsize', 'mixsize_eq') if m in set(results['method'])]
    for bn in [b for b in BN_MODES if b in set(results['bn'])]:
        for claim,measure,want in _TARGETS:
            vals = per_seed(results, bn, measure)
            for m in runs:
                d = seed_differences(vals, m)
                basis = 'equal epochs' if m == 'mixsize' else 'equal compute'
                lines.append(f"| {claim} | {bn} | {basis} | {', '.join(f'{x:+.1f}' for x in d)} points | {d.mean():+.1f} | "
                             f"{claim_verdict(d, want)} |")
        best = flatness(results, bn).query("method == 'fixed'")['best_size']
        near = best.isin([TRAIN_SIZE, min((s for s in results['size'].unique() if s > TRAIN_SIZE), default=TRAIN_SIZE)])
        lines.append(f"| fixed-size peaks at its training size (28 px, or the next test size above it) | {bn} | | "
                     f"best size per seed: {', '.join(map(str, best.tolist()))} px | | "
                     f"{'met' if near.all() else '**missed**: the fixed-size curve peaks elsewhere'} |")
    return lines


def time_rows(trials: pd.DataFrame) -> list:
    "Per method: its epochs, pixels over fixed's, seconds per seed, and the time ratio to fixed of the same seed"
    t = trials.rename(columns={'method': 'contender', 'seed': 'repeat'})
    r = paired(t, 'seconds', 'fixed')
    s = seed_summary(r)
    lines = ['| method | basis | epochs | pixels / fixed | seconds per seed (position in its seed\'s order) | '
             'time / fixed, per seed | mean | 95% t interval |', '|---|---|---|---|---|---|---|---|']
    for m in [m for m in METHODS if m in set(t.contender)]:
        g = t[t.contender == m].sort_values('repeat')
        secs = ', '.join(f"{x:.1f} ({int(pos)})" for x,pos in zip(g.seconds, g.position))
        basis = 'equal compute' if m == 'mixsize_eq' else 'equal epochs'
        row = [LABELS[m], basis, str(int(g.epochs.iloc[0])), f"{g.pixels.mean():.2f}", secs]
        if m == 'fixed': row += ['1', '', '']
        else:
            q = s[s.contender == m].iloc[0]
            row += [', '.join(f"{v:.2f}" for v in q['values']), f"{q['mean']:.2f}",
                    '' if np.isnan(q['lo']) else f"[{q['lo']:.2f}, {q['hi']:.2f}]"]
        lines.append('| ' + ' | '.join(row) + ' |')
    return lines


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    seeds = int_list(a.seeds) if a.seeds else ([0, 1] if a.quick else [0, 1, 2])
    n_epoch = a.epochs or (1 if a.quick else 8)
    n_train = a.n_train or (256 if a.quick else 3000)
    n_valid = 100 if a.quick else None
    sizes = int_list(a.sizes) if a.sizes else ([16, 28, 40] if a.quick else list(TEST_SIZES))
    methods = tuple(m for m in METHODS if not (a.no_equal_compute and m == 'mixsize_eq'))
    run = Run('bench_scale.py', argv, a.threads, a.minutes)
    print(f"training {len(methods)} methods x {len(seeds)} seeds, {n_epoch} epochs (MixSize at equal compute: "
          f"{equal_compute_epochs(n_epoch)}), {n_train} images")
    results,trials = run_benchmark(seeds, n_train, n_valid, n_epoch, sizes, a.lr, a.bs, methods, not a.no_recalibrate,
                                   log=run.log, budget=run.budget)
    seeds = [s for s in seeds if s in set(trials['seed'])]   # those that ran within --minutes
    out = Path(a.out or ROOT/'benchmarks'/'results'/f"scale_{device_name()}{'_quick' if a.quick else ''}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    png,csv = out.with_suffix('.png'),out.with_suffix('.csv')
    plot(results, png, len(seeds))
    n,lines = len(seeds),[]
    p = lambda s='': lines.append(s)
    p("# Scale resiliency: accuracy against test size for fixed-size, progressive and mixed-size training\n")
    for l in run.header(): p(l)
    p(f"- setup: Khor's network (`khor_net(n_in=1)`), embedded Fashion-MNIST, {n_train} training images (of 6,000; "
      f"the same for every seed), {n_valid or 1000} test images; batch size {a.bs}, one-cycle LR peak {a.lr:g}; "
      f"seeds {', '.join(map(str, seeds))}")
    sched = progressive_schedule()
    p(f"- **equal epochs** ({n_epoch}) for fixed, progressive and MixSize: each image is seen as often, but progressive "
      f"and MixSize train on fewer pixels (column pixels / fixed below: unequal compute); **equal compute** for "
      f"'MixSize, equal compute': {equal_compute_epochs(n_epoch)} epochs, the epochs whose expected pixels "
      f"({mixsize_pixel_share():.3f} of 28 px per image) match fixed-size training's {n_epoch}")
    p(f"- progressive sizes per epoch (linear): {[round(sched(e, n_epoch)) for e in range(n_epoch)]}; "
      f"MixSize distribution: {mixsize_distribution(TRAIN_SIZE)}, mode batch_scale, lr_rule sqrt; no method's "
      "batch-norm statistics were re-estimated after training except where a table says so")
    p("- order: for each seed the methods ran one after another, the order rotated by one per seed, after an untimed "
      "warm-up; every comparison to fixed-size training is between runs of the same seed")
    if not a.n_train and not a.quick:
        p("- cut to fit about 15 minutes on a shared 2-core CPU: 3,000 of the 6,000 training images (the previous run used all 6,000)")
    p("")
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
    p("## Training time and compute\n")
    p("Wall time of each fit (no validation during training). Ratios are taken per seed against fixed-size training of "
      "the same seed. Pixels / fixed: the pixels trained on (from the callbacks' per-step records) over those of "
      f"{n_epoch} epoch{'s' if n_epoch > 1 else ''} at 28 px.\n")
    for l in time_rows(trials): p(l)
    p()
    p("## Targets\n")
    p("Each claim is judged on per-seed differences (MixSize minus fixed-size training of the same seed): 'met' or "
      "'missed' only where every seed agrees and the 95% t interval of the mean difference excludes 0.\n")
    for l in verdict_rows(results, n): p(l)
    p()
    p(plain_reading(results, n))
    p(f"\nEvery run is in [{csv.name}]({csv.name}).")
    if a.quick: p("\n*Quick run: tiny data, one epoch; the full run is the one to judge by.*")
    buf = io.StringIO()
    results.merge(trials.drop(columns=['wall_seconds']), on=['method', 'seed']).to_csv(buf, index=False)
    write_files(out.parent, {out.name: '\n'.join(lines) + '\n', csv.name: buf.getvalue()})
    print('\n'.join(lines))
    print(f"\nwritten to {out} and {png}")
    return out


def plain_reading(results: pd.DataFrame, n_seeds: int) -> str:
    "One paragraph: is mixed-size training flatter across sizes than fixed-size, as in the paper?"
    out = []
    for bn in [b for b in BN_MODES if b in set(results['bn'])]:
        s = flatness(results, bn).groupby('method')['spread'].mean()
        mean,_ = accuracy_table(results, bn)
        eq = (f"; at equal compute MixSize scores {mean.loc['mixsize_eq', TRAIN_SIZE]*100:.1f}% with a spread of "
              f"{s['mixsize_eq']*100:.1f}" if 'mixsize_eq' in s else '')
        out.append(f"With batch-norm statistics {bn}, at equal epochs mixed-size training is "
                   f"{'flatter' if s['mixsize'] < s['fixed'] else 'NOT flatter'} across test sizes than fixed-size "
                   f"training (mean spread {s['mixsize']*100:.1f} vs {s['fixed']*100:.1f} points; progressive "
                   f"{s['progressive']*100:.1f}); at 28 px MixSize scores {mean.loc['mixsize', TRAIN_SIZE]*100:.1f}% vs "
                   f"fixed {mean.loc['fixed', TRAIN_SIZE]*100:.1f}%{eq}.")
    note = f" ({n_seeds} seed{'s' if n_seeds > 1 else ''}" + ('; one seed says little' if n_seeds == 1 else '') + ')'
    return "Reading" + note + " (means; the verdicts above are per seed): " + ' '.join(out)


if __name__ == '__main__': main()
