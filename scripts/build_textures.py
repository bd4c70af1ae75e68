#!/usr/bin/env python
"""Build a small folder dataset of real grayscale textures from the photos bundled in scikit-image's wheel.

    python scripts/build_textures.py                          # .cache/progfast/textures, 6 classes x (64 train + 16 valid), 96 px
    python scripts/build_textures.py --out DIR --n-train 80 --n-valid 20 --size 128 --seed 1
    python scripts/build_textures.py --classes brick,grass,gravel --force

A stand-in for the steel micrographs of Wanger & Frohn's ENTR study (grayscale, texture-like, "within image similarity
high"), made offline from files that `pip install scikit-image` puts in `skimage/data/`. Each class is one source photo:

| class  | file (skimage/data/)    | licence, as scikit-image's `skimage.data` docstrings state it                              |
|--------|-------------------------|---------------------------------------------------------------------------------------------|
| brick  | brick.png (512x512)     | CC0 (CC0Textures "Bricks25"; perspective-corrected, rotated, cropped by scikit-image)      |
| grass  | grass.png (512x512)     | CC0 (DeviantArt "Grass-01" by linolafett; cropped, grayscale)                               |
| gravel | gravel.png (512x512)    | CC0 (CC0Textures "Gravel04"; rescaled, cropped, grayscale)                                  |
| cell   | cell.png (660x550)      | CC0 (quantitative phase microscopy image, Mueller et al. 2018, made with qpformat)          |
| retina | retina.jpg (1411x1411)  | CC0 1.0 (Wikimedia "Fundus photograph of normal left eye", Mikael Haeggstroem)             |
| hubble | hubble_deep_field.jpg   | public domain (NASA, Hubble eXtreme Deep Field, HubbleSite 2012)                             |

The package (scikit-image) and its version are recorded in the manifest and in README.md written next to the data.
Other bundled photos were left out: moon.png states no licence; camera, astronaut, coffee, chelsea, rocket and the
like are scenes, not textures. Color photos (retina, hubble) are converted to grayscale like the others, so that no
class can be told apart by its colour alone.

How patches are cut, deterministically from `--seed` (numpy `default_rng([seed, class index])`):
- the source is converted to 8-bit grayscale (ITU-R 601 integer weights); retina keeps its central 900x900 square,
  inside the fundus disc;
- rows 0-75% of the source are the training region and rows 75-100% the validation region: no validation patch
  shares a pixel with a training patch;
- each patch is a random square of side 12%, 18% or 24% of the source's shorter side (a few scales), resized to
  `--size` px (Pillow LANCZOS), turned by one of the 8 flips/rotations of the square, and given a random contrast
  gain in [0.8, 1.2] and brightness offset in [-16, 16] grey levels;
- patches are written as 8-bit grayscale PNG: `OUT/train/<class>/<class>_000.png`, `OUT/valid/<class>/...`, the
  ImageNet layout that `progfast.data.folders.folder_dls` reads (train/ and valid/).

The same scikit-image, numpy and Pillow versions give byte-identical files. A second run with the same settings and
package versions finds `manifest.json` (settings, versions and the SHA-256 of every file) matching the files there
and does nothing; `--force` rebuilds. The generated images are not committed to the repository.
"""
from __future__ import annotations
import argparse, hashlib, importlib.metadata, importlib.util, io, json, shutil, sys
from pathlib import Path
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO/'.cache'/'progfast'/'textures'
MANIFEST = 'manifest.json'
FORMAT_VERSION = 1
SCALES = (0.12, 0.18, 0.24)   # patch side as a fraction of the source's shorter side
VALID_FROM = 0.75             # rows from this fraction down are the validation region
GAIN, OFFSET = (0.8, 1.2), (-16, 16)

# class: (file in skimage/data, licence, origin)
SOURCES = {
    'brick':  ('brick.png', 'CC0', 'CC0Textures "Bricks25", via scikit-image'),
    'grass':  ('grass.png', 'CC0', 'DeviantArt "Grass-01" by linolafett, via scikit-image'),
    'gravel': ('gravel.png', 'CC0', 'CC0Textures "Gravel04", via scikit-image'),
    'cell':   ('cell.png', 'CC0', 'quantitative phase image of a cell (Mueller et al., Optics Express 2018), via scikit-image'),
    'retina': ('retina.jpg', 'CC0 1.0', 'Wikimedia Commons "Fundus photograph of normal left eye" (M. Haeggstroem), via scikit-image'),
    'hubble': ('hubble_deep_field.jpg', 'public domain', 'NASA Hubble eXtreme Deep Field (HubbleSite 2012), via scikit-image'),
}
CROPS = {'retina': (255, 255, 1155, 1155)}   # (left, top, right, bottom) kept from the source


def skimage_data_dir() -> Path:
    "scikit-image's bundled data folder, found without importing scikit-image"
    spec = importlib.util.find_spec('skimage')
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("scikit-image is not installed: pip install scikit-image (it bundles the source photos)")
    return Path(list(spec.submodule_search_locations)[0])/'data'


def versions() -> dict:
    return {p: importlib.metadata.version(p) for p in ('scikit-image', 'numpy', 'pillow')}


def to_gray(img: Image.Image) -> np.ndarray:
    "8-bit grayscale with integer ITU-R 601 weights (no dependence on a library's colour conversion)"
    a = np.asarray(img.convert('RGB') if img.mode not in ('L', 'RGB') else img, dtype=np.uint32)
    if a.ndim == 2: return a.astype(np.uint8)
    return ((299*a[..., 0] + 587*a[..., 1] + 114*a[..., 2] + 500) // 1000).astype(np.uint8)


def load_source(name: str) -> np.ndarray:
    fn = skimage_data_dir()/SOURCES[name][0]
    if not fn.is_file(): raise SystemExit(f"{fn} is missing: this scikit-image wheel does not bundle {fn.name}")
    with Image.open(fn) as img: gray = to_gray(img)
    if name in CROPS:
        l, t, r, b = CROPS[name]
        gray = gray[t:b, l:r]
    return gray


def split_regions(gray: np.ndarray) -> dict:
    "{'train': top rows, 'valid': bottom rows}: disjoint regions of the source"
    cut = int(round(gray.shape[0]*VALID_FROM))
    return {'train': gray[:cut], 'valid': gray[cut:]}


def patch_sides(gray: np.ndarray) -> list:
    return [int(round(f*min(gray.shape))) for f in SCALES]


def cut_patch(region: np.ndarray, side: int, size: int, rng) -> np.ndarray:
    "A random `side` px square of `region`, resized to `size`, flipped/rotated, contrast and brightness jittered"
    h, w = region.shape
    if side > min(h, w): raise ValueError(f"a {side} px patch does not fit a {h}x{w} region")
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    img = Image.fromarray(np.ascontiguousarray(region[top:top+side, left:left+side]))
    a = np.asarray(img.resize((size, size), Image.Resampling.LANCZOS), dtype=np.float64)
    k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
    a = np.rot90(a, k)
    if flip: a = a[:, ::-1]
    gain, offset = rng.uniform(*GAIN), rng.uniform(*OFFSET)
    mean = a.mean()
    return np.clip(np.rint((a - mean)*gain + mean + offset), 0, 255).astype(np.uint8)


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format='PNG', optimize=False, compress_level=6)
    return buf.getvalue()


def class_patches(name: str, index: int, n: dict, size: int, seed: int) -> dict:
    "{'train': [png bytes], 'valid': [...]} for class `name`"
    gray = load_source(name)
    rng = np.random.default_rng([seed, index])
    sides, out = patch_sides(gray), {}
    for split, region in split_regions(gray).items():
        out[split] = [png_bytes(cut_patch(region, sides[int(rng.integers(0, len(sides)))], size, rng)) for _ in range(n[split])]
    return out


def settings(classes, n_train, n_valid, size, seed) -> dict:
    return dict(format=FORMAT_VERSION, classes=list(classes), n_train=n_train, n_valid=n_valid, size=size, seed=seed,
                scales=list(SCALES), valid_from=VALID_FROM, gain=list(GAIN), offset=list(OFFSET), versions=versions())


def sha256(b: bytes) -> str: return hashlib.sha256(b).hexdigest()


def manifest_matches(out: Path, wanted: dict) -> bool:
    "The manifest in `out` has the same settings and every file it lists is there with its hash"
    try: m = json.loads((out/MANIFEST).read_text())
    except (OSError, ValueError): return False
    if m.get('settings') != wanted: return False
    files = m.get('files', {})
    n_expected = len(wanted['classes'])*(wanted['n_train'] + wanted['n_valid'])
    if len(files) != n_expected: return False
    try: return all(sha256((out/rel).read_bytes()) == h for rel, h in files.items())
    except OSError: return False


def readme(s: dict) -> str:
    rows = '\n'.join(f"| {c} | skimage/data/{SOURCES[c][0]} | scikit-image {s['versions']['scikit-image']} | {SOURCES[c][1]} | "
                     f"{SOURCES[c][2]} |" for c in s['classes'])
    return f"""# Texture patches (generated by progfast's scripts/build_textures.py)

{len(s['classes'])} classes, {s['n_train']} training and {s['n_valid']} validation patches each, {s['size']} px,
8-bit grayscale PNG, seed {s['seed']}. Training patches come from the top {VALID_FROM:.0%} of each source photo,
validation patches from the rest (disjoint regions).

| class | source file | package | licence | origin |
|---|---|---|---|---|
{rows}

The licences are those scikit-image states in the docstrings of `skimage.data` (brick, grass, gravel, cell, retina,
hubble_deep_field). CC0 and public-domain material may be used, modified and redistributed without restriction; the
patches here are derived works under the same terms. Built with {', '.join(f'{k} {v}' for k, v in s['versions'].items())}.
"""


def build_textures(out=DEFAULT_OUT, n_train: int = 64, n_valid: int = 16, size: int = 96, seed: int = 0,
                   classes=None, force: bool = False, quiet: bool = False) -> Path:
    "Write the dataset into `out` (train/ and valid/ class folders) unless a matching manifest is there; returns `out`"
    out = Path(out)
    classes = list(SOURCES) if classes is None else list(classes)
    unknown = [c for c in classes if c not in SOURCES]
    if unknown: raise ValueError(f"unknown classes {unknown}; choose from {list(SOURCES)}")
    if not classes: raise ValueError("no classes given")
    for k, v in dict(n_train=n_train, n_valid=n_valid, size=size).items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1: raise ValueError(f"{k} must be a positive integer, got {v!r}")
    wanted = settings(classes, n_train, n_valid, size, seed)
    if not force and manifest_matches(out, wanted):
        if not quiet: print(f"{out}: up to date ({len(classes)} classes, {n_train}+{n_valid} patches each)")
        return out
    tmp = out.with_name(out.name + '.tmp')
    if tmp.exists(): shutil.rmtree(tmp)
    files = {}
    for i, c in enumerate(classes):
        for split, pngs in class_patches(c, list(SOURCES).index(c), dict(train=n_train, valid=n_valid), size, seed).items():
            d = tmp/split/c
            d.mkdir(parents=True, exist_ok=True)
            for j, b in enumerate(pngs):
                rel = f"{split}/{c}/{c}_{j:03d}.png"
                (tmp/rel).write_bytes(b)
                files[rel] = sha256(b)
    (tmp/'README.md').write_text(readme(wanted))
    (tmp/MANIFEST).write_text(json.dumps(dict(settings=wanted, files=files), indent=1, sort_keys=True) + '\n')
    if out.exists(): shutil.rmtree(out)
    tmp.rename(out)
    if not quiet: print(f"{out}: wrote {len(files)} patches ({len(classes)} classes)")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(DEFAULT_OUT), help='dataset folder (replaced when rebuilt)')
    ap.add_argument('--n-train', type=int, default=64, help='training patches per class')
    ap.add_argument('--n-valid', type=int, default=16, help='validation patches per class')
    ap.add_argument('--size', type=int, default=96, help='patch side in pixels')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--classes', default=','.join(SOURCES), help=f'comma-separated subset of {",".join(SOURCES)}')
    ap.add_argument('--force', action='store_true', help='rebuild even when the manifest matches')
    a = ap.parse_args(argv)
    try: build_textures(a.out, a.n_train, a.n_valid, a.size, a.seed, [c for c in a.classes.split(',') if c], a.force)
    except ValueError as e: sys.exit(f"error: {e}")


if __name__ == '__main__': main()
