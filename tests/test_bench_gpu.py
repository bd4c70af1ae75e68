"The GPU benchmark's reduced CPU form (benchmarks/bench_gpu.py --cpu-smoke): every section's code path, in seconds."
import pandas as pd
import pytest
import torch
from conftest import load_script



@pytest.fixture(scope='module')
def bench(): return load_script('bench_gpu')


def test_settings_and_bad_arguments(bench):
    s = bench.setting(bench.parse_args(['--cpu-smoke']))
    assert s['device'] == 'cpu' and s['reduced'] and s['sections'] == list(bench.SECTIONS) and s['backend'] == 'eager'
    assert len(s['sizes']) == 4                                # the 4-size schedule
    g = bench.setting(bench.parse_args(['--cpu-smoke', '--sections', 'compile', '--repeats', '3']))
    assert g['sections'] == ['compile'] and g['repeats'] == 3
    with pytest.raises(SystemExit): bench.parse_args(['--sections', 'precision,warp'])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='no CUDA device'): bench.setting(bench.parse_args([]))
    assert bench.GPU['sizes'] == (128, 160, 192, 224) and set(bench.GPU['archs']) == {'resnet18', 'resnet50'}


def test_graph_counter_counts_graphs(bench):
    "Automatic dynamic shapes: a second size compiles once more (size marked dynamic), a third none"
    import torch._dynamo
    torch._dynamo.reset()
    counter = bench.GraphCounter('eager')
    model = torch.compile(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1)), backend=counter)
    for size in (8, 12, 16): model(torch.zeros(2, 3, size, size))
    torch._dynamo.reset()
    assert counter.graphs == 2 and counter.shapes[0] == '2x3x8x8'


@pytest.fixture(scope='module')
def smoke(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')/'gpu_cpu_quick.md'
    bench.main(['--cpu-smoke', '--out', str(out)])
    return out


def test_smoke_results(bench, smoke):
    md = smoke.read_text()
    for what in ('- command: `python benchmarks/bench_gpu.py --cpu-smoke --out', '- date: ', '- machine: ',
                 '- load average (1, 5, 15 min): ', '- versions: python ', 'Reduced CPU form', '## A. Precision',
                 '## B. Progressive vs fixed', '## C. torch.compile', '## D. Blur vs kornia'):
        assert what in md, what
    prec = [l for l in md.splitlines() if l.startswith(tuple(f'| {p} |' for p in bench.PRECISIONS))]
    assert len(prec) == len(bench.PRECISIONS) and all(l.endswith('| yes |') for l in prec)   # every loss finite
    prog = [l for l in md.splitlines() if l.startswith('| tiny CNN |')]
    assert len(prog) == 2 * 3                                  # memory and disk x fixed and two progressive
    assert all('*inconclusive*' in l for l in prog if 'progressive' in l)
    blur = smoke.with_name('blur_cpu_quick.md')
    assert blur.exists() and f"]({blur.name})" in md


def test_smoke_trials(bench, smoke):
    t = pd.read_csv(smoke.with_suffix('.csv'))
    b = t[t.section == 'progressive']
    assert len(b) == 2 * 3 * 2 and set(b.data) == {'memory', 'disk'}
    th = b[b.contender != 'fixed'].theoretical
    sizes = bench.SMOKE['sizes']
    assert th.to_numpy() == pytest.approx(sum((s/sizes[-1])**2 for s in sizes) / len(sizes))
    a = t[t.section == 'precision']
    assert sorted(set(a.contender)) == sorted(bench.PRECISIONS) and a.finite.all()
    c = t[t.section == 'compile'].set_index('contender')
    graphs = c.loc["torch.compile (eager)", 'graphs']
    assert 1 <= graphs <= 6                                    # bounded: not one graph per size and mode
