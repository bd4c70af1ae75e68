"""Issue #26, "A new user's first hour without a stumble": the command line as a first-time user meets it. One test (or
a few) per point of the issue; each failed on the main of 2026-12-07. Tiny data, Khor's network or a tiny ResNet, few
epochs, caches and outputs in temporary folders, no network."""
import contextlib, io, json, os, re, socket
from pathlib import Path
import numpy as np
import pytest
from PIL import Image
import progfast.studies.khor
from progfast.cli import main
from progfast.testing import stripes_folder, messy_folder

@pytest.fixture(autouse=True)
def _caches_in_tmp(tmp_path_factory, monkeypatch):
    "progfast's image cache and fastai's download folder (one per test) in temporary folders, never the user's"
    monkeypatch.setenv('PROGFAST_CACHE', str(tmp_path_factory.getbasetemp()/'progfast-cache'))
    monkeypatch.setenv('FASTAI_HOME', str(tmp_path_factory.mktemp('fastai-home')))

class TTY(io.StringIO):
    "A standard output that says it is a terminal"
    def isatty(self): return True

def run_cli(*argv, tty:bool=False):
    "Run `progfast` with `argv`: (exit code, stdout, stderr)"
    out,err = (TTY() if tty else io.StringIO()),io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: code = main([str(a) for a in argv])
        except SystemExit as e: code = e.code       # the parser's own errors exit
    return code,out.getvalue(),err.getvalue()

def one_line_error(code, err, *words):
    assert code != 0 and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    for w in words: assert w in err, f"{w!r} not in: {err}"

@pytest.fixture(scope='module')
def stripes(tmp_path_factory): return stripes_folder(tmp_path_factory.mktemp('first-hour')/'stripes', n_train=12, n_valid=4, size=32)

TINY_DEMO = ['--epochs', '1', '--n-train', '100', '--bs', '32']
TINY_TRAIN = ['--arch', 'khor', '--pretrained', 'false', '--regime', 'fixed', '--size', '32', '--bs', '8', '--lr', '1e-2']
FASTAI_TABLE = 'train_loss'         # the header of fastai's per-epoch table

# --- 1. `progfast demo`: every documented flag combination, a single approach included; --out checked first

def test_demo_with_a_single_approach_prints_its_table_and_saves(tmp_path):
    "`--approaches normal` trained every run, then failed while saving (KeyError 'measure': no pairs) and wrote nothing"
    code,out,err = run_cli('demo', '--approaches', 'normal', '--seeds', '0,1', *TINY_DEMO, '--quiet', '--out', tmp_path)
    assert code == 0, err
    assert {p.name for p in tmp_path.iterdir()} == {'table.md', 'runs.csv', 'curves.png'}   # no pairs: nothing to pair with
    table = (tmp_path/'table.md').read_text()
    assert '| Normal |' in table and "Khor's finding" not in table and '\n' + table + '\n' in out

def cifar_stand_in(path:Path) -> Path:
    "A folder with CIFAR-10's layout: train/ and test/ folders of class folders of 32 px PNGs"
    rng = np.random.default_rng(0)
    for split,n in (('train', 10), ('test', 3)):
        for cls in ('cat', 'dog'):
            (path/split/cls).mkdir(parents=True)
            for i in range(n): Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path/split/cls/f'{i}.png')
    return path

DEMO_FLAGS = [   # (id, options): the options of `progfast demo --help`, alone and together (tiny: 1 epoch, 100 images)
    ('one-approach-not-normal', dict(approaches='progressive', seeds='0')),
    ('two-approaches-without-normal', dict(approaches='progressive,proposed', seeds='0,1')),
    ('one-seed', dict(approaches='normal,proposed', seeds='3')),
    ('test-curve-and-bn-each-epoch', dict(approaches='normal,progressive', seeds='0', test_curve=True, bn_each_epoch=True, lr='0.02')),
    ('cifar10-local-copy', dict(data='cifar10', data_path='{cifar}', approaches='normal,proposed', seeds='0', n_train='16', bs='4')),
]

@pytest.mark.parametrize('opts', [c[1] for c in DEMO_FLAGS], ids=[c[0] for c in DEMO_FLAGS])
def test_demo_flag_combinations_work(tmp_path, opts):
    opts = dict(dict(epochs='1', n_train='100', bs='32'), **opts)
    if 'data_path' in opts: opts['data_path'] = cifar_stand_in(tmp_path/'cifar10')
    argv = [a for k,v in opts.items() for a in ([f"--{k.replace('_', '-')}"] + ([] if v is True else [v]))]
    code,out,err = run_cli('demo', *argv, '--quiet', '--out', tmp_path/'out')
    assert code == 0, err
    table = (tmp_path/'out'/'table.md').read_text()
    assert '| Approach (equal epochs: 1) |' in table and '\n' + table + '\n' in out
    assert (tmp_path/'out'/'curves.png').read_bytes()[:4] == b'\x89PNG'

def test_demo_checks_out_before_training(tmp_path, monkeypatch):
    blocker = tmp_path/'taken'; blocker.write_text('a file')
    def no_training(*a, **k): raise AssertionError("a run started before --out was checked")
    monkeypatch.setattr(progfast.studies.khor, 'run_khor', no_training)
    for out in (blocker, blocker/'results'):
        code,_,err = run_cli('demo', *TINY_DEMO, '--out', out)
        one_line_error(code, err, '--out', str(blocker))

# --- 2. what the commands print: one bar over the runs and a line per run; --verbose every epoch; --quiet the results

RUN_LINE = re.compile(r"run (\d)/(\d): (normal|progressive|proposed), seed (\d): test accuracy \d+\.\d\d%, \d+\.\d s")

def test_demo_prints_a_line_per_run_not_every_epoch(tmp_path):
    code,out,err = run_cli('demo', *TINY_DEMO, '--approaches', 'normal,proposed', '--seeds', '0', '--out', tmp_path)
    assert code == 0, err
    lines = [l for l in out.splitlines() if RUN_LINE.fullmatch(l)]
    assert [RUN_LINE.fullmatch(l).group(1, 2) for l in lines] == [('1', '2'), ('2', '2')], out
    assert FASTAI_TABLE not in out and '█' not in out                  # no per-epoch table; no bar off a terminal

def test_demo_draws_one_bar_over_the_runs_on_a_terminal(tmp_path):
    code,out,err = run_cli('demo', *TINY_DEMO, '--approaches', 'normal,proposed', '--seeds', '0', '--out', tmp_path, tty=True)
    assert code == 0, err
    assert '| 2/2 runs' in out and '| 0/2 runs' in out and FASTAI_TABLE not in out
    assert len(RUN_LINE.findall(out)) == 2

def test_demo_warm_up_epoch_does_not_warn_about_its_own_schedules(tmp_path):
    "The untimed one-epoch warm-up warned that Khor's schedules (made for 9 epochs) stop short, on every `make demo`"
    code,out,err = run_cli('demo', '--epochs', '9', '--n-train', '100', '--bs', '32', '--approaches', 'proposed',
                           '--seeds', '0', '--quiet', '--out', tmp_path)
    assert code == 0, err
    assert 'warning' not in err and 'warning' not in out, err

def test_demo_verbose_prints_every_epoch_and_quiet_only_the_table(tmp_path):
    code,out,err = run_cli('demo', *TINY_DEMO, '--approaches', 'normal', '--seeds', '0', '--verbose', '--out', tmp_path/'v')
    assert code == 0, err
    assert FASTAI_TABLE in out and len(RUN_LINE.findall(out)) == 1
    code,out,err = run_cli('demo', *TINY_DEMO, '--approaches', 'normal', '--seeds', '0', '--quiet', '--out', tmp_path/'q')
    assert code == 0, err
    assert '█' not in out and not RUN_LINE.findall(out) and FASTAI_TABLE not in out    # the block fastprogress printed
    assert out.lstrip().startswith("# progfast demo: Khor's Figure 8")
    code,_,err = run_cli('demo', '--quiet', '--verbose', '--out', tmp_path/'x')
    one_line_error(code, err, '--quiet and --verbose contradict each other')

def test_progress_bar_only_on_a_terminal():
    from progfast.cli import _Progress
    for tty in (False, True):
        out = TTY() if tty else io.StringIO()
        with contextlib.redirect_stdout(out):
            p = _Progress(3, 'runs').begin()
            for i in range(3): p.done(f"run {i + 1}/3")
            p.end()
        text = out.getvalue()
        assert [l.strip() for l in text.replace('\r', '\n').splitlines() if l.strip().startswith('run')] == ['run 1/3', 'run 2/3', 'run 3/3']
        assert ('| 3/3 runs' in text) == tty and ('█' in text) == tty

def test_train_prints_the_learning_rate_and_no_epochs_unless_verbose(stripes, tmp_path):
    code,out,err = run_cli('train', stripes, *TINY_TRAIN, '--sgdr-epochs', '1', '--cyclic-epochs', '1', '--cycle-mult-cycles', '0',
                           '--unfreeze-epochs', '0', '--out', tmp_path/'a')
    assert code == 0, err
    assert FASTAI_TABLE not in out and 'learning rate 0.01 (given with --lr)' in out
    flags = [f for f in TINY_TRAIN if f not in ('--lr', '1e-2')]
    code,out,err = run_cli('train', stripes, *flags, '--sgdr-epochs', '1', '--cyclic-epochs', '1', '--cycle-mult-cycles', '1',
                           '--unfreeze-epochs', '0', '--lr-find-iters', '5', '--verbose', '--out', tmp_path/'b')
    assert code == 0, err
    assert FASTAI_TABLE in out
    assert re.search(r"learning rate \S+ \(found by the learning-rate finder in 5 iterations\)", out), out
    steps = [l for l in out.splitlines() if l.startswith(('step ', 'learning-rate finder:'))]
    assert steps == ['learning-rate finder: 5 iterations at 32 px (regime fixed)',
                     "step 1/3: SGDR over the regime's sizes, regime fixed, 1 epoch at 32 px",
                     'step 2/3: one-cycle, regime fixed, 1 epoch at 32 px',
                     'step 3/3: cycle_mult SGDR, regime fixed, 1 epoch at 32 px'], steps
    # each step's line comes before its table
    assert out.index('step 1/3') < out.index(FASTAI_TABLE) and out.index('step 3/3') < out.rindex(FASTAI_TABLE)
    code,out,err = run_cli('train', stripes, *TINY_TRAIN, '--epochs', '1', '--quiet', '--out', tmp_path/'c', tty=True)
    assert code == 0, err
    assert '█' not in out and FASTAI_TABLE not in out and 'learning rate' in out

def test_compare_prints_a_line_per_run(stripes, tmp_path):
    flags = [f for f in TINY_TRAIN if f not in ('--regime', 'fixed')]
    steps = ['--sgdr-epochs', '2', '--cyclic-epochs', '0', '--cycle-mult-cycles', '0', '--unfreeze-epochs', '0']
    code,out,err = run_cli('compare', stripes, *[f.replace('--arch', '--archs') for f in flags], *steps,
                           '--regimes', 'fixed,stepwise', '--seeds', '0,1', '--out', tmp_path/'a')
    assert code == 0, err
    lines = re.findall(r"run (\d)/4: khor, regime (fixed|stepwise), seed (\d): accuracy \d+\.\d\d%, \d+\.\d s", out)
    assert sorted((r, s) for _,r,s in lines) == [('fixed', '0'), ('fixed', '1'), ('stepwise', '0'), ('stepwise', '1')], out
    assert [i for i,_,_ in lines] == ['1', '2', '3', '4'] and FASTAI_TABLE not in out
    assert 'Accuracy at equal epochs' in (tmp_path/'a'/'comparison.md').read_text()
    code,out,err = run_cli('compare', stripes, *[f.replace('--arch', '--archs') for f in flags], *steps,
                           '--regimes', 'fixed', '--quiet', '--out', tmp_path/'b')
    assert code == 0, err
    assert 'run 1/1' not in out and '█' not in out and FASTAI_TABLE not in out

# --- 3. `progfast train --out` writes a model one can use; `progfast predict`; `--epochs` as a budget

def test_train_writes_an_export_and_predict_uses_it(stripes, tmp_path):
    out = tmp_path/'run'
    code,text,err = run_cli('train', stripes, *TINY_TRAIN, '--epochs', '2', '--out', out)
    assert code == 0, err
    assert (out/'export.pkl').is_file() and (out/'results.json').is_file()
    assert json.loads((out/'results.json').read_text())['classes'] == ['horizontal', 'vertical']
    assert f"progfast predict {out} IMAGE" in text and 'from fastai.learner import load_learner' in text
    assert f"load_learner('{out/'export.pkl'}').predict('IMAGE')" in text
    from fastai.learner import load_learner
    learn = load_learner(out/'export.pkl')
    assert list(learn.dls.vocab) == ['horizontal', 'vertical']
    images = sorted((stripes/'valid'/'horizontal').glob('*.png'))[:2]
    label,_,probs = learn.predict(images[0])
    assert label in ('horizontal', 'vertical') and abs(float(probs.sum()) - 1) < 1e-5
    code,text,err = run_cli('predict', out, *images)
    assert code == 0, err
    lines = text.strip().splitlines()
    assert len(lines) == 2 and all(re.fullmatch(rf"{re.escape(str(f))}: (horizontal|vertical) \d+\.\d%", l) for f,l in zip(images, lines)), lines
    assert lines[0].split(': ')[1].split()[0] == label
    code,text,err = run_cli('predict', out/'export.pkl', images[0], '--top', '3')     # more than there are classes: both
    assert code == 0 and re.fullmatch(r".+: (horizontal|vertical) \d+\.\d%, (horizontal|vertical) \d+\.\d%", text.strip()), text

def test_predict_refuses_what_it_cannot_use(stripes, tmp_path):
    (tmp_path/'old').mkdir(); (tmp_path/'old'/'model.pth').write_bytes(b'x')
    (tmp_path/'junk.pkl').write_bytes(b'not a model')
    (tmp_path/'notes.txt').write_text('not an image')
    img = next((stripes/'valid'/'vertical').glob('*.png'))
    for argv,words in (((tmp_path/'nothing', img), ['nothing does not exist']),
                       ((tmp_path/'old', img), ['has no export.pkl', 'model.pth', 'train again']),
                       ((tmp_path/'junk.pkl', img), ['cannot load', 'junk.pkl']),
                       ((tmp_path/'junk.pkl', tmp_path/'notes.txt'), ['notes.txt cannot be read as an image']),
                       ((tmp_path/'junk.pkl', tmp_path/'no.png'), ['no.png does not exist']),
                       ((tmp_path/'junk.pkl', img, '--top', '0'), ['--top must be a whole number'])):
        code,_,err = run_cli('predict', *argv)
        one_line_error(code, err, *words)

def test_train_epochs_is_a_budget_split_over_the_steps(stripes, tmp_path):
    "`train --epochs N` was refused as an unknown option, with no word of the recipe's epoch flags"
    from progfast.cli import recipe_epochs, train
    res = train(str(stripes), arch='khor', pretrained=False, regime='fixed', size=32, bs=8, lr=1e-2, epochs=5, quiet=True,
                out=str(tmp_path/'a'))
    assert len(res.history) == 5                                    # one row per epoch trained
    assert json.loads((tmp_path/'a'/'results.json').read_text())['epochs'] == recipe_epochs(5, 'fixed', 32)
    code,out,err = run_cli('train', stripes, *TINY_TRAIN, '--epochs', '3', '--out', tmp_path/'b')
    assert code == 0 and '--epochs 3: ' in out, err
    code,_,err = run_cli('train', stripes, *TINY_TRAIN, '--epochs', '6', '--unfreeze-epochs', '2', '--out', tmp_path/'c')
    one_line_error(code, err, "--epochs 6 is split over the recipe's steps; give it or --unfreeze-epochs, not both")
    code,_,err = run_cli('train', stripes, *[f if f != 'fixed' else 'gradual' for f in TINY_TRAIN], '--epochs', '2', '--out', tmp_path/'d')
    one_line_error(code, err, '--epochs 2 is fewer than the 4 epochs that the sizes of --regime gradual need')
    code,out,_ = run_cli('train', '--help')
    assert 'split over the recipe' in ' '.join(out.split())
    assert not (tmp_path/'c').exists() and not (tmp_path/'d').exists()

# --- 4. `progfast demo --data cifar10` without a network

@pytest.fixture
def no_dns(monkeypatch):
    "Name lookups fail at once, as on a machine without a network (conftest refuses the connections themselves)"
    def fail(*a, **k): raise socket.gaierror(-2, 'Name or service not known')
    monkeypatch.setattr(socket, 'getaddrinfo', fail)

def test_demo_cifar10_offline_says_download_failed_and_names_data_path(tmp_path, no_dns, monkeypatch):
    runs = []
    monkeypatch.setattr(progfast.studies.khor, 'run_khor', lambda *a, **k: runs.append(a))
    code,out,err = run_cli('demo', '--data', 'cifar10', '--quiet', '--out', tmp_path/'out')
    one_line_error(code, err, 'could not download CIFAR-10', '--data-path FOLDER', 'train/ and test/ folders of class folders')
    home = Path(os.environ['FASTAI_HOME'])
    assert (home/'archive').is_dir(), "the download was never tried"
    assert not [p for p in home.rglob('*') if p.name.endswith(('.lock', '.part'))], list(home.rglob('*'))
    assert runs == [] and not (tmp_path/'out').exists()

def test_khor_dls_download_error_names_path(no_dns):
    with pytest.raises(progfast.studies.khor.DownloadError) as e: progfast.studies.khor.khor_dls('cifar10')
    assert 'could not download CIFAR-10' in str(e.value) and 'pass path= a local copy' in str(e.value)
    assert isinstance(e.value, OSError) and e.value.url.endswith('cifar10.tgz')

def test_a_lock_file_that_was_there_before_is_left(tmp_path, no_dns):
    from fastai.data.external import fastai_path
    lock = fastai_path('archive')/'cifar10.tgz.lock'
    lock.parent.mkdir(parents=True, exist_ok=True); lock.write_text('')
    with pytest.raises(progfast.studies.khor.DownloadError): progfast.studies.khor.khor_dls('cifar10')
    assert lock.exists()                                            # another download's lock, not ours to remove
    lock.unlink()

# --- 5. messages in the command line's words

def test_a_file_given_as_the_folder_is_called_a_file(stripes, tmp_path):
    f = tmp_path/'photos.zip'; f.write_bytes(b'PK')
    code,_,err = run_cli('train', f, '--out', tmp_path/'out')
    one_line_error(code, err, 'photos.zip is not a folder: it is a file', 'unpack it first')
    code,_,err = run_cli('compare', f/'images', '--out', tmp_path/'out')
    one_line_error(code, err, f'is not a folder: {f} is a file')
    code,_,err = run_cli('demo', '--data', 'cifar10', '--data-path', f, '--out', tmp_path/'out')
    one_line_error(code, err, f'--data-path {f} is not a folder: it is a file', 'a local copy of CIFAR-10')
    code,_,err = run_cli('train', stripes, *TINY_TRAIN[:6], '--weights', tmp_path, '--out', tmp_path/'out')
    one_line_error(code, err, f'--weights {tmp_path} is a folder, not a file')

def test_python_arguments_become_plain_words(tmp_path):
    code,_,err = run_cli('demo', '--n-train', '20', '--quiet', '--out', tmp_path/'out')
    one_line_error(code, err, 'the held-out fraction 0.1 of 20 training images')
    assert 'holdout' not in err and '=' not in err.split('error:')[1], err

def test_bad_image_warning_in_the_command_lines_words(tmp_path):
    path,_ = messy_folder(tmp_path/'messy', n_per_class=6)
    code,_,err = run_cli('train', path, *TINY_TRAIN, '--sgdr-epochs', '1', '--cyclic-epochs', '0', '--cycle-mult-cycles', '0',
                         '--unfreeze-epochs', '0', '--out', tmp_path/'out')
    assert code == 0, err
    assert 'progfast train: warning: ' in err and 'cannot be used and were left out' in err
    assert 'bad_files' not in err and 'UserWarning' not in err and 'BadImageWarning' not in err, err

def test_pretrained_lists_the_values_it_takes(stripes, tmp_path):
    code,_,err = run_cli('train', stripes, '--pretrained', 'maybe', '--out', tmp_path/'out')
    one_line_error(code, err, "invalid bool_arg value: 'maybe'", 'give true or false')

@pytest.mark.parametrize('cmd', ['demo', 'compare'])
def test_seeds_that_are_not_numbers_name_the_flag(stripes, tmp_path, cmd):
    code,_,err = run_cli(cmd, *([stripes] if cmd == 'compare' else []), '--seeds', 'a,b', '--out', tmp_path/'out')
    one_line_error(code, err, "--seeds: cannot read 'a,b' as a comma-separated list of int", "'a' is not one")

def test_architecture_suggestions_name_each_model_once(stripes, tmp_path):
    code,_,err = run_cli('train', stripes, '--arch', 'resnet5', '--size', '32', '--out', tmp_path/'out')
    one_line_error(code, err, "unknown arch 'resnet5'", 'closest names: ')
    names = err.strip().split('closest names: ')[1].split(';')[0].split(', ')
    assert 'resnet50' in names and len(names) == len(set(names)), names
    assert 'callable' not in err and 'list_models()' not in err

def test_help_lists_every_regime():
    from progfast.core.schedule import SIZE_SCHEDULES
    for cmd,flag,nxt in (('train', '--regime', '--size'), ('compare', '--regimes', '--archs')):
        code,out,_ = run_cli(cmd, '--help')
        text = ' '.join(out.split()).split(f'{flag} (str)')[-1].split(nxt)[0]     # the option's help, not the usage line
        assert [n for n in SIZE_SCHEDULES if n not in text] == [], (cmd, text)

def test_train_keeps_the_final_size_by_default(stripes, tmp_path):
    "ENTR's recipe at the final size is `train`'s default: at equal time on ELPV it was never below the growing sizes"
    flags = [f for f in TINY_TRAIN if f not in ('--regime', 'fixed')]
    code,out,err = run_cli('train', stripes, *flags, '--epochs', '3', '--verbose', '--out', tmp_path/'a')
    assert code == 0, err
    assert json.loads((tmp_path/'a'/'results.json').read_text())['regime'] == 'fixed'
    sizes = re.findall(r'regime fixed, \d+ epochs? at ([\d, ]+) px', out)
    assert sizes and {int(x) for s in sizes for x in s.split(',')} == {32}, out

def test_compare_epochs_names_the_step_flags(stripes, tmp_path):
    code,_,err = run_cli('compare', stripes, '--epochs', '6', '--out', tmp_path/'out')
    one_line_error(code, err, 'unrecognized arguments: --epochs 6', '--sgdr-epochs, --cyclic-epochs, --cycle-mult-cycles and --unfreeze-epochs')

@pytest.mark.parametrize('approaches,words', [('normal,normal', '--approaches must be distinct, got normal, normal'),
                                              (',', '--approaches must name at least one of normal, progressive, proposed')])
def test_demo_approaches_named_twice_or_not_at_all(tmp_path, approaches, words):
    "`normal,normal` trained one run per seed and counted it twice in the table"
    code,_,err = run_cli('demo', *TINY_DEMO, '--approaches', approaches, '--quiet', '--out', tmp_path/'out')
    one_line_error(code, err, words)
    assert not (tmp_path/'out').exists()
