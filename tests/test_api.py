"""The public API (issue 24): `progfast.all` holds what users call, at most 40 names, none of them one of fastai's, each
listed in the index notebook; and no progfast module star-imports another or imports one above it."""
import ast, json, re
from pathlib import Path
import pytest
import progfast.all

REPO = Path(__file__).resolve().parent.parent
MAX_NAMES = 40


def test_progfast_all_shadows_nothing_of_fastai():
    import fastai.vision.all as fa
    ns = {}
    exec('from fastai.vision.all import *', ns)
    before = dict(ns)
    exec('from progfast.all import *', ns)
    changed = [n for n in before if n != '__builtins__' and ns[n] is not before[n]]
    assert not changed, f"from progfast.all import * replaces fastai's {changed}"


def test_progfast_all_is_short_and_listed_in_the_index():
    names = progfast.all.__all__
    assert len(names) <= MAX_NAMES, f"progfast.all has {len(names)} names, more than {MAX_NAMES}"
    assert len(set(names)) == len(names)
    page = '\n'.join(''.join(c['source']) for c in json.loads((REPO/'nbs'/'index.ipynb').read_text())['cells'])
    missing = [n for n in names if f'`{n}`' not in page]
    assert not missing, f"names of progfast.all the index notebook does not list: {missing}"


def imports_of(fn: Path) -> list:
    "(module, names, is_star, level) of every import of the progfast module file `fn`"
    out = []
    for node in ast.walk(ast.parse(fn.read_text())):
        if isinstance(node, ast.ImportFrom):
            out.append((node.module or '', [a.name for a in node.names], any(a.name == '*' for a in node.names), node.level))
    return out


LAYERS = [('core', ['checks', 'schedule', 'blur', 'sizing', 'clock']),          # sub-packages, lowest first, and their modules
          ('callbacks', ['progressive', 'mixsize', 'learned_resizer']),
          ('data', ['embedded', 'folders']),
          ('', ['models', 'learner']),
          ('studies', ['comparison', 'khor', 'mkrtchyan']),
          ('', ['testing', 'cli', 'all'])]
ORDER = [f"{pkg}.{m}" if pkg else m for pkg, mods in LAYERS for m in mods]


def dotted(fn: Path) -> str:
    "progfast/core/blur.py -> 'core.blur'"
    return '.'.join(fn.relative_to(REPO/'progfast').with_suffix('').parts)


def target_of(me: str, mod: str, level: int) -> str:
    "The progfast module an import in module `me` names ('' when it is not one of progfast's)"
    if level == 0: return mod[len('progfast.'):] if mod.startswith('progfast.') else ''
    base = me.split('.')[:len(me.split('.')) - level]
    return '.'.join(base + ([mod] if mod else []))


def test_every_module_has_a_layer():
    found = {dotted(fn) for fn in (REPO/'progfast').rglob('*.py') if not fn.name.startswith('_')}
    assert found == set(ORDER), f"modules with no layer: {found - set(ORDER)}; layers with no module: {set(ORDER) - found}"
    assert not list((REPO/'progfast').glob('*/*/*.py')), "sub-packages are one level deep"


def test_no_star_or_upward_imports_between_progfast_modules():
    "A module imports progfast modules by name, and only those below it (core, callbacks, data, models and learner, studies; `all` and `cli` on top)"
    problems = []
    for fn in sorted((REPO/'progfast').rglob('*.py')):
        if fn.name.startswith('_'): continue
        me = dotted(fn)
        for mod, names, star, level in imports_of(fn):
            target = target_of(me, mod, level)
            if not target: continue
            if target not in ORDER: problems.append(f"{me} imports {target}, which is no module"); continue
            if star: problems.append(f"{me} star-imports {target}")
            if ORDER.index(target) > ORDER.index(me): problems.append(f"{me} imports {target}, a layer above it")
    assert not problems, '\n'.join(problems)


def test_the_import_check_can_fail():
    assert target_of('callbacks.progressive', 'core.sizing', 2) == 'core.sizing'
    assert target_of('core.sizing', 'blur', 1) == 'core.blur' and target_of('cli', 'progfast.learner', 0) == 'learner'
    assert ORDER.index(target_of('core.blur', 'callbacks.mixsize', 2)) > ORDER.index('core.blur')


# Issue 24, point 3 (each class readable as one class): fastai patches only classes a module does not own; progfast
# does the same. A class too long for one cell is split into named collaborators, never into `@patch`ed pieces.
def patched_own_classes(root: Path) -> dict:
    "class name: how many functions under `root` are `@patch`ed onto that class, for the classes defined under `root`"
    trees = [ast.parse(fn.read_text()) for fn in sorted(root.rglob('*.py'))]
    own = {n.name for t in trees for n in ast.walk(t) if isinstance(n, ast.ClassDef)}
    counts = {}
    for t in trees:
        for f in ast.walk(t):
            if not isinstance(f, ast.FunctionDef) or not f.args.args or f.args.args[0].annotation is None: continue
            names = [ast.unparse(d.func if isinstance(d, ast.Call) else d) for d in f.decorator_list]
            cls = ast.unparse(f.args.args[0].annotation)
            if 'patch' in names and cls in own: counts[cls] = counts.get(cls, 0) + 1
    return counts


def test_no_patches_on_progfast_classes():
    counts = patched_own_classes(REPO/'progfast')
    assert not counts, (f"@patch on progfast's own classes {counts}: define the method in the class (or a collaborator) "
                        f"instead; fastai patches only classes a module does not own")


def test_the_patch_count_can_fail(tmp_path):
    (tmp_path/'a.py').write_text("class Thing: pass\n@patch\ndef go(self:Thing): pass\n@patch(as_prop=True)\n"
                                 "def size(self:Thing): pass\n@patch\ndef fit(self:Learner): pass\n")
    assert patched_own_classes(tmp_path) == {'Thing': 2}


# Lines kept to fastai's width (issue 24, point 3). What nbdev writes itself is left out: a module's docstring (its
# page's one-line subtitle, from the notebook's description), the first line of `__all__`, and the index `_modidx.py`.
LINE_LIMIT = 120


def long_lines(root: Path, limit: int = LINE_LIMIT) -> list:
    "'path:line' of every line of the library under `root` longer than `limit` characters"
    out = []
    for fn in sorted(root.rglob('*.py')):
        if fn.name == '_modidx.py': continue
        lines = fn.read_text().splitlines()
        start = next((i for i, l in enumerate(lines) if l.startswith('# AUTOGENERATED')), 0)
        out += [f"{fn.relative_to(root)}:{i + 1}" for i, l in enumerate(lines)
                if i >= start and len(l) > limit and not l.startswith('__all__ = ')]
    return out


def test_library_lines_keep_fastais_width():
    long = long_lines(REPO/'progfast')
    assert not long, f"{len(long)} lines over {LINE_LIMIT} characters (edit the notebooks, then export): {long[:10]}"


def test_the_width_check_can_fail(tmp_path):
    (tmp_path/'a.py').write_text('"""' + 'd' * 130 + '"""\n# AUTOGENERATED! DO NOT EDIT!\n__all__ = [' + "'n', " * 30 + ']\n'
                                 'x = 1\ny = "' + 'a' * 120 + '"\n')
    (tmp_path/'_modidx.py').write_text('#' * 200 + '\n')
    assert long_lines(tmp_path) == ['a.py:5']
