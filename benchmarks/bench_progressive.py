"""Speed of progressive training: realized vs theoretical savings, the callback's overhead, and size-aware loading.

    python benchmarks/bench_progressive.py            # the full run
    python benchmarks/bench_progressive.py --quick    # a few minutes on 2 CPU cores

1. Realized savings: for each progressive regime, the wall time of progressive training divided by the wall time of
   fixed-size training at the same epochs, next to the theoretical ratio (mean pixels per image over training divided
   by full-size pixels), for Khor's network on the embedded Fashion-MNIST (both resize modes) and for resnet18 stepping
   64 -> 128 px on a folder dataset (loader mode: images opened at the current size).
2. Overhead: `ProgressiveResize` with a constant schedule versus plain `fit`.
3. Loading: images per second opening a folder of 500 px JPEGs at 64 px versus at 256 px (`progfast.folders.OpenImage`),
   real photos (scikit-image's bundled ones) and the tests' noisy synthetic stripes.

Times of 1. and 2. are the training phases of the fits (validation runs at the full size for every contender, so it
is left out). Contenders of a table are interleaved and repeated; medians are reported. Results go to
benchmarks/results/progressive_<device>.md.
"""
from __future__ import annotations
import argparse, datetime, os, platform, statistics, sys, tempfile, time
from pathlib import Path
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
DEVICE = 'cuda' if torch.cuda.is_available() else 'cpu'   # results are kept apart by device
sys.path.insert(0, str(ROOT))
from fastai.vision.all import Callback, Learner, accuracy, set_seed, resnet18, vision_learner   # noqa: E402
from progfast.schedule import ConstSchedule, StageSchedule, as_schedule               # noqa: E402
from progfast.resize import ProgressiveResize                                         # noqa: E402
from progfast.data import fashion_mnist_dls, ResizeBatch                                           # noqa: E402
from progfast.models import khor_net                                                  # noqa: E402
from progfast.folders import folder_dls, OpenImage                                    # noqa: E402
from progfast.testing import stripes_image                                            # noqa: E402

TARGET_REALIZED = 1.10   # realized / theoretical time ratio at most this
TARGET_OVERHEAD = 0.01   # callback with a constant schedule at most 1% slower than plain fit
TARGET_LOADING = 3.0     # opening at 64 px at least 3x the images/s of opening at 256 px


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='less data, fewer epochs and repeats')
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads')
    ap.add_argument('--repeats', type=int, default=None, help='repeats of each contender (default 3, quick 2)')
    ap.add_argument('--out', default=None, help='markdown results file')
    return ap.parse_args(argv)


def interleaved(contenders: dict, repeats: int, keep: bool=False) -> dict:
    "Median seconds of each contender (the seconds it returns, else its wall time), and with `keep` every repeat's under (name, 'all')"
    names,times = list(contenders),{k: [] for k in contenders}
    for rep in range(repeats):
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            t = time.perf_counter(); took = contenders[name]()
            times[name].append(time.perf_counter() - t if took is None else took)
    res = {k: statistics.median(v) for k,v in times.items()}
    if keep: res.update({(k, 'all'): v for k,v in times.items()})
    return res


class TrainTimer(Callback):
    "Seconds spent in the training phases of a fit (validation, at the same size for every contender, left out)"
    order = -100
    def before_fit(self): self.seconds = 0.
    def before_train(self): self.t = time.perf_counter()
    def after_train(self): self.seconds += time.perf_counter() - self.t


def theoretical(sched, n_epoch, final) -> float:
    "Mean pixels per image over training divided by full-size pixels (every epoch has the same number of images)"
    return float(np.mean([(round(sched(e, n_epoch)) / final)**2 for e in range(n_epoch)]))


class TimedProgressiveResize(ProgressiveResize):
    "ProgressiveResize that adds up the seconds spent in its own event handlers: in the training phases, and the rest"
    def __call__(self, event_name):
        if event_name == 'before_fit': self.in_training,self.elsewhere = 0.,0.
        t = time.perf_counter()
        try: return super().__call__(event_name)
        finally:
            took = time.perf_counter() - t
            if getattr(self, 'training', False) and event_name not in ('before_fit', 'after_fit'): self.in_training += took
            else: self.elsewhere += took


def train_khor(sizes, mode, n_epoch, n_train, spent: list|None=None):
    "A fit of Khor's network; returns the seconds of its training phases (and appends the callback's own to `spent`)"
    def run():
        set_seed(0)
        # loader mode: the loader's own batch pipeline resizes (ResizeBatch follows the schedule); batch mode: the callback
        dls = fashion_mnist_dls(bs=64, n_train=n_train, after_batch=[ResizeBatch(28)] if mode == 'loader' else [])
        learn = Learner(dls, khor_net(n_in=1), metrics=accuracy)
        cls = ProgressiveResize if spent is None else TimedProgressiveResize
        cbs = [] if sizes is None else [cls(sizes, final_size=28, mode=mode, show=False)]
        timer = TrainTimer()
        with learn.no_bar(), learn.no_logging(): learn.fit(n_epoch, 1e-2, cbs=cbs + [timer])
        if spent is not None: spent.append((cbs[0].in_training / timer.seconds, cbs[0].elsewhere))
        return timer.seconds
    return run


def jpeg_folder(path: Path, n: int, size: int) -> Path:
    rng = np.random.default_rng(0)
    for cls in ('horizontal', 'vertical'):
        d = path/cls; d.mkdir(parents=True, exist_ok=True)
        for i in range(n): stripes_image(cls == 'horizontal', size, rng).save(d/f'{i:03d}.jpg', quality=90)
    return path


PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field', 'retina', 'immunohistochemistry',
          'brick', 'grass', 'gravel')   # real photos and textures bundled with scikit-image


def photo_folder(path: Path, n: int, size: int) -> Path:
    "`n` JPEGs (quality 90) of `size` px: random crops, flips and rotations of scikit-image's bundled photos"
    import skimage.data
    from PIL import Image
    rng = np.random.default_rng(0)
    photos = [Image.fromarray(getattr(skimage.data, k)()).convert('RGB') for k in PHOTOS]
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        im = photos[i % len(photos)]
        side = int(min(im.size) * rng.uniform(0.6, 1.0))
        x, y = rng.integers(0, im.width - side + 1), rng.integers(0, im.height - side + 1)
        im = im.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC).rotate(90 * int(rng.integers(4)))
        im.save(path/f'{i:03d}.jpg', quality=90)
    return path


def train_resnet(path, sizes, mode, n_epoch):
    def run():
        set_seed(0)
        dls = folder_dls(path, size=128, bs=32, cache=False, progress=False)
        learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
        cbs = [] if sizes is None else [ProgressiveResize(sizes, final_size=128, mode=mode, show=False)]
        timer = TrainTimer()
        with learn.no_bar(), learn.no_logging(): learn.fit(n_epoch, 1e-3, cbs=cbs + [timer])
        return timer.seconds
    return run


def loading_rate(files, size, repeats) -> dict:
    "Images per second opened and resized to `size` by OpenImage (draft decoding on) and with draft off"
    from fastai.vision.all import Resize
    res = {}
    for draft in (True, False):
        opener,rs = OpenImage(size=size, draft=draft),Resize(size)
        def run(): [rs(opener(f, split_idx=0), split_idx=0) for f in files]
        res[draft] = len(files) / interleaved({'x': run}, repeats)['x']
    return res


def save_plot(points, loads, fn: Path):
    "Realized against theoretical time ratios (left), images per second opened at 64 and at 256 px (right)"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig,(a1,a2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for (lbl,th,re),m in zip(points, 'os^vD<>p*'*3): a1.scatter(th, re, marker=m, s=40, label=lbl)
    xs = np.array([0.45, 1.0])
    a1.plot(xs, xs, 'k-', lw=1, label='realized = theoretical')
    a1.plot(xs, TARGET_REALIZED * xs, 'k--', lw=1, label=f'target: {TARGET_REALIZED} x theoretical')
    a1.set_xlabel('theoretical: mean pixels / full-size pixels'); a1.set_ylabel('realized: progressive / fixed time')
    a1.set_title('1. Realized vs theoretical savings'); a1.legend(fontsize=7); a1.grid(alpha=.3)
    x = np.arange(len(loads))
    a2.bar(x - 0.2, [l[2] for l in loads], 0.4, label='at 64 px')
    a2.bar(x + 0.2, [l[3] for l in loads], 0.4, label='at 256 px')
    a2.set_xticks(x, [f"{l[0]}\n{'draft' if l[1] else 'full'} decoding" for l in loads], fontsize=8)
    a2.set_ylabel('images / s'); a2.set_title('3. Opening 500 px JPEGs'); a2.legend(fontsize=8); a2.grid(alpha=.3, axis='y')
    fig.tight_layout(); fig.savefig(fn, dpi=110); plt.close(fig)


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    reps = a.repeats or (2 if a.quick else 3)
    n_epoch,n_train = (4, 1000) if a.quick else (8, 4000)
    started,lines,points,loads = time.time(),[],[],[]
    out = Path(a.out or ROOT/'benchmarks'/'results'/f"progressive_{DEVICE}{'_quick' if a.quick else ''}.md")
    p = lambda s='': (print(s), lines.append(s))
    p(f"# Progressive training speed on the {DEVICE.upper() if DEVICE == 'cpu' else 'GPU'}\n")
    p(f"- command: `python benchmarks/bench_progressive.py{' --quick' if a.quick else ''}`")
    p(f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    p(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs, torch threads {a.threads}, "
      f"load average {os.getloadavg()[0]:.1f} at the start")
    import fastai, PIL, torchvision
    p(f"- versions: torch {torch.__version__}, torchvision {torchvision.__version__}, fastai {fastai.__version__}, "
      f"pillow {PIL.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
    p(f"- medians of {reps} interleaved repeats\n")

    p(f"## 1. Realized vs theoretical savings, Khor's network, embedded Fashion-MNIST ({n_train} images, {n_epoch} epochs, 28 px)\n")
    p("| mode | regime | sizes per epoch | theoretical | realized | realized / theoretical | target <= 1.10 |")
    p("|---|---|---|---|---|---|---|")
    for mode in ('batch', 'loader'):
        regimes = {r: as_schedule(r, 28) for r in ('khor', 'gradual', 'stepwise')}
        t = interleaved({'fixed': train_khor(None, mode, n_epoch, n_train),
                         **{r: train_khor(s, mode, n_epoch, n_train) for r,s in regimes.items()}}, reps)
        for r,s in regimes.items():
            th,re = theoretical(s, n_epoch, 28),t[r]/t['fixed']
            ok = re/th <= TARGET_REALIZED; points.append((f"Khor's net, {mode} mode, {r}", th, re))
            p(f"| {mode} | {r} | {[round(s(e, n_epoch)) for e in range(n_epoch)]} | {th:.3f} | {re:.3f} | {re/th:.3f} | {'met' if ok else '**missed**'} |")
    p(f"\nfixed-size training took {t['fixed']:.1f} s (last mode).\n")
    t = interleaved({s_: train_khor(ConstSchedule(s_), 'batch', 1, n_train) for s_ in (11, 20, 28)}, reps)
    p("Where the time goes at these sizes: one epoch of Khor's network at a constant size (batch mode), against its "
      "share of the pixels of 28 px. Costs that do not shrink with the image (Python, the optimizer step, the loader, "
      "the per-layer calls) keep small images from being proportionally cheaper.\n")
    p("| size | pixels / 28 px pixels | time / 28 px time |\n|---|---|---|")
    for s_ in (11, 20, 28): p(f"| {s_} | {(s_/28)**2:.3f} | {t[s_]/t[28]:.3f} |")
    p("")

    with tempfile.TemporaryDirectory() as d:
        path = jpeg_folder(Path(d)/'stripes', 40 if a.quick else 100, 160)
        n_ep = 4
        sched = StageSchedule([64, 96, 128, 128])
        p(f"## 1b. resnet18 (random init), 64 -> 128 px on a folder of {80 if a.quick else 200} JPEGs, {n_ep} epochs\n")
        p("Loader mode opens the images at the current size; batch mode opens them at 128 px and shrinks the batch.\n")
        p("| mode | sizes | theoretical | realized | realized / theoretical | target <= 1.10 |\n|---|---|---|---|---|---|")
        th = theoretical(sched, n_ep, 128)
        for mode in ('loader', 'batch'):
            t = interleaved({'fixed': train_resnet(path, None, mode, n_ep), 'progressive': train_resnet(path, sched, mode, n_ep)}, reps)
            re = t['progressive']/t['fixed']
            points.append((f"resnet18, {mode} mode", th, re))
            p(f"| {mode} | {[64, 96, 128, 128]} | {th:.3f} | {re:.3f} | {re/th:.3f} | {'met' if re/th <= TARGET_REALIZED else '**missed**'} |")
        p("")

        p("## 2. Overhead of the callback (constant schedule) vs plain fit, Khor's network\n")
        spent = []
        t = interleaved({'plain fit': train_khor(None, 'batch', 2, n_train),
                         'ProgressiveResize(constant)': train_khor(ConstSchedule(28), 'batch', 2, n_train, spent)},
                        3 if a.quick else 7, keep=True)
        ov = t['ProgressiveResize(constant)']/t['plain fit'] - 1
        rep_ratios = [b/a_ - 1 for a_,b in zip(t['plain fit', 'all'], t['ProgressiveResize(constant)', 'all'])]
        own = statistics.median(f for f,_ in spent)
        setup = statistics.median(e for _,e in spent)
        p("Two measurements. A/B: the training phases of the two fits, interleaved; the spread of the per-repeat "
          "differences shows how far this machine lets an A/B comparison resolve 1%. Direct: the seconds spent inside "
          "the callback's own event handlers during the training phases, as a share of those phases (its work once "
          "per fit, such as the dry run at the smallest and largest size, is given apart).\n")
        p(f"| measurement | plain fit (s) | with the callback (s) | overhead | target <= 1% |\n|---|---|---|---|---|")
        p(f"| A/B, median of {len(rep_ratios)} | {t['plain fit']:.2f} | {t['ProgressiveResize(constant)']:.2f} | {ov:+.2%} "
          f"(per repeat {min(rep_ratios):+.1%} to {max(rep_ratios):+.1%}) | {'met' if ov <= TARGET_OVERHEAD else '**missed**'} |")
        p(f"| direct: time in the callback's handlers | | | {own:.2%} | {'met' if own <= TARGET_OVERHEAD else '**missed**'} |\n")
        p(f"Once per fit, outside the training phases (the dry run, saving and restoring the transforms): {1000*setup:.0f} ms.\n")

        n_load = 50 if a.quick else 150
        folders = {'photos': photo_folder(Path(d)/'photos', n_load, 500),
                   'noisy stripes': jpeg_folder(Path(d)/'big', n_load // 2, 500)}
        p(f"## 3. Loading 500 px JPEGs (OpenImage + Resize), {n_load} per folder\n")
        p("Photos: random crops of scikit-image's bundled photos and textures, the target's case. Noisy stripes: the "
          "synthetic images of the tests, whose noise makes JPEG's entropy decoding (which draft mode cannot shrink) "
          "most of the work.\n")
        p("| folder | decoding | images/s at 64 px | images/s at 256 px | ratio | target >= 3x |\n|---|---|---|---|---|---|")
        for name,folder in folders.items():
            files = sorted(folder.rglob('*.jpg'))
            r64,r256 = loading_rate(files, 64, reps),loading_rate(files, 256, reps)
            for draft in (True, False):
                ratio = r64[draft]/r256[draft]; loads.append((name, draft, r64[draft], r256[draft]))
                verdict = ('met' if ratio >= TARGET_LOADING else '**missed**') if draft and name == 'photos' else '(reference)'
                p(f"| {name} | {'draft' if draft else 'full'} | {r64[draft]:.0f} | {r256[draft]:.0f} | {ratio:.2f}x | {verdict} |")
    p(f"\nTotal benchmark time: {time.time()-started:.0f} s; load average {os.getloadavg()[0]:.1f} at the end.")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_plot(points, loads, out.with_suffix('.png'))
    p(f"\n![realized vs theoretical savings, and loading speed]({out.with_suffix('.png').name})")
    out.write_text('\n'.join(lines) + '\n')
    print(f"\nwritten to {out}")


if __name__ == '__main__': main()
