"""The module notebooks in fastai's rhythm (issue 18): export cells that fit on a screen, an API entry for every public name.

Rules, exactly:
- **Export cells:** a code cell with an `export`, `exporti` or `exports` directive has at most `EXPORT_LIMIT` (60)
  lines, not counting its `#|` directive lines and trailing blank lines.
- **Results first:** the first output of a module notebook (`nbs/[0-5]*.ipynb`; a warning on stderr does not count)
  is a plot or a table (HTML or markdown), and comes before the first export cell: the page opens with what it achieves.
- **API entries:** every public function, class and method of the modules `progfast.all` gathers (`_MODULES`) has a
  `show_doc` on its module's page, i.e. in a shown code cell (not `#| hide`, not `#| include: false`) of the notebook
  whose `default_exp` is that module, counting the `show_doc` cells nbdev adds by itself (`add_show_docs`: for each
  function and class defined at the top level of a shown export cell, and for each `@patch`ed method). That is what
  the docs pages show: nbdev renders exactly these `show_doc` calls.
  Public means: a function or class in the module's `__all__` defined in that module, and each method (properties
  included) that `progfast/_modidx.py` lists for such a class, or for a class progfast patches (`Learner`...), whose
  name does not start with `_`. The hooks that users do not call are left out: fastai's callback events
  (`before_fit`, `after_batch`...), `Callback.name`, `Transform.encodes`/`decodes`/`setups`,
  `DataLoader.create_batches` and `nn.Module.forward`/`extra_repr`. Properties are described in their class's
  docstring or prose instead: nbdev's `show_doc` of a property has no source to link to. A method that overrides one
  of a progfast base class (`ConstSchedule.value` of `Schedule.value`) is covered by the base class's entry.
"""
import ast, importlib, inspect, re
from pathlib import Path
import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
NBS = REPO/'nbs'
EXPORT_LIMIT = 60
EXPORT_DIRECTIVES = {'export', 'exporti', 'exports'}
HOOKS = {'encodes', 'decodes', 'setups', 'forward', 'extra_repr', 'name', 'create_batches'}

def _processed(fn, procs=()):
    from nbdev.process import NBProcessor
    nbp = NBProcessor(fn, list(procs))
    nbp.process()
    return nbp.nb.cells

def _code_lines(source:str) -> int:
    lines = [l for l in source.splitlines() if not re.match(r'\s*#\|', l)]
    while lines and not lines[-1].strip(): lines.pop()
    return len(lines)

def long_export_cells(fn, limit=EXPORT_LIMIT) -> list[str]:
    "The export cells of notebook `fn` longer than `limit` lines, each described so it can be found"
    out = []
    for i,c in enumerate(_processed(fn)):
        if c.cell_type != 'code' or not EXPORT_DIRECTIVES & set(c.directives_): continue
        n = _code_lines(c.source)
        if n > limit:
            first = next(l for l in c.source.splitlines() if l.strip() and not l.lstrip().startswith('#|'))
            out.append(f"cell {i} (id {c.id}, {n} lines): {first.strip()[:70]}")
    return out

def _hidden(c) -> bool:
    d = c.directives_ or {}
    return 'hide' in d or [str(v).lower() for v in d.get('include', [])] == ['false']

def _show_doc_target(call:ast.Call) -> str|None:
    "The dotted name `show_doc(X.y)` documents (None for anything else)"
    if not call.args: return None
    try: return ast.unparse(call.args[0]) if isinstance(call.args[0], (ast.Name, ast.Attribute)) else None
    except Exception: return None

def documented_names(fn) -> set[str]:
    "The names whose `show_doc` the page of notebook `fn` shows, counting those nbdev adds for exported definitions"
    from nbdev.processors import add_show_docs
    names = set()
    for c in _processed(fn, [add_show_docs]):
        if c.cell_type != 'code' or _hidden(c): continue
        try: tree = ast.parse(c.source if isinstance(c.source, str) else ''.join(c.source))
        except SyntaxError: continue                      # magics and the like: no show_doc there
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'show_doc':
                if (t := _show_doc_target(node)): names.add(t)
    return names

def _resolve(mod, dotted:str):
    "The object `dotted` names in module `mod` (attributes looked up statically: properties stay properties)"
    obj = mod
    for part in dotted.split('.'):
        try: obj = inspect.getattr_static(obj, part)
        except AttributeError: return None
    return obj

def public_api() -> dict[str, list[str]]:
    "module name -> the public functions, classes and methods that need an API entry (see the rules above)"
    from fastai.callback.core import _events
    from progfast import all as pf_all
    from progfast._modidx import d
    skip = HOOKS | set(_events)
    api = {}
    for m in pf_all._MODULES:
        modname = f'progfast.{m}'
        mod = importlib.import_module(modname)
        exported = set(getattr(mod, '__all__', []))
        names = []
        for key in d['syms'].get(modname, {}):
            name = key[len(modname)+1:]
            parts = name.split('.')
            if any(p.startswith('_') for p in parts): continue
            if len(parts) == 1:
                obj = getattr(mod, name, None)
                if name in exported and (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == modname:
                    names.append(name)
            elif len(parts) == 2 and parts[1] not in skip:
                owner = getattr(mod, parts[0], None)
                own = parts[0] in exported and inspect.isclass(owner) and owner.__module__ == modname
                patched = inspect.isclass(owner) and not owner.__module__.startswith('progfast')
                if own or patched: names.append(name)
        api[modname] = names
    return api

def module_notebooks() -> dict[str, Path]:
    "module name -> the notebook whose `#| default_exp` it is"
    out = {}
    for fn in sorted(NBS.glob('*.ipynb')):
        for c in nbformat.read(fn, as_version=4).cells:
            m = re.search(r'^#\|\s*default_exp\s+(\S+)', c.source, re.M) if c.cell_type == 'code' else None
            if m: out[f'progfast.{m.group(1)}'] = fn; break
    return out

def missing_entries(modname:str, names:list[str], fn) -> list[str]:
    "The names of `names` (public API of module `modname`) with no `show_doc` shown on the page of notebook `fn`"
    mod = importlib.import_module(modname)
    shown = documented_names(fn)
    shown_objs = [o for o in (_resolve(mod, s) for s in shown) if o is not None]
    def covered(n):
        if n in shown or any(o is _resolve(mod, n) for o in shown_objs) or isinstance(_resolve(mod, n), property): return True
        owner,_,meth = n.rpartition('.')
        cls = getattr(mod, owner, None) if owner else None
        bases = [b for b in getattr(cls, '__mro__', ())[1:] if b.__module__.startswith('progfast')]
        return any(f"{b.__name__}.{meth}" in documented_names(module_notebooks()[b.__module__]) for b in bases)
    return [n for n in names if not covered(n)]

PLOTS = ('image/png', 'image/jpeg', 'image/svg+xml')

def is_result(output) -> bool:
    "Whether a cell output is a plot or a table (HTML, or a markdown table)"
    data = output.get('data', {})
    if any(k in data for k in PLOTS): return True
    md = ''.join(data.get('text/markdown', ''))
    return '<table' in ''.join(data.get('text/html', '')) or bool(re.search(r'^\|.*\|\s*\n\|[-:| ]+\|\s*$', md, re.M))

def opening_problem(fn) -> str|None:
    "What keeps notebook `fn` from opening with its result (None when it does)"
    cells = nbformat.read(fn, as_version=4).cells
    exports = [i for i,c in enumerate(cells) if c.cell_type == 'code' and re.search(r'^#\|\s*export', c.source, re.M)]
    shown = [(i, o) for i,c in enumerate(cells) if c.cell_type == 'code' for o in c.get('outputs', [])
             if not (o.get('output_type') == 'stream' and o.get('name') == 'stderr')]
    if not shown: return "no outputs (run `make outputs`)"
    i,o = shown[0]
    if exports and i > exports[0]: return f"the first output (cell {i}) comes after the first export cell ({exports[0]})"
    if not is_result(o): return f"the first output (cell {i}, {o.get('output_type')} {sorted(o.get('data', {}))}) is not a plot or a table"
    return None

# ------------------------------------------------------------------------------------------ the checks themselves

def test_module_notebooks_open_with_a_result():
    bad = {fn.name: p for fn in sorted(NBS.glob('[0-5][0-9]_*.ipynb')) if (p := opening_problem(fn))}
    assert not bad, "module notebooks that do not open with a plot or a table:\n" + '\n'.join(f"{k}: {v}" for k,v in bad.items())

def test_export_cells_fit_on_a_screen():
    bad = {fn.relative_to(REPO): cells for fn in sorted(NBS.glob('*.ipynb')) if (cells := long_export_cells(fn))}
    report = '\n'.join(f"{fn}:\n    " + '\n    '.join(cells) for fn,cells in bad.items())
    assert not bad, (f"export cells longer than {EXPORT_LIMIT} lines (not counting `#|` lines); split them, e.g. methods "
                     f"added with @patch, each followed by its example and test:\n{report}")

def test_every_public_name_has_an_api_entry():
    nbs = module_notebooks()
    problems = []
    for modname,names in public_api().items():
        if modname not in nbs: problems.append(f"{modname}: no notebook has `#| default_exp {modname[9:]}`"); continue
        missing = missing_entries(modname, names, nbs[modname])
        if missing: problems.append(f"{nbs[modname].relative_to(REPO)} ({modname}): " + ', '.join(missing))
    assert not problems, ("public names with no API entry (add `show_doc(Name)` / `show_doc(Class.method)` in a shown "
                          "cell of their module's notebook):\n" + '\n'.join(problems))

# ------------------------------------------------------------------------------ the checks catch what they should

def make_nb(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) if k == 'md' else nbformat.v4.new_code_cell(s) for k,s in cells]
    nbformat.write(nb, path)
    return path

def test_long_export_cells_are_found(tmp_path):
    body = '\n'.join(f'x{i} = {i}' for i in range(EXPORT_LIMIT))
    fn = make_nb(tmp_path/'a.ipynb', ('md', '# A'), ('code', '#| export\n' + body + '\n\n'),     # exactly the limit
                 ('code', '#| exporti\n' + body + '\ny = 1'), ('code', body + '\ny = 1'))       # one over; not exported
    found = long_export_cells(fn)
    assert len(found) == 1 and found[0].startswith(f'cell 2 (id ') and f'{EXPORT_LIMIT+1} lines): x0 = 0' in found[0]

def test_opening_results_are_found(tmp_path):
    from nbformat.v4 import new_output
    warning = new_output('stream', name='stderr', text='FutureWarning: ...')
    table = new_output('display_data', data={'text/markdown': '| a | b |\n|---|---:|\n| 1 | 2 |'})
    def nb(*outs, export_first=False):
        fn = make_nb(tmp_path/'c.ipynb', ('md', '# C'), ('code', '#| export\nx = 1' if export_first else 'x = 1'),
                     ('code', 'show(x)'), ('code', '#| export\ny = 2'))
        n = nbformat.read(fn, as_version=4)
        n.cells[2].outputs = list(outs)
        nbformat.write(n, fn)
        return fn
    assert opening_problem(nb(warning, table)) is None
    assert opening_problem(nb(new_output('display_data', data={'image/png': 'iVBO'}))) is None
    assert 'is not a plot or a table' in opening_problem(nb(new_output('stream', name='stdout', text='hello')))
    assert 'after the first export cell' in opening_problem(nb(table, export_first=True))
    assert opening_problem(nb()) == "no outputs (run `make outputs`)"

def test_documented_names_follow_what_nbdev_shows(tmp_path):
    fn = make_nb(tmp_path/'b.ipynb', ('md', '# B'),
                 ('code', '#| export\nclass Thing:\n    def go(self): pass\n    def stop(self): pass\n    @property\n    def df(self): pass'),
                 ('code', '#| export\ndef helper(): pass\ndef _private(): pass'),
                 ('code', 'show_doc(Thing.go)'), ('code', '#| hide\nshow_doc(Thing.stop)'),
                 ('code', '#| export\n#| hide\ndef hidden_fn(): pass'))
    assert documented_names(fn) == {'Thing', 'helper', 'Thing.go'}   # auto-added for Thing and helper; hidden ones not

def test_public_api_lists_methods_and_patches():
    api = public_api()
    assert 'ProgressiveResizeCallback' in api['progfast.callbacks.progressive'] and 'Learner.fit_progressive' in api['progfast.callbacks.progressive']
    assert 'Comparison.save' in api['progfast.studies.comparison'] and 'RandomBlur.draw' in api['progfast.core.blur']
    every = [n for names in api.values() for n in names]
    assert not [n for n in every if n.split('.')[-1] in HOOKS | {'before_fit', 'after_batch'} or '._' in n or n.startswith('_')]
