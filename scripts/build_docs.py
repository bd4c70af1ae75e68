#!/usr/bin/env python
"""Build progfast's documentation site as static HTML, with no Quarto (`make docs`). It runs no notebook.

The notebooks in `nbs/` are committed with the outputs of a real run (`make outputs`: the tutorials in their offline
or full mode, each notebook's metadata and the note at its top saying which run and commit). The build renders those
committed outputs as they are. Each notebook goes through nbdev's own docs processors, the ones `nbdev-proc-nbs` and
`nbdev-docs` apply (`FilterDefaults`): front matter from the `# Title` / `> description` cell, a `show_doc` for every
exported name (the API reference; nbdev renders these by running the notebook's imports and `show_doc` cells, not
the notebook), `#| hide` cells and nbdev directives removed, names in backticks linked to their docs. nbconvert
renders what is left (plots embedded as PNG), and every page gets the site's navigation: `index` first, then the
modules in file order, then each sub-folder (`tutorials/`) as a section. Page names follow nbdev's
(`nbs/01_blur.ipynb` -> `blur.html`) and links to the hosted docs (`doc_host` + `doc_baseurl`) become relative
links, so the site works from `file://` or any local server. Images linked from the project's files on GitHub
(`https://raw.githubusercontent.com/<repo>/<branch>/...`, as the README needs them) are embedded from this checkout.

Formulas are typeset in the reader's browser by MathJax 2, copied into the site from the `jupyter-server-mathjax`
package (a dev dependency): no CDN, so the site renders formulas offline.

The site is written to a scratch folder and moved into place only when every page has built: a failed or
interrupted build leaves the previous site as it was, and nothing under `nbs/` is written.

    python scripts/build_docs.py [--out _docs_local] [--nbs nbs] [--n-workers 2]

Tutorials (`nbs/tutorials/*.ipynb`) must follow the convention checked by `tutorial_problems`: an "Open in Colab"
badge linking to the notebook on GitHub, and a first code cell that installs progfast only on Colab.
"""
from __future__ import annotations
import argparse, html, json, os, re, shutil, sys, time, traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
COLAB_BADGE_IMG = 'https://colab.research.google.com/assets/colab-badge.svg'
SECTION_TITLES = {'tutorials': 'Tutorials'}

# ---------------------------------------------------------------------------------------------------- the site's pages

def find_notebooks(nbs:Path) -> list[Path]:
    "The notebooks `nbdev-test` would run under `nbs` (nbdev's `nbglob`: recursive, `_`/`.` names skipped), in site order"
    from nbdev.doclinks import nbglob
    found = [Path(p).relative_to(nbs) for p in nbglob(nbs)]
    return sorted(found, key=page_sort_key)

def page_sort_key(rel:Path):
    "Top-level pages before sections; in each, `index` first, then by file name (`00_` prefixes order them)"
    return (len(rel.parts) > 1, rel.parent.as_posix(), rel.stem != 'index', rel.name)

def page_path(rel:Path) -> PurePosixPath:
    "The page a notebook becomes, as nbdev names it: numeric prefix dropped, `.html` (`01_blur.ipynb` -> `blur.html`)"
    from nbdev.config import nbpath2html
    return PurePosixPath(nbpath2html(PurePosixPath(rel.as_posix())).as_posix())

def section_of(rel:Path) -> str:
    "The navigation section of a notebook: '' at the top level, else its folder's title (`tutorials` -> 'Tutorials')"
    if len(rel.parts) == 1: return ''
    name = re.sub(r'^\d+_', '', rel.parts[0])
    return SECTION_TITLES.get(name, name.replace('_', ' ').capitalize())

def relative_href(target:PurePosixPath|str, page:PurePosixPath) -> str:
    "`target` (a site path) as a link from `page`"
    return os.path.relpath(str(target), str(page.parent) if str(page.parent) != '.' else '.').replace(os.sep, '/')

# ---------------------------------------------------------------------------------------------- tutorial convention

def colab_url(rel:Path) -> str:
    "Colab's URL for the notebook `rel` (relative to `nbs/`) on the project's default branch on GitHub"
    from nbdev.config import get_config
    cfg = get_config()
    gh = re.sub(r'^https?://github\.com/', '', cfg.git_url.rstrip('/'))
    nbs_dir = Path(cfg.nbs_path).relative_to(cfg.config_path).as_posix()
    return f'https://colab.research.google.com/github/{gh}/blob/{cfg.branch}/{nbs_dir}/{rel.as_posix()}'

def tutorial_problems(nb:dict, rel:Path) -> list[str]:
    "What keeps notebook `nb` (at `rel` under `nbs/`) from following the tutorial convention; [] when it does"
    src = lambda c: ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    md = '\n'.join(src(c) for c in nb['cells'] if c['cell_type'] == 'markdown')
    code = [src(c) for c in nb['cells'] if c['cell_type'] == 'code' and src(c).strip()]
    problems = []
    if f'({colab_url(rel)})' not in md:
        problems.append(f"no 'Open in Colab' badge linking to {colab_url(rel)} "
                        f"(a markdown cell: [![Open In Colab]({COLAB_BADGE_IMG})]({colab_url(rel)}))")
    first = code[0] if code else ''
    if not ('google.colab' in first and re.search(r'pip install', first)):
        problems.append("the first code cell must install progfast only on Colab: "
                        "`import sys` / `if 'google.colab' in sys.modules: !pip install ...`")
    return problems

# --------------------------------------------------------------------------------------------------- one notebook

class NotebookError(Exception):
    "A notebook failed to run or to process; the message names it and shows the failing cell"

def skipped_test_flags() -> list[str]:
    "The flags whose cells `nbdev-test` skips unless asked (`tst_flags` in pyproject.toml: `notest slow`)"
    from nbdev.config import get_config
    return get_config().tst_flags.split()

def read_notebook(fn:Path):
    "The notebook at `fn` as committed (with its outputs), as nbdev's processors read it"
    from fastcore.nbio import read_nb
    nb = read_nb(fn)
    if any(c.cell_type == 'code' and not c.get('id') for c in nb.cells):
        raise NotebookError(f"{fn}: some cells have no id; run `nbdev-clean` (nbformat 4.5 ids are needed)")
    return nb

def process_notebook(nb, fn:Path):
    "Apply nbdev's docs processors (what `nbdev-proc-nbs` does) to the notebook `nb` read from `fn`"
    from fastcore.nbio import dict2nb, nb2dict
    from nbdev.processors import FilterDefaults
    nb = dict2nb(nb2dict(nb))           # as if read from disk: the processors expect `read_nb`'s text fields
    nb.path_ = str(fn)
    try: FilterDefaults()(nb)
    except Exception as e:
        raise NotebookError(f"{fn}: nbdev's docs processing failed (this also breaks `nbdev-docs`):\n{e}\n"
                            "(to render the API reference nbdev runs, in a fresh shell, only the export and show_doc "
                            "cells and every cell that contains an import statement anywhere; give imports their own "
                            "cell, apart from code that needs earlier cells)") from e
    return nb

_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def quarto_options(source:str) -> tuple[dict, str]:
    "The Quarto cell options (`#| key: value` lines) opening a code cell, and the source without them"
    opts,lines = {},source.splitlines()
    while lines and (m := _re_directive.match(lines[0])):
        opts[m.group(1)] = m.group(2).strip('"\'').lower()
        lines.pop(0)
    return opts,'\n'.join(lines)

def apply_quarto_options(cell:dict) -> None:
    "Turn a code cell's Quarto options into nbconvert tags (`include`, `echo`, `output`) and drop the option lines"
    opts,cell['source'] = quarto_options(cell['source'])
    tags = cell.setdefault('metadata', {}).setdefault('tags', [])
    if opts.get('include') == 'false': tags.append('remove_cell')
    if opts.get('echo') == 'false': tags.append('remove_input')
    if opts.get('output') == 'false': tags.append('remove_output')
    if not cell['source'].strip(): tags.append('remove_input')

_re_link_attrs = re.compile(r'\[([^\]\n]+)\]\(([^)\s]+)\)\{([^}\n]*)\}')
_re_attr = re.compile(r'([\w-]+)="([^"]*)"')
_re_fence_div = re.compile(r'^:::+\s*\{([^}]*)\}\s*$|^:::+\s*([\w-]+)\s*$|^:::+\s*$', re.MULTILINE)

def pandoc_markdown(md:str) -> str:
    "Rewrite the pandoc extensions nbdev emits or Quarto users write (`[a](u){k=\"v\"}`, `::: {.cls}` divs) as HTML"
    def link(m):
        attrs = ' '.join(f'{k}="{html.escape(v)}"' for k,v in _re_attr.findall(m.group(3)))
        return f'<a href="{html.escape(m.group(2))}" {attrs}>{m.group(1)}</a>'
    def div(m):
        if m.group(1) is None and m.group(2) is None: return '\n</div>\n'
        classes = re.findall(r'\.([\w-]+)', m.group(1) or '') or [m.group(2)]
        return f'<div class="{" ".join(classes)}">\n'
    return _re_fence_div.sub(div, _re_link_attrs.sub(link, md))

def _clean_markdown(nb:dict) -> None:
    for cell in nb['cells']:
        if cell['cell_type'] == 'markdown': cell['source'] = pandoc_markdown(cell['source'])
        for o in cell.get('outputs', []):
            md = o.get('data', {}).get('text/markdown')
            if md is not None: o['data']['text/markdown'] = pandoc_markdown(''.join(md) if isinstance(md, list) else md)

def count_images(nb:dict) -> int:
    "How many image outputs (plots) the rendered page will show"
    return sum(1 for c in nb['cells'] if 'remove_cell' not in c.get('metadata', {}).get('tags', [])
                 and 'remove_output' not in c.get('metadata', {}).get('tags', [])
               for o in c.get('outputs', []) if any(k.startswith('image/') for k in o.get('data', {})))

_CELL_KEYS = {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}

def has_math(nb:dict) -> bool:
    "Does a markdown cell of `nb` hold TeX math (`$...$`, `$$...$$`, `\\(...\\)`)?"
    md = '\n'.join(c['source'] for c in nb['cells'] if c['cell_type'] == 'markdown')
    md = re.sub(r'```.*?```|`[^`\n]*`', '', md, flags=re.DOTALL)           # not inside code
    return bool(re.search(r'\$[^$\s][^$\n]*\$|\\\(', md))

def render_body(nb, src_dir:Path) -> dict:
    "nbconvert's HTML for the processed notebook `nb` (no prompts, images embedded), with what the page needs to know"
    import nbformat
    from fastcore.nbio import nb2dict
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    fm = dict(getattr(nb, 'frontmatter_', {}) or {})
    d = nb2dict(nb)
    d['cells'] = [{k:v for k,v in c.items() if k in _CELL_KEYS} for c in d['cells']]     # processors add their own keys
    for c in d['cells']: c.get('metadata', {}).pop('execution', None)                    # execnb's timings (not nbformat)
    for c in d['cells']: c['source'] = ''.join(c['source']) if isinstance(c['source'], list) else c['source']
    d['cells'] = [c for c in d['cells'] if not (c['cell_type'] == 'raw' and c['source'].lstrip().startswith('---'))]
    for c in d['cells']:
        if c['cell_type'] == 'code': apply_quarto_options(c)
    _clean_markdown(d)
    # embed_images=False: nbconvert's embedding re-parses each inline HTML tag alone, which breaks `<a ...>text</a>`
    exporter = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={'remove_cell'},
        remove_input_tags={'remove_input'}, remove_all_outputs_tags={'remove_output'}), enabled=True)
    node = nbformat.reads(json.dumps(d), as_version=4)     # outputs as stored (lists of lines) joined, as Jupyter reads them
    body,_ = exporter.from_notebook_node(node, resources={'metadata': {'path': str(src_dir)}})
    return dict(body=embed_local_images(body, src_dir), title=str(fm.get('title', Path(nb.path_).stem)),
                description=str(fm.get('description', '')), images=count_images(d), math=has_math(d),
                run=(d.get('metadata') or {}).get('progfast'))

def raw_github_prefix() -> str:
    "Where GitHub serves the project's files: `https://raw.githubusercontent.com/<owner>/<repo>/<branch>/`"
    from nbdev.config import get_config
    cfg = get_config()
    gh = re.sub(r'^https?://github\.com/', '', cfg.git_url.rstrip('/'))
    return f'https://raw.githubusercontent.com/{gh}/{cfg.branch}/'

def embed_local_images(body:str, src_dir:Path) -> str:
    "`body` with each `<img>` that points to a file next to the notebook or in the project inlined as a data URI"
    import base64, mimetypes
    from bs4 import BeautifulSoup
    soup = BeautifulSoup(body, 'html.parser')
    raw = raw_github_prefix()
    for img in soup.find_all('img', src=True):
        src = img['src']
        if src.startswith(raw): f = REPO/src[len(raw):].split('#')[0].split('?')[0]     # the project's file, here
        elif re.match(r'^[a-z][\w+.-]*:|^//', src): continue       # data:, other http(s): and the like stay as they are
        else: f = src_dir/src.split('#')[0].split('?')[0]
        if not f.is_file(): raise NotebookError(f"image {src!r} not found (looked for {f})")
        mime = mimetypes.guess_type(f.name)[0] or 'application/octet-stream'
        img['src'] = f"data:{mime};base64,{base64.b64encode(f.read_bytes()).decode()}"
    return str(soup)

def build_page(job:tuple) -> dict:
    "Process and render one notebook (in a worker process); what the page needs"
    nbs,rel = job
    cwd,fn,t0 = os.getcwd(),(nbs/rel).resolve(),time.perf_counter()
    os.chdir(REPO)                                  # nbdev's processors read the project's config from the cwd
    try:
        res = dict(rel=rel.as_posix(), **render_body(process_notebook(read_notebook(fn), fn), fn.parent))
        return res | dict(seconds=round(time.perf_counter() - t0, 1))
    except NotebookError as e: return dict(rel=rel.as_posix(), error=str(e))   # plain data: it crosses processes
    finally: os.chdir(cwd)

# ---------------------------------------------------------------------------------------------------- the whole site

def pandoc_id(text:str) -> str:
    "The id pandoc (so Quarto, so nbdev's doc links) gives a heading: `### RandomBlur.draw` -> `randomblur.draw`"
    s = ''.join(ch for ch in text.strip() if ch.isalnum() or ch in '_-. \n')
    s = re.sub(r'\s+', '-', s).lower()
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'

def _fix_headings(soup) -> None:
    seen = {}
    for h in soup.find_all(re.compile(r'^h[1-6]$')):
        for a in h.find_all('a', class_='anchor-link'): a.decompose()
        base = pandoc_id(h.get_text())
        hid = base if base not in seen else f'{base}-{seen[base]}'
        seen[base] = seen.get(base, 0) + 1
        h['id'] = hid
        a = soup.new_tag('a', href=f'#{hid}', attrs={'class': 'anchor-link', 'aria-label': 'link to this section'})
        a.string = '¶'
        h.append(a)

def _fix_links(soup, page:PurePosixPath, doc_url:str, pages:dict) -> None:
    "Hosted-docs links and links to notebooks become links to this site's pages"
    for a in soup.find_all('a', href=True):
        href = a['href']
        if href.startswith(doc_url): a['href'] = relative_href(href[len(doc_url):] or 'index.html', page)
        elif not re.match(r'^[a-z][\w+.-]*:|^#|^/', href):
            path,_,frag = href.partition('#')
            if path.endswith('.ipynb'):
                target = (PurePosixPath(page.parent)/path).as_posix()
                nb_rel = os.path.normpath(target)
                if nb_rel in pages: a['href'] = relative_href(pages[nb_rel], page) + (f'#{frag}' if frag else '')

def _nav(entries:list[dict], page:PurePosixPath) -> str:
    "The sidebar: top-level pages, then one list per section, the current page marked"
    out,section = ['<nav id="sidebar" aria-label="Site navigation">',
                   f'<a class="site-title" href="{relative_href("index.html", page)}">progfast</a>', '<ul>'],''
    for e in entries:
        if e['section'] != section:
            if section: out.append('</ul></li>')
            section = e['section']
            out.append(f'<li class="nav-section"><span class="section-title">{html.escape(section)}</span><ul>')
        cur = PurePosixPath(e['path']) == page
        attrs = ' class="active" aria-current="page"' if cur else ''
        out.append(f'<li><a href="{relative_href(e["path"], page)}"{attrs}>{html.escape(e["title"])}</a></li>')
    if section: out.append('</ul></li>')
    out += ['</ul>', '</nav>']
    return '\n'.join(out)

def run_meta(e:dict) -> str:
    "`<meta>` tags naming the run the page's outputs come from (`make outputs` records it in the notebook)"
    run = e.get('run') or {}
    return ''.join(f'<meta name="progfast-run-{k}" content="{html.escape(str(run[k]))}">\n' for k in ('mode', 'commit') if k in run)

def inline_markdown(text:str) -> str:
    "`text` (one line of markdown) as inline HTML"
    from nbconvert.filters.markdown_mistune import markdown2html_mistune
    return re.sub(r'^<p>|</p>\s*$', '', markdown2html_mistune(text).strip())

def page_html(e:dict, entries:list[dict], site_title:str, doc_url:str, pages:dict) -> str:
    "The whole page for entry `e`: head, navigation, title and description, the notebook's body"
    from bs4 import BeautifulSoup
    page = PurePosixPath(e['path'])
    soup = BeautifulSoup(e['body'], 'html.parser')
    _fix_headings(soup)
    _fix_links(soup, page, doc_url, pages)
    desc = f'<p class="description">{inline_markdown(e["description"])}</p>' if e['description'] else ''
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(e['title'])} – {html.escape(site_title)}</title>
<link rel="stylesheet" href="{relative_href('style.css', page)}">
{MATHJAX.format(src=relative_href('mathjax/MathJax.js', page)) if e['math'] else ''}{run_meta(e)}</head>
<body>
{_nav(entries, page)}
<main id="content">
<header id="title-block-header"><h1 class="title">{html.escape(e['title'])}</h1>{desc}</header>
{soup}
<footer>Built from <code>{html.escape(e['source'])}</code>.</footer>
</main>
</body>
</html>
"""

# Math is typeset in the reader's browser by MathJax 2 from the `jupyter-server-mathjax` package, copied into the site
# (`mathjax/`); the page marks `<body data-math="typeset">` when MathJax has finished (the browser test waits for it).
MATHJAX = """<script type="text/x-mathjax-config">
MathJax.Hub.Config({{tex2jax: {{inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], processEscapes: true}},
  "HTML-CSS": {{availableFonts: [], webFont: "STIX-Web", imageFont: null}}, messageStyle: "none"}});
MathJax.Hub.Register.StartupHook("End", function () {{ document.body.setAttribute("data-math", "typeset"); }});
</script>
<script src="{src}?config=TeX-AMS-MML_HTMLorMML-full"></script>
"""

def mathjax_dir() -> Path:
    "MathJax 2 as the `jupyter-server-mathjax` package installs it"
    try: import jupyter_server_mathjax
    except ImportError as e:
        raise NotebookError("formulas need MathJax from the jupyter-server-mathjax package: "
                            "pip install jupyter-server-mathjax (it is in progfast's dev extra)") from e
    return Path(jupyter_server_mathjax.__file__).parent/'static'

def copy_mathjax(out:Path) -> None:
    "MathJax into the site's `mathjax/` folder (without its translations of the menus)"
    shutil.copytree(mathjax_dir(), out/'mathjax', ignore=shutil.ignore_patterns('localization', 'SVG'))

CSS = """
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #222; }
#sidebar { position: fixed; top: 0; bottom: 0; left: 0; width: 15rem; overflow-y: auto; padding: 1rem;
           background: #f6f7f9; border-right: 1px solid #ddd; box-sizing: border-box; }
#sidebar ul { list-style: none; padding-left: 0; margin: 0.3rem 0; }
#sidebar ul ul { padding-left: 0.8rem; }
#sidebar a { color: #1f5fa0; text-decoration: none; display: block; padding: 0.1rem 0; }
#sidebar a.active { font-weight: bold; color: #000; }
#sidebar .site-title { font-size: 1.3rem; font-weight: bold; margin-bottom: 0.5rem; color: #000; }
#sidebar .section-title { font-weight: bold; display: block; margin-top: 0.6rem; color: #555; }
#content { margin-left: 15rem; padding: 1rem 2.5rem; max-width: 60rem; }
.description { font-size: 1.1rem; color: #555; }
a.anchor-link { visibility: hidden; margin-left: 0.3rem; text-decoration: none; }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link, h4:hover a.anchor-link { visibility: visible; }
.cell { margin: 0.8rem 0; }
.input_area, .output_text pre, pre { background: #f5f5f5; border-radius: 4px; padding: 0.5rem; overflow-x: auto; }
.output_text pre { background: #fff; border-left: 3px solid #ddd; }
.output_stderr pre { background: #fff4f4; }
.output_png img, .output_jpeg img, img { max-width: 100%; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #ddd; padding: 0.2rem 0.5rem; text-align: left; }
code { font-size: 0.92em; }
.callout-note, .callout-tip, .callout-warning, .callout-important, .callout-caution
  { border-left: 4px solid #1f5fa0; background: #f3f7fb; padding: 0.3rem 1rem; margin: 0.8rem 0; }
footer { margin-top: 3rem; color: #888; font-size: 0.85rem; }
"""

def build_entries(results:list[dict], nbs:Path) -> list[dict]:
    "One navigation/manifest entry per built page, in site order"
    return [dict(rel=r['rel'], path=str(page_path(Path(r['rel']))), title=r['title'], description=r['description'],
                 section=section_of(Path(r['rel'])), images=r['images'], math=r['math'], seconds=r['seconds'], run=r['run'],
                 body=r['body'], source=_display_path(nbs/r['rel'])) for r in results]

def _display_path(p:Path) -> str:
    "`p` relative to the project when inside it (`nbs/01_blur.ipynb`), else as it is"
    try: return Path(p).resolve().relative_to(REPO).as_posix()
    except ValueError: return str(p)

def write_site(out:Path, entries:list[dict]) -> None:
    "Write every page, the style sheet and `site.json` (the page list) into the empty folder `out`"
    from nbdev.config import get_config
    from pygments.formatters import HtmlFormatter
    cfg = get_config()
    doc_url = f"{cfg.doc_host.rstrip('/')}{cfg.doc_baseurl.rstrip('/')}/"
    pages = {e['rel']: e['path'] for e in entries}
    for e in entries:
        dest = out/e['path']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page_html(e, entries, cfg.title, doc_url, pages), encoding='utf-8')
    if any(e['math'] for e in entries): copy_mathjax(out)
    (out/'style.css').write_text(CSS + HtmlFormatter(style='default').get_style_defs('.highlight'), encoding='utf-8')
    manifest = [{k:v for k,v in e.items() if k != 'body'} for e in entries]
    (out/'site.json').write_text(json.dumps(dict(title=cfg.title, pages=manifest), indent=1), encoding='utf-8')

def check_tutorials(nbs:Path, rels:list[Path]) -> None:
    "Fail, naming each problem, if a notebook under `tutorials/` breaks the tutorial convention"
    from fastcore.nbio import read_nb, nb2dict
    bad = [f"{rel}: {p}" for rel in rels if rel.parts[0] == 'tutorials'
           for p in tutorial_problems(nb2dict(read_nb(nbs/rel)), rel)]
    if bad: raise NotebookError("tutorials not following the convention:\n  " + '\n  '.join(bad))

def render_all(nbs:Path, rels:list[Path], n_workers:int) -> list[dict]:
    "Render every notebook, `n_workers` at a time; fails naming every notebook that failed"
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    os.environ.setdefault('MPLBACKEND', 'Agg')
    jobs = [(nbs, rel) for rel in rels]
    if n_workers <= 1: results = [build_page(j) for j in jobs]
    else:
        with ProcessPoolExecutor(n_workers, mp_context=get_context('spawn')) as ex: results = list(ex.map(build_page, jobs))
    errors = [r['error'] for r in results if 'error' in r]
    if errors: raise NotebookError('\n\n'.join(errors))
    return results

def build(out:Path=REPO/'_docs_local', nbs:Path=REPO/'nbs', n_workers:int=2, verbose:bool=True) -> list[dict]:
    "Build the site from the notebooks in `nbs` into `out`, replacing it only when the whole build succeeded"
    nbs,out = Path(nbs).resolve(),Path(out).resolve()
    if not nbs.is_dir(): raise NotADirectoryError(f"no notebook folder at {nbs}")
    rels = find_notebooks(nbs)
    if not rels: raise FileNotFoundError(f"no notebooks found under {nbs}")
    check_tutorials(nbs, rels)
    t0 = time.perf_counter()
    results = render_all(nbs, rels, n_workers)
    if verbose:
        for r in results: print(f"  {r['rel']}: {r['seconds']} s" + ('' if r['run'] else ' (no outputs recorded: run `make outputs`)'))
    entries = build_entries(results, nbs)
    scratch = out.with_name(out.name + '.building')
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try: write_site(scratch, entries)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    old = out.with_name(out.name + '.old')
    shutil.rmtree(old, ignore_errors=True)
    if out.exists(): out.rename(old)
    scratch.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    if verbose: print(f"{len(entries)} pages in {out} ({time.perf_counter()-t0:.0f} s); open {out/'index.html'}")
    return entries

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--out', default=str(REPO/'_docs_local'), help='folder for the site (replaced when the build succeeds)')
    p.add_argument('--nbs', default=str(REPO/'nbs'), help='folder of notebooks')
    p.add_argument('--n-workers', type=int, default=2, help='notebooks processed at once')
    a = p.parse_args(argv)
    if a.n_workers < 0: p.error(f"--n-workers must be >= 0, got {a.n_workers}")
    out,nbs = Path(a.out).resolve(),Path(a.nbs).resolve()
    os.chdir(REPO)                                   # nbdev finds the project's pyproject.toml from the cwd
    try: build(out, nbs, a.n_workers)
    except (NotebookError, FileNotFoundError, NotADirectoryError) as e:
        sys.exit(f"docs build failed, nothing was replaced:\n{e}")

if __name__ == '__main__':
    # Run as the importable module `build_docs`, not as `__main__`: the worker processes unpickle `build_page` by
    # module name, and the IPython shell that runs a notebook replaces `sys.modules['__main__']`.
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import build_docs
    build_docs.main()
