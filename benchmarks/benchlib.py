"""What the benchmark scripts share: how a run is recorded (command, date, machine, load, versions), timing callbacks,
generated image folders, and the paired tables every speed comparison reports.

Every comparison goes through `progfast.studies.comparison` (the one harness): contenders run interleaved by
`run_interleaved` (order rotated per repeat, an untimed warm-up), ratios are taken within a repeat by `paired`, and
`summarize_pairs` gives the median, the range, the median's interval and a verdict that says "inconclusive" where the
interval crosses the target. Nothing here divides a median of one contender by a median of another.
"""
from __future__ import annotations
import datetime, os, platform, shlex, subprocess, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from progfast.studies.comparison import (SkipValidation, run_interleaved, paired, summarize_pairs,  # noqa: E402,F401
                                         median_range, markdown_table, _rotated)

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'hubble_deep_field', 'retina', 'immunohistochemistry',
          'brick', 'grass', 'gravel')   # real photos and textures bundled with scikit-image


def device_name() -> str:
    "'cuda' when a GPU is at hand, else 'cpu': result files are kept apart by device"
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def command(script: str, argv=None) -> str:
    "The command line that ran `script` (benchmarks/<script>), as a user would type it"
    args = sys.argv[1:] if argv is None else list(argv)
    return ' '.join(['python', f'benchmarks/{script}', *map(shlex.quote, map(str, args))])


def load() -> str:
    "The load average over 1, 5 and 15 minutes"
    return ', '.join(f"{x:.2f}" for x in os.getloadavg())


def versions(*extra: str) -> str:
    "Python's and the main libraries' versions, then those of the installed packages `extra`, and progfast's commit"
    import fastai, fastcore, PIL, torchvision, progfast
    from importlib.metadata import version, PackageNotFoundError
    def of(p):
        try: return version(p)
        except PackageNotFoundError: return 'not installed'
    try: commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError: commit = ''
    v = (f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
         f"fastai {fastai.__version__}, fastcore {fastcore.__version__}, numpy {np.__version__}, pillow {PIL.__version__}, "
         f"progfast {progfast.__version__}" + (f" (commit {commit})" if commit else '')
         + ''.join(f", {p} {of(p)}" for p in extra))
    if torch.cuda.is_available():
        v += f"; CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}"
    return v


def machine(threads: int) -> str:
    gpu = (f"GPU {torch.cuda.get_device_name(0)} ({torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB)"
           if torch.cuda.is_available() else 'no GPU')
    return f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs, {gpu}; torch CPU threads {threads}"


class Run:
    "The record of one benchmark run: `Run(script, argv, threads, minutes)` at the start, `.header()` for the results file"
    def __init__(self, script: str, argv=None, threads: int = 1, minutes=None):
        self.cmd,self.threads = command(script, argv),threads
        self.started,self.load_before,self.t0 = datetime.datetime.now(),load(),time.perf_counter()
        self.versions = versions()     # now: the commit that runs, not whatever is checked out when the report is written
        self.budget = Budget(minutes, start=self.t0)   # `--minutes`: comparisons run through `run.budget.interleaved`

    def log(self, line: str):
        print(f"[{time.perf_counter() - self.t0:7.1f} s, load {load()}] {line}", flush=True)

    def header(self) -> list:
        "Markdown lines: command, date, wall time, machine, load before and after, versions"
        wall = time.perf_counter() - self.t0
        return [f"- command: `{self.cmd}`",
                f"- date: {self.started.isoformat(timespec='seconds')} (local time), wall time {wall/60:.1f} min",
                f"- machine: {machine(self.threads)}",
                f"- load average (1, 5, 15 min): {self.load_before} before, {load()} after. The machine is shared: "
                "contenders are interleaved and their order rotated per repeat, so a busy stretch falls on all of "
                "them, and every ratio is taken between runs of the same repeat",
                f"- versions: {self.versions}", *([""] + self.budget.lines()[:-1] if self.budget.cut else [])]


class Budget:
    """A time limit for a benchmark run (`--minutes`): once `minutes` have passed since `start`, a comparison starts no
    new repeat beyond its first `at_least` (the fewest that pair anything), and says so. `minutes=None`: no limit."""
    def __init__(self, minutes=None, at_least: int = 2, start=None):
        if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0):
            raise ValueError(f"the time limit must be a positive number of minutes (or None for none), got {minutes!r}")
        if at_least < 1: raise ValueError(f"at_least must be at least 1 repeat, got {at_least!r}")
        self.minutes,self.at_least,self.cut = minutes,at_least,[]
        self.start = time.perf_counter() if start is None else start

    def spent(self) -> bool:
        return self.minutes is not None and time.perf_counter() - self.start > 60 * self.minutes

    def interleaved(self, what: str, contenders: dict, repeats, warmup=True, log=None) -> pd.DataFrame:
        "`run_interleaved` repeat by repeat, in the same rotated order, starting no repeat past the limit after `at_least`"
        reps = list(range(repeats)) if isinstance(repeats, int) else list(repeats)
        if self.minutes is None: return run_interleaved(contenders, reps, warmup=warmup, log=log)
        names,parts = list(contenders),[]
        for i,r in enumerate(reps):
            if i >= self.at_least and self.spent():
                self.cut.append(f"{what}: {i} of {len(reps)} repeats"); break
            order = {n: contenders[n] for n in _rotated(names, i)}
            parts.append(run_interleaved(order, [r], warmup=warmup if i == 0 else False, log=log))
        return pd.concat(parts, ignore_index=True)

    def lines(self) -> list:
        "Markdown lines for the results file: what the limit cut, if anything"
        if not self.cut: return []
        return [f"**Cut short by the time limit** (`--minutes {self.minutes:g}`; no repeat started after it, beyond the "
                f"first {self.at_least} of each comparison): " + '; '.join(self.cut) + ". Fewer repeats give wider "
                "intervals; the verdicts below count only the repeats that ran.", ""]


def mean_pixels(df: pd.DataFrame, final: int) -> float:
    "Mean pixels per image over a training, over the pixels of `final` px: from a per-step record with `size` and `bs`"
    return float((df['bs'] * df['size'].astype(float)**2).sum() / (df['bs'].sum() * final**2))


# --- generated image folders ---------------------------------------------------------------------------------------
def _photos():
    import skimage.data
    from PIL import Image
    return [Image.fromarray(getattr(skimage.data, k)()).convert('RGB') for k in PHOTOS]


def _crop(im, size: int, rng):
    "A random square crop of `im` (60-100% of its shorter side), resized to `size` and rotated by a multiple of 90 degrees"
    from PIL import Image
    side = int(min(im.size) * rng.uniform(0.6, 1.0))
    x, y = rng.integers(0, im.width - side + 1), rng.integers(0, im.height - side + 1)
    return im.crop((x, y, x + side, y + side)).resize((size, size), Image.BICUBIC).rotate(90 * int(rng.integers(4)))


def photo_folder(path: Path, n: int, size: int, seed: int = 0) -> Path:
    "`n` JPEGs (quality 90) of `size` px in `path`: random crops, rotations of scikit-image's bundled photos"
    rng,photos = np.random.default_rng(seed),_photos()
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n): _crop(photos[i % len(photos)], size, rng).save(path/f'{i:04d}.jpg', quality=90)
    return path


def photo_classes(path: Path, n_per_class: int, size: int, n_classes: int = len(PHOTOS), seed: int = 0) -> Path:
    "A class-per-folder JPEG dataset: class = the scikit-image photo the crops come from"
    rng,photos = np.random.default_rng(seed),_photos()[:n_classes]
    for name,im in zip(PHOTOS, photos):
        d = path/name; d.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class): _crop(im, size, rng).save(d/f'{i:04d}.jpg', quality=90)
    return path


def stripes_jpegs(path: Path, n: int, size: int, seed: int = 0) -> Path:
    "`n` JPEGs per class of the tests' noisy stripes (two classes, horizontal and vertical)"
    from progfast.testing import stripes_image
    rng = np.random.default_rng(seed)
    for cls in ('horizontal', 'vertical'):
        d = path/cls; d.mkdir(parents=True, exist_ok=True)
        for i in range(n): stripes_image(cls == 'horizontal', size, rng).save(d/f'{i:04d}.jpg', quality=90)
    return path


# --- paired tables ----------------------------------------------------------------------------------------------------
def over_constant(pairs: pd.DataFrame, divisor: dict, measure: str) -> pd.DataFrame:
    "Every pair's value divided by its contender's constant `divisor[contender]` (e.g. its theoretical time ratio)"
    res = pairs.copy()
    res['value'] = res['value'] / res['contender'].map(divisor).astype(float)
    res['measure'] = measure
    return res


def realized_pairs(trials: pd.DataFrame, reference: str = 'fixed', within=(), measure: str = 'seconds') -> tuple:
    """Per repeat: each contender's `measure` over the `reference`'s of the SAME repeat (realized), and that over the
    contender's theoretical ratio (the trials' `theoretical` column, one value per contender and `within` group)"""
    within = [within] if isinstance(within, str) else list(within)
    realized = paired(trials, measure, reference, 'ratio', within=within)
    present = trials.groupby([*within, 'contender']).size()
    keys = [tuple(r) if len(r) > 1 else r[0] for r in realized[[*within, 'contender']].itertuples(index=False)]
    realized = realized[[k in present.index for k in keys]].reset_index(drop=True)   # contenders a group did not run
    th = trials.groupby([*within, 'contender'])['theoretical'].median()
    keys = [tuple(r) if len(r) > 1 else r[0] for r in realized[[*within, 'contender']].itertuples(index=False)]
    rt = realized.copy()
    rt['value'] = realized['value'].to_numpy() / np.array([th[k] for k in keys], dtype=float)
    rt['measure'] = 'realized / theoretical'
    return realized,rt


def pair_cells(s) -> str:
    "`median [min, max]` of one row of `summarize_pairs`"
    return median_range(s['median'], s['min'], s['max'])


def interval_cell(s) -> str:
    return f"[{s['lo']:.3f}, {s['hi']:.3f}] ({100*s['coverage']:.0f}%)"


def values_cell(pairs: pd.DataFrame, digits: int = 3, **match) -> str:
    "Every repeat's value of the pairs matching `match`, in repeat order"
    m = np.ones(len(pairs), bool)
    for k,v in match.items(): m &= (pairs[k] == v).to_numpy()
    return ', '.join(f"{v:.{digits}f}" for v in pairs.loc[m].sort_values('repeat')['value'])


def verdict_cell(v: str) -> str:
    return {'met': 'met', 'missed': '**missed**', 'inconclusive': '*inconclusive*'}.get(v, v)


def trials_table(trials: pd.DataFrame, cols, digits: int = 3) -> str:
    "Every trial (repeat, position in its repeat, contender and the `cols` measured), as a markdown table"
    keep = [c for c in ('repeat', 'position', *cols) if c in trials.columns]
    return markdown_table(trials[keep], digits)


def summary_rows(summary: pd.DataFrame, pairs: pd.DataFrame, label_cols=(), digits: int = 3) -> list:
    "Markdown rows: the label columns, every repeat's value, median [range], the median's interval and the verdict"
    rows = []
    for s in summary.to_dict('records'):
        match = {c: s[c] for c in (*label_cols, 'contender') if c in pairs.columns}
        cells = [str(s[c]) for c in label_cols] + [s['contender'], values_cell(pairs, digits, **match), pair_cells(s),
                                                  interval_cell(s)]
        if 'verdict' in s: cells.append(verdict_cell(s['verdict']))
        rows.append('| ' + ' | '.join(cells) + ' |')
    return rows


def summarize(pairs: pd.DataFrame, target=None, better='lower', conf=0.9) -> pd.DataFrame:
    return summarize_pairs(pairs, conf, target, better)
