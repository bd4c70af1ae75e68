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
