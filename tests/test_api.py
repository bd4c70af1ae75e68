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


LAYERS = ['checks', 'schedule', 'blur', 'sizing', 'resize', 'mixsize', 'resizer', 'data', 'folders', 'models', 'learner',
          'experiments', 'khor', 'mkrtchyan', 'testing', 'cli', 'all']


def test_no_star_or_upward_imports_between_progfast_modules():
    "A module imports progfast modules by name, and only those below it (DESIGN.md's layers; `all` and `cli` on top)"
    problems = []
    for fn in sorted((REPO/'progfast').glob('*.py')):
        me = fn.stem
        if me.startswith('_') or me not in LAYERS: continue
        for mod, names, star, level in imports_of(fn):
            target = mod.split('.')[-1] if (level or mod.startswith('progfast')) else None
            if target is None or target not in LAYERS: continue
            if star: problems.append(f"{me} star-imports {target}")
            if LAYERS.index(target) > LAYERS.index(me): problems.append(f"{me} imports {target}, a layer above it")
    assert not problems, '\n'.join(problems)
