"scripts/build_elpv.py on a tiny stand-in with the layout of the elpv-dataset package (no download, no ELPV image)."
import collections, importlib.util, json, os, sys
from pathlib import Path
import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod

be = _load('build_elpv', ROOT/'scripts'/'build_elpv.py')

PROBS = (0.0, 1/3, 2/3, 1.0)
PER_CLASS = (5, 3, 2, 4)


def write_source(root: Path, per_class=PER_CLASS) -> Path:
    "A stand-in of elpv_dataset/data: images/cellNNNN.png (small 8-bit grayscale) and labels.csv in the package's format"
    rng = np.random.default_rng(0)
    (root/'images').mkdir(parents=True)
    lines, i = [], 0
    for p, n in zip(PROBS, per_class):
        for _ in range(n):
            i += 1
            Image.fromarray(rng.integers(0, 256, (24, 24), dtype=np.uint8), mode='L').save(root/'images'/f'cell{i:04d}.png')
            lines.append(f"images/cell{i:04d}.png  {p!r:<20}{'mono' if i % 2 else 'poly'}")   # as in the package's labels.csv
    (root/'labels.csv').write_text('\n'.join(lines) + '\n')
    return root


@pytest.fixture
def source(tmp_path): return write_source(tmp_path/'src')


def tree(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


def test_the_labels_format_of_the_package_is_read(source):
    assert (source/'labels.csv').read_text().splitlines()[5] == 'images/cell0006.png  0.3333333333333333  poly'
    rows = be.read_labels(source)
    assert len(rows) == sum(PER_CLASS) and rows[5] == ('images/cell0006.png', 1/3, 'poly')
    assert [be.class_of(p) for p in PROBS] == list(be.CLASSES) == sorted(be.CLASSES)   # folder names sort by probability


def test_four_class_folders_with_every_image_its_labels_and_the_licence(source, tmp_path):
    out = be.build_elpv(tmp_path/'elpv', source)
    counts = {c: len(list((out/c).glob('*.png'))) for c in be.CLASSES}
    assert counts == dict(zip(be.CLASSES, PER_CLASS))
    for path, p, _ in be.read_labels(source):                       # every image, unchanged, in its probability's folder
        assert (out/be.class_of(p)/Path(path).name).read_bytes() == (source/path).read_bytes()
    labels = (out/'labels.csv').read_text().splitlines()
    assert labels[0] == 'image,class,defect_probability,module_type' and len(labels) == 1 + sum(PER_CLASS)
    assert labels[6] == 'defect_0.33/cell0006.png,defect_0.33,0.3333333333333333,poly'
    readme = (out/'README.md').read_text()
    assert 'CC BY-NC-SA 4.0' in readme and 'Do not commit' in readme and '| defect_0.67 | 2/3 | 2 |' in readme
    man = json.loads((out/be.MANIFEST).read_text())
    assert man['counts'] == dict(zip(be.CLASSES, PER_CLASS)) and man['licence'] == 'CC BY-NC-SA 4.0'
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.elpv.')]   # no temporary folder left


def test_a_second_build_changes_nothing_and_a_changed_source_rebuilds(source, tmp_path):
    out = be.build_elpv(tmp_path/'elpv', source)
    before = tree(out)
    stamp = (out/be.MANIFEST).stat().st_mtime_ns
    assert be.build_elpv(tmp_path/'elpv', source) == out
    assert (out/be.MANIFEST).stat().st_mtime_ns == stamp and tree(out) == before
    # a relabelled image moves to its new class
    text = (source/'labels.csv').read_text().replace('images/cell0001.png  0.0 ', 'images/cell0001.png  1.0 ')
    (source/'labels.csv').write_text(text)
    be.build_elpv(tmp_path/'elpv', source)
    assert not (out/'defect_0.00'/'cell0001.png').exists() and (out/'defect_1.00'/'cell0001.png').exists()
    # a file missing from the output is noticed
    (out/'defect_0.33'/'cell0006.png').unlink()
    be.build_elpv(tmp_path/'elpv', source)
    assert (out/'defect_0.33'/'cell0006.png').read_bytes() == (source/'images'/'cell0006.png').read_bytes()


def test_an_interrupted_build_leaves_the_previous_one(source, tmp_path, monkeypatch):
    out = be.build_elpv(tmp_path/'elpv', source)
    before = tree(out)
    (source/'labels.csv').write_text((source/'labels.csv').read_text().replace('0.0 ', '1.0 '))   # a change: a rebuild is due
    copied = []
    def copy_then_fail(a, b):
        if len(copied) == 3: raise KeyboardInterrupt()
        copied.append(b); return os.link(a, b)
    monkeypatch.setattr(be.shutil, 'copyfile', copy_then_fail)
    with pytest.raises(KeyboardInterrupt): be.build_elpv(tmp_path/'elpv', source)
    assert tree(out) == before                                       # the old build, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ['elpv', 'src']   # no half-written folder beside it
    copied.clear()                                                   # an interrupted first build leaves nothing
    with pytest.raises(KeyboardInterrupt): be.build_elpv(tmp_path/'other', source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['elpv', 'src']


def test_folder_dls_reads_it_with_a_stratified_seeded_split(source, tmp_path):
    from progfast.data.folders import folder_dls
    out = be.build_elpv(tmp_path/'elpv', write_source(tmp_path/'big', per_class=(20, 10, 10, 10)))
    dls = folder_dls(out, size=16, bs=4, valid_pct=0.1, seed=0, cache=False, progress=False)
    assert list(dls.vocab) == list(be.CLASSES) and dls.folder.layout == 'class_folders'
    valid = collections.Counter(dls.vocab[int(y)] for _, y in dls.valid_ds)
    assert valid == dict(zip(be.CLASSES, (2, 1, 1, 1)))              # 10% of each class
    again = folder_dls(out, size=16, bs=4, valid_pct=0.1, seed=0, cache=False, progress=False)
    assert list(again.valid_ds.items) == list(dls.valid_ds.items)
    assert not dls.bad_files                                           # README, labels.csv and the manifest are not images


@pytest.mark.parametrize('edit,msg', [
    (lambda t: t.replace('0.3333333333333333', '0.5', 1), "line 6 ('images/cell0006.png  0.5"),
    (lambda t: t.replace('0.3333333333333333', 'high', 1), "the defect probability 'high' is not a number"),
    (lambda t: t.replace('  poly', '', 1), 'expected 3 fields'),
    (lambda t: t + 'images/cell0099.png  1.0  mono\n', 'cell0099.png does not exist'),
    (lambda t: t + t.splitlines()[0] + '\n', 'appears twice'),
    (lambda t: '', 'lists no images'),
])
def test_bad_labels_are_refused_before_anything_is_written(source, tmp_path, edit, msg):
    (source/'labels.csv').write_text(edit((source/'labels.csv').read_text()))
    with pytest.raises((ValueError, FileNotFoundError)) as e: be.build_elpv(tmp_path/'elpv', source)
    assert msg in str(e.value)
    assert not (tmp_path/'elpv').exists()


def test_folders_it_must_not_touch(source, tmp_path, monkeypatch):
    mine = tmp_path/'photos'; mine.mkdir(); (mine/'holiday.jpg').write_bytes(b'x')
    with pytest.raises(FileExistsError, match='was not written by build_elpv.py'): be.build_elpv(mine, source)
    assert (mine/'holiday.jpg').read_bytes() == b'x'
    with pytest.raises(ValueError, match='inside the progfast repository'): be.build_elpv(ROOT/'elpv-data', source)
    assert not (ROOT/'elpv-data').exists()
    ignored = be._git_ignores(ROOT/'.cache'/'progfast'/'elpv')
    assert ignored                                                      # make's cache folder is ignored by git: allowed
    monkeypatch.setattr(be.importlib.util, 'find_spec', lambda name: None)
    with pytest.raises(ModuleNotFoundError, match='pip install elpv-dataset'): be.build_elpv(tmp_path/'elpv')


def test_the_command_line(source, tmp_path, capsys, monkeypatch):
    assert be.main(['--source', str(source), '--dest', str(tmp_path/'elpv')]) == 0
    assert 'defect_0.00 5, defect_0.33 3, defect_0.67 2, defect_1.00 4' in capsys.readouterr().out
    assert be.main(['--source', str(tmp_path/'nothing'), '--dest', str(tmp_path/'x')]) == 1
    assert 'labels.csv does not exist' in capsys.readouterr().err
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path/'cache'))
    assert be.default_dest() == tmp_path/'cache'/'elpv'
