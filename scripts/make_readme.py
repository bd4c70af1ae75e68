#!/usr/bin/env python
"""Generate README.md from nbs/index.ipynb, its one source (`make readme`), without Quarto.

`nbs/index.ipynb` is the documentation site's home page and nbdev's `readme_nb`. nbdev's own `nbdev-readme` needs
Quarto, so this script does the same with what installs from PyPI: nbdev's notebook processors (hidden cells and
`#| hide` lines removed, magics cleaned, names in backticks linked to the API reference, as on the site) and
nbconvert's markdown exporter (code cells as fenced blocks with their committed outputs). The title cell stays a
`# Title` heading with its `> description` line. Links that work inside `nbs/` are rewritten to work from the
repository's root (`tutorials/01_quickstart.ipynb` -> `nbs/tutorials/01_quickstart.ipynb`); images must be
absolute URLs (GitHub's raw files), so the same markdown works on GitHub, on PyPI and on the site. The note that
`make outputs` puts at the top of a page is left out.

    python scripts/make_readme.py            # write README.md
    python scripts/make_readme.py --check    # exit 1, with a diff, when README.md differs from what it would write

`tests/test_readme.py` runs the check in `make test`.
"""
from __future__ import annotations
import argparse, difflib, os, re, sys
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parent.parent
HEADER = ("<!-- Generated from nbs/index.ipynb by `make readme` (scripts/make_readme.py): edit the notebook, "
          "not this file. -->\n\n")
NOTE_ID = 'progfast-run'                        # the note `make outputs` adds (scripts/run_outputs.py)

def processed_cells(fn:Path):
    "The cells of the notebook `fn` after nbdev's processors that suit a README"
    from nbdev.process import NBProcessor
    from nbdev.processors import (hide_, hide_line, filter_stream_, clean_magics, rm_header_dash, rm_export, strip_ansi,
                                  add_links, populate_language)
    procs = [populate_language, strip_ansi, hide_line, filter_stream_, rm_header_dash, rm_export, clean_magics, hide_,
             add_links]
    nbp = NBProcessor(fn, procs, rm_directives=True)
    nbp.process()
    return [c for c in nbp.nb.cells if c.get('id') != NOTE_ID]

def _echo_false(cell) -> bool:
    return str((getattr(cell, 'directives_', None) or {}).get('echo', [''])[0]).lower() == 'false'

def to_markdown(cells) -> str:
    "nbconvert's markdown for `cells`: markdown as it is, code as fenced blocks with their outputs"
    import nbformat
    from nbconvert import MarkdownExporter
    nb = nbformat.v4.new_notebook()
    for c in cells:
        if c.cell_type == 'markdown': nb.cells.append(nbformat.v4.new_markdown_cell(c.source))
        elif c.cell_type == 'code':
            new = nbformat.v4.new_code_cell('' if _echo_false(c) else c.source)
            new.outputs = [nbformat.from_dict(o) for o in c.get('outputs', [])]
            nb.cells.append(new)
    nb.metadata['language_info'] = dict(name='python')
    body,res = MarkdownExporter().from_notebook_node(nb)
    if res.get('outputs'):
        raise ValueError(f"index.ipynb has image outputs ({', '.join(res['outputs'])}), which a README cannot show: "
                         "link images by their GitHub URL in a markdown cell instead")
    return body

_re_md_link = re.compile(r'(!?\[[^\]]*\]\()([^)\s]+)(\))')
_re_html_link = re.compile(r'((?:href|src)=")([^"]+)(")')

def root_relative(url:str, nb_dir:str='nbs') -> str:
    "`url`, written relative to the notebook folder, relative to the repository's root instead"
    if re.match(r'^[a-z][\w+.-]*:|^#|^/', url): return url          # absolute, an anchor or a site path: as it is
    return os.path.normpath(str(PurePosixPath(nb_dir)/url)).replace(os.sep, '/')

def local_images(md:str) -> list[str]:
    "Images that a README would not show everywhere: paths into the checkout rather than URLs"
    return [u for _,u,_ in _re_md_link.findall(md) + _re_html_link.findall(md)
            if not re.match(r'^[a-z][\w+.-]*:', u) and re.search(r'\.(png|jpe?g|gif|svg|webp)$', u, re.I)]

def render(fn:Path=REPO/'nbs'/'index.ipynb') -> str:
    "README.md's text, generated from the notebook `fn`"
    cells = processed_cells(fn)
    if not cells or cells[0].cell_type != 'markdown' or not cells[0].source.lstrip().startswith('# '):
        raise ValueError(f"{fn} must open with a markdown cell `# Title` and its `> description` line")
    md = to_markdown(cells).strip() + '\n'
    bad = local_images(md)
    if bad: raise ValueError(f"{fn} shows images by local paths {bad}, which PyPI cannot show: use their GitHub URLs "
                             "(https://raw.githubusercontent.com/<owner>/<repo>/<branch>/...)")
    md = _re_md_link.sub(lambda m: m.group(1) + root_relative(m.group(2)) + m.group(3), md)
    md = _re_html_link.sub(lambda m: m.group(1) + root_relative(m.group(2)) + m.group(3), md)
    return HEADER + re.sub(r'\n{3,}', '\n\n', md)

def stale_diff(readme:Path=REPO/'README.md', fn:Path=REPO/'nbs'/'index.ipynb') -> str:
    "'' when `readme` is what `render(fn)` gives, else a unified diff from it to the generated text"
    want,have = render(fn),(readme.read_text(encoding='utf-8') if readme.exists() else '')
    if want == have: return ''
    return ''.join(difflib.unified_diff(have.splitlines(True), want.splitlines(True), 'README.md (committed)',
                                        'README.md (generated from nbs/index.ipynb)', n=1))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--check', action='store_true', help='do not write; fail with a diff when README.md is stale')
    a = p.parse_args(argv)
    os.chdir(REPO)                               # nbdev reads the project's pyproject.toml from the cwd
    if a.check:
        diff = stale_diff()
        if diff: sys.exit(f"README.md is stale: run `make readme` and commit it. Differences:\n{diff}")
        print("README.md matches nbs/index.ipynb")
    else:
        (REPO/'README.md').write_text(render(), encoding='utf-8')
        print("wrote README.md from nbs/index.ipynb")

if __name__ == '__main__': main()
