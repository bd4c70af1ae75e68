"""Write the ELPV dataset as a folder of images, one subfolder per class, outside the repository.

    pip install elpv-dataset                      # 90 MB, CC BY-NC-SA 4.0 data: install it, never commit it
    python scripts/build_elpv.py                  # into $PROGFAST_CACHE/elpv (by default ~/.cache/progfast/elpv)
    python scripts/build_elpv.py --dest DIR       # elsewhere
    python scripts/build_elpv.py --source DIR     # from a folder holding labels.csv and images/ (the package's layout)

ELPV (Buerhop-Lutz et al., EU PVSEC 2018; Deitsch et al., Solar Energy 2019) holds 2,624 electroluminescence images of
solar cells from 44 modules, 300x300 px, 8-bit grayscale, each labelled with the probability (0, 1/3, 2/3 or 1) that
the cell is defective and the module type (mono or poly). The package `elpv-dataset` ships them as
`elpv_dataset/data/images/*.png` with `elpv_dataset/data/labels.csv` (whitespace-separated: image path, probability,
type). This script copies them into four class folders named by that probability (defect_0.00, defect_0.33,
defect_0.67, defect_1.00: they sort in order of the probability), with `labels.csv` (the module type kept), a
README.md naming the source and the licence, and the licence text. `folder_dls(dest)` then reads it with ENTR's
split: 90/10, per class, seeded.

The folder is rebuilt only when it is missing or its source changed (a fingerprint of the labels file and of every
image's name, size and modification time is kept in `.elpv-build.json`), and always atomically: the new folder is
written beside the old one and put in its place only when complete, so an interrupted build leaves the old folder
(or none) and no half-written one. A folder at `dest` that this script did not write is never touched.
"""
from __future__ import annotations
import argparse, hashlib, importlib.util, json, os, shutil, sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILDER = 1   # bump when the output layout changes: every folder is then rebuilt
MANIFEST = '.elpv-build.json'
CLASSES = ('defect_0.00', 'defect_0.33', 'defect_0.67', 'defect_1.00')   # defect probability 0, 1/3, 2/3, 1
LICENCE = 'CC BY-NC-SA 4.0'


def elpv_source() -> Path:
    "The data folder of the installed `elpv-dataset` package (labels.csv and images/)"
    spec = importlib.util.find_spec('elpv_dataset')
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the ELPV dataset is not installed: `pip install elpv-dataset` (90 MB; its images are "
                                  f"{LICENCE}: use them, never commit them), or give --source, a folder with labels.csv and images/")
    return Path(spec.origin).parent/'data'


def class_of(probability: float) -> str:
    "The class folder of a defect probability: one of 0, 1/3, 2/3, 1 (within 1e-6), else a ValueError"
    k = round(probability * 3)
    if not 0 <= k <= 3 or abs(probability * 3 - k) > 1e-6:
        raise ValueError(f"defect probability {probability!r} is not one of 0, 1/3, 2/3, 1")
    return CLASSES[k]


def read_labels(source: Path) -> list[tuple[str, float, str]]:
    "The rows of `source`/labels.csv: (image path relative to `source`, defect probability, module type); every image checked"
    fn = source/'labels.csv'
    if not fn.is_file(): raise FileNotFoundError(f"{fn} does not exist; the ELPV source folder holds labels.csv and images/")
    rows, seen = [], set()
    for i, line in enumerate(fn.read_text().splitlines(), 1):
        if not line.strip(): continue
        parts = line.split()
        where = f"{fn}, line {i} ({line.strip()!r})"
        if len(parts) != 3: raise ValueError(f"{where}: expected 3 fields (image path, defect probability, module type)")
        path, prob, kind = parts
        try: p = float(prob)
        except ValueError: raise ValueError(f"{where}: the defect probability {prob!r} is not a number") from None
        try: class_of(p)
        except ValueError as e: raise ValueError(f"{where}: {e}") from None
        if path in seen: raise ValueError(f"{where}: {path} appears twice")
        if not (source/path).is_file(): raise FileNotFoundError(f"{where}: the image {source/path} does not exist")
        seen.add(path); rows.append((path, p, kind))
    if not rows: raise ValueError(f"{fn} lists no images")
    return rows


def fingerprint(source: Path, rows) -> str:
    "A digest of labels.csv's bytes and of each listed image's name, size and modification time, and of this builder's layout"
    h = hashlib.sha256(f"builder {BUILDER}\n".encode())
    h.update((source/'labels.csv').read_bytes())
    for path, _, _ in rows:
        st = (source/path).stat()
        h.update(f"{path} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _licence_text() -> str | None:
    "The licence file shipped in the installed package's metadata, if any"
    try:
        from importlib.metadata import distribution, PackageNotFoundError
        dist = distribution('elpv-dataset')
    except Exception: return None
    lic = [f for f in (dist.files or []) if f.name.upper().startswith('LICENSE')]
    return dist.locate_file(lic[0]).read_text() if lic else None


def _package_version() -> str | None:
    try:
        from importlib.metadata import version
        return version('elpv-dataset')
    except Exception: return None


def _readme(counts: Counter, source: Path, version: str | None) -> str:
    rows = '\n'.join(f"| {c} | {p} | {counts[c]} |" for c, p in zip(CLASSES, ('0', '1/3', '2/3', '1')))
    return f"""# ELPV solar cells, one folder per class

Written by progfast's `scripts/build_elpv.py` from {'elpv-dataset ' + version if version else 'a copy of the ELPV data'}
({source}). Do not commit this folder to any repository, and do not embed it in a package.

**Licence: {LICENCE}** (Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International,
https://creativecommons.org/licenses/by-nc-sa/4.0/): non-commercial use only, with attribution, and adaptations shared
under the same licence. The licence text is in LICENSE.md when the package ships it.

Source: ELPV, https://github.com/zae-bayern/elpv-dataset. Cite: C. Buerhop-Lutz, S. Deitsch, A. Maier, F. Gallwitz,
S. Berger, B. Doll, J. Hauch, C. Camus, C. J. Brabec, "A Benchmark for Visual Identification of Defective Solar Cells
in Electroluminescence Imagery", EU PVSEC 2018; S. Deitsch, V. Christlein, S. Berger, C. Buerhop-Lutz, A. Maier,
F. Gallwitz, C. Riess, "Automatic classification of defective photovoltaic module cells in electroluminescence
images", Solar Energy 185, 2019.

Each image is in the folder of its defect probability; labels.csv keeps every image's probability and module type
(mono or poly).

| class | defect probability | images |
|---|---|---:|
{rows}
"""


def _is_current(dest: Path, fp: str) -> bool:
    "Whether `dest` holds a complete build with fingerprint `fp`: the manifest matches and every file it lists is there, whole"
    try: man = json.loads((dest/MANIFEST).read_text())
    except (OSError, ValueError): return False
    if man.get('fingerprint') != fp: return False
    return all((dest/rel).is_file() and (dest/rel).stat().st_size == size for rel, size in man.get('files', {}).items())


def _write(tmp: Path, source: Path, rows, fp: str, installed: bool) -> Counter:
    "Write the whole dataset into the new folder `tmp` (with the package's version and licence file if `installed`)"
    for c in CLASSES: (tmp/c).mkdir(parents=True)
    files, counts, lines = {}, Counter(), ['image,class,defect_probability,module_type']
    for path, p, kind in rows:
        c = class_of(p)
        rel = f"{c}/{Path(path).name}"
        if rel in files: raise ValueError(f"two images of class {c} are named {Path(path).name}; image names must be unique")
        shutil.copyfile(source/path, tmp/rel)
        files[rel] = (tmp/rel).stat().st_size
        counts[c] += 1
        lines.append(f"{rel},{c},{p!r},{kind}")
    version, licence = (_package_version(), _licence_text()) if installed else (None, None)
    extra = {'labels.csv': '\n'.join(lines) + '\n', 'README.md': _readme(counts, source, version)}
    if licence: extra['LICENSE.md'] = licence
    for name, text in extra.items(): (tmp/name).write_text(text)
    files.update({name: (tmp/name).stat().st_size for name in extra})
    man = dict(builder=BUILDER, fingerprint=fp, source=str(source), package_version=version, licence=LICENCE,
               counts={c: counts[c] for c in CLASSES}, files=files)
    (tmp/MANIFEST).write_text(json.dumps(man, indent=1))
    return counts


def _git_ignores(path: Path) -> bool:
    "Whether git ignores `path` in the progfast repository (as it does .cache/, where `make` keeps its caches)"
    import subprocess
    try: return subprocess.run(['git', '-C', str(ROOT), 'check-ignore', '-q', str(path)], capture_output=True).returncode == 0
    except OSError: return False


def _check_dest(dest: Path):
    full = dest.resolve()
    if (full == ROOT or ROOT in full.parents) and not _git_ignores(full):
        raise ValueError(f"{dest} is inside the progfast repository ({ROOT}) and not ignored by git; the ELPV images "
                         f"({LICENCE}) must never be committed: choose a folder outside it, or an ignored one such as .cache/")
    if dest.exists() and not dest.is_dir(): raise NotADirectoryError(f"{dest} exists and is not a folder; choose another --dest")
    if dest.is_dir() and any(dest.iterdir()) and not (dest/MANIFEST).is_file():
        raise FileExistsError(f"{dest} exists and was not written by build_elpv.py (no {MANIFEST}); it is left alone: remove it "
                              "or choose another --dest")


def _alive(pid: int) -> bool:
    try: os.kill(pid, 0)
    except ProcessLookupError: return False
    except OSError: return True
    return True


def _remove_stale(dest: Path):
    "Remove the temporary folders of builds of `dest` whose process is gone (killed mid-build)"
    for p in dest.parent.glob(f".{dest.name}.*-*"):
        kind, _, pid = p.name[len(dest.name) + 2:].partition('-')
        if kind in ('building', 'old') and pid.isdigit() and not _alive(int(pid)): shutil.rmtree(p, ignore_errors=True)


def default_dest() -> Path:
    "The default output folder: `elpv` in progfast's cache folder ($PROGFAST_CACHE, else $XDG_CACHE_HOME/progfast, else ~/.cache/progfast)"
    sys.path.insert(0, str(ROOT))
    from progfast.data.folders import progfast_cache_dir
    return progfast_cache_dir()/'elpv'


def build_elpv(dest=None, source=None, force: bool = False) -> Path:
    "Write ELPV as `dest`/<class>/*.png (4 classes by defect probability) unless an identical build is there; the folder"
    installed = source is None
    source = elpv_source() if installed else Path(source).expanduser()
    dest = default_dest() if dest is None else Path(dest).expanduser()
    _check_dest(dest)
    rows = read_labels(source)
    fp = fingerprint(source, rows)
    if not force and _is_current(dest, fp): return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = dest.with_name(f".{dest.name}.building-{os.getpid()}"), dest.with_name(f".{dest.name}.old-{os.getpid()}")
    _remove_stale(dest)
    try:
        _write(tmp, source, rows, fp, installed)
        if dest.exists(): os.replace(dest, old)
        os.replace(tmp, dest)
    except BaseException:
        if old.exists() and not dest.exists(): os.replace(old, dest)   # put the previous build back
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return dest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dest', default=None, help='output folder (default: $PROGFAST_CACHE/elpv)')
    ap.add_argument('--source', default=None, help='a folder with labels.csv and images/ (default: the installed elpv-dataset)')
    ap.add_argument('--force', action='store_true', help='rebuild even when the folder is up to date')
    a = ap.parse_args(argv)
    try: out = build_elpv(a.dest, a.source, a.force)
    except (OSError, ValueError) as e:
        print(f"build_elpv: error: {e}", file=sys.stderr); return 1
    man = json.loads((out/MANIFEST).read_text())
    print(f"ELPV ({LICENCE}) in {out}: " + ', '.join(f"{c} {n}" for c, n in man['counts'].items()))
    return 0


if __name__ == '__main__': sys.exit(main())
