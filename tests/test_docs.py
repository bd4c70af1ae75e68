"""The documentation site: `scripts/build_docs.py` renders it from `nbs/` (their committed outputs; it runs nothing),
a real headless browser checks it: every page's title and navigation, images (none broken, the Colab badge included:
offline it is text), internal links, formulas typeset by the site's own MathJax, on every tutorial page a run in
the offline or full mode (`make outputs`), never a quick one, the search box (on every page; typing a word finds the
page that has it, served or from `file://`), one API entry per name on the whole site, and tables and code that fit
the page (a wide table scrolls, code wraps).

The browser is Debian's `chromium` with its `chromedriver`, driven by Selenium (never a downloaded browser), started as
`../shared/ENV.md` describes. `make test-docs` installs them first. The browser tests skip, saying why, only when no
chromium/chromedriver can be found; with `PROGFAST_REQUIRE_BROWSER=1` (set by `make test-docs` and CI) they fail instead.
The site is served from 127.0.0.1 on a free port.
"""
import json, os, re, shutil, subprocess, sys, tempfile, threading
from collections import Counter
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO/'scripts'/'build_docs.py'
NBS = Path(os.environ.get('PROGFAST_DOCS_NBS', REPO/'nbs')).resolve()     # the notebooks the site is built from
sys.path.insert(0, str(SCRIPT.parent))
import build_docs as bd   # noqa: E402  (scripts, not package modules)
import run_outputs as ro  # noqa: E402

CHROME_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                '--disable-background-networking', '--disable-component-update', '--disable-sync',
                '--window-size=1280,900']

# ------------------------------------------------------------------------------------------------------------ helpers

def run_build(out, nbs=None, n_workers=2, timeout=900):
    "Run the build script as `make docs` does; the finished process"
    cmd = [sys.executable, str(SCRIPT), '--out', str(out), '--n-workers', str(n_workers)]
    if nbs is not None: cmd += ['--nbs', str(nbs)]
    env = dict(os.environ, OMP_NUM_THREADS='1', MPLBACKEND='Agg', HF_HUB_OFFLINE='1')
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)

def notebook_sources():
    "The notebooks under nbs/ the build must turn into pages, as nbdev finds them"
    return bd.find_notebooks(NBS)

def title_and_description(nb_path):
    "The `# Title` and first `> description` line of a notebook's first markdown cell, read from the source"
    nb = nbformat.read(nb_path, as_version=4)
    md = next(c.source for c in nb.cells if c.cell_type == 'markdown')
    title = re.search(r'^#\s+(.+?)\s*$', md, re.M).group(1)
    return title,re.findall(r'^>\s*(.*)$', md, re.M)

_re_plot = re.compile(r'\bplt\.|\.plot\(|show_batch\(|show_images?\(|show_results\(|\.show\(|plot_[a-z_]*\(')

def runs_a_plot(nb_path):
    "Does a cell that the tests run and the docs show call a plotting function? (read from the source, not the site)"
    skip = set(bd.skipped_test_flags())
    for c in nbformat.read(nb_path, as_version=4).cells:
        if c.cell_type != 'code': continue
        dirs = {m.group(1) for m in re.finditer(r'^#\|\s*([\w-]+)', c.source, re.M)}
        opts = dict(re.findall(r'^#\|\s*([\w-]+)\s*:\s*(\S+)', c.source, re.M))
        if dirs & (skip | {'hide', 'export', 'exporti'}) or opts.get('eval') == 'false' or opts.get('output') == 'false':
            continue
        if _re_plot.search(c.source): return True
    return False

def make_nb(path, *cells, run=None):
    "Write a notebook whose cells are ('md'|'code', source) or ('code', source, outputs) tuples, with a recorded `run`"
    nb = nbformat.v4.new_notebook()
    for k,src,*outs in cells:
        if k == 'md': nb.cells.append(nbformat.v4.new_markdown_cell(src))
        else:
            c = nbformat.v4.new_code_cell(src)
            c.outputs = [nbformat.from_dict(o) for o in (outs[0] if outs else [])]
            nb.cells.append(c)
    if run is not None:                      # what `make outputs` adds: the metadata and the note under the title
        nb.metadata['progfast'] = run
        nb.cells.insert(1, nbformat.from_dict(dict(cell_type='markdown', id=ro.NOTE_ID, metadata={}, source=ro.note_text(run))))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)

def a_run(mode='offline'):
    return dict(mode=mode, commit='0123456789abcdef0123456789abcdef01234567', date='2026-12-02T10:00:00+00:00',
                device='CPU: 2 cores', seconds=12.0, versions={})

def stdout(text): return dict(output_type='stream', name='stdout', text=text)

def png_output():
    "A display_data output holding a small real PNG plot"
    import base64, io
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig,ax = plt.subplots(figsize=(2, 1.5)); ax.plot([1, 3, 2])
    buf = io.BytesIO(); fig.savefig(buf, format='png'); plt.close(fig)
    return dict(output_type='display_data', metadata={}, data={'image/png': base64.b64encode(buf.getvalue()).decode(),
                                                                'text/plain': '<Figure>'})

# A class and a method patched onto it in export cells, the method's `show_doc` also called by hand: nbdev adds its own
# `show_doc` for both, so the processed notebook has `Thing.go` twice (`add_show_docs`)
API_CELLS = [('code', 'from fastcore.basics import patch'),
             ('code', '#| export\nclass Thing:\n    "A thing"\n    def __init__(self, x=1): self.x = x'),
             ('code', '#| export\n@patch\ndef go(self:Thing, where:str=\'home\'):\n    "Go somewhere"\n    return where'),
             ('code', 'show_doc(Thing.go)')]

def colab_cells(rel):
    "The two cells every tutorial starts with (after its title)"
    return [('md', f'[![Open In Colab]({bd.COLAB_BADGE_IMG})]({bd.colab_url(Path(rel))})'),
            ('code', "import sys\nif 'google.colab' in sys.modules:\n    !pip install -q git+https://github.com/progfast/progfast")]

# ----------------------------------------------------------------------------------------- no browser needed

def test_pandoc_ids_match_nbdev_doc_links():
    assert bd.pandoc_id('RandomBlur.draw') == 'randomblur.draw'
    assert bd.pandoc_id('Learner.fit_progressive') == 'learner.fit_progressive'
    assert bd.pandoc_id('The kernel, in 1-D!') == 'the-kernel-in-1-d'
    assert bd.pandoc_id('2. Results') == 'results'
    assert bd.pandoc_id('§') == 'section'

def test_pandoc_markdown_links_and_divs():
    md = bd.pandoc_markdown('[source](https://x.org/a.py#L3){target="_blank" style="float:right"}')
    assert md == '<a href="https://x.org/a.py#L3" target="_blank" style="float:right">source</a>'
    md = bd.pandoc_markdown('::: {.callout-tip}\nUse `lr_find`.\n:::')
    assert md.startswith('<div class="callout-tip">') and md.rstrip().endswith('</div>') and 'Use `lr_find`.' in md

def test_quarto_options_become_tags():
    cell = dict(cell_type='code', source='#| echo: false\n#| output: asis\nshow_doc(f)', metadata={})
    bd.apply_quarto_options(cell)
    assert cell['source'] == 'show_doc(f)' and cell['metadata']['tags'] == ['remove_input', bd.API_TAG]
    cell = dict(cell_type='code', source='#| include: false\nx = 1', metadata={})
    bd.apply_quarto_options(cell)
    assert 'remove_cell' in cell['metadata']['tags']

def test_show_doc_names():
    assert bd.show_doc_name('show_doc(Learner.fit_progressive)') == 'Learner.fit_progressive'
    assert bd.show_doc_name("show_doc(f, name='g')") == 'g' and bd.show_doc_name('show_doc(f)\n') == 'f'
    assert bd.show_doc_name('x = 1') is None and bd.show_doc_name('show_doc(') is None
    assert bd.show_doc_name('print(1)\nshow_doc(f)') is None and bd.show_doc_name('show_doc()') is None

def test_api_keep_one_entry_per_name():
    "A name's first entry on its module's page; on the first page showing it when its module's page does not"
    shown = {'index.html': ['f'], 'core.html': ['Thing', 'Thing.go', 'Thing.go', 'f'], 'extra.html': ['Thing.go', 'g', 'g'],
             'tutorials/t.html': ['h', 'g']}
    homes = {'Thing': 'core.html', 'Thing.go': 'core.html', 'f': 'core.html', 'g': 'core.html'}
    assert bd.api_keep(shown, homes) == {'index.html': [False], 'core.html': [True, True, False, True],
                                         'extra.html': [False, True, False], 'tutorials/t.html': [True, False]}
    assert bd.api_keep({}, homes) == {}

def api_cell(name):
    "A `show_doc` cell as nbconvert renders it"
    return (f'<div class="cell border-box-sizing code_cell rendered celltag_remove_input celltag_{bd.API_TAG}">'
            f'<div class="output_markdown rendered_html output_subarea"><hr><p><a href="x.py">source</a></p>'
            f'<h3 id="{name}">{name}<a class="anchor-link" href="#{name}">¶</a></h3><blockquote><p>{name} (x)</p>'
            f'</blockquote><p><em>Docs of {name}</em></p></div></div>')

def test_dedupe_api_entries():
    "Repeated entries are removed, on a page and across pages; the entries left keep the ids nbdev's doc links use"
    from bs4 import BeautifulSoup
    soups = {'core.html': BeautifulSoup('<h2>Thing.go</h2><p>Intro</p>' + api_cell('Thing') + api_cell('Thing.go')
                                        + api_cell('Thing.go'), 'html.parser'),
             'tutorials/t.html': BeautifulSoup(api_cell('Thing.go') + '<p>A tutorial</p>', 'html.parser')}
    removed = bd.dedupe_api_entries(soups, {'Thing': 'core.html', 'Thing.go': 'core.html'})
    assert removed == ['core.html: Thing.go', 'tutorials/t.html: Thing.go']
    core = soups['core.html']
    bd.fix_page(core, PurePosixPath('core.html'), 'https://progfast.github.io/progfast/', {})
    assert [(h['data-api'], h['id']) for h in core.select('.api-entry')] == [('Thing', 'thing'), ('Thing.go', 'thing.go')]
    assert core.h2['id'] == 'thing.go-1' and core.get_text().count('Docs of Thing.go') == 1
    assert 'Thing.go' not in soups['tutorials/t.html'].get_text()

def test_tables_badge_and_root():
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(f'<p><a href="{bd.colab_url(Path("tutorials/01_x.ipynb"))}"><img alt="Open In Colab" '
                         f'src="{bd.COLAB_BADGE_IMG}"></a></p><table><tr><td>1</td></tr></table>', 'html.parser')
    bd.fix_page(soup, PurePosixPath('tutorials/x.html'), 'https://progfast.github.io/progfast/', {})
    assert not soup.find('img') and soup.a.get_text() == 'Open in Colab' and soup.a['href'].startswith('https://colab.')
    assert soup.table.parent['class'] == ['table-wrap']
    bd._fix_tables(soup)                                                           # wrapped once only
    assert len(soup.select('.table-wrap')) == 1
    assert bd.site_root(PurePosixPath('index.html')) == '' and bd.site_root(PurePosixPath('tutorials/x.html')) == '../'

def test_search_index():
    "Each page in the index: its top (title, description, text before the first heading), then each section"
    from bs4 import BeautifulSoup
    soup = BeautifulSoup('<p>Intro <b>words</b>.</p><div><h2 id="usage">Usage<a class="anchor-link">¶</a></h2>\n'
                         '<p>Call <code>fit_progressive</code>\n  here.</p><script>var secret;</script><style>p {}</style>'
                         '</div><h3 id="thing.go" class="api-entry">Thing.go</h3><pre>x = 1</pre><!-- a comment -->',
                         'html.parser')
    sections = bd.search_sections(soup, 'Core', 'Core things')
    assert sections == [['', 'Core', 'Core things Intro words.'], ['usage', 'Usage', 'Call fit_progressive here.'],
                        ['thing.go', 'Thing.go', 'x = 1']]
    js = bd.search_index_js([dict(path='core.html', title='Core', sections=sections)])
    prefix = 'window.PROGFAST_SEARCH = '
    assert js.startswith(prefix) and js.rstrip().endswith(';')
    assert json.loads(js[len(prefix):].rstrip().rstrip(';')) == [dict(path='core.html', title='Core', sections=sections)]
    assert len(bd.search_sections(BeautifulSoup('<p>' + 'word ' * 5000 + '</p>', 'html.parser'), 'T')[0][2]) <= bd.SEARCH_TEXT_LIMIT

def test_page_names_and_order():
    rels = [Path(p) for p in ['tutorials/02_b.ipynb', '02_blur.ipynb', 'index.ipynb', 'tutorials/01_a.ipynb',
                              '01_schedule.ipynb', 'tutorials/index.ipynb']]
    got = [str(bd.page_path(r)) for r in sorted(rels, key=bd.page_sort_key)]
    assert got == ['index.html', 'schedule.html', 'blur.html', 'tutorials/index.html', 'tutorials/a.html',
                   'tutorials/b.html']
    assert bd.section_of(Path('tutorials/01_a.ipynb')) == 'Tutorials' and bd.section_of(Path('02_blur.ipynb')) == 'Core'
    assert bd.section_of(Path('index.ipynb')) == '' and bd.section_of(Path('41_khor.ipynb')) == 'Studies'

def test_descriptions_fit_on_one_line():
    "nbdev keeps only the first `> ` line as the page description: a longer one is cut mid-sentence on the site"
    long = {str(rel): len(desc) for rel in notebook_sources() for desc in [title_and_description(NBS/rel)[1]]
            if len(desc) > 1}
    assert not long, f"notebooks whose `>` description spans several lines (join them into one line): {long}"

def test_tutorial_convention(tmp_path):
    rel = Path('tutorials/01_quick.ipynb')
    make_nb(tmp_path/rel, ('md', '# Quick\n\n> A tutorial'), *colab_cells(rel), ('code', 'x = 1'))
    assert bd.tutorial_problems(nbformat.read(tmp_path/rel, as_version=4), rel) == []
    make_nb(tmp_path/rel, ('md', '# Quick\n\n> A tutorial'), ('code', 'x = 1'))
    problems = bd.tutorial_problems(nbformat.read(tmp_path/rel, as_version=4), rel)
    assert len(problems) == 2 and 'Open in Colab' in problems[0] and 'google.colab' in problems[1]
    wrong = Path('tutorials/02_other.ipynb')                       # a badge copied from another tutorial
    make_nb(tmp_path/wrong, ('md', '# Other\n\n> x'), *colab_cells(rel))
    assert len(bd.tutorial_problems(nbformat.read(tmp_path/wrong, as_version=4), wrong)) == 1

def test_small_site_with_tutorials(tmp_path):
    """Sections, tutorial pages with their run, plots and links between notebooks, one entry per API name, tables in a
    box that scrolls, the Colab badge as text and the search index, on a tiny notebook folder"""
    nbs = tmp_path/'nbs'
    make_nb(nbs/'index.ipynb', ('md', '# Tiny\n\n> The index'), ('md', 'See [the quickstart](tutorials/01_quick.ipynb).'))
    make_nb(nbs/'00_core.ipynb', ('md', '# Core\n\n> Core things'), ('code', '#| hide\nsecret = 42'),
            ('code', 'print(secret + 1)', [stdout(['4', '3\n'])]),      # text stored as lines
            *API_CELLS, ('md', '| a | b |\n|---|---|\n| 1 | 2 |'), run=a_run())
    rel = Path('tutorials/01_quick.ipynb')
    make_nb(nbs/rel, ('md', '# Quickstart\n\n> Run it'), *colab_cells(rel),
            ('code', "MODE = run_mode()\nprint(f'run mode: {MODE}')", [stdout('run mode: offline\n')]),
            ('code', "import matplotlib.pyplot as plt"), ('code', "plt.plot([1, 3, 2]);", [png_output()]), run=a_run())
    before = {p: p.read_bytes() for p in nbs.rglob('*.ipynb')}
    res = run_build(tmp_path/'site', nbs, n_workers=1)
    assert res.returncode == 0, res.stderr[-3000:]
    assert {p: p.read_bytes() for p in nbs.rglob('*.ipynb')} == before                 # nothing written under nbs/
    site = json.loads((tmp_path/'site'/'site.json').read_text())
    assert [p['path'] for p in site['pages']] == ['index.html', 'core.html', 'tutorials/quick.html']
    assert [p['section'] for p in site['pages']] == ['', 'Core', 'Tutorials']
    quick = (tmp_path/'site'/'tutorials'/'quick.html').read_text()
    assert '<pre>run mode: offline\n</pre>' in quick and '<meta name="progfast-run-mode" content="offline">' in quick
    assert '<strong>offline</strong> mode at commit' in quick
    assert 'href="../style.css"' in quick and 'href="../index.html"' in quick and 'data:image/png;base64,' in quick
    assert bd.colab_url(rel) in quick
    assert 'colab-badge.svg' not in quick and '<span class="colab-badge">Open in Colab</span></a>' in quick
    assert 'src="../search-index.js"' in quick and 'data-root="../"' in quick and 'id="search-input"' in quick
    core = (tmp_path/'site'/'core.html').read_text()
    assert '<pre>43\n</pre>' in core and 'secret = 42' not in core and '#|' not in core
    assert 'href="tutorials/quick.html"' in (tmp_path/'site'/'index.html').read_text()
    assert re.findall(r'data-api="([^"]*)"', core) == ['Thing', 'Thing.go']          # nbdev added a second Thing.go
    assert 'id="thing.go"' in core and core.count('Go somewhere') == 1
    assert '<div class="table-wrap"><table>' in core
    index = (tmp_path/'site'/'search-index.js').read_text()
    assert index.startswith('window.PROGFAST_SEARCH = ') and '"core.html"' in index and 'Go somewhere' in index
    assert (tmp_path/'site'/'search.js').read_text() == bd.SEARCH_JS

def test_the_build_runs_nothing(tmp_path):
    "A cell that would fail or write a file is rendered with its committed output, not run"
    nbs = tmp_path/'nbs'
    make_nb(nbs/'index.ipynb', ('md', '# Tiny\n\n> The index'),
            ('code', "open('ran.txt', 'w').write('x')\nraise ValueError('boom')", [stdout('committed output\n')]))
    res = run_build(tmp_path/'site', nbs, n_workers=1)
    assert res.returncode == 0, res.stderr[-3000:]
    assert 'committed output' in (tmp_path/'site'/'index.html').read_text()
    assert not list(tmp_path.rglob('ran.txt'))

def test_project_images_are_embedded(tmp_path):
    "An image linked by the project's GitHub raw URL (as the README needs) is embedded from this checkout"
    nbs = tmp_path/'nbs'
    url = bd.raw_github_prefix() + 'benchmarks/results/khor_fashion_mnist_cpu_curves.png'
    make_nb(nbs/'index.ipynb', ('md', '# Tiny\n\n> The index'), ('md', f'![curves]({url})'))
    res = run_build(tmp_path/'site', nbs, n_workers=1)
    assert res.returncode == 0, res.stderr[-3000:]
    page = (tmp_path/'site'/'index.html').read_text()
    assert url not in page and 'alt="curves" src="data:image/png;base64,' in page

def test_failed_build_keeps_the_previous_site(tmp_path):
    nbs,out = tmp_path/'nbs',tmp_path/'site'
    out.mkdir(); (out/'index.html').write_text('previous site')
    make_nb(nbs/'index.ipynb', ('md', '# Tiny\n\n> The index'))
    make_nb(nbs/'00_bad.ipynb', ('md', '# Bad\n\n> Fails'), ('md', '![a plot](no_such_plot.png)'))
    res = run_build(out, nbs, n_workers=1)
    assert res.returncode != 0
    assert "image 'no_such_plot.png' not found" in res.stderr
    assert (out/'index.html').read_text() == 'previous site' and sorted(p.name for p in out.iterdir()) == ['index.html']
    assert not any(p.name.startswith('site.') for p in tmp_path.iterdir())          # no scratch folder left behind
    rel = Path('tutorials/01_x.ipynb')                                               # a tutorial breaking the convention
    (nbs/'00_bad.ipynb').unlink()
    make_nb(nbs/rel, ('md', '# X\n\n> x'), ('code', 'x = 1'))
    res = run_build(out, nbs, n_workers=1)
    assert res.returncode != 0 and 'tutorials/01_x.ipynb' in res.stderr and 'Open in Colab' in res.stderr
    assert (out/'index.html').read_text() == 'previous site'

# --------------------------------------------------------------------------------- the real site, in a browser

def find_browser():
    "(chromium, chromedriver) paths, or a reason why they cannot be used"
    chrome = os.environ.get('PROGFAST_CHROMIUM') or shutil.which('chromium') or shutil.which('chromium-browser')
    driver = os.environ.get('PROGFAST_CHROMEDRIVER') or shutil.which('chromedriver')
    if not (chrome and driver):
        return None,("no chromium/chromedriver found (install Debian's `chromium` and `chromium-driver`: "
                     "`make test-docs` does it with apt-get)")
    try: import selenium  # noqa: F401
    except ImportError: return None,"selenium is not installed (it is in progfast's dev extra: `make install`)"
    return (chrome, driver),''

@pytest.fixture(scope='module')
def browser():
    found,why = find_browser()
    if found is None:
        if os.environ.get('PROGFAST_REQUIRE_BROWSER') == '1': pytest.fail(f"PROGFAST_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    profile = tempfile.mkdtemp(prefix='progfast-chromium-')
    for a in CHROME_FLAGS + [f'--user-data-dir={profile}']: opts.add_argument(a)
    drv = webdriver.Chrome(service=Service(executable_path=found[1]), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)

@contextmanager
def serve(site):
    "Serve the folder `site` on 127.0.0.1 (a free port); its base URL"
    handler = partial(type('Quiet', (SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}), directory=str(site))
    httpd = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try: yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    finally: httpd.shutdown(); httpd.server_close()

PAGE_JS = """
const out = document.querySelectorAll('.output, .output_area');
const c = document.querySelector('#content'), box = document.querySelector('#search-input');
const limit = Math.min(c.getBoundingClientRect().right - parseFloat(getComputedStyle(c).paddingRight),
                       document.documentElement.clientWidth) + 1;
// Does `el` reach past what the reader can see or scroll to (the content's width, a box that hides what overflows)?
function cut(el) {
  for (let a = el.parentElement; a && a !== c; a = a.parentElement) {
    const ox = getComputedStyle(a).overflowX;
    if (ox === 'auto' || ox === 'scroll') return a.getBoundingClientRect().right > limit;
    if ((ox === 'hidden' || ox === 'clip') && el.getBoundingClientRect().right > a.getBoundingClientRect().right + 1) return true;
  }
  return el.getBoundingClientRect().right > limit;
}
// An API entry: a heading the build marks (`data-api`), or one laid out as nbdev's show_doc writes it (a rule, the
// source link, the name), so that an entry the build failed to mark is counted too
function api_entry(h) {
  let p = h.previousElementSibling;
  if (p && p.tagName === 'P' && p.innerText.trim() === 'source') p = p.previousElementSibling;
  return !!h.dataset.api || (!!p && p.tagName === 'HR');
}
return {
  title: document.title,
  h1: (document.querySelector('header h1.title') || {}).textContent || null,
  nav: [...document.querySelectorAll('nav#sidebar a')].filter(a => !a.closest('#search')).map(a => a.href),
  active: [...document.querySelectorAll('nav#sidebar a.active')].map(a => a.href),
  images: [...document.images].map(i => ({src: i.src.slice(0, 60), alt: i.alt, ok: i.complete && i.naturalWidth > 0})),
  search: !!(box && box.offsetParent !== null && box.offsetWidth > 0),
  colab: [...c.querySelectorAll('a[href^="https://colab.research.google.com/"]')].map(a => a.offsetWidth > 0 ? a.innerText : ''),
  api: [...c.querySelectorAll('h2, h3, h4, h5, h6')].filter(api_entry)
         .map(h => [h.dataset.api || h.innerText.replace('¶', '').trim(), h.id]),
  heading_ids: [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')].map(h => h.id).filter(i => i),
  n_tables: c.querySelectorAll('table').length,
  n_code: c.querySelectorAll('pre').length,
  cut_tables: [...c.querySelectorAll('table')].filter(cut).map(t => t.innerText.slice(0, 60)),
  cut_code: [...c.querySelectorAll('pre')].filter(p => p.scrollWidth > p.clientWidth + 1 || cut(p))
                                            .map(p => p.innerText.slice(0, 60)),
  run_mode: (document.querySelector('meta[name="progfast-run-mode"]') || {}).content || null,
  text: document.querySelector('#content').innerText,
  body_text: [...c.children].filter(e => e.tagName !== 'FOOTER').map(e => e.innerText).join('\\n'),
  errors: document.querySelectorAll('.output_error').length,
  output_text: [...out].map(o => o.innerText).join('\\n'),
  code: [...document.querySelectorAll('.input_area, pre')].map(p => p.innerText),
  ids: [...document.querySelectorAll('[id]')].map(e => e.id),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
};
"""

def crawl_site(browser, base, site):
    "The pages `site.json` lists, and what the browser sees on each (by page path)"
    pages = json.loads((site/'site.json').read_text())['pages']
    seen = {}
    for p in pages:
        browser.get(base + p['path'])
        if p['math']: wait_for_math(browser)
        seen[p['path']] = browser.execute_script(PAGE_JS)
    return pages,seen

def wait_for_math(browser, timeout=60):
    "Wait until MathJax marks the page typeset (or `timeout` seconds pass)"
    from selenium.webdriver.support.ui import WebDriverWait
    try: WebDriverWait(browser, timeout).until(lambda b: b.execute_script("return document.body.dataset.math === 'typeset'"))
    except Exception: pass                                   # math_problems reports it

MATH_JS = r"""
const c = document.querySelector('#content');
return {typeset: document.body.dataset.math === 'typeset',
        rendered: c.querySelectorAll('.MathJax, .MathJax_Display, .MathJax_CHTML').length,
        errors: c.querySelectorAll('.MathJax_Error, merror').length,
        raw: [...c.querySelectorAll('p, li, td')].map(e => e.innerText).filter(t => /\$[^$\s][^$]*\$|\\(?:frac|sigma|sum|sqrt)/.test(t))};
"""

def math_problems(browser, base, pages):
    "Pages with formulas whose TeX is not typeset by MathJax (raw TeX left in the text, or errors)"
    problems = []
    for p in pages:
        if not p['math']: continue
        browser.get(base + p['path'])
        wait_for_math(browser)
        m = browser.execute_script(MATH_JS)
        if not m['typeset'] or m['rendered'] == 0 or m['errors'] or m['raw']:
            problems.append(f"{p['path']}: formulas not typeset (MathJax done: {m['typeset']}, rendered: {m['rendered']}, "
                            f"errors: {m['errors']}, raw TeX in: {[t[:80] for t in m['raw'][:3]]})")
    return problems

_re_note = re.compile(r'Outputs: from make outputs in (\w+) mode at commit ([0-9a-f]{7,})')

def run_problems(pages, seen):
    "Tutorial pages that do not show, in their note and their metadata, an offline or full run"
    problems = []
    for p in pages:
        if not p['rel'].startswith('tutorials/'): continue
        s,note = seen[p['path']],_re_note.search(seen[p['path']]['text'])
        mode = note.group(1) if note else None
        if mode not in ('offline', 'full') or s['run_mode'] != mode:
            problems.append(f"{p['path']}: shows a {mode or 'missing'} run (note), {s['run_mode'] or 'none'} (metadata); "
                            "tutorial pages must show an offline or full run: run `make outputs`")
        if re.search(r'run mode: quick', s['output_text']): problems.append(f"{p['path']}: an output says 'run mode: quick'")
    return problems

def page_problems(pages, seen, base, nbs):
    "Each page has its notebook's title, the navigation (every page, itself marked), the search box and its plots, all displayed"
    problems = []
    for p in pages:
        s,src = seen[p['path']],nbs/p['rel']
        title,_ = title_and_description(src)
        if s['title'] != f'{title} – progfast' or s['h1'] != title:
            problems.append(f"{p['path']}: title {s['title']!r}, heading {s['h1']!r}; the notebook's title is {title!r}")
        if s['nav'][1:] != [base + q['path'] for q in pages] or s['active'] != [base + p['path']]:
            problems.append(f"{p['path']}: navigation lists {s['nav']}, current {s['active']}")
        broken = [(i['src'], i['alt']) for i in s['images'] if not i['ok']]
        if broken: problems.append(f"{p['path']}: images that do not display: {broken}")
        if not s['search']: problems.append(f"{p['path']}: no search box")
        if p['rel'].startswith('tutorials/') and not any('open in colab' in t.lower() for t in s['colab']):
            problems.append(f"{p['path']}: no visible 'Open in Colab' link (links to Colab show {s['colab']})")
        shown = sum(i['ok'] and i['src'].startswith('data:image') for i in s['images'])
        if shown < p['images'] or (runs_a_plot(src) and shown == 0):
            problems.append(f"{p['path']}: {shown} plots shown, the notebook made {p['images']}")
    return problems

def content_problems(seen):
    "Error outputs, tracebacks, nbdev directives or hidden cells' source on a page"
    problems = []
    for path,s in seen.items():
        if s['errors']: problems.append(f"{path}: {s['errors']} error output cells")
        if 'Traceback (most recent call last)' in s['output_text']: problems.append(f"{path}: a traceback in an output")
        if any(re.search(r'^\s*#\|', c, re.M) for c in s['code']): problems.append(f"{path}: nbdev directives shown")
        if any('nbdev.showdoc' in c for c in s['code']): problems.append(f"{path}: a hidden cell's source shown")
    return problems

def api_problems(seen):
    "API entries shown twice on a page or on two pages, or without the id nbdev's doc links use; heading ids given twice"
    problems,where = [],{}
    for path,s in seen.items():
        names = [n for n,_ in s['api']]
        problems += [f"{path}: API entry {n} shown {k} times" for n,k in Counter(names).items() if k > 1]
        problems += [f"{path}: API entry {n} has the id {i!r}, not {bd.pandoc_id(n)!r}" for n,i in s['api'] if i != bd.pandoc_id(n)]
        problems += [f"{path}: heading id {i!r} given {k} times" for i,k in Counter(s['heading_ids']).items() if k > 1]
        for n in names: where.setdefault(n, set()).add(path)
    return problems + [f"API entry {n} on {len(ps)} pages: {sorted(ps)}" for n,ps in where.items() if len(ps) > 1]

def layout_problems(seen):
    "Tables cut off at the page's edge (not in a box that scrolls), code that runs past its box instead of wrapping"
    problems = []
    for path,s in seen.items():
        if s['cut_tables']: problems.append(f"{path}: tables cut off at the edge: {s['cut_tables'][:3]}")
        if s['cut_code']: problems.append(f"{path}: code running past its box: {s['cut_code'][:3]}")
    return problems

def distinctive_word(seen, path):
    "A word (8+ letters) on the page `path` (not in its footer) and on no other page, or None"
    words = lambda text: set(re.findall(r'\b[a-z]{8,}\b', text.lower()))
    others = set().union(*[words(s['body_text']) for p,s in seen.items() if p != path])
    return min(words(seen[path]['body_text']) - others, default=None)

def search_hits(browser, url, words, timeout=10):
    "Type `words` into the search box of the page at `url`; the links it lists then (absolute URLs), None with no box"
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    boxes = browser.find_elements(By.ID, 'search-input')
    if not boxes: return None
    boxes[0].send_keys(words)
    try: WebDriverWait(browser, timeout).until(lambda b: b.find_elements(By.CSS_SELECTOR, '#search-results li'))
    except TimeoutException: return []
    return [a.get_attribute('href') for a in browser.find_elements(By.CSS_SELECTOR, '#search-results a')]

def search_problems(browser, base, pages, seen, targets):
    "Typed into the search box of the first and the last page, a word only the page `target` has lists a link to it"
    problems = []
    for target in targets:
        word = distinctive_word(seen, target)
        if word is None:
            problems.append(f"{target}: no word of 8+ letters that no other page has (nothing to search for)"); continue
        for start in dict.fromkeys([pages[0]['path'], pages[-1]['path']]):
            hits = search_hits(browser, base + start, word)
            if not any(h.split('#')[0] == base + target for h in hits or []):
                problems.append(f"{start}: searching for {word!r} (only on {target}) lists {(hits or [])[:5]}, not {target}")
    return problems

def link_problems(seen, base, site):
    "Links within the site to a page or file that does not exist, or to an anchor missing on its page"
    broken = set()
    for path,s in seen.items():
        for href in s['links']:
            if not href.startswith(base): continue
            u = urlsplit(href)
            target = unquote(u.path)[1:] or 'index.html'
            if target not in seen:
                if not (site/target).is_file(): broken.add(f"{path} -> {href} (no such page)")
            elif u.fragment and unquote(u.fragment) not in seen[target]['ids']:
                broken.add(f"{path} -> {href} (no #{unquote(u.fragment)} on {target})")
    return sorted(broken)

def test_the_checks_catch_a_broken_site(browser, tmp_path):
    "The page checks pass on a good tiny site and report each kind of damage done to it"
    nbs,site = tmp_path/'nbs',tmp_path/'site'
    make_nb(nbs/'index.ipynb', ('md', '# Tiny\n\n> The index'), ('md', 'See [core](00_core.ipynb#a-plot).'))
    make_nb(nbs/'00_core.ipynb', ('md', '# Core\n\n> Core things'), ('md', '## A plot'),
            ('md', 'The sigma of step $i$ is $\\sigma_i = \\sigma_0 - \\sigma_0 \\frac{i}{N-1}$.'),
            ('code', 'import matplotlib.pyplot as plt'), ('code', 'plt.plot([1, 3, 2]);', [png_output()]), *API_CELLS,
            ('md', '| ' + ' | '.join(f'column {i}' for i in range(40)) + ' |\n|' + '---|' * 40 + '\n|' + ' 1 |' * 40),
            ('code', '# ' + 'a long comment ' * 30 + '\nx = 1'))
    rel = Path('tutorials/01_t.ipynb')
    make_nb(nbs/rel, ('md', '# T\n\n> A tutorial'), *colab_cells(rel), ('code', 'print("run mode: offline")',
            [stdout('run mode: offline\n')]), ('md', 'Zygomorphic flowers.'), run=a_run())
    res = run_build(site, nbs, n_workers=1)
    assert res.returncode == 0, res.stderr[-3000:]
    def check():
        with serve(site) as base:
            pages,seen = crawl_site(browser, base, site)
            return (page_problems(pages, seen, base, nbs) + content_problems(seen) + link_problems(seen, base, site)
                    + math_problems(browser, base, pages) + run_problems(pages, seen) + api_problems(seen)
                    + layout_problems(seen) + search_problems(browser, base, pages, seen, ['core.html', 'tutorials/t.html']))
    assert check() == []
    with serve(site) as base: _,seen = crawl_site(browser, base, site)
    assert search_problems(browser, site.as_uri() + '/', *crawl_site(browser, site.as_uri() + '/', site),
                           ['core.html', 'tutorials/t.html']) == []                  # from file://, no server
    assert [n for n,_ in seen['core.html']['api']] == ['Thing', 'Thing.go']
    with serve(site) as base:
        browser.get(base + 'core.html'); wait_for_math(browser)
        assert browser.execute_script(MATH_JS)['rendered'] >= 2                 # both formulas typeset
    shutil.rmtree(site/'mathjax')                                               # formulas left as raw TeX
    tut = (site/'tutorials'/'t.html').read_text()
    (site/'tutorials'/'t.html').write_text(tut.replace('<strong>offline</strong>', '<strong>quick</strong>')
                                           .replace('content="offline"', 'content="quick"'))
    problems = '\n'.join(check())
    assert 'core.html: formulas not typeset' in problems and 'tutorials/t.html: shows a quick run' in problems
    res = run_build(site, nbs, n_workers=1)                                     # a good site again
    assert res.returncode == 0, res.stderr[-3000:]
    core = (site/'core.html').read_text()
    core = re.sub(r'src="data:image/png;base64,[^"]*"', 'src="plot.png"', core)                   # a plot lost
    core = core.replace('</footer>', '</footer><div class="output_error"><pre>ValueError</pre></div>'
                        '<div class="output_area"><pre>Traceback (most recent call last):</pre></div>')      # errors shown
    core = core.replace('</footer>', '</footer><h3 data-api="Thing.go" id="thing.go-9">Thing.go</h3>'    # an entry again
                        '<h2 id="a-plot">A plot again</h2>'                                          # an id again
                        f'<table><tr><td>{"x" * 600}</td></tr></table>'                          # a table cut off
                        f'<pre style="white-space: pre">{"y = 1; " * 100}</pre>')                 # code running off
    core = core.replace('<div class="table-wrap">', '<div>')                                          # no scrolling box
    (site/'core.html').write_text(core.replace('<title>Core', '<title>Kore'))
    (site/'index.html').write_text((site/'index.html').read_text().replace('#a-plot', '#no-such-heading')
                                   .replace('href="core.html">Core', 'href="gone.html">Core')
                                   .replace('id="search-input"', 'id="no-search"'))                   # no search box
    tut = (site/'tutorials'/'t.html').read_text()
    (site/'tutorials'/'t.html').write_text(tut.replace('<span class="colab-badge">Open in Colab</span>',   # the remote
        f'<img alt="Open In Colab" src="{bd.COLAB_BADGE_IMG}">')                                        # badge image
        .replace('</footer>', '</footer><h3 data-api="Thing" id="thing">Thing</h3>'))              # on a second page
    (site/'search-index.js').write_text('window.PROGFAST_SEARCH = [];\n')                            # an empty index
    problems = '\n'.join(check())
    for expected in ["core.html: title 'Kore", 'core.html: images that do not display', 'core.html: 0 plots shown',
                     'core.html: 1 error output cells', 'core.html: a traceback', 'index.html: navigation lists',
                     'index.html -> ', '(no #no-such-heading on core.html)', 'gone.html (no such page)',
                     'core.html: API entry Thing.go shown 2 times', "core.html: API entry Thing.go has the id 'thing.go-9'",
                     "core.html: heading id 'a-plot' given 2 times", "API entry Thing on 2 pages: ['core.html', 'tutorials/t.html']",
                     "core.html: tables cut off at the edge: ['column 0", "'xxxxxxxxxx",
                     'core.html: code running past its box: [\'y = 1;', 'index.html: no search box',
                     "tutorials/t.html: images that do not display: [('https://colab.research.google.com/assets/colab-badge.svg'",
                     "tutorials/t.html: no visible 'Open in Colab' link", 'index.html: searching for ',
                     '(only on core.html) lists [], not core.html', '(only on tutorials/t.html) lists [], not tutorials/t.html']:
        assert expected in problems, f"{expected!r} not reported in:\n{problems}"

@pytest.fixture(scope='module')
def built_site(tmp_path_factory):
    out = tmp_path_factory.mktemp('docs')/'site'
    res = run_build(out, NBS)
    if res.returncode != 0: pytest.fail(f"the docs build failed:\n{res.stdout[-2000:]}\n{res.stderr[-6000:]}")
    return out

@pytest.fixture(scope='module')
def server(built_site):
    with serve(built_site) as base: yield base

@pytest.fixture(scope='module')
def crawl(browser, server, built_site): return crawl_site(browser, server, built_site)

def test_every_notebook_has_a_page(crawl):
    pages,_ = crawl
    assert [p['rel'] for p in pages] == [str(r) for r in sorted(notebook_sources(), key=bd.page_sort_key)]
    assert pages[0]['path'] == 'index.html'

def test_pages_have_title_navigation_and_plots(crawl, server):
    problems = page_problems(*crawl, server, NBS)
    assert not problems, '\n'.join(problems)

def test_no_errors_and_no_hidden_source(crawl):
    problems = content_problems(crawl[1])
    assert not problems, '\n'.join(problems)

def test_internal_links_resolve(crawl, server, built_site):
    broken = link_problems(crawl[1], server, built_site)
    assert not broken, 'broken internal links:\n' + '\n'.join(broken)

def test_formulas_render(crawl, browser, server):
    pages,_ = crawl
    assert any(p['math'] for p in pages), "no page has a formula: the check would test nothing"
    problems = math_problems(browser, server, pages)
    assert not problems, '\n'.join(problems)

def test_tutorials_show_an_offline_or_full_run(crawl):
    problems = run_problems(*crawl)
    assert not problems, '\n'.join(problems)

def test_committed_outputs_are_recorded():
    "Every notebook's committed outputs come from `make outputs` in the offline or full mode, its note matching"
    problems = [p for rel in notebook_sources() for p in ro.output_problems(nbformat.read(NBS/rel, as_version=4), rel)]
    assert not problems, '\n'.join(problems)

def test_api_reference_documents_every_export(crawl):
    "Each public function and class a module exports has its `show_doc` entry on its module's page"
    import importlib, inspect
    from progfast._modidx import d
    _,seen = crawl
    missing = []
    for mod,syms in d['syms'].items():
        pages = {v[0].split('#')[0] for v in syms.values()}
        if len(pages) != 1 or next(iter(pages)) not in seen: continue
        ids = set(seen[next(iter(pages))]['ids'])
        m = importlib.import_module(mod)
        for name in getattr(m, '__all__', []):
            obj = getattr(m, name, None)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or getattr(obj, '__module__', None) != mod: continue
            if getattr(obj, '__name__', name) != name: name = obj.__name__    # an alias shares its class's entry
            pid = bd.pandoc_id(name)
            if pid not in ids and not any(i.endswith('.' + pid) for i in ids): missing.append(f'{mod}.{name}')
    assert not missing, f"exported names with no API entry on their page: {missing}"

def test_search_finds_pages(crawl, browser, server, built_site):
    "On every page a search box; typing a word only one page has lists that page, served or opened from `file://`"
    pages,seen = crawl
    targets = [pages[1]['path'], pages[-1]['path']]                       # a module's page, the last tutorial
    problems = search_problems(browser, server, pages, seen, targets)
    problems += search_problems(browser, built_site.as_uri() + '/', pages, seen, targets[-1:])
    assert not problems, '\n'.join(problems)
    hits = search_hits(browser, server + 'tutorials/quickstart.html', 'fit_progressive')
    assert server + 'progressive.html#learner.fit_progressive' in hits, hits   # an API entry, from a page one folder down

def test_api_entries_once(crawl):
    "One entry per API name on the whole site, with the id nbdev's doc links use (`Learner.fit_progressive` was on the resize page 3 times)"
    _,seen = crawl
    problems = api_problems(seen)
    assert not problems, '\n'.join(problems)
    assert [n for n,_ in seen['progressive.html']['api']].count('Learner.fit_progressive') == 1
    assert sum(len(s['api']) for s in seen.values()) >= 100, "too few API entries found: the check would test nothing"

def test_tables_scroll_and_code_wraps(crawl):
    "No table cut off at the page's edge (Tutorial 03's summary), no code running off it (long comments)"
    _,seen = crawl
    assert sum(s['n_tables'] for s in seen.values()) and sum(s['n_code'] for s in seen.values()), "nothing to check"
    problems = layout_problems(seen)
    assert not problems, '\n'.join(problems)
