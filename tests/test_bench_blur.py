"The blur benchmark (benchmarks/bench_blur.py): the harness's interleaving, agreement with torchvision (and kornia), its quick path."
import re
from pathlib import Path
import pytest
from conftest import load_script

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope='module')
def bench(): return load_script('bench_blur')


def test_timed_contenders_rotate(bench):
    import torch
    calls = []
    t = bench.timed({'a': lambda: calls.append('a'), 'b': lambda: calls.append('b'), 'c': lambda: calls.append('c')}, 3,
                    torch.device('cpu'))
    assert calls[:3] == ['a', 'b', 'c']                        # the untimed warm-up: each contender once
    assert calls[3:] == ['a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']
    assert (t.seconds > 0).all() and list(t.columns[:3]) == ['repeat', 'position', 'contender']


def test_agreement_with_torchvision_and_kornia(bench):
    import torch
    torch.manual_seed(0)
    x = torch.rand(4, 3, 24, 24)
    rows = bench.agreement(x, (0.5, 2.0), torch.tensor([0.1, 0.5, 1.0, 2.0]))
    assert [r[1] for r in rows] == [5, 13, 13]                 # kernel 2*ceil(3*sigma)+1
    assert all(r[3] <= bench.AGREE_TOL for r in rows)
    if bench.kornia is None: assert all(r[2] != r[2] for r in rows)   # NaN: not measured
    else: assert all(r[2] <= bench.AGREE_TOL for r in rows)


@pytest.fixture(scope='module')
def quick(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')/'blur_quick.md'
    bench.main(['--quick', '--repeats', '3', '--threads', '1', '--out', str(out)])
    return out


def test_quick_results_file(bench, quick):
    md = quick.read_text()
    for what in ('- command: `python benchmarks/bench_blur.py --quick --repeats 3 --threads 1 --out', '- date: ',
                 '- machine: ', '- load average (1, 5, 15 min): ', '- versions: python ', '## Agreement',
                 '## Speed: one sigma for the batch', '## Speed: one sigma per image', '## Cost in a resnet18 training step',
                 '## Targets', 'CPU-specific'):
        assert what in md, what
    assert '| agreement with kornia and torchvision <= 1e-5 |' in md and re.search(r'<= 1e-5 \| [0-9.e+-]+( \(torchvision only\))? \| met \|', md)
    cost = [l for l in md.splitlines() if l.startswith('| blur, ')]
    assert len(cost) == 3 and all(l.rstrip(' |').endswith('*inconclusive*') for l in cost)   # 3 step repeats: no 90% interval
    if bench.kornia is None: assert 'kornia is not installed' in md and '| kornia not installed | not measured |' in md
    else:
        rows = [l for l in md.splitlines() if l.startswith('| kornia RandomGaussianBlur(p=') and '%)' in l]
        assert len(rows) == 3                                   # p=1, flushed, p=0.4, each with its interval
        assert all(len(l.split(' | ')[1].split(', ')) == 3 for l in rows)   # three per-repeat ratios
    assert quick.with_suffix('.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_without_kornia(bench, monkeypatch):
    "Where kornia is not installed its rows are left out and its differences are NaN, not zero"
    import torch
    monkeypatch.setattr(bench, 'kornia', None)
    x = torch.rand(2, 3, 16, 16)
    rows = bench.agreement(x, (1.0,), torch.tensor([0.5, 1.0]))
    assert all(r[2] != r[2] for r in rows) and all(r[3] <= bench.AGREE_TOL for r in rows)
    assert not any(k.startswith('kornia') for k in bench.fixed_sigma_contenders(x))
    assert set(bench.per_image_contenders(x, torch.device('cpu'))) == {bench.OURS_1, bench.OURS_04}


def test_time_limit(bench):
    "--minutes: past the limit a comparison runs its first two repeats only, and says so"
    import time, torch
    from benchlib import Budget
    budget = Budget(0.01, start=time.perf_counter() - 60)
    t = bench.timed({'a': lambda: None, 'b': lambda: None}, 5, torch.device('cpu'), budget, 'one sigma per image')
    assert sorted(set(t.repeat)) == [0, 1] and budget.cut == ['one sigma per image: 2 of 5 repeats']


def test_quick_results_never_overwrite_the_full_ones(bench, monkeypatch, tmp_path):
    "--quick without --out writes blur_<device>_quick.md (ignored by git), never the committed blur_<device>.md"
    written = {}
    monkeypatch.setattr(bench, 'ROOT', tmp_path)
    monkeypatch.setattr(bench, 'write_files', lambda folder, files: written.update({str(folder/k): v for k,v in files.items()}))
    monkeypatch.setattr(bench, 'save_plot', lambda *a, **k: None)
    bench.main(['--quick', '--repeats', '2', '--threads', '1'])
    assert list(written) == [str(tmp_path/'benchmarks'/'results'/'blur_cpu_quick.md')]
