"""README.md is generated from nbs/index.ipynb (`make readme`, scripts/make_readme.py): `make test` fails when stale."""
import re, sys
from pathlib import Path
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO/'scripts'))
import make_readme as mr   # noqa: E402  (a script, not a package module)

def test_readme_is_generated_from_index():
    diff = mr.stale_diff()
    assert not diff, f"README.md is stale: run `make readme` and commit README.md. Differences:\n{diff[:6000]}"

def index_markdown() -> str:
    return '\n'.join(c.source for c in nbformat.read(REPO/'nbs'/'index.ipynb', as_version=4).cells)

def test_index_shows_the_committed_demo_table():
    "The demo's table in index.ipynb is the one in its results file, so the README cannot drift from the run"
    results = REPO/'benchmarks'/'results'/'khor_demo_cpu.md'
    table = re.search(r'^\|.*?(?=\n\n|\Z)', results.read_text(), re.M | re.S).group(0).strip()
    assert table in index_markdown(), f"the table of {results.name} is not in nbs/index.ipynb; copy it there:\n{table}"

def test_index_images_exist_in_the_checkout():
    "Images are linked by their GitHub URL (they show on GitHub, PyPI and the site); each must exist here"
    raw = 'https://raw.githubusercontent.com/progfast/progfast/main/'
    urls = re.findall(r'!\[[^\]]*\]\(([^)\s]+)\)', index_markdown())
    assert urls, "index.ipynb shows no image (the demo's curves)"
    missing = [u for u in urls if u.startswith(raw) and not (REPO/u[len(raw):]).is_file()]
    assert not missing, f"images linked from index.ipynb that are not in the repository: {missing}"

def write_nb(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == 'md' else nbformat.v4.new_code_cell(s) for k,s in cells]
    nbformat.write(nb, path)
    return path

def test_render_and_the_staleness_check(tmp_path):
    fn = write_nb(tmp_path/'index.ipynb', ('md', '# Tiny\n\n> One line'), ('code', '#| hide\nsecret = 1'),
                  ('md', 'See [the quickstart](tutorials/01_q.ipynb) and [this](#tiny); ![x](https://example.org/x.png)'),
                  ('code', 'print(1 + 1)'))
    nb = nbformat.read(fn, as_version=4)
    nb.cells[3].outputs = [nbformat.v4.new_output('stream', name='stdout', text='2\n')]
    nbformat.write(nb, fn)
    md = mr.render(fn)
    assert md.startswith(mr.HEADER + '# Tiny\n\n> One line\n')
    assert 'secret' not in md and '[the quickstart](nbs/tutorials/01_q.ipynb)' in md and '(#tiny)' in md
    assert '```python\nprint(1 + 1)\n```' in md and '2' in md.split('print(1 + 1)')[1]
    readme = tmp_path/'README.md'
    readme.write_text(md)
    assert mr.stale_diff(readme, fn) == ''
    readme.write_text(md.replace('One line', 'An edited line'))
    diff = mr.stale_diff(readme, fn)
    assert '-> An edited line' in diff and '+> One line' in diff
    write_nb(fn, ('md', '# Tiny\n\n> x'), ('md', '![plot](../benchmarks/results/a.png)'))
    with pytest.raises(ValueError, match='local paths'): mr.render(fn)
    write_nb(fn, ('md', 'no title'))
    with pytest.raises(ValueError, match='must open with a markdown cell'): mr.render(fn)
