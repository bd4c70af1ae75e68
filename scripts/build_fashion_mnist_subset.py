#!/usr/bin/env python
"""Build progfast's embedded dataset: a class-balanced, seeded subset of Fashion-MNIST.

Fashion-MNIST (Xiao, Rasul & Vollgraf, Zalando Research, 2017; MIT licence) is read from its original idx .gz files,
by default those of Debian's `dataset-fashion-mnist` package. The subset takes `--n-train` images per class from the
official train split and `--n-test` per class from the official test split, chosen with numpy's `default_rng(seed)`
and kept in their original order. It is written as an .npz whose zip entries carry a fixed timestamp, so the same
inputs give the same bytes.

    python scripts/build_fashion_mnist_subset.py [SRC_DIR] [--out progfast/datasets/fashion_mnist_subset.npz]
"""
import argparse, gzip, hashlib, io, zipfile
from pathlib import Path
import numpy as np

DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
REPO = Path(__file__).resolve().parent.parent
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

def read_idx(path):
    "An idx file (gzipped) as a numpy array: magic = 0, 0, dtype code, number of dimensions; then big-endian sizes"
    data = gzip.open(path, 'rb').read()
    if data[:2] != b'\0\0' or data[2] != 0x08: raise ValueError(f"{path} is not an unsigned-byte idx file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4+4*i:8+4*i], 'big') for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4+4*ndim).reshape(shape)

def read_split(src, prefix):
    x,y = read_idx(src/f'{prefix}-images-idx3-ubyte.gz'),read_idx(src/f'{prefix}-labels-idx1-ubyte.gz')
    if len(x) != len(y): raise ValueError(f"{prefix}: {len(x)} images but {len(y)} labels")
    return x,y

def balanced_indices(y, n_per_class, rng):
    "`n_per_class` indices of each class, drawn without replacement, returned in their original order"
    picks = [rng.choice(np.flatnonzero(y == c), n_per_class, replace=False) for c in range(len(CLASSES))]
    return np.sort(np.concatenate(picks))

def save_npz_reproducibly(path, arrays):
    "Like `np.savez_compressed`, but every zip entry carries the same fixed timestamp"
    with zipfile.ZipFile(path, 'w', compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name,arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f'{name}.npy', date_time=ZIP_EPOCH)
            info.compress_type,info.external_attr = zipfile.ZIP_DEFLATED,0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)

def sha256(b): return hashlib.sha256(b).hexdigest()

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('src', nargs='?', default=DEBIAN_DIR, help='folder holding the four Fashion-MNIST idx .gz files')
    p.add_argument('--out', default=str(REPO/'progfast'/'datasets'/'fashion_mnist_subset.npz'))
    p.add_argument('--n-train', type=int, default=600, help='train images per class')
    p.add_argument('--n-test', type=int, default=100, help='test images per class')
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    src,rng = Path(a.src),np.random.default_rng(a.seed)
    (xtr,ytr),(xte,yte) = read_split(src, 'train'),read_split(src, 't10k')
    itr,ite = balanced_indices(ytr, a.n_train, rng),balanced_indices(yte, a.n_test, rng)
    arrays = dict(x_train=xtr[itr], y_train=ytr[itr], x_test=xte[ite], y_test=yte[ite],
                  classes=np.array(CLASSES), train_idx=itr.astype(np.int32), test_idx=ite.astype(np.int32))
    save_npz_reproducibly(a.out, arrays)
    for k,v in arrays.items(): print(f"{k:10s} {str(v.dtype):6s} {str(v.shape):15s} sha256 {sha256(v.tobytes())}")
    out = Path(a.out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes, sha256 {sha256(out.read_bytes())})")

if __name__ == '__main__': main()
