"""The GPU benchmark: what matters for progressive training on CUDA, in one script that finishes in under 8 minutes.

    make bench-gpu                                  # = python benchmarks/bench_gpu.py on the first GPU (< 8 minutes)
    python benchmarks/bench_gpu.py --cpu-smoke      # the same code, reduced, on the CPU (seconds; the test suite runs it)
    make bench-gpu QUICK=1                          # = --quick: the reduced form on the device at hand
    python benchmarks/bench_gpu.py --sections progressive,compile    # a subset

Sections (results: benchmarks/results/gpu_cuda.md, with blur_cuda.md from section D, + PNG and CSV; the reduced
form writes gpu_<device>_quick.md and blur_<device>_quick.md):

A. precision: a progressive fit (128 -> 224 px, batch mode, data in GPU memory) of resnet50 with fp32, AMP fp16
   (fastai's `to_fp16`), AMP bf16 (`to_bf16`), fp16 + channels_last (`to_channelslast`), and the last with
   `torch.backends.cudnn.benchmark` off (on for the others: cuDNN then tunes its kernels at each new size). Per
   repeat, time ratios to fp32 and benchmark off over on; every fit must end with a finite loss.
B. progressive vs fixed for resnet18 and resnet50 at 128 -> 224 px (sizes 128, 160, 192, 224, one epoch each) on
   generated JPEGs (crops of scikit-image's photos, 10 classes), with the data in memory (decoded once at 224 px,
   on the GPU; 'batch' mode resizes each batch there) and from disk (JPEGs opened at the current size by
   `OpenImage` in worker processes; 'loader' mode): fixed, progressive, progressive + batch_scale. Realized
   (progressive seconds over fixed seconds of the same repeat) over theoretical (mean pixels per image over full-size
   pixels), target <= 1.10, and images/s. fp16 + channels_last, cudnn.benchmark on.
C. torch.compile (inductor) with the 4-size schedule: graphs compiled (counted by a backend that wraps inductor),
   the fit's time with compilation, and the last epoch's time against eager.
D. blur vs kornia on CUDA: `benchmarks/bench_blur.py --device cuda` (blur_cuda.md).

Every comparison runs through `progfast.studies.comparison` (contenders interleaved, order rotated per repeat, an untimed
warm-up, ratios within a repeat). A section that would start after `--budget` seconds is skipped and said so.
"""
from __future__ import annotations
import argparse, io, math, sys, tempfile, time
from contextlib import contextmanager
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT/'benchmarks')]
import torchvision                                                                                   # noqa: E402
from fastai.vision.all import (Learner, accuracy, set_seed, Datasets, DisplayedTransform, TensorImage,  # noqa: E402
                               IntToFloatTensor)
from progfast.testing import tiny_cnn                                                                # noqa: E402
from progfast.core.clock import EpochClock                                                            # noqa: E402
from progfast.studies.comparison import run_interleaved, paired, summarize_pairs, write_files, plot_pairs   # noqa: E402
from progfast.core.schedule import StageSchedule                                                          # noqa: E402
from progfast.data.embedded import PickCategory, TensorBatchDL                                                # noqa: E402
from progfast.data.folders import folder_dls                                                              # noqa: E402
import progfast.callbacks.progressive                                                                               # noqa: E402,F401
from benchlib import (Run, SkipValidation, mean_pixels, photo_classes, realized_pairs, values_cell,  # noqa: E402
                      pair_cells, interval_cell, verdict_cell, PHOTOS)

TARGET_REALIZED = 1.10
ARCHS = {'resnet18': lambda c: torchvision.models.resnet18(num_classes=c),    # torchvision's models, random weights
         'resnet50': lambda c: torchvision.models.resnet50(num_classes=c),
         'tiny CNN': lambda c: tiny_cnn(3, c)}                                  # the CPU smoke's stand-in
METHODS = ('fixed', 'progressive', 'progressive + batch_scale')
PRECISIONS = ('fp32', 'fp16', 'bf16', 'fp16 + channels_last', 'fp16 + channels_last, cudnn.benchmark off')
SECTIONS = ('precision', 'progressive', 'compile', 'blur')
GPU = dict(n_per_class=64, n_valid_per_class=4, n_classes=10, image_size=256, sizes=(128, 160, 192, 224), bs=64,
           repeats=5, prec_repeats=3, archs=('resnet18', 'resnet50'), prec_arch='resnet50', compile_arch='resnet18',
           num_workers=8, budget=420, backend='inductor')
SMOKE = dict(n_per_class=8, n_valid_per_class=2, n_classes=2, image_size=40, sizes=(16, 20, 24, 32), bs=4,
             repeats=2, prec_repeats=2, archs=('tiny CNN',), prec_arch='tiny CNN', compile_arch='tiny CNN',
             num_workers=0, budget=600, backend='eager')


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--cpu-smoke', action='store_true', help='run the reduced form on the CPU (tiny data, 2 repeats)')
    ap.add_argument('--quick', action='store_true', help='the reduced form on the device at hand (as --cpu-smoke without a GPU)')
    ap.add_argument('--sections', default=','.join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    ap.add_argument('--repeats', type=int, default=None, help='repeats of section B (default 5)')
    ap.add_argument('--budget', type=float, default=None, help='seconds after which no new section starts (default 420)')
    ap.add_argument('--backend', default=None, help="torch.compile backend of section D (default inductor; smoke: eager)")
    ap.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch\'s own; smoke 1)')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/gpu_<device>.md)')
    a = ap.parse_args(argv)
    bad = [s for s in a.sections.split(',') if s not in SECTIONS]
    if bad: ap.error(f"unknown section {bad[0]!r}; valid sections are {SECTIONS}")
    return a


def setting(a) -> dict:
    reduced = a.cpu_smoke or a.quick
    s = dict(SMOKE if reduced else GPU)
    s['device'] = 'cpu' if a.cpu_smoke or not torch.cuda.is_available() else 'cuda'
    if s['device'] == 'cpu' and not reduced:
        raise SystemExit("bench_gpu.py: no CUDA device here. Run it on a GPU (make bench-gpu), or run the reduced form "
                         "on the CPU with --cpu-smoke")
    for k in ('repeats', 'budget', 'backend'):
        if getattr(a, k) is not None: s[k] = getattr(a, k)
    s['sections'],s['reduced'] = a.sections.split(','),reduced
    return s


# --- data ------------------------------------------------------------------------------------------------------------
class PickRGB(DisplayedTransform):
    "Index RGB images held in a uint8 tensor (N, 3, H, W), on any device: one index or a tensor of indices"
    def __init__(self, x): self.x = x
    def encodes(self, i): return TensorImage(self.x[torch.as_tensor(i, device=self.x.device)])


def decoded(folder: Path, size: int):
    "Every JPEG of `folder`/<class>/ decoded and resized to `size` px: a uint8 tensor (N, 3, size, size), labels, classes"
    from PIL import Image
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
    xs,ys = [],[]
    for c,name in enumerate(classes):
        for f in sorted((folder/name).glob('*.jpg')):
            with Image.open(f) as im: xs.append(np.asarray(im.convert('RGB').resize((size, size), Image.BILINEAR)))
            ys.append(c)
    return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous(),np.array(ys),classes


def memory_dls(root: Path, s):
    "DataLoaders over the images decoded once at the final size and kept on the device"
    size,dev = s['sizes'][-1],torch.device(s['device'])
    (xt,yt,classes),(xv,yv,_) = decoded(root/'train', size),decoded(root/'valid', size)
    x,y = torch.cat([xt, xv]).to(dev),np.concatenate([yt, yv])
    splits = [list(range(len(xt))), list(range(len(xt), len(x)))]
    dsets = Datasets(list(range(len(x))), tfms=[[PickRGB(x)], [PickCategory(y, classes)]], splits=splits)
    return dsets.dataloaders(bs=s['bs'], after_batch=[IntToFloatTensor()], device=dev, dl_type=TensorBatchDL, num_workers=0)


def disk_dls(root: Path, s):
    "DataLoaders that open the JPEGs (at the current size in loader mode) in worker processes"
    return folder_dls(root, size=s['sizes'][-1], bs=s['bs'], cache=False, max_side=None, progress=False,
                      num_workers=s['num_workers'], device=torch.device(s['device']))


# --- training ------------------------------------------------------------------------------------------------------
@contextmanager
def cudnn_benchmark(on: bool):
    was = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = on
    try: yield
    finally: torch.backends.cudnn.benchmark = was


def with_precision(learn: Learner, precision: str) -> Learner:
    "`learn` set up as `precision` says: fastai's to_fp16 / to_bf16 / to_channelslast"
    if precision.startswith('fp16'): learn.to_fp16()
    elif precision == 'bf16': learn.to_bf16()
    if 'channels_last' in precision: learn.to_channelslast(use_amp=False)
    return learn


def fit(dls, arch: str, method: str, s, mode: str, precision: str = 'fp16 + channels_last', compile_backend=None) -> dict:
    "One fit of 4 epochs: fixed at the final size or progressive over `s['sizes']`; its training seconds and more"
    sizes,n = list(s['sizes']),len(s['sizes'])
    learn = with_precision(Learner(dls, ARCHS[arch](dls.c), metrics=accuracy), precision)
    counter = None
    if compile_backend:
        counter = GraphCounter(compile_backend)
        learn.model = torch.compile(learn.model, backend=counter)
    timer = EpochClock()
    cbs = [timer, SkipValidation()]
    with learn.no_bar(), learn.no_logging(), cudnn_benchmark('benchmark off' not in precision):
        t0 = time.perf_counter()
        if method == 'fixed': learn.fit_one_cycle(n, 1e-3, cbs=cbs); th = 1.
        else:
            learn.fit_progressive(n, 1e-3, sizes=StageSchedule(sizes), mode=mode, batch_scale=method.endswith('batch_scale'),
                                  recalibrate_bn=False, cbs=cbs)
            th = mean_pixels(learn.progressive.df, sizes[-1])
        fit_s = time.perf_counter() - t0
        loss = float(learn.recorder.losses[-1]) if learn.recorder.losses else math.nan
        acc = float(learn.validate()[1]) if not compile_backend else math.nan
    n_img = n * len(dls.train_ds)
    res = dict(seconds=timer.train_total, fit_seconds=fit_s, theoretical=th, images_per_s=n_img / timer.train_total,
               last_epoch_s=timer.train_seconds[-1], final_loss=loss, finite=bool(np.isfinite(loss)), accuracy=acc)
    if counter: res.update(graphs=counter.graphs, shapes=' '.join(counter.shapes))
    return res


class GraphCounter:
    "A torch.compile backend that counts the graphs it is given (and their input shapes), compiled by `backend`"
    def __init__(self, backend: str = 'inductor'): self.backend,self.graphs,self.shapes = backend,0,[]
    def __call__(self, gm, example_inputs):
        from torch._dynamo.backends.registry import lookup_backend
        self.graphs += 1
        x = next((t for t in example_inputs if isinstance(t, torch.Tensor) and t.ndim == 4 and not t.requires_grad), None)
        self.shapes.append('x'.join(map(str, x.shape)) if x is not None else '?')
        return lookup_backend(self.backend)(gm, example_inputs)


# --- sections ------------------------------------------------------------------------------------------------------
def section_precision(mem, s, run) -> pd.DataFrame:
    def trial(precision):
        def go(seed):
            set_seed(seed)
            return fit(mem, s['prec_arch'], 'progressive', s, 'batch', precision)
        return go
    return run_interleaved({p: trial(p) for p in PRECISIONS}, list(range(s['prec_repeats'])), log=run.log)


def section_progressive(mem, disk, s, run) -> pd.DataFrame:
    parts = []
    for arch in s['archs']:
        for data,dls,mode in (('memory', mem, 'batch'), ('disk', disk, 'loader')):
            run.log(f"B. {arch}, data from {data}")
            def trial(method, dls=dls, mode=mode, arch=arch):
                def go(seed):
                    set_seed(seed)
                    return fit(dls, arch, method, s, mode)
                return go
            t = run_interleaved({m: trial(m) for m in METHODS}, list(range(s['repeats'])), log=run.log)
            parts.append(t.assign(arch=arch, data=data))
    return pd.concat(parts, ignore_index=True)


def section_compile(mem, s, run) -> pd.DataFrame:
    import torch._dynamo
    def trial(compiled):
        def go(seed):
            set_seed(seed)
            torch._dynamo.reset()
            return fit(mem, s['compile_arch'], 'progressive', s, 'batch', compile_backend=s['backend'] if compiled else None)
        return go
    warm = lambda: fit(mem, s['compile_arch'], 'progressive', s, 'batch')
    return run_interleaved({'eager': trial(False), f"torch.compile ({s['backend']})": trial(True)}, [0], warmup=warm,
                           log=run.log)


def section_blur(s, out: Path, run) -> Path:
    import bench_blur
    argv = ['--device', s['device'], '--out', str(out.with_name(f"blur_{s['device']}{'_quick' if s['reduced'] else ''}.md"))]
    if s['reduced']: argv += ['--quick', '--repeats', '2']
    if s['device'] == 'cpu': argv += ['--threads', str(torch.get_num_threads())]
    threads = torch.get_num_threads()
    try: return bench_blur.main(argv)
    finally: torch.set_num_threads(threads)


# --- report --------------------------------------------------------------------------------------------------------
def precision_lines(t: pd.DataFrame) -> list:
    r = paired(t, 'seconds', 'fp32')
    off = paired(t[t.contender.isin(['fp16 + channels_last', PRECISIONS[-1]])], 'seconds', 'fp16 + channels_last')
    sr,so = summarize_pairs(r),summarize_pairs(off)
    L = ["| precision, memory format, cuDNN | training seconds (median) | images/s (median) | time / fp32, per repeat | "
         "median [range] | 90% interval of the median | every fit's final loss finite |", "|---|---|---|---|---|---|---|"]
    for p in PRECISIONS:
        g = t[t.contender == p]
        q = sr[sr.contender == p]
        cells = ['1', '', ''] if q.empty else [values_cell(r, contender=p), pair_cells(q.iloc[0]), interval_cell(q.iloc[0])]
        L.append(f"| {p} | {g.seconds.median():.2f} | {g.images_per_s.median():.0f} | " + ' | '.join(cells) +
                 f" | {'yes' if g.finite.all() else '**no**'} |")
    q = so.iloc[0]
    L += ["", f"cudnn.benchmark off over on (fp16 + channels_last, same repeat): {values_cell(off)}; median [range] "
              f"{pair_cells(q)}, 90% interval {interval_cell(q)}."]
    return L


def progressive_lines(t: pd.DataFrame) -> tuple:
    realized,rt = realized_pairs(t, within=['arch', 'data'])
    srt = summarize_pairs(rt, 0.9, TARGET_REALIZED, 'lower')
    L = ["| arch | data | contender | theoretical | realized, per repeat | realized / theoretical, per repeat | "
         "median [range] | 90% interval of the median | target <= 1.10 | images/s (median) |",
         "|---|---|---|---|---|---|---|---|---|---|"]
    for (arch,data),g in t.groupby(['arch', 'data'], sort=False):
        L.append(f"| {arch} | {data} | fixed | 1.000 | | | | | | {g[g.contender == 'fixed'].images_per_s.median():.0f} |")
        for r in srt[(srt.arch == arch) & (srt.data == data)].to_dict('records'):
            m = dict(arch=arch, data=data, contender=r['contender'])
            q = g[g.contender == r['contender']]
            L.append(f"| {arch} | {data} | {r['contender']} | {q.theoretical.median():.3f} | {values_cell(realized, **m)} | "
                     f"{values_cell(rt, **m)} | {pair_cells(r)} | {interval_cell(r)} | {verdict_cell(r['verdict'])} | "
                     f"{q.images_per_s.median():.0f} |")
    return L,rt


def compile_lines(t: pd.DataFrame, final: int) -> list:
    L = ["| contender | graphs compiled | input shapes of the graphs | fit seconds (with compilation) | training seconds | "
         f"last epoch ({final} px) seconds |", "|---|---|---|---|---|---|"]
    for r in t.to_dict('records'):
        g = r.get('graphs')
        L.append(f"| {r['contender']} | {'' if g is None or g != g else int(g)} | "
                 f"{r.get('shapes', '') if isinstance(r.get('shapes'), str) else ''} | {r['fit_seconds']:.1f} | "
                 f"{r['seconds']:.1f} | {r['last_epoch_s']:.2f} |")
    return L


def main(argv=None):
    a = parse_args(argv)
    s = setting(a)
    if a.threads or a.cpu_smoke: torch.set_num_threads(a.threads or 1)
    dev = s['device']
    out = Path(a.out) if a.out else ROOT/'benchmarks'/'results'/f"gpu_{dev}{'_quick' if s['reduced'] else ''}.md"
    run = Run('bench_gpu.py', argv, torch.get_num_threads())
    done,skipped,tables = {},[],{}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)/'photos'
        run.log("generating the JPEGs")
        photo_classes(root/'train', s['n_per_class'], s['image_size'], s['n_classes'], seed=0)
        photo_classes(root/'valid', s['n_valid_per_class'], s['image_size'], s['n_classes'], seed=1)
        mem,disk = memory_dls(root, s),disk_dls(root, s)
        for sec in s['sections']:
            if time.perf_counter() - run.t0 > s['budget']: skipped.append(sec); continue
            run.log(f"section {sec}")
            if sec == 'precision': done[sec] = section_precision(mem, s, run)
            elif sec == 'progressive': done[sec] = section_progressive(mem, disk, s, run)
            elif sec == 'compile': done[sec] = section_compile(mem, s, run)
            elif sec == 'blur': tables['blur'] = section_blur(s, out, run)
    text,files = report(a, s, run, done, skipped, tables, out)
    write_files(out.parent, files)
    print(text)
    print(f"\nwritten to {out}")
    return out


def report(a, s, run, done, skipped, tables, out) -> tuple:
    dev = s['device']
    gpu = torch.cuda.get_device_name(0) if dev == 'cuda' else 'no GPU: the reduced CPU form'
    L = [f"# progfast on {'a GPU (' + gpu + ')' if dev == 'cuda' else 'the CPU, reduced (--cpu-smoke)'}", "", *run.header(),
         f"- data: {s['n_classes']} classes x {s['n_per_class']} training JPEGs ({s['image_size']} px crops of "
         f"scikit-image's photos: {', '.join(PHOTOS[:s['n_classes']])}), {s['n_valid_per_class']} per class to validate; "
         f"batch {s['bs']}; {len(s['sizes'])} epochs, one per size {list(s['sizes'])} (fixed: all at {s['sizes'][-1]} px); "
         "one-cycle, peak LR 1e-3, Adam; no validation during training; torchvision's models from random weights",
         f"- data in memory: decoded once at {s['sizes'][-1]} px into a uint8 tensor on the {dev}, progressive 'batch' mode; "
         f"from disk: `folder_dls(cache=False)`, {s['num_workers']} worker processes, 'loader' mode (JPEGs opened at the "
         "current size with draft decoding)", ""]
    if dev == 'cpu': L += ["*Reduced CPU form: tiny images and sizes, a tiny CNN in place of the resnets, 2 repeats (too few for a 90% interval: "
                           "verdicts are inconclusive by construction). fastai's `to_fp16`/`to_bf16` autocast only CUDA "
                           "operations, so on the CPU every precision row runs in fp32 and cudnn.benchmark does nothing; "
                           f"torch.compile uses the '{s['backend']}' backend. This checks the code paths, not the speed.*", ""]
    if skipped: L += [f"**Skipped** (the budget of {s['budget']:.0f} s was spent): {', '.join(skipped)}.", ""]
    panels = []
    if 'precision' in done:
        L += [f"## A. Precision, memory format and cudnn.benchmark ({s['prec_arch']}, progressive {list(s['sizes'])} px, "
              f"data in memory, {s['prec_repeats']} repeats)", "",
              "Each fit trains the same images at the same sizes; the five contenders of a repeat ran one after another in "
              "a rotated order. fp32 convolutions may use TF32 on Ampere and later (PyTorch's default for cuDNN). "
              "cudnn.benchmark is on except in the last row, so cuDNN tunes its kernels once per new size.", "",
              *precision_lines(done['precision']), ""]
    if 'progressive' in done:
        pl,rt = progressive_lines(done['progressive'])
        L += [f"## B. Progressive vs fixed, {s['sizes'][0]} -> {s['sizes'][-1]} px ({s['repeats']} repeats, fp16 + channels_last, cudnn.benchmark on)", "",
              "Realized: the progressive fit's training seconds over the fixed fit's of the same repeat. Theoretical: the "
              "mean pixels per image over training over full-size pixels (batch_scale trains the same images at the same "
              "sizes in fewer, larger steps). Images/s: images trained per second of training.", "", *pl, ""]
        panels.append((rt.assign(contender=[f"{r.arch}, {r.data}\n{r.contender}" for r in rt.itertuples()])
                       [['repeat', 'contender', 'reference', 'measure', 'how', 'value']], TARGET_REALIZED,
                       'B. realized / theoretical'))
    if 'compile' in done:
        L += [f"## C. torch.compile ({s['backend']}) with the {len(s['sizes'])}-size schedule ({s['compile_arch']}, data in "
              "memory, fp16 + channels_last)", "",
              "One run each, eager first (after an untimed eager warm-up); torch._dynamo was reset before each. Graphs: "
              "the graphs dynamo handed to the backend, from `fit_progressive`'s dry run (the model in evaluation mode at "
              "the smallest and the largest size) and the training steps; no validation ran. PyTorch's automatic dynamic shapes compile the first size statically and recompile once with "
              "the size dynamic; no later size should add a graph. The last epoch runs at the final size after "
              "compilation: its time is the steady-state comparison. One run, so no interval: this records the "
              "compilations and their cost, it is not a paired speed claim.", "", *compile_lines(done['compile'], s['sizes'][-1]), ""]
    if 'blur' in tables:
        L += ["## D. Blur vs kornia", "", f"See [{tables['blur'].name}]({tables['blur'].name}).", ""]
    png = out.with_suffix('.png')
    if panels:
        import matplotlib; matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        fig,axs = plt.subplots(1, len(panels), figsize=(12, 4.5), squeeze=False)
        for ax,(pairs,target,title) in zip(axs[0], panels):
            plot_pairs(pairs, target=target, ax=ax, title=title)
            for lbl in ax.get_xticklabels(): lbl.set_rotation(30); lbl.set_ha('right'); lbl.set_fontsize(7)
        fig.tight_layout(); fig.savefig(png, dpi=100); plt.close(fig)
        L += [f"![realized / theoretical per repeat]({png.name})", ""]
    csv = out.with_suffix('.csv')
    if done:
        L += [f"Every trial is in [{csv.name}]({csv.name}).", ""]
    buf = io.StringIO()
    if done: pd.concat([t.assign(section=k) for k,t in done.items()], ignore_index=True).to_csv(buf, index=False)
    files = {out.name: '\n'.join(L)}
    if done: files[csv.name] = buf.getvalue()
    return '\n'.join(L),files


if __name__ == '__main__': main()
