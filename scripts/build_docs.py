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
(`nbs/02_blur.ipynb` -> `blur.html`) and links to the hosted docs (`doc_host` + `doc_baseurl`) become relative
links, so the site works from `file://` or any local server. Images linked from the project's files on GitHub
(`https://raw.githubusercontent.com/<repo>/<branch>/...`, as the README needs them) are embedded from this checkout;
the "Open in Colab" badge, a remote image, becomes a text badge (the link stays).

Each API name has one entry on the site: nbdev adds a `show_doc` after the export cell of every `@patch`ed method
even when the notebook calls `show_doc` for it too, so the build keeps a name's first entry on the page of the module
defining it (`_modidx.py`) and drops the others, and gives API entries the ids nbdev's doc links use. The search box in
the navigation filters, as the reader types, an index of every page's title, headings and text (`search-index.js`,
a script, so it loads from `file://` with no server). Wide tables scroll sideways; code and outputs wrap.

Formulas are typeset in the reader's browser by MathJax 2, copied into the site from the `jupyter-server-mathjax`
package (a dev dependency): no CDN, so the site renders formulas offline.

The site is written to a scratch folder and moved into place only when every page has built: a failed or
interrupted build leaves the previous site as it was, and nothing under `nbs/` is written.

    python scripts/build_docs.py [--out _docs_local] [--nbs nbs] [--n-workers 2]

Tutorials (`nbs/tutorials/*.ipynb`) must follow the convention checked by `tutorial_problems`: an "Open in Colab"
badge linking to the notebook on GitHub, and a first code cell that installs progfast only on Colab.
"""
from __future__ import annotations
import argparse, ast, html, json, os, re, shutil, sys, time, traceback
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
COLAB_BADGE_IMG = 'https://colab.research.google.com/assets/colab-badge.svg'
SECTION_TITLES = {'tutorials': 'Tutorials'}
LAYER_TITLES = {'0': 'Core', '1': 'Callbacks', '2': 'Data', '3': 'Networks and learners', '4': 'Studies', '5': 'Command line',
                '9': 'Everything'}     # a module notebook's tens digit is its layer (progfast/core/, callbacks/, ...)
API_TAG = 'api_entry'                  # the tag (class `celltag_api_entry` on the page) of a `show_doc` cell

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
    "The page a notebook becomes, as nbdev names it: numeric prefix dropped, `.html` (`02_blur.ipynb` -> `blur.html`)"
    from nbdev.config import nbpath2html
    return PurePosixPath(nbpath2html(PurePosixPath(rel.as_posix())).as_posix())

def section_of(rel:Path) -> str:
    "The navigation section of a notebook: its layer at the top level (`02_blur` -> 'Core'; '' for `index`), else its folder's title"
    if len(rel.parts) == 1:
        layer = re.match(r'(\d)\d[a-z]?_', rel.name)
        return LAYER_TITLES.get(layer.group(1), '') if layer else ''
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
    if show_doc_name(cell['source']): tags.append(API_TAG)

def show_doc_name(source:str) -> str|None:
    "The name a `show_doc` cell documents (`show_doc(Learner.fit)` -> 'Learner.fit', or its `name=`); else None"
    try: body = ast.parse(source).body
    except SyntaxError: return None
    if len(body) != 1 or not isinstance(body[0], ast.Expr) or not isinstance(call := body[0].value, ast.Call): return None
    if getattr(call.func, 'id', None) != 'show_doc' or not call.args: return None
    name = next((k.value.value for k in call.keywords if k.arg == 'name' and isinstance(k.value, ast.Constant)), None)
    return str(name) if name else ast.unparse(call.args[0])

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

_re_heading = re.compile(r'^h[1-6]$')

def _fix_headings(soup) -> None:
    "Pandoc's id on every heading (`-1`, `-2`... on a repeat), API entries first: nbdev's doc links must reach them"
    taken = set()
    for h in sorted(soup.find_all(_re_heading), key=lambda h: 'api-entry' not in h.get('class', [])):
        for a in h.find_all('a', class_='anchor-link'): a.decompose()
        base = pandoc_id(h.get_text())
        hid,n = base,0
        while hid in taken: n += 1; hid = f'{base}-{n}'
        taken.add(hid)
        h['id'] = hid
        a = soup.new_tag('a', href=f'#{hid}', attrs={'class': 'anchor-link', 'aria-label': 'link to this section'})
        a.string = '¶'
        h.append(a)

def _fix_links(soup, page:PurePosixPath, doc_url:str, pages:dict) -> None:
    "Hosted-docs links and links to notebooks become links to this site's pages"
    for a in soup.find_all('a', href=True):
        href = a['href']
        frag = href.partition('#')[2]
        if href.startswith(doc_url) and (frag.startswith('_') or '._' in frag):
            a.unwrap()   # a private name (a class's collaborator) has no API entry: it stays code, not a link
            continue
        if href.startswith(doc_url): a['href'] = relative_href(href[len(doc_url):] or 'index.html', page)
        elif not re.match(r'^[a-z][\w+.-]*:|^#|^/', href):
            path,_,frag = href.partition('#')
            if path.endswith('.ipynb'):
                target = (PurePosixPath(page.parent)/path).as_posix()
                nb_rel = os.path.normpath(target)
                if nb_rel in pages: a['href'] = relative_href(pages[nb_rel], page) + (f'#{frag}' if frag else '')

def _fix_tables(soup) -> None:
    "Each table in a box that scrolls sideways when the table is wider than the page (it is never clipped)"
    for t in soup.find_all('table'):
        if 'table-wrap' not in (t.parent.get('class') or []): t.wrap(soup.new_tag('div', attrs={'class': 'table-wrap'}))

def _fix_colab_badge(soup) -> None:
    "The 'Open in Colab' badge as text, not Colab's remote image (a broken image offline); the link stays"
    for img in soup.find_all('img', src=COLAB_BADGE_IMG):
        badge = soup.new_tag('span', attrs={'class': 'colab-badge'})
        badge.string = 'Open in Colab'
        img.replace_with(badge)

def site_root(page:PurePosixPath) -> str:
    "The link from `page` to the site's top folder: '' or '../'"
    return relative_href('index.html', page)[:-len('index.html')]

SEARCH_BOX = ('<div id="search" role="search"><input type="search" id="search-input" placeholder="Search" '
              'aria-label="Search the documentation" autocomplete="off"><ul id="search-results"></ul></div>')

def _nav(entries:list[dict], page:PurePosixPath) -> str:
    "The sidebar: the search box, top-level pages, then one list per section, the current page marked"
    out,section = [f'<nav id="sidebar" aria-label="Site navigation" data-root="{site_root(page)}">',
                   f'<a class="site-title" href="{relative_href("index.html", page)}">progfast</a>', SEARCH_BOX, '<ul>'],''
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

def fix_page(soup, page:PurePosixPath, doc_url:str, pages:dict) -> None:
    "The body of `page` made ready for the site: heading ids, links, tables that scroll, the Colab badge as text"
    _fix_headings(soup)
    _fix_links(soup, page, doc_url, pages)
    _fix_tables(soup)
    _fix_colab_badge(soup)

def page_html(e:dict, soup, entries:list[dict], site_title:str) -> str:
    "The whole page for entry `e`: head, navigation, title and description, the notebook's body (`soup`, fixed)"
    page = PurePosixPath(e['path'])
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
<script src="{site_root(page)}search-index.js"></script>
<script src="{site_root(page)}search.js"></script>
</body>
</html>
"""

# ------------------------------------------------------------------------------------------- one entry per API name

def api_entries(soup) -> list[tuple]:
    "The API entries of a page (its `show_doc` cells) in page order, each as (the name its heading shows, the cell)"
    out = []
    for cell in soup.find_all('div', class_=f'celltag_{API_TAG}'):
        h = cell.find(_re_heading)
        if h is None: continue
        for a in h.find_all('a', class_='anchor-link'): a.decompose()
        out.append((h.get_text().strip(), cell))
    return out

def api_homes(lib_path:Path|None=None) -> dict[str, str]:
    "The page of the module defining each name of the library, from nbdev's `_modidx.py` (`Learner.fit_progressive`: 'progressive.html')"
    if lib_path is None:
        from nbdev.config import get_config
        lib_path = get_config().lib_path
    f = Path(lib_path)/'_modidx.py'
    if not f.is_file(): return {}
    d = next(ast.literal_eval(n.value) for n in ast.parse(f.read_text(encoding='utf-8')).body
             if isinstance(n, ast.Assign) and getattr(n.targets[0], 'id', None) == 'd')
    return {name[len(mod)+1:]: url.split('#')[0] for mod,syms in d['syms'].items() for name,(url,*_) in syms.items()}

def api_keep(shown:dict[str, list[str]], homes:dict[str, str]) -> dict[str, list[bool]]:
    """Which API entries each page keeps (`shown`: the names of its entries, pages in site order): one entry per name on
    the site, on the page of the module defining it (`homes`) when that page has one, else on the first page that has
    one; on that page, its first entry"""
    owner = {}
    for page,names in shown.items():
        for n in names: owner.setdefault(n, page)
    for n in owner:
        if n in shown.get(homes.get(n, ''), ()): owner[n] = homes[n]
    keep = {}
    for page,names in shown.items():
        firsts = {n: names.index(n) for n in set(names)}
        keep[page] = [owner[n] == page and firsts[n] == i for i,n in enumerate(names)]
    return keep

def dedupe_api_entries(soups:dict, homes:dict[str, str]) -> list[str]:
    "Remove the API entries `api_keep` leaves out from the pages' `soups` (site order), mark the others; what was removed"
    entries = {page: api_entries(soup) for page,soup in soups.items()}
    keep = api_keep({page: [n for n,_ in es] for page,es in entries.items()}, homes)
    removed = []
    for page,es in entries.items():
        for (name,cell),k in zip(es, keep[page]):
            if not k: removed.append(f'{page}: {name}'); cell.decompose(); continue
            h = cell.find(_re_heading)
            h['class'] = h.get('class', []) + ['api-entry']
            h['data-api'] = name
    return removed

# ----------------------------------------------------------------------------------------------------------- search

SEARCH_TEXT_LIMIT = 20000                # characters of a section's text in the index (the longest now: 12,000)

def search_sections(soup, title:str, description:str='') -> list[list[str]]:
    "What the search box looks through on a page: [heading id, heading, text] of its top ('', the title) and each section"
    from bs4 import NavigableString, Tag
    sections,skip = [['', title, [description, ' ']]],set()
    for node in soup.descendants:
        if isinstance(node, Tag) and (_re_heading.match(node.name) or node.name in ('script', 'style')):
            skip.update(id(s) for s in node.find_all(string=True))
            if node.name not in ('script', 'style'):
                sections.append([node.get('id', ''), node.get_text(' ', strip=True).rstrip('¶').strip(), []])
        elif type(node) is NavigableString and id(node) not in skip: sections[-1][2].append(str(node))
    return [[hid, head, ' '.join(''.join(text).split())[:SEARCH_TEXT_LIMIT]] for hid,head,text in sections]

def search_index_js(pages:list[dict]) -> str:
    "The search index (each page's `path`, `title`, `sections`) as a script: browsers load one from `file://`, not JSON"
    return 'window.PROGFAST_SEARCH = ' + json.dumps(pages, ensure_ascii=False, separators=(',', ':')) + ';\n'

# Filters the index as the reader types: every word must appear in a section (its page title, heading or text); a word
# in the heading counts most. Links are relative to the page (`data-root` on the navigation).
SEARCH_JS = r"""(function () {
  var input = document.getElementById('search-input'), list = document.getElementById('search-results');
  if (!input || !list || !window.PROGFAST_SEARCH) return;
  var root = document.getElementById('sidebar').getAttribute('data-root') || '', records = [];
  window.PROGFAST_SEARCH.forEach(function (p) {
    p.sections.forEach(function (s) {
      records.push({href: root + p.path + (s[0] ? '#' + s[0] : ''), page: p.title, heading: s[1], text: s[2],
                    head: s[1].toLowerCase(), title: p.title.toLowerCase(),
                    all: (p.title + ' ' + s[1] + ' ' + s[2]).toLowerCase()});
    });
  });
  function score(r, words) {
    var total = 0;
    for (var i = 0; i < words.length; i++) {
      if (r.all.indexOf(words[i]) < 0) return 0;
      total += 1 + (r.head.indexOf(words[i]) >= 0 ? 10 : 0) + (r.title.indexOf(words[i]) >= 0 ? 3 : 0);
    }
    return total;
  }
  function snippet(r, word) {
    var i = r.text.toLowerCase().indexOf(word), start = Math.max(0, i - 40);
    if (i < 0) return r.text.slice(0, 90);
    return (start ? '…' : '') + r.text.slice(start, i + 60) + (i + 60 < r.text.length ? '…' : '');
  }
  function add(parent, tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    e.textContent = text;
    parent.appendChild(e);
    return e;
  }
  function show() {
    var q = input.value.trim().toLowerCase();
    list.textContent = '';
    if (q.length < 2) return;
    var words = q.split(/\s+/), hits = [];
    records.forEach(function (r) { var s = score(r, words); if (s) hits.push([s, r]); });
    hits.sort(function (a, b) { return b[0] - a[0]; });
    if (!hits.length) { add(list, 'li', 'no-hits', 'No results'); return; }
    hits.slice(0, 20).forEach(function (h) {
      var r = h[1], a = add(add(list, 'li', '', ''), 'a', '', '');
      a.href = r.href;
      add(a, 'span', 'hit-heading', r.heading);
      if (r.heading !== r.page) add(a, 'span', 'hit-page', r.page);
      add(a, 'span', 'hit-text', snippet(r, words[0]));
    });
  }
  input.addEventListener('input', show);
  input.addEventListener('keydown', function (e) {
    var first = list.querySelector('a');
    if (e.key === 'Enter' && first) window.location.href = first.href;
    if (e.key === 'Escape') { input.value = ''; show(); }
  });
})();
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
#search input { width: 100%; box-sizing: border-box; margin: 0.3rem 0; padding: 0.25rem 0.4rem; font: inherit;
                border: 1px solid #ccc; border-radius: 4px; }
#search-results li { margin: 0.3rem 0; font-size: 0.85rem; overflow-wrap: anywhere; }
#search-results a { padding: 0.2rem 0.3rem; border-radius: 4px; background: #fff; }
#search-results .hit-heading { display: block; font-weight: bold; }
#search-results .hit-page, #search-results .hit-text, #search-results .no-hits { display: block; color: #666; font-size: 0.78rem; }
.input_area, .output_text pre, pre { background: #f5f5f5; border-radius: 4px; padding: 0.5rem; overflow-x: auto; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
#content { overflow-wrap: break-word; }
.table-wrap { overflow-x: auto; max-width: 100%; margin: 0.5rem 0; }
.table-wrap > table { margin: 0; }
.colab-badge { display: inline-block; padding: 0.1rem 0.6rem; border-radius: 4px; background: #f9ab00; color: #222;
               font-size: 0.85rem; font-weight: 600; }
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
    "`p` relative to the project when inside it (`nbs/02_blur.ipynb`), else as it is"
    try: return Path(p).resolve().relative_to(REPO).as_posix()
    except ValueError: return str(p)

def write_site(out:Path, entries:list[dict], verbose:bool=False) -> None:
    "Write every page, the style sheet, the search index and `site.json` (the page list) into the empty folder `out`"
    from bs4 import BeautifulSoup
    from nbdev.config import get_config
    from pygments.formatters import HtmlFormatter
    cfg = get_config()
    doc_url = f"{cfg.doc_host.rstrip('/')}{cfg.doc_baseurl.rstrip('/')}/"
    pages = {e['rel']: e['path'] for e in entries}
    soups = {e['path']: BeautifulSoup(e['body'], 'html.parser') for e in entries}
    removed = dedupe_api_entries(soups, api_homes())
    if verbose and removed: print(f"  {len(removed)} repeated API entries left out")
    index = []
    for e in entries:
        page,soup = PurePosixPath(e['path']),soups[e['path']]
        fix_page(soup, page, doc_url, pages)
        index.append(dict(path=e['path'], title=e['title'], sections=search_sections(soup, e['title'], e['description'])))
        dest = out/e['path']
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(page_html(e, soup, entries, cfg.title), encoding='utf-8')
    (out/'search-index.js').write_text(search_index_js(index), encoding='utf-8')
    (out/'search.js').write_text(SEARCH_JS, encoding='utf-8')
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
    try: write_site(scratch, entries, verbose)
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
