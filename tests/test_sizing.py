"""The one owner of the training size (progfast.core.sizing): what the notebook cannot test in its own kernel."""
import importlib, subprocess, sys, textwrap
from fastai.learner import Learner
import progfast.core.sizing

def test_fit_is_wrapped_once_however_often_the_module_is_loaded():
    fastai_fit = Learner.fit._progfast_wraps
    assert fastai_fit.__module__ == 'fastai.learner'
    importlib.reload(progfast.core.sizing)
    importlib.reload(progfast.core.sizing)
    assert Learner.fit._progfast_wraps is fastai_fit
    assert Learner.fit.__module__ == 'progfast.core.sizing'

def test_fit_state_is_one_however_often_the_module_runs():
    "A second copy of the module (a notebook runs its cells in a namespace of its own) shares the package's fit state"
    from pathlib import Path
    from fastai.test_utils import synth_learner
    from fastai.callback.core import Callback
    class Seen(Callback):
        def before_epoch(self): self.fitting = progfast.core.sizing.is_fitting(self.learn)
    src = Path(progfast.core.sizing.__file__)
    copy = {'__name__': 'progfast.core.sizing_copy', '__package__': 'progfast.core'}
    try:
        exec(compile(src.read_text(), str(src), 'exec'), copy)    # the copy's wrapper now wraps `Learner.fit`
        assert Learner.fit.__globals__ is copy
        seen = Seen()
        synth_learner(n_trn=4, n_val=2).fit(1, cbs=seen)
        assert seen.fitting
    finally: importlib.reload(progfast.core.sizing)
