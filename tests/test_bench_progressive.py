"The progressive-training benchmark (benchmarks/bench_progressive.py): per-repeat pairing, verdicts, and its quick path."
import numpy as np
import pandas as pd
import pytest
from conftest import load_script





@pytest.fixture(scope='module')
def bench(): return load_script('bench_progressive')


def test_realized_is_paired_within_each_repeat(bench):
    "realized = progressive / fixed of the SAME repeat; a ratio of medians timed apart would say 25/20 = 1.25"
    from benchlib import realized_pairs
    from progfast.studies.comparison import summarize_pairs
    t = pd.DataFrame(dict(repeat=[0, 0, 1, 1, 2, 2], contender=['fixed', 'progressive'] * 3,
                          seconds=[10., 25., 20., 2., 30., 27.], theoretical=[1., .5] * 3))
    realized,rt = realized_pairs(t)
    assert realized.sort_values('repeat')['value'].tolist() == pytest.approx([2.5, 0.1, 0.9])
    assert rt.sort_values('repeat')['value'].tolist() == pytest.approx([5., 0.2, 1.8])
    assert summarize_pairs(realized).iloc[0]['median'] == pytest.approx(0.9)
    # groups (setting, mode) are paired within themselves, each with its own theoretical ratio
    t2 = pd.concat([t.assign(mode='batch'), t.assign(mode='loader', seconds=t.seconds * ([1, 2] * 3),
                                                    theoretical=[1., .25] * 3)], ignore_index=True)
    realized,rt = realized_pairs(t2, within=['mode'])
    got = rt.set_index(['mode', 'repeat'])['value']
    assert got['batch'].tolist() == pytest.approx([5., 0.2, 1.8])
    assert got['loader'].tolist() == pytest.approx([20., 0.8, 7.2])


def _trials(ratios: dict, th: float = 0.5) -> pd.DataFrame:
    "Made-up trials of one setting: fixed takes 10 s times a drift per repeat; each contender `ratio * th` of that"
    rows = []
    for mode in sorted({m for m,_ in ratios}):
        for rep in range(5):
            rows.append(dict(setting='24 -> 32 px', mode=mode, repeat=rep, contender='fixed', seconds=10 * (1 + 0.3*rep), theoretical=1.))
    for (mode,method),rs in ratios.items():
        for rep,r in enumerate(rs):
            rows.append(dict(setting='24 -> 32 px', mode=mode, repeat=rep, contender=method, seconds=10 * (1 + 0.3*rep) * r * th,
                             theoretical=th))
    return pd.DataFrame(rows)


def test_verdicts_met_missed_and_inconclusive(bench):
    t = _trials({('batch', 'progressive'): [1.00, 1.02, 1.05, 0.98, 1.01],            # all under 1.10: met
                 ('batch', 'progressive + batch_scale'): [1.00, 1.20, 1.00, 1.05, 0.95],  # interval crosses 1.10
                 ('loader', 'progressive'): [1.30, 1.25, 1.40, 1.31, 1.22]})           # all over: missed
    lines,rt,summary = bench.khor_tables(t, dict(bench.FULL))
    v = summary.set_index(['mode', 'contender'])['verdict']
    assert v['batch', 'progressive'] == 'met'
    assert v['batch', 'progressive + batch_scale'] == 'inconclusive'
    assert v['loader', 'progressive'] == 'missed'
    assert sum('*inconclusive*' in l for l in lines) == 1 and sum('**missed**' in l for l in lines) == 1
    # the per-repeat values in the table are the made-up ratios, in repeat order
    assert any('1.000, 1.200, 1.000, 1.050, 0.950' in l for l in lines)


@pytest.fixture(scope='module')
def quick(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp('bench')/'progressive_quick.md'
    bench.main(['--quick', '--out', str(out)])
    return out


def test_quick_results_file(quick):
    md = quick.read_text()
    for what in ('- command: `python benchmarks/bench_progressive.py --quick --out', '- date: ', '- machine: ',
                 '- load average (1, 5, 15 min): ', ' before, ', ' after', '- versions: python ', 'progfast ',
                 '## 1. Realized vs theoretical', '## 1b. resnet18', '## 1c. Accuracy at equal epochs', '## 2. Overhead',
                 '## 3. Cost of RecalibrateBN', '## 4. Loading', 'target <= 1.10'):
        assert what in md, what
    rows = [l for l in md.splitlines() if l.startswith(('| 24 -> 32 px |', '| 11 -> 28 px |'))]
    speed = [l for l in rows if l.count('|') == 11]
    assert len(speed) == 2 * 2 * 2                              # settings x modes x progressive contenders
    assert all(l.rstrip(' |').endswith('inconclusive*') for l in speed)   # 2 repeats: too few for a 90% interval
    assert len([l for l in rows if l.count('|') == 12]) == 2 * 2 * 3       # the accuracy table: every contender
    png = quick.with_suffix('.png')
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and f"]({png.name})" in md


def test_quick_trials_interleaved_and_theoretical(bench, quick):
    t = pd.read_csv(quick.with_suffix('.csv'))
    k = t[t.section.astype(str) == '1']
    assert len(k) == 2 * 2 * 3 * 2                              # settings x modes x contenders x repeats
    for _,g in k.groupby(['setting', 'mode']):
        order = {r: list(gg.sort_values('position').contender) for r,gg in g.groupby('repeat')}
        assert order[0] == list(bench.METHODS) and order[1] == order[0][1:] + order[0][:1]   # rotated by one
    th = k[k.contender != 'fixed'].groupby('setting').theoretical
    assert th.min()['11 -> 28 px'] == pytest.approx(np.mean([(s/28)**2 for s in (11, 17, 22, 28)]))
    assert th.max()['11 -> 28 px'] == pytest.approx(th.min()['11 -> 28 px'])   # batch_scale: same pixels per image
    assert th.min()['24 -> 32 px'] == pytest.approx(np.mean([(s/32)**2 for s in (24, 24, 26, 26)]))
    assert (k.seconds > 0).all() and k.accuracy_bn.between(0, 1).all()
    load = t[t.section.astype(str) == '4']
    assert set(load.contender) == {'64 px|draft', '256 px|draft', '64 px|full', '256 px|full'}
    assert len(load) == 2 * 4 * 2                               # folders x contenders x repeats
