"""Folder datasets: both layouts, the split, bad files, special images, the resize cache (healing, shared by processes),
draft decoding, clear errors, training"""
import multiprocessing, os, pickle, socket, time, warnings
from contextlib import nullcontext
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
from fastai.learner import Learner
from fastai.metrics import accuracy
from fastai.data.transforms import parent_label
from fastai.callback.core import Callback
from fastai.vision.augment import Resize
from progfast.callbacks.progressive import ProgressiveResizeCallback
import progfast.data.folders as folders
from progfast.data.folders import (folder_dls, read_folder, open_image, OpenImage, ImageCache, BadImageWarning,
                                   BadImageError, MANIFEST, folder_cache_dir)
from progfast.testing import messy_folder, stripes_folder, stripes_image, tiny_cnn

QUIET = dict(progress=False)

def class_folder(path, counts:dict, size:int=16, seed:int=0, ext='png') -> Path:
    "One folder per class; class names ending in 'h' get horizontal stripes"
    rng = np.random.default_rng(seed)
    for cls,n in counts.items():
        (path/cls).mkdir(parents=True, exist_ok=True)
        for i in range(n): stripes_image(cls.endswith('h'), size, rng).save(path/cls/f'{i:03d}.{ext}')
    return path

def stripe_axis(img) -> int:
    "0 for horizontal stripes (row means vary), 1 for vertical"
    a = np.asarray(img.convert('L'), dtype=float)
    return int(a.mean(1).std() < a.mean(0).std())

def sources(items, data): return [data.sources[i] for i in items]

@pytest.fixture(scope='module')
def messy(tmp_path_factory):
    return messy_folder(tmp_path_factory.mktemp('messy'))

# --- layouts and the split

def test_class_folders_split_counts_and_seed(tmp_path):
    path = class_folder(tmp_path/'data', {'dogh': 20, 'catv': 20})
    dls = folder_dls(path, size=16, bs=4, cache=False, **QUIET)
    assert dls.folder.layout == 'class_folders'
    assert list(dls.vocab) == ['catv', 'dogh']
    assert (len(dls.train_ds), len(dls.valid_ds)) == (36, 4)
    assert not set(dls.train_ds.items) & set(dls.valid_ds.items)
    again = folder_dls(path, size=16, bs=4, cache=False, **QUIET)
    assert [str(p) for p in again.valid_ds.items] == [str(p) for p in dls.valid_ds.items]   # seeded
    other = folder_dls(path, size=16, bs=4, seed=7, cache=False, **QUIET)
    assert [str(p) for p in other.valid_ds.items] != [str(p) for p in dls.valid_ds.items]
    assert len(folder_dls(path, size=16, bs=4, valid_pct=0.25, cache=False, **QUIET).valid_ds) == 10
    assert all(dls.vocab[int(y)] == parent_label(p) for p,(_, y) in zip(dls.valid_ds.items, dls.valid_ds))

def test_split_is_stratified(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 30, 'bv': 5, 'ch': 3})
    data = read_folder(path, valid_pct=0.1, cache=False, **QUIET)
    per_class = {c: sum(parent_label(p) == c for p in data.valid) for c in data.classes}
    assert per_class == {'ah': 3, 'bv': 1, 'ch': 1}                  # 10% rounded, at least one of every class
    assert len(data.train) == 38 - 5

@pytest.mark.parametrize('valid_name', ['valid', 'val'])
def test_imagenet_layout(tmp_path, valid_name):
    path = stripes_folder(tmp_path/'data', n_train=6, n_valid=3, size=16)
    if valid_name == 'val': (path/'valid').rename(path/'val')
    (path/'test').mkdir()                                               # other folders are ignored
    dls = folder_dls(path, size=16, bs=4, cache=False, **QUIET)
    assert dls.folder.layout == 'imagenet'
    assert list(dls.vocab) == ['horizontal', 'vertical']
    assert (len(dls.train_ds), len(dls.valid_ds)) == (12, 6)
    assert all(p.parent.parent.name == 'train' for p in dls.train_ds.items)
    assert all(p.parent.parent.name == valid_name for p in dls.valid_ds.items)

def test_models_folder_hidden_files_and_nested_folders(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 4, 'bv': 4})
    (path/'models').mkdir(); (path/'models'/'stage1.pth').write_bytes(b'x')   # fastai's model folder: not a class
    (path/'.DS_Store').write_bytes(b'x'); (path/'ah'/'.hidden.jpg').write_bytes(b'x')
    (path/'ah'/'more').mkdir(); stripes_image(True, 16, 0).save(path/'ah'/'more'/'x.png')
    stripes_image(True, 16, 0).save(path/'loose.png')
    with pytest.warns(BadImageWarning) as rec:
        data = read_folder(path, cache=False, **QUIET)
    assert data.classes == ['ah', 'bv']
    assert set(data.bad_files) == {(path/'ah'/'more').resolve(), (path/'loose.png').resolve()}
    assert 'folder inside a class folder' in data.bad_files[(path/'ah'/'more').resolve()]
    assert 'not in a class folder' in data.bad_files[(path/'loose.png').resolve()]
    assert 'ah/more' in str(rec[0].message) and 'loose.png' in str(rec[0].message)

def test_linked_files_and_broken_links(tmp_path):
    store = class_folder(tmp_path/'store', {'ah': 3, 'bv': 3})
    path = tmp_path/'data'
    for c in ('ah', 'bv'):
        (path/c).mkdir(parents=True)
        for f in (store/c).iterdir(): (path/c/f.name).symlink_to(f)   # datasets built from links to elsewhere
    (path/'bv'/'gone.png').symlink_to(tmp_path/'missing.png')
    with pytest.warns(BadImageWarning):
        data = read_folder(path, cache=tmp_path/'cache', **QUIET)
    assert len(data.train) + len(data.valid) == 6 and data.classes == ['ah', 'bv']
    assert 'cannot be read' in data.bad_files[path.resolve()/'bv'/'gone.png']

# --- bad files

EXPECTED_REASONS = {'corrupt.jpg': 'not an image Pillow can read', 'truncated.jpg': 'truncated',
                    'empty.jpg': 'empty file', 'notes.txt': "not an image file (extension '.txt')",
                    'text.jpg': 'not an image Pillow can read'}

def test_bad_files_reported_by_name_and_skipped(messy, tmp_path):
    path,bad = messy
    with pytest.warns(BadImageWarning) as rec:
        dls = folder_dls(path, size=16, bs=4, max_side=64, cache=tmp_path/'cache', **QUIET)
    msg = str(rec[0].message)
    assert sorted(f.name for f in dls.bad_files) == sorted(EXPECTED_REASONS)
    for f in bad:
        assert f'{f.parent.name}/{f.name}' in msg
        assert EXPECTED_REASONS[f.name] in dls.bad_files[f.resolve()]
    used = sources(dls.train_ds.items + dls.valid_ds.items, dls.folder)
    assert not set(used) & {f.resolve() for f in bad}
    n_files = sum(1 for f in path.rglob('*') if f.is_file())
    assert len(used) == n_files - len(bad)
    n = sum(len(xb) for xb,_ in dls.train) + sum(len(xb) for xb,_ in dls.valid)     # whole epoch: no crash
    assert n >= len(used) - dls.train.bs
    # reported again on a second read, from the manifest
    with pytest.warns(BadImageWarning):
        again = folder_dls(path, size=16, bs=4, max_side=64, cache=tmp_path/'cache', **QUIET)
    assert again.bad_files == dls.bad_files and again.folder.stats['examined'] == 0

def test_bad_files_raise(messy, tmp_path):
    path,bad = messy
    with pytest.raises(BadImageError) as err:
        folder_dls(path, size=16, bs=4, max_side=64, cache=False, bad_files='raise', **QUIET)
    assert isinstance(err.value, ValueError)
    for f in bad: assert f.name in str(err.value)

# --- special images become RGB, the right way up

@pytest.mark.parametrize('name', ['horizontal/gray.png', 'vertical/palette.png', 'horizontal/rgba.png',
                                  'vertical/cmyk.jpg', 'horizontal/gray16.png', 'horizontal/exif_rotated.jpg',
                                  'horizontal/large.jpg'])
def test_special_images_become_rgb(messy, name):
    fn = messy[0]/name
    stored = Image.open(fn)
    img = open_image(fn)
    assert img.mode == 'RGB'
    expected = stored.size[::-1] if 'exif' in name else stored.size
    assert img.size == expected
    if 'rgba' in name: img = img.crop((img.width//4, 0, img.width, img.height))   # the left quarter is transparent
    assert stripe_axis(img) == (0 if name.startswith('horizontal') else 1)
    x = np.asarray(OpenImage(None)(fn))
    assert x.shape == (expected[1], expected[0], 3) and x.dtype == np.uint8

def test_special_image_details(messy):
    h,v = messy[0]/'horizontal',messy[0]/'vertical'
    assert stripe_axis(Image.open(h/'exif_rotated.jpg')) == 1             # stored sideways
    assert open_image(h/'rgba.png').getpixel((0, 0)) == (255, 255, 255)   # transparent -> white
    assert open_image(h/'rgba.png').getpixel((31, 0)) != (255, 255, 255)
    assert open_image(v/'palette.png').getpixel((0, 0)) == (255, 255, 255)
    assert np.array_equal(np.asarray(open_image(h/'gray16.png')), np.asarray(open_image(h/'gray.png')))
    cmyk = np.asarray(open_image(v/'cmyk.jpg'), dtype=float)
    assert np.abs(cmyk[..., 0] - cmyk[..., 1]).mean() > 3 or np.abs(cmyk[..., 1] - cmyk[..., 2]).mean() > 3  # in colour

# --- the cache

def test_cache_created_once_and_reused(messy, tmp_path, monkeypatch):
    path,_ = messy
    cache = tmp_path/'cache'
    with pytest.warns(BadImageWarning):
        data = read_folder(path, max_side=64, cache=cache, **QUIET)
    cached = {s.name: i for i,s in data.sources.items() if i != s}
    assert sorted(cached) == ['large.jpg']                      # only images larger than max_side are copied
    assert cache in cached['large.jpg'].parents and max(Image.open(cached['large.jpg']).size) == 64
    assert Image.open(cached['large.jpg']).mode == 'RGB'
    manifest = (cache/MANIFEST).read_bytes()
    mtimes = {f: f.stat().st_mtime_ns for f in cache.rglob('*') if f.is_file()}
    def no_decoding(*args, **kwargs): raise AssertionError('a file was examined again')
    monkeypatch.setattr(folders._FileExaminer, '__call__', no_decoding)
    with pytest.warns(BadImageWarning):
        again = read_folder(path, max_side=64, cache=cache, **QUIET)
    assert (again.train, again.valid, again.bad_files) == (data.train, data.valid, data.bad_files)
    assert again.stats['examined'] == 0 and again.stats['reused'] == sum(1 for f in path.rglob('*') if f.is_file())
    assert (cache/MANIFEST).read_bytes() == manifest
    assert {f: f.stat().st_mtime_ns for f in cache.rglob('*') if f.is_file()} == mtimes

def test_cache_invalidated_when_sources_change(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 4, 'bv': 4}, size=16)
    stripes_image(True, 80, 1).save(path/'ah'/'big.jpg')
    cache = tmp_path/'cache'
    data = read_folder(path, max_side=32, cache=cache, **QUIET)
    big = next(i for i,s in data.sources.items() if s.name == 'big.jpg')
    assert data.stats['cached'] == 1 and big.exists()
    stripes_image(True, 20, 2).save(path/'ah'/'big.jpg')          # now small: re-examined, its cached copy removed
    (path/'bv'/'000.png').unlink()                                # deleted source
    again = read_folder(path, max_side=32, cache=cache, **QUIET)
    assert (again.stats['examined'], again.stats['removed'], again.stats['cached']) == (1, 1, 0)
    assert not big.exists()
    assert (path/'ah'/'big.jpg').resolve() in again.sources.values()
    stripes_image(True, 80, 3).save(path/'ah'/'big.jpg')          # large again
    os.utime(path/'ah'/'big.jpg', ns=(1, 1))
    third = read_folder(path, max_side=32, cache=cache, **QUIET)
    assert (third.stats['examined'], third.stats['cached']) == (1, 1)
    changed = read_folder(path, max_side=24, cache=cache, **QUIET)   # another max_side: everything again
    assert changed.stats['examined'] == sum(1 for f in path.rglob('*') if f.is_file()) == 8

def test_default_cache_outside_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path/'home_cache'))
    path = class_folder(tmp_path/'data', {'ah': 3, 'bv': 3})
    before = sorted(path.rglob('*'))
    data = read_folder(path, **QUIET)
    assert data.cache_dir == folder_cache_dir(path) and (tmp_path/'home_cache') in data.cache_dir.parents
    assert (data.cache_dir/MANIFEST).exists() and sorted(path.rglob('*')) == before
    hidden = read_folder(path, cache=path/'.progfast_cache', **QUIET)   # a hidden cache inside is not a class
    assert hidden.classes == ['ah', 'bv']
    with pytest.raises(ValueError, match='read as a class folder'): read_folder(path, cache=path/'cache', **QUIET)
    with pytest.raises(ValueError, match='holds the cache of'):
        read_folder(class_folder(tmp_path/'other', {'ah': 2, 'bv': 2}), cache=data.cache_dir, **QUIET)
    (tmp_path/'mine').mkdir(); (tmp_path/'mine'/'notes.txt').write_text('x')
    with pytest.raises(ValueError, match='not a progfast cache'): read_folder(path, cache=tmp_path/'mine', **QUIET)

# --- draft decoding

def test_draft_decoding_reduces_decoded_size(tmp_path):
    fn = tmp_path/'photo.jpg'; stripes_image(True, 400, 0).save(fn, quality=90)
    assert OpenImage(60)(fn).size == (100, 100)                   # 1/4 scale keeps both sides >= 60 (1/8 would not)
    assert OpenImage(300)(fn).size == (400, 400)                  # 1/2 would be too small
    assert OpenImage(60)(fn, split_idx=1).size == (400, 400)      # validation: full resolution
    assert OpenImage(60, draft=False)(fn).size == (400, 400)
    assert OpenImage(60, margin=2)(fn).size == (200, 200)
    op = OpenImage(300); op.set_size(60)
    assert op.get_size() == 60 and op(fn).size == (100, 100)
    restored = pickle.loads(pickle.dumps(op))
    assert restored.get_size() == 60 and restored(fn).size == (100, 100)

def test_draft_in_the_dataloaders(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 4, 'bv': 4}, size=256, ext='jpg')
    dls = folder_dls(path, size=40, bs=2, max_side=None, cache=False, **QUIET)
    opener = [t for t in dls.train_ds.tls[0].tfms.fs if isinstance(t, OpenImage)]
    assert len(opener) == 1 and opener[0].get_size() == 40
    assert dls.train_ds.tls[0].tfms(dls.train_ds.items[0]).size == (64, 64)     # decoded at 1/4 for training
    assert dls.valid_ds.tls[0].tfms(dls.valid_ds.items[0]).size == (256, 256)   # full size for validation
    assert dls.one_batch()[0].shape == (2, 3, 40, 40)

# --- clear errors

def _layouts(tmp_path):
    (tmp_path/'empty').mkdir()
    (tmp_path/'flat').mkdir(); stripes_image(True, 16, 0).save(tmp_path/'flat'/'a.png')
    one = class_folder(tmp_path/'one', {'onlyh': 3})
    mismatch = stripes_folder(tmp_path/'mismatch', 2, 2, 16)
    (mismatch/'valid'/'vertical').rename(mismatch/'valid'/'diagonal')
    few = class_folder(tmp_path/'few', {'ah': 4, 'bv': 1})
    split = stripes_folder(tmp_path/'split', 2, 2, 16); (split/'valid').rename(split/'test')
    both = stripes_folder(tmp_path/'both', 2, 2, 16); (both/'val').mkdir()
    novalid = stripes_folder(tmp_path/'novalid', 2, 1, 16)
    for f in (novalid/'valid'/'vertical').iterdir(): f.unlink()
    return dict(missing=tmp_path/'nope', file=tmp_path/'flat'/'a.png', empty=tmp_path/'empty', flat=tmp_path/'flat',
                one=one, mismatch=mismatch, few=few, split=split, both=both, novalid=novalid)

@pytest.mark.parametrize('case,exc,words', [
    ('missing', FileNotFoundError, ['nope', 'does not exist']),
    ('file', NotADirectoryError, ['a.png', 'not a folder']),
    ('empty', ValueError, ['empty']),
    ('flat', ValueError, ['no class subfolders', '1 file']),
    ('one', ValueError, ["'onlyh'", 'at least two classes']),
    ('mismatch', ValueError, ["only in train/: ['vertical']", "only in valid/: ['diagonal']"]),
    ('few', ValueError, ["'bv' (1)", 'min_per_class=2']),
    ('split', ValueError, ["['test', 'train'] hold folders but no images", 'train/ and valid/']),
    ('both', ValueError, ['valid/ and val/']),
    ('novalid', ValueError, ["'vertical' has no usable image in valid/"]),
])
def test_clear_errors(tmp_path, case, exc, words):
    path = _layouts(tmp_path)[case]
    with pytest.raises(exc) as err: folder_dls(path, size=16, bs=2, cache=False, **QUIET)
    for w in words: assert w in str(err.value)

def test_min_per_class_counts_usable_images(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 3, 'bv': 3})
    for i in range(2): (path/'bv'/f'broken{i}.jpg').write_bytes(b'')
    with pytest.warns(BadImageWarning), pytest.raises(ValueError, match=r"'bv' \(3\).*2 bad file"):
        folder_dls(path, size=16, bs=2, min_per_class=4, cache=False, **QUIET)

@pytest.mark.parametrize('kwargs,words', [
    (dict(valid_pct=0), 'valid_pct'), (dict(valid_pct=1.5), '1.5'), (dict(size=0), 'size must be'),
    (dict(bad_files='ignore'), "'ignore'"), (dict(min_per_class=1), 'min_per_class'), (dict(crop='middle'), "'middle'"),
    (dict(size=300), 'max_side=250'), (dict(bs=100), 'bs=100'), (dict(max_side=0), 'max_side'),
])
def test_bad_arguments(tmp_path, kwargs, words):
    path = class_folder(tmp_path/'data', {'ah': 3, 'bv': 3})
    args = dict(size=16, bs=2, cache=False, **QUIET) | kwargs
    with pytest.raises(ValueError) as err: folder_dls(path, **args)
    assert words in str(err.value)

def test_cache_argument_type(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 3, 'bv': 3})
    with pytest.raises(TypeError, match='cache must be'): folder_dls(path, size=16, bs=2, cache=3, **QUIET)

# --- end to end

def test_folder_dls_trains_one_epoch(tmp_path):
    path = class_folder(tmp_path/'data', {'horizh': 24, 'vertv': 24}, size=32, ext='jpg')
    dls = folder_dls(path, size=24, bs=8, cache=tmp_path/'cache', **QUIET)
    learn = Learner(dls, tiny_cnn(), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    loss, acc = learn.validate()
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert len(learn.recorder.values) == 1

class LoaderSizes(Callback):
    "Record the size of the training batches as the loader yields them (before ProgressiveResizeCallback, order -5)"
    order = -10
    def before_fit(self): self.sizes,self.opener_sizes = [],[]
    def before_batch(self):
        if not self.training: return
        self.sizes.append(self.xb[0].shape[-1])
        self.opener_sizes += [t.get_size() for t in self.dls.train_ds.tls[0].tfms.fs if isinstance(t, OpenImage)]

def test_progressive_resize_in_loader_mode(tmp_path):
    path = class_folder(tmp_path/'data', {'horizh': 12, 'vertv': 12}, size=64, ext='jpg')
    dls = folder_dls(path, size=32, bs=8, cache=False, **QUIET)
    learn = Learner(dls, tiny_cnn(), metrics=accuracy)
    spy = LoaderSizes()
    with learn.no_bar(), learn.no_logging():
        learn.fit(2, 1e-2, cbs=[ProgressiveResizeCallback([16, 24], mode='loader', n_epoch=2), spy])
    assert sorted(set(spy.sizes)) == [16, 24] and spy.sizes[0] == 16 and spy.sizes[-1] == 24
    resize = [t for t in dls.train.after_item.fs if isinstance(t, Resize)][0]
    opener = [t for t in dls.train_ds.tls[0].tfms.fs if isinstance(t, OpenImage)][0]
    assert tuple(resize.size) == (32, 32) and opener.get_size() == 32     # restored after the fit
    assert spy.opener_sizes == spy.sizes        # the opener was told each training size (draft decoding follows it)

# --- a cache that heals

def large_folder(path, n:int=3, size:int=96, ext='jpg') -> Path:
    "Two classes of `n` images of `size` px (cached when max_side < size)"
    return class_folder(path, {'ah': n, 'bv': n}, size=size, ext=ext)

def copies(data) -> dict:
    "{source 'class/name': cached copy} of a FolderData"
    return {f'{s.parent.name}/{s.name}': i for i,s in data.sources.items() if i != s}

def fresh_bytes(path, tmp_path, name, **kwargs) -> bytes:
    "The bytes of `name`'s copy in a cache built from scratch"
    return copies(read_folder(path, cache=tmp_path/'fresh_cache', **kwargs, **QUIET))[name].read_bytes()

def keep_size_and_time(fn, new_bytes: bytes):
    "Overwrite `fn` with as many bytes, keeping its modification time: damage the size and time check cannot see"
    st = Path(fn).stat()
    assert len(new_bytes) == st.st_size
    Path(fn).write_bytes(new_bytes); os.utime(fn, ns=(st.st_atime_ns, st.st_mtime_ns))

def epoch(dls) -> int:
    "Train one epoch of a tiny CNN and validate: the number of items the training loader served"
    learn = Learner(dls, tiny_cnn(), metrics=accuracy)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-2)
    assert len(learn.recorder.values) == 1 and all(np.isfinite(v) for v in learn.recorder.values[0])
    return len(dls.train) * dls.train.bs

@pytest.mark.parametrize('damage', ['truncated', 'deleted', 'overwritten'])
def test_damaged_cached_copy_is_rebuilt_when_the_cache_is_opened(tmp_path, damage):
    path = large_folder(tmp_path/'data')
    dls = folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)
    copy = copies(dls.folder)['ah/000.jpg']
    good = copy.read_bytes()
    if damage == 'truncated': copy.write_bytes(good[:len(good)//2])
    elif damage == 'deleted': copy.unlink()
    else: copy.write_bytes(Path(copies(dls.folder)['ah/001.jpg']).read_bytes())    # another valid image
    with warnings.catch_warnings():
        warnings.simplefilter('error')                                  # no warning, no bad file: just rebuilt
        again = folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)
    assert (again.folder.stats['repaired'], again.folder.stats['examined'], again.bad_files) == (1, 1, {})
    assert copy.read_bytes() == good == fresh_bytes(path, tmp_path, 'ah/000.jpg', max_side=32)
    assert epoch(again) > 0
    third = read_folder(path, max_side=32, cache=tmp_path/'cache', **QUIET)
    assert (third.stats['repaired'], third.stats['examined']) == (0, 0)

def test_cached_copy_whose_source_went_bad_is_a_bad_file(tmp_path):
    path = large_folder(tmp_path/'data')
    data = read_folder(path, max_side=32, cache=tmp_path/'cache', **QUIET)
    copy,src = copies(data)['ah/000.jpg'],path/'ah'/'000.jpg'
    keep_size_and_time(src, bytes(src.stat().st_size))                # unchanged for the manifest, but no image
    copy.write_bytes(copy.read_bytes()[:100])
    with pytest.raises(BadImageError, match='000.jpg'):
        folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', bad_files='raise', **QUIET)
    with pytest.warns(BadImageWarning, match='ah/000.jpg'):
        dls = folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)
    assert list(dls.bad_files) == [src.resolve()] and 'not an image' in dls.bad_files[src.resolve()]
    assert src.resolve() not in dls.folder.sources.values() and not copy.exists()
    assert epoch(dls) > 0

def test_copy_damaged_where_the_check_cannot_see_is_rebuilt_at_load_time(tmp_path):
    path = large_folder(tmp_path/'data')
    dls = folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)
    copy = copies(dls.folder)['ah/000.jpg']
    good = copy.read_bytes()
    keep_size_and_time(copy, bytes(len(good)))                        # damaged during training, or so that ...
    assert read_folder(path, max_side=32, cache=tmp_path/'cache', **QUIET).stats['repaired'] == 0   # ... this passes it
    with pytest.warns(UserWarning, match='rebuilt from its source'):
        n = sum(len(xb) for xb,_ in dls.train) + sum(len(xb) for xb,_ in dls.valid)   # ... loading rebuilds it
    assert n == len(dls.train)*2 + len(dls.valid_ds) and copy.read_bytes() == good
    assert read_folder(path, max_side=32, cache=tmp_path/'cache', **QUIET).stats['examined'] == 0   # the manifest knows

def test_copy_and_source_bad_at_load_time_name_both(tmp_path):
    path = large_folder(tmp_path/'data')
    dls = folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)
    copy = copies(dls.folder)['ah/000.jpg']
    copy.write_bytes(b'x'); (path/'ah'/'000.jpg').write_bytes(b'y')     # both ruined during training
    opener = next(t for t in dls.train_ds.tls[0].tfms.fs if isinstance(t, OpenImage))
    with pytest.raises(OSError) as err: opener(copy)
    assert all(s in str(err.value) for s in (str(copy), str(path/'ah'/'000.jpg'), 'build the DataLoaders again'))
    with pytest.warns(BadImageWarning, match='ah/000.jpg'):              # as it says: the next build reports it
        folder_dls(path, size=16, bs=2, max_side=32, cache=tmp_path/'cache', **QUIET)

def test_heal_in_a_pickled_cache(tmp_path):
    "A loader worker (or an exported learner) has the cache without its entries: it reads the manifest to heal"
    path = large_folder(tmp_path/'data')
    data = read_folder(path, max_side=32, cache=tmp_path/'cache', **QUIET)
    restored = pickle.loads(pickle.dumps(data.cache))
    assert restored.entries == {} and len(pickle.dumps(data.cache)) < 1000
    copy = copies(data)['ah/001.jpg']
    good = copy.read_bytes(); copy.write_bytes(b'')
    assert restored.heal(copy) == copy and copy.read_bytes() == good
    assert restored.heal(path/'ah'/'001.jpg') is None                 # not a cached copy

# --- one cache, several processes

N_RACE = 60                       # images per class: enough writes for two unsynchronized processes to collide

def _build(path, cache, start, out, locking, rank=None, world=None, port=None, delay=0.):
    "One process: (join a gloo group,) wait for the others, update the cache, report what it saw"
    try:
        if not locking: folders._cache_lock = lambda *args, **kwargs: nullcontext()
        if rank is not None:
            import torch.distributed as dist
            dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
        start.wait(); time.sleep(delay)
        files = sorted(f for f in Path(path).rglob('*') if f.is_file())
        items,bad,stats = ImageCache(path, cache, max_side=32).update(files, progress=False)
        out.put((rank, 'ok', {str(k): str(v) for k,v in items.items()}, stats))
    except BaseException as e: out.put((rank, 'error', repr(e), None))

def _run_together(n, **kwargs) -> list:
    "Start `n` forked processes that begin their update at the same moment; their reports"
    ctx = multiprocessing.get_context('fork')                          # forked: no second import of fastai
    start,out = ctx.Barrier(n),ctx.Queue()
    procs = [ctx.Process(target=_build,
                         kwargs=dict(start=start, out=out, **{k: v(i) if callable(v) else v for k,v in kwargs.items()}))
             for i in range(n)]
    for p in procs: p.start()
    try: reports = [out.get(timeout=60) for _ in procs]
    finally:
        for p in procs: p.join(timeout=10); p.kill() if p.is_alive() else None
    assert all(r[1] == 'ok' for r in reports), reports
    return reports

@pytest.mark.parametrize('locking', [True, False], ids=['locked', 'side-by-side'])
def test_two_processes_build_one_cache_at_once(tmp_path, locking):
    path = class_folder(tmp_path/'data', {'ah': N_RACE, 'bv': N_RACE}, size=48, ext='jpg')
    for round in range(1 if locking else 3):                # unsynchronized writers collide within a few rounds
        cache = tmp_path/f'cache{round}'
        a,b = _run_together(2, path=path, cache=cache, locking=locking)
        assert a[2] == b[2] and len(a[2]) == 2*N_RACE                   # the same files to load, all good
        if locking: assert sorted([a[3]['examined'], b[3]['examined']]) == [0, 2*N_RACE]   # one built, one waited
        assert not [f.name for f in cache.rglob('.*') if f.name != folders._LOCK]            # no temporary file left
    fresh = read_folder(path, max_side=32, cache=tmp_path/'fresh', **QUIET)
    built = read_folder(path, max_side=32, cache=cache, **QUIET)
    # side by side, a copy the other process replaced after this one recorded it is rebuilt once; locked, nothing is
    assert built.stats['examined'] == built.stats['repaired'] and (built.stats['repaired'] == 0 or not locking)
    assert read_folder(path, max_side=32, cache=cache, **QUIET).stats['reused'] == 2*N_RACE
    read = lambda data: [Path(i).read_bytes() for i in data.train + data.valid]
    assert read(built) == read(fresh)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def test_rank0_builds_first_in_a_process_group(tmp_path):
    "Two gloo ranks; rank 0 arrives late, yet builds, and rank 1 waits and reuses"
    path = large_folder(tmp_path/'data', n=8, size=64)
    reports = sorted(_run_together(2, path=path, cache=tmp_path/'cache', locking=True, rank=lambda i: i, world=2,
                                   port=free_port(), delay=lambda i: 0.5 if i == 0 else 0.))
    assert [(r[0], r[3]['examined'], r[3]['reused']) for r in reports] == [(0, 16, 0), (1, 0, 16)]
    assert reports[0][2] == reports[1][2]

def test_who_waits_for_rank0(monkeypatch):
    assert folders._distributed_rank() is None                         # no process group
    monkeypatch.setattr(folders.dist, 'is_initialized', lambda: True)
    monkeypatch.setattr(folders.dist, 'get_world_size', lambda: 2)
    monkeypatch.setattr(folders.dist, 'get_rank', lambda: 1)
    assert folders._distributed_rank() == 1
    monkeypatch.setattr(folders.dist, 'get_world_size', lambda: 1)
    assert folders._distributed_rank() is None                         # a group of one waits for nobody

def test_lock_and_temporary_names_do_not_make_a_folder_a_cache(tmp_path):
    "A folder holding only progfast's own lock or temporary files is accepted; any other file is refused"
    path = large_folder(tmp_path/'data')
    (tmp_path/'c1').mkdir(); (tmp_path/'c1'/folders._LOCK).write_text('')
    (tmp_path/'c1'/'.manifest.json.123-0a1b2c3d.tmp').write_text('{')
    assert read_folder(path, max_side=32, cache=tmp_path/'c1', **QUIET).stats['cached'] == 6
    (tmp_path/'c2').mkdir(); (tmp_path/'c2'/'.manifest.json.tmp').write_text('{')
    with pytest.raises(ValueError, match='not a progfast cache'): read_folder(path, cache=tmp_path/'c2', **QUIET)

# --- MPO (multi-picture JPEGs from phones)

def test_mpo_is_decoded_in_draft_mode_and_cached_as_jpeg(tmp_path):
    path = class_folder(tmp_path/'data', {'ah': 3, 'bv': 3}, size=16)
    fn = path/'ah'/'phone.jpg'
    stripes_image(True, 400, 0).save(fn, format='MPO', save_all=True, append_images=[stripes_image(False, 400, 1)])
    assert Image.open(fn).format == 'MPO' and Image.open(fn).n_frames == 2
    assert OpenImage(60)(fn).size == (100, 100)                        # draft: 1/4 scale, as for a JPEG
    assert OpenImage(60)(fn, split_idx=1).size == (400, 400)
    data = read_folder(path, max_side=64, cache=tmp_path/'cache', **QUIET)
    copy = copies(data)['ah/phone.jpg']
    assert copy.suffix == '.jpg' and Image.open(copy).format == 'JPEG' and Image.open(copy).size == (64, 64)
    assert stripe_axis(Image.open(copy)) == 0                            # the first picture
