"""Benchmark progfast's Gaussian blur against kornia and torchvision, and its cost in a resnet18 training step.

    python benchmarks/bench_blur.py            # the full run (a few minutes on 2 CPU cores)
    python benchmarks/bench_blur.py --quick    # fewer repeats, a smaller resnet batch

It checks that `progfast.blur.gaussian_blur` gives the same numbers as `kornia.filters.gaussian_blur2d` and
`torchvision.transforms.v2.functional.gaussian_blur` (same sigma, same kernel size, reflect padding), times them side by
side in one run (contenders interleaved, medians of repeats) with one sigma for the batch and with one sigma per image,
and compares the expected cost of `RandomBlur(p=0.4)` with a resnet18 training step. Results go to
benchmarks/results/blur_<device>.md. Needs kornia and torchvision.
"""
from __future__ import annotations
import argparse, datetime, math, os, platform, statistics, sys, time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
import torchvision.transforms.v2.functional as TF
import kornia

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from progfast.blur import gaussian_blur, kernel_radius, RandomBlur  # noqa: E402

AGREE_TOL = 1e-5
TARGET_VS_KORNIA = 2.0   # ours at least this many times faster than kornia's per-image-sigma blur
TARGET_OVERHEAD = 0.03   # expected RandomBlur(p=0.4) time at most this fraction of a resnet18 step at 128 px
P = 0.4                  # Khor's blurring probability


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='fewer repeats and a smaller resnet18 batch')
    ap.add_argument('--device', default='cpu', help="torch device, e.g. 'cpu' or 'cuda'")
    ap.add_argument('--threads', type=int, default=2, help='torch CPU threads (default 2, the project machines)')
    ap.add_argument('--repeats', type=int, default=None, help='timed repeats per blur contender (default 31, quick 5)')
    ap.add_argument('--out', default=None, help='markdown results file (default benchmarks/results/blur_<device>.md)')
    return ap.parse_args(argv)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


def time_interleaved(contenders: dict, repeats: int, device, setup=None) -> dict:
    "(median, min, all times) in seconds of each contender; every repeat runs all of them, in an order that rotates"
    names, times = list(contenders), {k: [] for k in contenders}
    for f in contenders.values(): f(setup() if setup else None); sync(device)   # warm-up
    for rep in range(repeats):
        arg = setup() if setup else None
        for name in names[rep % len(names):] + names[:rep % len(names)]:
            t = time.perf_counter(); contenders[name](arg); sync(device)
            times[name].append(time.perf_counter() - t)
    return {k: (statistics.median(v), min(v), v) for k, v in times.items()}


def agreement(x, sigmas_fixed, per_image_sigmas) -> list:
    "Rows (case, kernel size, |ours-kornia|, |ours-torchvision|)"
    rows = []
    for s in sigmas_fixed:
        ks = 2 * kernel_radius(s) + 1
        ours = gaussian_blur(x, s)
        kor = kornia.filters.gaussian_blur2d(x, (ks, ks), (s, s), border_type='reflect')
        tv = TF.gaussian_blur(x, [ks, ks], [s, s])
        rows.append((f"sigma {s:g}", ks, (ours - kor).abs().max().item(), (ours - tv).abs().max().item()))
    s = per_image_sigmas
    r = kernel_radius(s)
    ours = gaussian_blur(x, s, radius=r)
    kor = kornia.filters.gaussian_blur2d(x, 2 * r + 1, torch.stack([s, s], 1).to(x.device), border_type='reflect')
    tv = torch.cat([TF.gaussian_blur(x[i:i+1], [2*r+1]*2, [si.item()]*2) for i, si in enumerate(s)])
    rows.append((f"per-image sigma in [{s.min():.2f}, {s.max():.2f}]", 2 * r + 1,
                 (ours - kor).abs().max().item(), (ours - tv).abs().max().item()))
    return rows


def resnet_step_fn(bs, size, device):
    model = torchvision.models.resnet18(weights=None, num_classes=10).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xb = torch.rand(bs, 3, size, size, device=device)
    yb = torch.randint(0, 10, (bs,), device=device)
    def step(_=None):
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    return step, xb


KORNIA_FLUSH = 'kornia RandomGaussianBlur(p=1, sigma=(0.1, 2)), subnormals flushed'

def flushing_denormals(f, *args):
    "Run `f` with the CPU flushing subnormal floats to zero (not a setting a library may change for its users)"
    torch.set_flush_denormal(True)
    try: return f(*args)
    finally: torch.set_flush_denormal(False)


def fmt_ms(t): return f"{t * 1e3:.1f}"


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    repeats = args.repeats or (5 if args.quick else 31)
    step_repeats = 3 if args.quick else 5
    resnet_bs = 16 if args.quick else 64
    out = Path(args.out) if args.out else ROOT / 'benchmarks' / 'results' / f'blur_{device.type}.md'
    torch.manual_seed(0)
    B, C, H, W = 64, 3, 128, 128
    x = torch.rand(B, C, H, W, device=device)
    load_start = os.getloadavg()
    t_start = time.perf_counter()

    # (a) agreement
    per_img = torch.empty(B).uniform_(0.1, 2.0)
    agree = agreement(x, (0.5, 1.0, 2.0, 5.0), per_img)
    for r in agree: print(f"agreement {r[0]:32s} k={r[1]:3d}  |ours-kornia| {r[2]:.2e}  |ours-torchvision| {r[3]:.2e}")

    # (b) speed, sigma 2 for the whole batch (Khor's largest sigma): kernel 13
    s, ks = 2.0, 2 * kernel_radius(2.0) + 1
    x_cl = x.contiguous(memory_format=torch.channels_last)
    kornia_fixed = kornia.augmentation.RandomGaussianBlur((ks, ks), (s, s), p=1.0)
    fixed = time_interleaved({
        'progfast gaussian_blur': lambda _: gaussian_blur(x, s),
        'progfast gaussian_blur, channels_last batch': lambda _: gaussian_blur(x_cl, s),
        'kornia.filters.gaussian_blur2d': lambda _: kornia.filters.gaussian_blur2d(x, (ks, ks), (s, s)),
        'kornia RandomGaussianBlur(p=1, sigma=(2, 2))': lambda _: kornia_fixed(x),
        'torchvision v2 gaussian_blur': lambda _: TF.gaussian_blur(x, [ks, ks], [s, s]),
    }, repeats, device)
    # one sigma per image, drawn from (0.1, 2) (Mkrtchyan's Tiny ImageNet setting), kernel 13 for kornia
    ours_img = RandomBlur(p=1.0, sigma=(0.1, 2.0), per='image')
    ours_img04 = RandomBlur(p=P, sigma=(0.1, 2.0), per='image')
    kornia_img = kornia.augmentation.RandomGaussianBlur((ks, ks), (0.1, 2.0), p=1.0)
    kornia_img04 = kornia.augmentation.RandomGaussianBlur((ks, ks), (0.1, 2.0), p=P)
    per_image = time_interleaved({
        'progfast RandomBlur(p=1, per=image)': lambda _: ours_img.blur_batch(x),
        'kornia RandomGaussianBlur(p=1, sigma=(0.1, 2))': lambda _: kornia_img(x),
        KORNIA_FLUSH: lambda _: flushing_denormals(kornia_img, x),
        'progfast RandomBlur(p=0.4, per=image)': lambda _: ours_img04.blur_batch(x),
        'kornia RandomGaussianBlur(p=0.4, sigma=(0.1, 2))': lambda _: kornia_img04(x),
    }, repeats, device)
    for k, (med, lo, _) in {**fixed, **per_image}.items(): print(f"{k:50s} median {fmt_ms(med):>7s} ms, min {fmt_ms(lo):>7s} ms")

    # (c) cost in a resnet18 training step at 128 px
    step, xb = resnet_step_fn(resnet_bs, 128, device)
    blurs = {'sigma 2 px': RandomBlur(p=1.0, sigma=2.0),
             'sigma 2 px at 32 px (8 px at 128)': RandomBlur(p=1.0, sigma=2.0, ref_size=32),
             'per-image sigma in (0.1, 2)': RandomBlur(p=1.0, sigma=(0.1, 2.0), per='image')}
    contenders = {'resnet18 step': step, **{k: (lambda _, t=t: t.blur_batch(xb)) for k, t in blurs.items()}}
    train = time_interleaved(contenders, step_repeats, device)
    overhead = {k: tuple(P * train[k][i] / train['resnet18 step'][i] for i in (0, 1)) for k in blurs}
    for k, (med, lo) in overhead.items():
        print(f"RandomBlur(p=0.4, {k}): {100 * med:.2f}% of a resnet18 step (medians), {100 * lo:.2f}% (minima)")

    elapsed, load_end = time.perf_counter() - t_start, os.getloadavg()
    write_results(out, args, device, repeats, step_repeats, resnet_bs, agree, fixed, per_image, train, overhead,
                  elapsed, load_start, load_end)
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({elapsed:.0f} s)")


def save_plot(fixed, per_image, fn):
    "Median milliseconds of every contender, one sigma for the batch (left) and one sigma per image (right)"
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig,axs = plt.subplots(1, 2, figsize=(13, 4))
    for ax,(title,res) in zip(axs, (('one sigma for the batch (2)', fixed), ('one sigma per image, (0.1, 2)', per_image))):
        names = list(res)[::-1]
        ax.barh(range(len(names)), [1e3 * res[k][0] for k in names],
                color=['C0' if k.startswith('progfast') else 'C7' for k in names])
        ax.set_yticks(range(len(names)), names, fontsize=7); ax.set_xlabel('median ms, 64x3x128x128 float32')
        ax.set_title(title); ax.grid(alpha=.3, axis='x')
    fig.tight_layout(); fig.savefig(fn, dpi=110); plt.close(fig)


def write_results(out, args, device, repeats, step_repeats, resnet_bs, agree, fixed, per_image, train, overhead,
                  elapsed, load_start, load_end):
    ok = lambda b: 'met' if b else '**missed**'
    agree_ok = all(max(r[2], r[3]) <= AGREE_TOL for r in agree)
    ours_f = fixed['progfast gaussian_blur'][0]
    def ratio(a, b, i=0):
        "median over the repeats of a's time / b's time in the same repeat (i=0), or the ratio of the minima (i=1)"
        if i == 1: return per_image[a][1] / per_image[b][1]
        return statistics.median(ta / tb for ta, tb in zip(per_image[a][2], per_image[b][2]))
    k1, o1 = 'kornia RandomGaussianBlur(p=1, sigma=(0.1, 2))', 'progfast RandomBlur(p=1, per=image)'
    k4, o4 = 'kornia RandomGaussianBlur(p=0.4, sigma=(0.1, 2))', 'progfast RandomBlur(p=0.4, per=image)'
    ratio_img, ratio_img04, ratio_img_min = ratio(k1, o1), ratio(k4, o4), ratio(k1, o1, 1)
    ratio_flush = ratio(KORNIA_FLUSH, o1)
    worst = max(max(v) for v in overhead.values())
    cmd = 'python benchmarks/bench_blur.py' + ''.join(f' {a}' for a in sys.argv[1:])
    L = [
        "# Gaussian blur on the CPU: agreement, speed, cost in a training step", "",
        f"- command: `{cmd}`",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}, {elapsed:.0f} s",
        f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"`torch.set_num_threads({args.threads})`, device `{device}`; load average {load_start[0]:.1f} at the start, "
        f"{load_end[0]:.1f} at the end",
        f"- versions: torch {torch.__version__}, torchvision {torchvision.__version__}, kornia {kornia.__version__}, "
        f"Python {platform.python_version()}",
        f"- batch: 64x3x128x128 float32 uniform noise; timings are medians of {repeats} repeats "
        f"({step_repeats} for the resnet18 step), all contenders of a table interleaved in the same run", "",
        "## Agreement (max abs difference, tolerance 1e-5)", "",
        "kornia and torchvision get the kernel size explicitly: `2*ceil(3*sigma)+1`, progfast's default. Both sample "
        "the same normalised Gaussian at integer taps and pad with `reflect`, so nothing else needs matching. "
        "torchvision has no per-image sigma: it runs image by image there.", "",
        "| case | kernel | progfast vs kornia | progfast vs torchvision |", "|---|---|---|---|",
        *[f"| {c} | {k} | {a:.1e} | {b:.1e} |" for c, k, a, b in agree], "",
        "## Speed: one sigma for the batch (sigma 2, kernel 13)", "",
        "| contender | median ms | min ms | median / progfast's |", "|---|---|---|---|",
        *[f"| {k} | {fmt_ms(m)} | {fmt_ms(lo)} | {m / ours_f:.2f} |" for k, (m, lo, _) in fixed.items()], "",
        "## Speed: one sigma per image, drawn from (0.1, 2) (kornia: kernel 13; progfast: sized by the batch's largest sigma, radius 6)", "",
        "| contender | median ms | min ms |", "|---|---|---|",
        *[f"| {k} | {fmt_ms(m)} | {fmt_ms(lo)} |" for k, (m, lo, _) in per_image.items()], "",
        f"kornia / progfast (median over the repeats of the ratio within a repeat): {ratio_img:.2f}x with p=1, {ratio_img04:.2f}x with p=0.4; "
        f"(minima, p=1): {ratio_img_min:.2f}x; against kornia with subnormals flushed: {ratio_flush:.2f}x.", "",
        "Where the difference comes from: with one sigma per image both libraries end in the same operation, one "
        "grouped depthwise `F.conv2d` over the batch folded into `B*C` planes. kornia samples every image's Gaussian "
        "at all 13 taps, and for a small sigma the far taps are subnormal floats (sigma 0.15 at 2 px: about 2e-39), "
        "which x86 CPUs multiply many times slower. progfast zeroes taps below 1e-20 of the peak (no float32 result "
        "changes), so its convolution never meets a subnormal. The row with subnormals flushed "
        "(`torch.set_flush_denormal(True)`, a process-wide CPU setting a library must not change for its users) "
        "shows how much of the ratio that is. The rest comes from progfast convolving the channels in slices of about "
        "4 MB on the CPU, which keeps oneDNN's copies into and out of its blocked layout in the cache, from padding "
        "once instead of once per pass, and from kornia's augmentation overhead.", "",
        f"## Cost in a resnet18 training step (128 px, batch {resnet_bs}, fwd+bwd+SGD)", "",
        "Expected cost of `RandomBlur(p=0.4)` = 0.4 x the time of blurring the batch (per batch, a blurred batch costs "
        "the full blur and the others nothing).", "",
        "| | median ms | min ms | p=0.4 cost / step (medians) | (minima) |", "|---|---|---|---|---|",
        f"| resnet18 step | {fmt_ms(train['resnet18 step'][0])} | {fmt_ms(train['resnet18 step'][1])} | | |",
        *[f"| blur, {k} | {fmt_ms(train[k][0])} | {fmt_ms(train[k][1])} | {100 * overhead[k][0]:.2f}% | "
          f"{100 * overhead[k][1]:.2f}% |" for k in overhead], "",
        "## Targets", "",
        "| target | figure | verdict |", "|---|---|---|",
        f"| agreement with kornia and torchvision <= 1e-5 | {max(max(r[2], r[3]) for r in agree):.1e} | {ok(agree_ok)} |",
        f"| >= 2x faster than kornia's per-image-sigma blur | {ratio_img:.2f}x (p=1), {ratio_img04:.2f}x (p=0.4) | "
        f"{ok(ratio_img >= TARGET_VS_KORNIA)} |",
        f"| RandomBlur(p=0.4) <= 3% of a resnet18 step at 128 px | {100 * worst:.2f}% (worst sigma, medians or minima) | "
        f"{ok(worst <= TARGET_OVERHEAD)} |", "",
    ]
    if max(load_start[0], load_end[0]) > (os.cpu_count() or 1):
        L += [f"The machine was shared while this ran (load average above its {os.cpu_count()} CPUs): absolute times "
              "are inflated and noisy; the ratios, measured interleaved in the same run, are the figures to compare.", ""]
    if args.quick: L += ["*Quick run: fewer repeats and a smaller resnet18 batch; use the full run for the figures.*", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    save_plot(fixed, per_image, out.with_suffix('.png'))
    L += [f"![median times of every contender]({out.with_suffix('.png').name})", ""]
    out.write_text('\n'.join(L))


if __name__ == '__main__':
    main()
