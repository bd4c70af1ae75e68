"What the benchmark scripts share (benchmarks/benchlib.py): the time limit `--minutes` through the one harness."
import sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT/'benchmarks')]
import benchlib                                                  # noqa: E402
from progfast.studies.comparison import run_interleaved                 # noqa: E402


def _contenders(calls):
    def make(name):
        def go(r):
            calls.append((name, r))
            return dict(seconds=1.)
        return go
    return {k: make(k) for k in 'abc'}


def test_no_limit_is_the_harness():
    c1,c2 = [],[]
    t1 = benchlib.Budget().interleaved('x', _contenders(c1), 4)
    t2 = run_interleaved(_contenders(c2), 4)
    assert c1 == c2 and t1.drop(columns='wall_seconds').equals(t2.drop(columns='wall_seconds'))


def test_limit_stops_new_repeats_after_the_first_two():
    calls = []
    b = benchlib.Budget(0.5, start=time.perf_counter() - 60)    # 1 minute ago: the half-minute limit is spent
    t = b.interleaved('section 9', _contenders(calls), [10, 11, 12, 13, 14])
    assert calls[0] == ('a', 10)                                # the untimed warm-up, once
    assert [n for n,_ in calls[1:]] == list('abc') + list('bca')  # repeats 10 and 11, rotated as the harness does
    assert sorted(set(t.repeat)) == [10, 11] and t.groupby('repeat').position.apply(list).tolist() == [[0, 1, 2]] * 2
    assert b.cut == ['section 9: 2 of 5 repeats']
    assert 'section 9: 2 of 5 repeats' in ' '.join(b.lines()) and '--minutes 0.5' in ' '.join(b.lines())
    # a limit not yet reached cuts nothing
    b2 = benchlib.Budget(60)
    assert len(b2.interleaved('y', _contenders([]), 5)) == 15 and b2.cut == [] and b2.lines() == []


def test_run_header_says_what_was_cut():
    run = benchlib.Run('bench_x.py', ['--minutes', '0.01'], 1, minutes=0.01)
    run.budget.start -= 60
    run.budget.interleaved('2. overhead', _contenders([]), 3, warmup=False)
    assert any('2. overhead: 2 of 3 repeats' in l for l in run.header())
    assert not any('Cut short' in l for l in benchlib.Run('bench_x.py', [], 1).header())


@pytest.mark.parametrize('bad', [0, -1, 'ten', float('nan')])
def test_bad_limit(bad):
    with pytest.raises(ValueError, match='positive number of minutes'): benchlib.Budget(bad)


def test_run_records_the_versions_and_commit_it_started_with(monkeypatch):
    "A long run reported the commit checked out when it ended: a commit made meanwhile would have been recorded"
    monkeypatch.setattr(benchlib, 'versions', lambda: 'progfast 0.0.1 (commit aaaaaaa)')
    run = benchlib.Run('bench_x.py', [], threads=1)
    monkeypatch.setattr(benchlib, 'versions', lambda: 'progfast 0.0.1 (commit bbbbbbb)')
    header = '\n'.join(run.header())
    assert 'commit aaaaaaa' in header and 'bbbbbbb' not in header
