#!/usr/bin/env python
"""Run progfast's notebooks for real and write their outputs into them (`make outputs`).

The notebooks in `nbs/` are committed with the outputs of one run made by this script: the tutorials in the `offline`
mode (`progfast.testing.run_mode`: real training on what installs without a network, minutes on a CPU) or `full`
(a GPU and the papers' downloads), the module notebooks as they are. Each notebook gets, in its metadata under
`progfast`, the commit it ran from, the mode, the date, the device and the time it took, and a short note at its top
(the markdown cell with id `progfast-run`) that says the same on the page. The docs build renders these outputs and
runs nothing; `nbdev-test` runs the notebooks in the `quick` mode and never writes them.

    python scripts/run_outputs.py                                  # every notebook under nbs/, offline, written in place
    python scripts/run_outputs.py nbs/tutorials/02_reproduce_khor.ipynb --mode full
    python scripts/run_outputs.py --out /tmp/scratch --mode quick  # a scratch copy (quick mode only goes elsewhere)
    python scripts/run_outputs.py --check                          # run nothing: does every notebook carry a real run?

Every notebook runs in a fresh Python process of its own, one after the other (timings in the outputs are not shared
with another run), with `IN_TEST` unset and `PROGFAST_MODE` set. Cells marked `#| eval: false` are not run; every
other cell is, including those nbdev-test skips (`notest`, `slow`). The notebooks are written only when all of them
ran: a failure leaves every notebook as it was and names the failing cell. It refuses
- the `quick` mode for the committed notebooks (their outputs must come from real training),
- a tutorial whose `MODE` (set from `run_mode()`) came out other than the mode asked for,
- a work tree whose code (`progfast/`, `nbs/`, `pyproject.toml`, `constraints.txt`) differs from its commit, since the
  recorded commit would then not be what ran (`--allow-dirty` records `<commit>+dirty` instead),
- a busy machine: timings on a page must not come from a run that shared the CPU with another job. It refuses to
  start while the 1-minute load average is above `BUSY` per core (`--allow-busy` runs anyway), and while another
  `make outputs` of this checkout runs (a lock file). The load before and after each notebook is recorded in its
  metadata and its note, so a page says how quiet its run was.
"""
from __future__ import annotations
import argparse, datetime, fcntl, json, os, platform, re, subprocess, sys, time, traceback
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODES = ('quick', 'offline', 'full')
NOTE_ID = 'progfast-run'                 # the id of the generated note cell
META_KEY = 'progfast'                    # notebook metadata key (listed in pyproject's allowed_metadata_keys)
NO_NOTE = {'index.ipynb'}                # the README's source: its metadata records the run, no note on the page
CODE_PATHS = ('progfast', 'nbs', 'pyproject.toml', 'constraints.txt')
BUSY = 0.5                               # 1-minute load average per core above which the machine counts as busy
WAIT_S = 180                             # seconds to wait for a busy machine to calm before refusing it

class OutputsError(Exception):
    "A notebook could not be run, or the run would record something untrue; nothing was written"

# ------------------------------------------------------------------------------------------------- the run's facts

def git(*args, cwd=REPO) -> str:
    return subprocess.run(['git', *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()

def source_commit(allow_dirty:bool, cwd=REPO) -> str:
    "HEAD's commit of the repository holding `cwd`; refuses (or, with `allow_dirty`, marks `+dirty`) code that differs from it"
    top = git('rev-parse', '--show-toplevel', cwd=cwd)
    sha = git('rev-parse', 'HEAD', cwd=top)
    changed = git('status', '--porcelain', '--', *CODE_PATHS, cwd=top)
    if not changed: return sha
    if allow_dirty: return sha + '+dirty'
    raise OutputsError(f"the work tree differs from commit {sha[:10]} in:\n{changed}\ncommit (or stash) first, so that the "
                       "outputs record the code that made them; or pass --allow-dirty to record the commit as +dirty")

def device_description() -> str:
    import torch
    if torch.cuda.is_available(): return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {os.cpu_count()} cores, {torch.get_num_threads()} torch threads ({platform.machine()})"

def load() -> float:
    "The 1-minute load average"
    return round(os.getloadavg()[0], 2)

def check_quiet(allow_busy:bool, cores:int|None=None, wait_s:float|None=None) -> float:
    "The load now; waits up to `wait_s` (`WAIT_S`) for a busy machine (more than `BUSY` per core) to calm, then refuses it"
    cores,waited,wait_s = cores or os.cpu_count() or 1,0,WAIT_S if wait_s is None else wait_s
    while (now := load()) > BUSY * cores and not allow_busy and waited < wait_s:    # a load average lags a job that ended
        time.sleep(15); waited += 15
    if now > BUSY * cores and not allow_busy:
        raise OutputsError(f"the machine is busy (1-minute load {now:.2f} on {cores} cores, more than {BUSY * cores:g}, "
                           f"after waiting {waited} s): "
                           "timings on the pages would show it. Wait for the other jobs to end, or pass --allow-busy "
                           "(each page's note then says the load)")
    return now

@contextmanager
def only_run(lock:Path):
    "Hold the lock of `make outputs` in this checkout; refuse if another run holds it"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, 'a') as f:
        try: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputsError(f"another `make outputs` of this checkout is running (it holds {lock}): two runs at once "
                               "would share the CPU and slow each other's timings; wait for it to end") from None
        yield

def versions() -> dict:
    from importlib.metadata import version, PackageNotFoundError
    def v(p):
        try: return version(p)
        except PackageNotFoundError: return None
    return {p: v(p) for p in ('progfast', 'fastai', 'torch', 'torchvision', 'timm')} | {'python': platform.python_version()}

# ----------------------------------------------------------------------------------------------- one notebook

def cells_to_run(fn:Path) -> set:
    "Ids of the cells to run: every code cell nbdev-test knows, its skip flags forced, `#| eval: false` left out"
    from nbdev.config import get_config
    from nbdev.test import nb_test_cells
    return {c.id for c in nb_test_cells(fn, skip_flags=[], force_flags=get_config().tst_flags.split())}

def run_notebook(fn:Path, mode:str, cell_timeout:int|None) -> dict:
    "Run `fn` in this process (from its folder, `IN_TEST` unset, `PROGFAST_MODE=mode`); its outputs by cell id"
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.process import NBProcessor
    os.environ.pop('IN_TEST', None)
    os.environ['PROGFAST_MODE'] = mode
    os.environ.setdefault('MPLBACKEND', 'Agg')
    nb = NBProcessor(fn, rm_directives=False, process=True).nb
    to_run = cells_to_run(fn)
    shell,t0,load0 = CaptureShell(fn),time.perf_counter(),load()
    try:
        with working_directory(fn.parent):
            shell.run_all(nb, exc_stop=True, preproc=lambda c: c.id not in to_run, cell_timeout=cell_timeout)
    except Exception:
        return dict(error=f"{fn} failed:\n{shell.prettytb(fname=fn) or traceback.format_exc()}")
    outputs = {c.id: json.loads(json.dumps(c.get('outputs', []), default=str)) for c in nb.cells if c.id in to_run}
    seen = shell.user_ns.get('MODE')
    return dict(outputs=outputs, seconds=round(time.perf_counter() - t0, 1), mode_seen=seen if isinstance(seen, str) else None,
                load=[load0, load()])

def run_job(job) -> dict:
    "`run_notebook` in a worker process (plain data in and out)"
    fn,mode,cell_timeout = job
    try: return run_notebook(Path(fn), mode, cell_timeout)
    except Exception: return dict(error=f"{fn}: {traceback.format_exc()}")

# ----------------------------------------------------------------------------------------------- writing

def is_tutorial(rel:Path) -> bool: return rel.parts[0] == 'tutorials'

def check_mode(rel:Path, res:dict, mode:str) -> str|None:
    "Why the run of tutorial `rel` cannot be recorded as `mode` (None when it can)"
    if not is_tutorial(rel): return None
    if res['mode_seen'] is None: return f"{rel}: the tutorial sets no MODE; it must start with `MODE = run_mode()`"
    if res['mode_seen'] != mode: return f"{rel}: the tutorial ran in mode {res['mode_seen']!r}, not {mode!r}"
    return None

def note_text(run:dict) -> str:
    "The markdown of the note at the top of a page: mode, commit and machine of its outputs"
    sha = run['commit'].split('+')[0]
    from nbdev.config import get_config
    url = get_config().git_url.rstrip('/')
    dirty = ' plus uncommitted changes' if run['commit'].endswith('+dirty') else ''
    busy = (f", 1-minute load {run['load'][0]:.1f} before and {run['load'][1]:.1f} after" if 'load' in run else '')
    return (f"> **Outputs:** from `make outputs` in **{run['mode']}** mode at commit "
            f"[`{sha[:10]}`]({url}/commit/{sha}){dirty}, {run['date'][:10]}, {run['device']}, "
            f"{run['seconds']:.0f} s{busy}.")

def tidy_streams(outputs:list) -> list:
    "`outputs` with consecutive stream outputs merged and each line cut to what a terminal shows after its last `\\r`"
    import nbformat
    from nbconvert.preprocessors import CoalesceStreamsPreprocessor      # progress bars redraw lines with \r
    outputs = [o | dict(text=''.join(o['text'])) if o.get('output_type') == 'stream' else o for o in outputs]
    cell = nbformat.from_dict(dict(cell_type='code', source='', metadata={}, outputs=outputs, execution_count=None))
    cell,_ = CoalesceStreamsPreprocessor().preprocess_cell(cell, {}, 0)
    outputs = json.loads(json.dumps(cell.outputs))
    for o in outputs:
        if o.get('output_type') == 'stream': o['text'] = re.sub(r'\r+(?=\n|$)', '', o['text'])
    return outputs

def with_outputs(nb:dict, res:dict, run:dict, rel:Path) -> dict:
    "The notebook `nb` (as read from disk) with the run's outputs, metadata and note, cleaned as nbdev-clean does"
    from nbdev.clean import _nbdev_clean
    cells = [c for c in nb['cells'] if c.get('id') != NOTE_ID]
    for c in cells:
        if c['cell_type'] != 'code': continue
        c['outputs'] = tidy_streams(res['outputs'].get(c['id'], []))   # a cell not run keeps no stale output
        c['execution_count'] = None
    if rel.name not in NO_NOTE:
        cells.insert(1, dict(cell_type='markdown', id=NOTE_ID, metadata={}, source=note_text(run)))
    nb['cells'] = cells
    nb.setdefault('metadata', {})[META_KEY] = run
    _nbdev_clean(nb)
    if nb['metadata'].get(META_KEY) != run:
        raise OutputsError(f"nbdev-clean drops the notebook metadata key {META_KEY!r}: add it to allowed_metadata_keys "
                           "under [tool.nbdev] in pyproject.toml")
    return nb

def notebooks(nbs:Path, given:list) -> list[Path]:
    "The notebooks to run: those given, or every notebook nbdev finds under `nbs` (nbdev's `nbglob`)"
    from nbdev.doclinks import nbglob
    found = [Path(p).resolve() for p in (given or nbglob(nbs))]
    missing = [str(p) for p in found if not p.is_file()]
    if missing: raise OutputsError(f"no such notebook: {', '.join(missing)}")
    outside = [str(p) for p in found if not p.is_relative_to(nbs)]
    if outside: raise OutputsError(f"not under {nbs}: {', '.join(outside)}")
    return sorted(found)

def run_outputs(mode:str='offline', nbs:Path=REPO/'nbs', given=(), out:Path|None=None, allow_dirty:bool=False,
                n_workers:int=1, cell_timeout:int|None=3600, log=print, allow_busy:bool=False) -> list[Path]:
    "Run the notebooks and write them, with their outputs, into `out` (default: in place); the files written"
    from fastcore.nbio import nb2str
    nbs = Path(nbs).resolve()
    if mode not in MODES: raise OutputsError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == 'quick' and out is None:
        raise OutputsError("refusing to write quick-mode outputs into the committed notebooks: their outputs must come "
                           "from real training (--mode offline or full); use --out DIR for a scratch copy")
    if out is not None and Path(out).resolve() == nbs:
        raise OutputsError(f"--out {out} is the notebook folder itself; leave --out out to write in place")
    fns = notebooks(nbs, list(given))
    commit = source_commit(allow_dirty, cwd=nbs)
    with only_run(nbs.parent/'.cache'/'outputs.lock'):
        check_quiet(allow_busy)
        results = _run_all(fns, mode, n_workers, cell_timeout, commit, nbs, log)
    return _write_all(fns, results, mode, commit, nbs, out, log)

def _run_all(fns, mode, n_workers, cell_timeout, commit, nbs, log) -> list:
    "Each notebook's results (outputs, seconds, mode seen, load), one fresh process each, `n_workers` at a time"
    log(f"running {len(fns)} notebooks in {mode} mode at commit {commit[:10]} ({n_workers} at a time), load {load():.2f}")
    jobs = [(str(f), mode, cell_timeout) for f in fns]
    ctx = get_context('spawn')
    results = []
    with ProcessPoolExecutor(max(1, n_workers), mp_context=ctx, max_tasks_per_child=1) as ex:   # a fresh process each
        for fn,res in zip(fns, ex.map(run_job, jobs)):
            log(f"  {fn.relative_to(nbs)}: " + ('FAILED' if 'error' in res else f"{res['seconds']} s"))
            results.append(res)
    errors = [r['error'] for r in results if 'error' in r]
    errors += [e for fn,r in zip(fns, results) if 'error' not in r and (e := check_mode(fn.relative_to(nbs), r, mode))]
    if errors: raise OutputsError('\n\n'.join(errors))
    return results

def _write_all(fns, results, mode, commit, nbs, out, log) -> list[Path]:
    "Write every notebook with its outputs, metadata and note (only called once all of them ran)"
    from fastcore.nbio import nb2str
    date,device,vers = datetime.datetime.now().astimezone().isoformat(timespec='seconds'),device_description(),versions()
    texts = {}
    for fn,res in zip(fns, results):
        rel = fn.relative_to(nbs)
        run = dict(mode=mode, commit=commit, date=date, device=device, seconds=res['seconds'], load=res['load'], versions=vers)
        texts[rel] = nb2str(with_outputs(json.loads(fn.read_text(encoding='utf-8')), res, run, rel))
    dest = Path(out).resolve() if out is not None else nbs
    written = []
    for rel,text in texts.items():                       # every notebook ran: now write them all
        (dest/rel).parent.mkdir(parents=True, exist_ok=True)
        (dest/rel).write_text(text, encoding='utf-8')
        written.append(dest/rel)
    log(f"wrote {len(written)} notebooks into {dest}")
    return written

# ------------------------------------------------------------------------------------------------ checking

def recorded_run(nb:dict) -> dict|None:
    "The run recorded in a notebook's metadata (None when it has none)"
    return nb.get('metadata', {}).get(META_KEY)

def output_problems(nb:dict, rel:Path) -> list[str]:
    "What is wrong with the committed outputs of the notebook `nb` (at `rel` under nbs/); [] when nothing"
    run = recorded_run(nb)
    if run is None: return [f"{rel}: no recorded run (metadata '{META_KEY}'); run `make outputs`"]
    problems = []
    if run.get('mode') not in ('offline', 'full'): problems.append(f"{rel}: outputs from a {run.get('mode')!r} run")
    note = [c for c in nb['cells'] if c.get('id') == NOTE_ID]
    if rel.name not in NO_NOTE and (len(note) != 1 or ''.join(note[0]['source']) != note_text(run)):
        problems.append(f"{rel}: the note at the top does not match the recorded run {run}")
    if is_tutorial(rel) and not any(c.get('outputs') for c in nb['cells'] if c['cell_type'] == 'code'):
        problems.append(f"{rel}: no outputs")
    return problems

def check_notebooks(nbs:Path, given=()) -> list[str]:
    "`output_problems` of every notebook under `nbs` (or those `given`)"
    return [p for fn in notebooks(nbs, list(given))
            for p in output_problems(json.loads(fn.read_text(encoding='utf-8')), fn.relative_to(nbs))]

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to run (default: all under --nbs)')
    p.add_argument('--mode', default='offline', choices=MODES, help="the tutorials' run mode (default offline)")
    p.add_argument('--nbs', default=str(REPO/'nbs'), help='the notebook folder')
    p.add_argument('--out', default=None, help='write the notebooks here instead of in place (a scratch copy)')
    p.add_argument('--allow-dirty', action='store_true', help='run from a work tree with uncommitted code changes')
    p.add_argument('--n-workers', type=int, default=1, help='notebooks run at once (default 1: timings stay honest)')
    p.add_argument('--cell-timeout', type=int, default=3600, help='seconds one cell may take (0: no limit)')
    p.add_argument('--allow-busy', action='store_true', help='run even while the machine is busy (the notes say the load)')
    p.add_argument('--check', action='store_true', help='run nothing: fail unless every notebook carries a recorded '
                   'offline or full run with its note')
    a = p.parse_args(argv)
    os.chdir(REPO)                                     # nbdev reads the project's pyproject.toml from the cwd
    if a.check:
        problems = check_notebooks(Path(a.nbs).resolve(), a.notebooks)
        if problems: sys.exit("notebooks without the outputs of an offline or full run:\n" + '\n'.join(problems))
        return print("every notebook carries the outputs of an offline or full run")
    try: run_outputs(a.mode, Path(a.nbs), a.notebooks, Path(a.out) if a.out else None, a.allow_dirty, a.n_workers,
                     a.cell_timeout or None, allow_busy=a.allow_busy)
    except OutputsError as e: sys.exit(f"make outputs failed; no notebook was written:\n{e}")

if __name__ == '__main__':
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import run_outputs                                 # workers unpickle `run_job` by this module's name
    run_outputs.main()
