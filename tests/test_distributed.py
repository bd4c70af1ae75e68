"""Multi-process training: progfast under fastai's distributed training (HF Accelerate, `learn.distrib_ctx()`), two
processes on the CPU with the gloo backend, launched twice with the same seed by `scripts/distributed_check.py`.

What the worker does, and what each process writes, is described in the script. Connections stay on 127.0.0.1."""
import json, os, socket, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from progfast.testing import stripes_folder

SCRIPT = Path(__file__).resolve().parents[1]/'scripts'/'distributed_check.py'
WORLD, SEED = 2, 0
N_TRAIN, N_VALID = 12, 7                        # images per class (two classes) in the training and validation sets
PROGRESSIVE = ('shared', 'per_rank')            # fit_progressive: set_seed(seed) on every process / set_seed(seed + rank)
FITS = PROGRESSIVE + ('mixsize',)               # MixSize(mode='plain'): set_seed(seed) on every process
SCALED = 'scaled'                               # fit_progressive(batch_scale=True), batch norm re-estimated at the end

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def launch(data, out, seed=SEED, world=WORLD, timeout=300) -> list:
    "Run the worker in `world` processes, as `torchrun`/`accelerate launch` would start them; their records by rank"
    port,procs = free_port(),[]
    for rank in range(world):
        env = dict(os.environ, MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                   LOCAL_RANK=str(rank), OMP_NUM_THREADS='1', HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
        procs.append(subprocess.Popen([sys.executable, str(SCRIPT), str(data), str(out), '--seed', str(seed)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try: logs = [p.communicate(timeout=timeout)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None: p.kill(); p.wait()
    for rank,(p,log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {rank} failed (exit code {p.returncode}):\n{log[-4000:]}"
    return [json.loads((Path(out)/f'rank{r}.json').read_text()) for r in range(world)]

@pytest.fixture(scope='module')
def launches(tmp_path_factory):
    "Two launches of two processes each, with the same seed"
    tmp = tmp_path_factory.mktemp('distributed')
    data = stripes_folder(tmp/'data', n_train=N_TRAIN, n_valid=N_VALID, size=32)
    return [launch(data, tmp/f'launch{i}') for i in range(2)]

def fits(launch, name): return [r['fits'][name] for r in launch]
def train_steps(fit): return [s for s in fit['steps'] if s['train']]
def valid_steps(fit): return [s for s in fit['steps'] if not s['train']]
def settings(launches): return launches[0][0]['settings']                 # the worker's schedules, epochs, batch size
def n_iter(launches): return 2*N_TRAIN // WORLD // settings(launches)['bs']  # each process gets 1/WORLD of the items
def per_epoch(values, launches): return [v for v in values for _ in range(n_iter(launches))]

def test_the_processes_form_one_group(launches):
    for launch in launches: assert [(r['rank'], r['world_size']) for r in launch] == [(i, WORLD) for i in range(WORLD)]

@pytest.mark.parametrize('name', PROGRESSIVE)
def test_every_process_applies_the_same_size_at_the_same_step(launches, name):
    cfg = settings(launches)
    for fit in fits(launches[0], name):
        steps = train_steps(fit)
        assert [s['model'] for s in steps] == [[s, s] for s in per_epoch(cfg['sizes'], launches)]
        assert all(s['model_training'] for s in steps)
        assert fit['applied']['size'] == per_epoch(cfg['sizes'], launches)      # what progfast recorded
        assert fit['applied']['dropout'] == per_epoch(cfg['dropout'], launches)
        assert fit['applied']['sigma'] == per_epoch(cfg['sigma'], launches)
        assert [dict(zip(fit['metric_names'], row))['size'] for row in fit['recorder']] == cfg['sizes']   # its column

def test_mixsize_draws_the_same_size_on_every_process_when_seeded_alike(launches):
    a,b = fits(launches[0], 'mixsize')
    sizes = [s['model'] for s in train_steps(a)]
    assert len(sizes) == settings(launches)['epochs'] * n_iter(launches)
    assert len({tuple(s) for s in sizes}) > 1                                        # a random size per step
    assert sizes == [[s, s] for s in a['applied']['size']]                           # the size MixSize recorded
    assert [s['model'] for s in train_steps(b)] == sizes

@pytest.mark.parametrize('name', FITS)
def test_validation_runs_at_the_final_size_on_every_process(launches, name):
    sizes = settings(launches)['sizes']
    final = sizes[-1]
    for fit in fits(launches[0], name):
        steps = valid_steps(fit)
        assert steps and all(s['model'] == [final]*2 and not s['model_training'] for s in steps)
        if name in PROGRESSIVE:      # progfast's check that the model takes the smallest and largest size ran in each
            assert sorted(fit['dry_run']) == [[False, s, s] for s in (min(sizes), final)]

def test_one_seed_for_all_processes_gives_them_the_same_blur_decisions(launches):
    a,b = fits(launches[0], 'shared')
    assert a['seed'] == b['seed']
    assert set(a['applied']['blurred']) <= {0., 1.}             # blur_per='batch': a batch is blurred or not
    assert 0 < sum(a['applied']['blurred']) < len(a['applied']['blurred'])
    assert a['applied'] == b['applied']                         # so the global batch is blurred as a whole

def test_a_seed_per_process_gives_each_its_own_blur_decisions(launches):
    a,b = fits(launches[0], 'per_rank')
    assert a['seed'] != b['seed']
    assert a['applied']['blurred'] != b['applied']['blurred']
    assert a['applied']['sigma'] == b['applied']['sigma']       # the schedule itself is shared

@pytest.mark.parametrize('name', FITS)
def test_two_launches_with_the_same_seed_repeat_each_process(launches, name):
    for first,second in zip(fits(launches[0], name), fits(launches[1], name)):
        assert first['applied'] == second['applied']
        assert first['steps'] == second['steps']
        np.testing.assert_allclose(first['params'], second['params'], rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('name', FITS)
def test_every_process_ends_with_the_same_weights(launches, name):
    a,b = fits(launches[0], name)
    np.testing.assert_allclose(a['params'], b['params'], rtol=1e-5, atol=1e-6)   # DDP averages the gradients

@pytest.mark.parametrize('name', FITS)
def test_results_are_gathered_from_all_processes(launches, name):
    a,b = fits(launches[0], name)
    n_valid = 2*N_VALID
    for fit in (a, b):
        preds,local = np.array(fit['preds']),np.array(fit['local_preds'])
        assert preds.shape == local.shape == (n_valid, 2)                    # every item once: padding removed
        assert sorted(fit['targs']) == sorted([0]*N_VALID + [1]*N_VALID)
        dist = np.abs(preds[:, None] - local[None]).sum(-1)                  # gathered batch by batch: another order
        assert sorted(dist.argmin(1)) == list(range(n_valid)) and dist.min(1).max() < 1e-4
        last = dict(zip(fit['metric_names'], fit['recorder'][-1]))           # the last epoch's validation, same model
        assert fit['accuracy'] == pytest.approx(last['accuracy'], abs=1e-6)
        cross_entropy = -np.log(preds[np.arange(n_valid), fit['targs']]).mean()
        assert cross_entropy == pytest.approx(last['valid_loss'], rel=1e-5)  # the mean over all items, not one shard
    assert a['preds'] == b['preds'] and a['targs'] == b['targs']
    np.testing.assert_allclose(a['recorder'], b['recorder'], rtol=1e-6)     # the same losses and metrics on every process

def test_loader_mode_decodes_at_the_scheduled_size(launches):
    for fit in fits(launches[0], 'per_rank'):
        assert [s['loader'] for s in train_steps(fit)] == [s['model'] for s in train_steps(fit)]

def test_batch_scaling_takes_the_same_steps_on_every_process(launches):
    "Each process plans its epochs from its own, equal share of the images: the same number of steps, sizes and batch sizes"
    cfg = settings(launches)
    share = 2*N_TRAIN // WORLD                                   # each process's images per epoch
    a,b = fits(launches[0], SCALED)
    assert [s['model'] for s in train_steps(a)] == [s['model'] for s in train_steps(b)]
    assert a['applied']['bs'] == b['applied']['bs'] and a['applied']['size'] == b['applied']['size']
    per_size = {}
    for size,bs in zip(a['applied']['size'], a['applied']['bs']): per_size.setdefault(size, []).append(bs)
    for size in cfg['sizes']:
        target = max(1, round(cfg['bs'] * (cfg['sizes'][-1] / size)**2))
        k = -(-share // target)                                   # ceil: the fewest steps of at most `target` images
        assert sorted(per_size[size]) == sorted([share // k + (i < share % k) for i in range(k)]), (size, per_size[size])
    np.testing.assert_allclose(a['params'], b['params'], rtol=1e-5, atol=1e-6)   # batch norm re-estimated alike
