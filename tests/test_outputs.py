"""`make outputs` (scripts/run_outputs.py): notebooks run for real, outputs and the run's facts written into them.

Each test builds a tiny notebook folder in a scratch git repository, so nothing under nbs/ is run or written.
"""
import json, subprocess, sys
from pathlib import Path
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO/'scripts'))
import run_outputs as ro   # noqa: E402  (a script, not a package module)

def make_nb(path, *cells):
    "Write a notebook whose cells are ('md'|'code', source) pairs"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == 'md' else nbformat.v4.new_code_cell(s) for k,s in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)

def git(repo, *args): subprocess.run(['git', *args], cwd=repo, check=True, capture_output=True)

TUTORIAL = [('md', '# A tutorial\n\n> It trains'), ('code', 'from progfast.testing import run_mode'),
            ('code', 'MODE = run_mode()\nprint(f"run mode: {MODE}")')]

@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch):
    "The tests run beside other tests: the check before a run sees a quiet machine unless a test says otherwise"
    monkeypatch.setattr(ro, 'load', lambda: 0.1)
    monkeypatch.setattr(ro, 'WAIT_S', 0)

@pytest.fixture
def repo(tmp_path):
    "A committed scratch repository with a module notebook and a tutorial under nbs/"
    nbs = tmp_path/'nbs'
    make_nb(nbs/'00_core.ipynb', ('md', '# Core\n\n> Core things'), ('code', 'x = 6 * 7\nx'),
            ('code', '#| eval: false\nraise ValueError("never run")'), ('code', '#| slow\nprint("slow cells run too")'),
            ('code', "import sys\nfor p in (10, 50, 100): print(f'{p}%', end='\\r')\nprint(); print('done', file=sys.stderr)"))
    make_nb(nbs/'tutorials'/'01_t.ipynb', *TUTORIAL)
    git(tmp_path, 'init', '-q'); git(tmp_path, 'add', '.')
    git(tmp_path, '-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-qm', 'notebooks')
    return tmp_path

def texts(nbs): return {p: p.read_text() for p in sorted(nbs.rglob('*.ipynb'))}

def test_outputs_written_with_the_run_and_a_note(repo):
    nbs = repo/'nbs'
    written = ro.run_outputs('offline', nbs, log=lambda *a: None)
    assert sorted(written) == sorted(nbs.rglob('*.ipynb'))
    sha = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=repo, capture_output=True, text=True).stdout.strip()
    core,tut = (json.loads((nbs/p).read_text()) for p in ('00_core.ipynb', 'tutorials/01_t.ipynb'))
    for nb in (core, tut):
        run = nb['metadata']['progfast']
        assert run['mode'] == 'offline' and run['commit'] == sha and run['seconds'] >= 0 and run['versions']['torch']
        assert nb['cells'][1]['id'] == ro.NOTE_ID and '**offline** mode at commit' in ''.join(nb['cells'][1]['source'])
        assert sha[:10] in ''.join(nb['cells'][1]['source'])
        assert ro.output_problems(nb, Path('tutorials/01_t.ipynb')) == []
    outs = {''.join(c['source']).splitlines()[0]: c['outputs'] for c in core['cells'] if c['cell_type'] == 'code'}
    assert outs['x = 6 * 7'][0]['data']['text/plain'] == ['42'] or outs['x = 6 * 7'][0]['data']['text/plain'] == '42'
    assert outs['#| eval: false'] == []                                                  # not run
    assert 'slow cells run too' in ''.join(outs['#| slow'][0]['text'])
    progress = outs['import sys']                     # a progress bar redrawn with \r keeps what a terminal shows last
    assert [(o['name'], ''.join(o['text'])) for o in progress] == [('stdout', '100%\n'), ('stderr', 'done\n')]
    assert 'run mode: offline' in ''.join(tut['cells'][3]['outputs'][0]['text'])
    load = core['metadata']['progfast']['load']                # measured in the notebook's own process, before and after
    assert len(load) == 2 and min(load) >= 0
    assert f"1-minute load {load[0]:.1f} before and {load[1]:.1f} after" in ''.join(core['cells'][1]['source'])
    # nbdev-clean keeps the outputs, the metadata and the note: cleaning changes nothing
    before = texts(nbs)
    subprocess.run([str(Path(sys.executable).parent/'nbdev-clean'), '--fname', str(nbs)], cwd=REPO, check=True, capture_output=True)
    assert texts(nbs) == before
    # a second run replaces the note and the outputs instead of adding to them
    ro.run_outputs('offline', nbs, given=[nbs/'tutorials'/'01_t.ipynb'], allow_dirty=True, log=lambda *a: None)
    tut = json.loads((nbs/'tutorials'/'01_t.ipynb').read_text())
    assert [c['id'] for c in tut['cells']].count(ro.NOTE_ID) == 1 and len(tut['cells']) == len(TUTORIAL) + 1
    assert tut['metadata']['progfast']['commit'] == sha + '+dirty' and 'plus uncommitted changes' in ''.join(tut['cells'][1]['source'])

def test_refusals_leave_every_notebook_as_it_was(repo):
    nbs = repo/'nbs'
    before = texts(nbs)
    with pytest.raises(ro.OutputsError, match='refusing to write quick-mode outputs'): ro.run_outputs('quick', nbs)
    with pytest.raises(ro.OutputsError, match="mode must be one of"): ro.run_outputs('reduced', nbs)
    # a tutorial that does not follow the mode it is given, and a module notebook whose cell fails
    make_nb(nbs/'tutorials'/'02_fixed.ipynb', ('md', '# Fixed\n\n> x'), ('code', "MODE = 'quick'"))
    make_nb(nbs/'01_bad.ipynb', ('md', '# Bad\n\n> x'), ('code', '1/0'))
    with pytest.raises(ro.OutputsError, match='differs from commit'): ro.run_outputs('offline', nbs)   # not committed
    with pytest.raises(ro.OutputsError) as e: ro.run_outputs('offline', nbs, allow_dirty=True, log=lambda *a: None)
    msg = str(e.value)
    assert '01_bad.ipynb failed' in msg and 'ZeroDivisionError' in msg
    assert "tutorials/02_fixed.ipynb: the tutorial ran in mode 'quick', not 'offline'" in msg
    (nbs/'01_bad.ipynb').unlink(); (nbs/'tutorials'/'02_fixed.ipynb').unlink()
    assert texts(nbs) == before                                  # nothing written
    # quick mode is allowed into a scratch copy, which the output check then rejects
    out = repo/'scratch'
    ro.run_outputs('quick', nbs, out=out, log=lambda *a: None)
    assert texts(nbs) == before
    tut = json.loads((out/'tutorials'/'01_t.ipynb').read_text())
    assert ro.output_problems(tut, Path('tutorials/01_t.ipynb')) == ["tutorials/01_t.ipynb: outputs from a 'quick' run"]
    assert "tutorials/01_t.ipynb: outputs from a 'quick' run" in ro.check_notebooks(out)     # what `--check` reports
    assert all('no recorded run' in p for p in ro.check_notebooks(nbs)) and len(ro.check_notebooks(nbs)) == 2

def test_output_problems_name_what_is_missing():
    nb = dict(metadata={}, cells=[dict(cell_type='code', id='a', source='1', outputs=[], metadata={})])
    assert 'no recorded run' in ro.output_problems(nb, Path('tutorials/t.ipynb'))[0]
    run = dict(mode='offline', commit='0123456789abcdef', date='2026-12-02T10:00:00+00:00', device='CPU', seconds=3.0)
    nb['metadata']['progfast'] = run
    problems = ro.output_problems(nb, Path('tutorials/t.ipynb'))
    assert any('note at the top does not match' in p for p in problems) and any('no outputs' in p for p in problems)
    nb['cells'].insert(0, dict(cell_type='markdown', id=ro.NOTE_ID, source=ro.note_text(run), metadata={}))
    nb['cells'][1]['outputs'] = [dict(output_type='stream', name='stdout', text='1')]
    assert ro.output_problems(nb, Path('tutorials/t.ipynb')) == []


def test_a_busy_machine_or_a_second_run_is_refused(repo, monkeypatch):
    nbs = repo/'nbs'
    before = texts(nbs)
    monkeypatch.setattr(ro, 'load', lambda: 5.0)
    with pytest.raises(ro.OutputsError, match=r'the machine is busy \(1-minute load 5.00'): ro.run_outputs('offline', nbs)
    assert texts(nbs) == before
    monkeypatch.setattr(ro, 'load', lambda: 0.1)
    with ro.only_run(repo/'.cache'/'outputs.lock'):                       # another run holds the lock
        with pytest.raises(ro.OutputsError, match='another `make outputs`'): ro.run_outputs('offline', nbs)
    assert texts(nbs) == before
    monkeypatch.setattr(ro, 'load', lambda: 5.0)
    written = ro.run_outputs('offline', nbs, given=[nbs/'00_core.ipynb'], allow_busy=True, log=lambda *a: None)
    assert '1-minute load' in ''.join(json.loads(written[0].read_text())['cells'][1]['source'])
