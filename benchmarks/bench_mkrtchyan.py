"""Blur as augmentation (Mkrtchyan's set 2) against Khor's randomized progressive deblurring, side by side.

    python benchmarks/bench_mkrtchyan.py            # the reduced CPU setting below (about 15 minutes on 2 shared cores)
    python benchmarks/bench_mkrtchyan.py --quick    # tiny data, seconds: the test suite runs it

M1 (`progfast.models.mkrtchyan_m1`) from scratch on the embedded Fashion-MNIST upscaled to 64 px, trained with
Mkrtchyan's preset (`fit_mkrtchyan`: RAdam, the step learning rate) in five ways, through the comparison harness
(`progfast.studies.mkrtchyan.compare_blur_uses`: contenders interleaved, their order rotated per seed, an untimed warm-up, every
difference and ratio taken between runs of the same seed): no blur; set 2's blur on every image (sigma drawn from
(0.1, 2), kernel 5); Khor's deblurring (40% of the batches, sigma 2 -> 0); and each of the two with progressive
resizing (48 -> 64 px). All at equal epochs. The paper's setting (Tiny ImageNet, 20 epochs, batch 256) does not fit a
shared 2-core CPU; the reduced one is stated in the results, with what was cut.

Results go to benchmarks/results/mkrtchyan_<device>.md (`_quick` for --quick) with a plot (PNG) and every run (CSV),
with the command, the date, the machine, its load average before and after, and the versions.
"""
from __future__ import annotations
import argparse, datetime, os, shlex, sys, time
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT/'benchmarks'))
from progfast.studies.mkrtchyan import BLUR_CONTENDERS, compare_blur_uses, scaled_drops   # noqa: E402
from progfast.studies.comparison import markdown_table                                    # noqa: E402
from benchlib import machine, versions                                                  # noqa: E402

FULL = dict(seeds='0,1,2', epochs=8, n_train=1000, n_test=500, bs=32, size=64)
QUICK = dict(seeds='0,1', epochs=2, n_train=60, n_test=40, bs=20, size=32)
PAPER = dict(epochs=20, bs=256, drops=(7, 14), n_train='100,000 Tiny ImageNet images (200 classes)', size=64)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='2 seeds, 60 images at 32 px, 2 epochs (seconds)')
    ap.add_argument('--seeds', default=None, help=f"comma-separated seeds (default {FULL['seeds']}; quick {QUICK['seeds']})")
    ap.add_argument('--epochs', type=int, default=None, help=f"epochs per run (default {FULL['epochs']}; the paper 20)")
    ap.add_argument('--n-train', type=int, default=None, help=f"training images (default {FULL['n_train']} of 6,000)")
    ap.add_argument('--n-test', type=int, default=None, help=f"test images (default {FULL['n_test']} of 1,000)")
    ap.add_argument('--bs', type=int, default=None, help=f"batch size (default {FULL['bs']}; the paper 256)")
    ap.add_argument('--size', type=int, default=None, help=f"image size (default {FULL['size']})")
    ap.add_argument('--threads', type=int, default=1,
                    help='torch CPU threads (default 1: on a shared 2-core machine one thread per process ran M1 about 2x faster than 2)')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/mkrtchyan_<device>[_quick].md)')
    return ap.parse_args(argv)


def setting(a) -> dict:
    "The run's setting: the command line's values, else the quick or the full defaults"
    d = QUICK if a.quick else FULL
    s = dict(seeds=[int(x) for x in (a.seeds or d['seeds']).split(',')], epochs=a.epochs or d['epochs'],
             n_train=a.n_train or d['n_train'], n_test=a.n_test or d['n_test'], bs=a.bs or d['bs'], size=a.size or d['size'])
    s['drops'] = scaled_drops(s['epochs'])
    return s


def load() -> str: return ', '.join(f"{x:.2f}" for x in os.getloadavg())


def report(cmp, s, command, started, load_before, load_after, wall, threads, png_name) -> str:
    "The results file: how it was run, the setting and what was cut, the tables, the verdict, the plot, every run"
    runs = cmp.df.assign(test_acc=100*cmp.df.test_acc, train_acc=100*cmp.df.train_acc, gap=100*cmp.df.gap)
    return '\n'.join([
        "# Blur as augmentation (Mkrtchyan's set 2) against progressive deblurring (Khor), side by side", "",
        f"- command: `{command}`", f"- date: {started:%Y-%m-%d %H:%M} (local time), wall time {wall/60:.1f} min",
        f"- machine: {machine(threads)}",
        f"- load average (1, 5, 15 min): {load_before} before, {load_after} after (the machine is shared; the harness "
        "interleaves the contenders and rotates their order per seed, so a busy stretch falls on all of them, and every "
        "ratio is between runs of the same seed)",
        f"- versions: {versions()}", "",
        "## Setting", "",
        f"- data: the embedded Fashion-MNIST, {s['n_train']} training images (of 6,000) and {s['n_test']} test images (of "
        f"1,000), class-balanced, upscaled to {s['size']} px, one channel, normalized; the test images are evaluated once, "
        "after training (no per-epoch validation, nothing chosen on them)",
        f"- network: M1 from scratch; recipe `fit_mkrtchyan`: RAdam (lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay "
        f"1e-4 as L2), batch {s['bs']}, {s['epochs']} epochs, the learning rate divided by 10 at epochs {list(s['drops'])}",
        f"- seeds {s['seeds']}: a seed fixes the images, the initial weights and the batch order, the same for every contender",
        f"- contenders: {', '.join(BLUR_CONTENDERS)}; Khor's sigma falls linearly 2 -> 0 over the {s['epochs']} epochs "
        "(his own steps of -0.5 every 2 epochs reach 0 only after 8); resizing grows the size linearly from 3/4 of the "
        "final size to it in steps of 4 px",
        f"- basis: **equal epochs** (every contender trains {s['epochs']} epochs of the same images); resizing spends less "
        "compute per epoch, which the time column shows. Training seconds exclude the measurements.",
        f"- cut from the paper's setting ({PAPER['n_train']}, {PAPER['size']} px, batch {PAPER['bs']}, {PAPER['epochs']} "
        f"epochs, drops at {list(PAPER['drops'])}): the data (a 10-class grayscale set, upscaled), the images, the epochs "
        f"and the batch size, to keep the benchmark near 15 minutes on a shared 2-core CPU. The accuracies are far below "
        "what M1 reaches with a full training; what is compared is the blur use, not the level.", "",
        "## Results", "", cmp.to_markdown(), "",
        "## Verdict", "", cmp.headline(), "",
        f"![per-run and paired results]({png_name})", "",
        "## Every run", "", "Accuracies and gap in %, seconds of training; position: where the run came in its seed's order.", "",
        markdown_table(runs[['contender', 'seed', 'position', 'test_acc', 'train_acc', 'gap', 'seconds', 'steps']], 2), ""])


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    s = setting(a)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f"mkrtchyan_{device}{'_quick' if a.quick else ''}.md"
    command = ' '.join(['python benchmarks/bench_mkrtchyan.py', *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    started,load_before,t0 = datetime.datetime.now(),load(),time.perf_counter()
    log = lambda line: print(f"[{time.perf_counter() - t0:7.1f} s, load {load()}] {line}", flush=True)
    cmp = compare_blur_uses(seeds=s['seeds'], n_epoch=s['epochs'], n_train=s['n_train'], n_valid=s['n_test'], bs=s['bs'],
                            size=s['size'], drops=s['drops'], log=log)
    wall,load_after = time.perf_counter() - t0,load()
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig = cmp.plot()
    out.parent.mkdir(parents=True, exist_ok=True)
    png,csv = out.with_suffix('.png'),out.with_suffix('.csv')
    fig.savefig(png, dpi=100); plt.close(fig)
    cmp.df.to_csv(csv, index=False)
    out.write_text(report(cmp, s, command, started, load_before, load_after, wall, a.threads, png.name))
    print(cmp.to_markdown())
    print(f"\nwrote {out}, {png.name} and {csv.name} in {wall/60:.1f} min")
    return cmp,out


if __name__ == '__main__':
    main()
