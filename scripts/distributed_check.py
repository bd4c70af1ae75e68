#!/usr/bin/env python
"""One process of a multi-process progfast run: progressive resizing and randomized deblurring under fastai's
distributed training (HF Accelerate; on the CPU with the gloo backend). Used by `tests/test_distributed.py`.

Every process trains the same tiny CNN on its shard of a stripes folder with `learn.distrib_ctx()` and writes what it
saw to `OUT/rank<RANK>.json`: per fit, the shape of every batch the loader yielded (before progfast) and every input
the model received (a forward pre-hook), progfast's record (`learn.progressive.df` or `MixSize.df`), the final
parameters, the recorder's values and the validation predictions gathered by fastai. Start one process per rank with
the variables that fastai and Accelerate read (`torchrun --nproc_per_node 2 scripts/distributed_check.py DATA OUT`
sets them), or by hand, e.g. two processes on one machine:

    for i in 0 1; do MASTER_ADDR=127.0.0.1 MASTER_PORT=29511 WORLD_SIZE=2 RANK=$i LOCAL_RANK=$i \\
        python scripts/distributed_check.py DATA OUT & done; wait

Fits (3 epochs, sizes 16 -> 24 -> 32 px, dropout and blur sigma schedules):
- `shared`: `mode='batch'`, one blur decision per batch, `set_seed(seed)` on every process;
- `per_rank`: `mode='loader'`, one blur decision per image, `set_seed(seed + rank)`;
- `mixsize`: MixSize (`mode='plain'`) drawing from the same sizes, `set_seed(seed)` on every process;
- `scaled`: `mode='batch'` with `batch_scale=True` (batches that follow the size) and the batch-norm re-estimation at
  the end, `set_seed(seed)` on every process.
The first two keep the running batch-norm statistics of training (`recalibrate_bn=False`), so their gathered
predictions can be checked against the last epoch's validation.
"""
import argparse, json
from datetime import timedelta
from pathlib import Path
import torch
from accelerate.utils import InitProcessGroupKwargs
from fastai.callback.core import Callback
from fastai.distributed import DistributedDL
from fastai.metrics import accuracy
from fastai.torch_core import rank_distrib, num_distrib, set_seed
from fastai.vision.data import ImageDataLoaders
from fastai.vision.augment import Resize
from fastai.learner import Learner
import progfast.callbacks.progressive  # noqa: F401  (Learner.fit_progressive)
from progfast.callbacks.mixsize import MixSize
from progfast.testing import tiny_cnn

SIZES, DROPOUT, SIGMA = [16, 24, 32], [0.1, 0.2, 0.3], [1.5, 1.0, 0.5]   # one value per epoch
EPOCHS, BS = 3, 4
FITS = dict(shared=dict(mode='batch', blur_per='batch', seed_per_rank=False),
            per_rank=dict(mode='loader', blur_per='image', seed_per_rank=True),
            mixsize=dict(mixsize=True, seed_per_rank=False),
            scaled=dict(mode='batch', blur_per='batch', seed_per_rank=False, batch_scale=True))

def _broadcast_cpu(self, t, rank):
    "fastai's `DistributedDL._broadcast` moves the indices to CUDA (for nccl); with gloo on the CPU, broadcast them there"
    t = torch.LongTensor(t)
    torch.distributed.broadcast(t, rank)
    return t.tolist()

class Watch(Callback):
    "Record each batch as the loader made it (before progfast's callback, order -5, resizes it) and as the model got it"
    order = -10
    def __init__(self, model):
        self.steps,self.dry_run,self.loader,self.in_fit = [],[],None,False
        model.register_forward_pre_hook(self._model_input)
    def _model_input(self, m, inp):
        if not self.in_fit: return
        hw = list(inp[0].shape[-2:])
        if self.loader is None: self.dry_run.append([m.training, *hw])   # in a fit, outside a batch: progfast's check
        else: self.steps.append(dict(train=self.training, loader=self.loader, model=hw, model_training=m.training))
    def before_fit(self): self.in_fit = True
    def after_fit(self): self.in_fit = False
    def before_batch(self): self.loader = list(self.xb[0].shape[-2:])
    def after_batch(self): self.loader = None

def predict_locally(learn):
    "Probabilities for the whole validation set, in this process only (`get_preds` would still gather: WORLD_SIZE is set)"
    model = learn.model.eval()
    with torch.no_grad(): return torch.cat([learn.loss_func.activation(model(xb)) for xb,_ in learn.dls.valid])

def train(data, seed, seed_per_rank, mode='batch', blur_per='batch', mixsize=False, batch_scale=False, bs=BS, epochs=EPOCHS):
    "Train one fit in this process (progressive, or MixSize with `mixsize`) and return what it saw"
    seed = seed + rank_distrib() if seed_per_rank else seed
    set_seed(seed, reproducible=True)
    dls = ImageDataLoaders.from_folder(data, item_tfms=Resize(SIZES[-1]), bs=bs, num_workers=0, seed=0)
    learn = Learner(dls, tiny_cnn(), metrics=accuracy)
    watch = Watch(learn.model)
    pg = InitProcessGroupKwargs(timeout=timedelta(seconds=120))   # a crashed peer fails the run instead of hanging it
    with learn.no_bar(), learn.distrib_ctx(sync_bn=False, cpu=True, kwargs_handlers=[pg]):
        if mixsize: learn.fit(epochs, 1e-2, cbs=[mix := MixSize(sizes=SIZES, mode='plain'), watch])
        else: learn.fit_progressive(epochs, 1e-2, sizes=SIZES, mode=mode, regularization=dict(dropout=DROPOUT),
                                    blur=SIGMA, blur_p=0.5, blur_per=blur_per, cbs=watch, batch_scale=batch_scale,
                                    recalibrate_bn=batch_scale)
        names,values = learn.recorder.metric_names[1:-1],[list(map(float, v)) for v in learn.recorder.values]
        preds,targs = learn.get_preds()         # each process predicts its shard; fastai's DistributedDL gathers them
    local = predict_locally(learn)
    applied = (mix.df[['size', 'images']] if mixsize else learn.progressive.df[['size', 'bs', 'lr_mult', 'blurred', 'blur_sigma', 'sigma', 'dropout']])
    return dict(seed=seed, n_valid=len(dls.valid_ds), steps=watch.steps, dry_run=watch.dry_run, applied=applied.to_dict('list'),
                params=torch.cat([p.detach().flatten() for p in learn.model.parameters()]).tolist(),
                metric_names=list(names), recorder=values,
                preds=preds.tolist(), targs=targs.tolist(), local_preds=local.tolist(), accuracy=float(accuracy(preds, targs)))

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('data', help='an image folder with train/ and valid/ (e.g. progfast.testing.stripes_folder)')
    p.add_argument('out', help='folder for rank<RANK>.json')
    p.add_argument('--seed', type=int, default=0)
    args = p.parse_args()
    if num_distrib() < 2: raise SystemExit("set WORLD_SIZE >= 2, RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT (see --help)")
    DistributedDL._broadcast = _broadcast_cpu      # this check always trains on the CPU (cpu=True, gloo)
    res = dict(rank=rank_distrib(), world_size=num_distrib(),
               settings=dict(sizes=SIZES, dropout=DROPOUT, sigma=SIGMA, epochs=EPOCHS, bs=BS),
               fits={name: train(args.data, args.seed, **kw) for name,kw in FITS.items()})
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    (out/f'rank{rank_distrib()}.json').write_text(json.dumps(res))
    if torch.distributed.is_initialized(): torch.distributed.destroy_process_group()

if __name__ == '__main__': main()
