"""Faster, better-generalizing CNN training on small image datasets for fastai: progressive resizing, progressive deblurring, mixed-size training

Modules:

- `progfast.blur`: Gaussian kernels, a separable blur of a batch on any device and dtype, and `RandomBlur`, the batch transform of randomized progressive deblurring.
- `progfast.data`: progfast's embedded dataset, a class-balanced subset of Fashion-MNIST, as fastai `DataLoaders` built from in-memory tensors, and as an image folder for the folder-based API.
- `progfast.experiments`: `compare_regimes` runs training regimes x architectures x seeds on one dataset and returns the table and the plots of Wanger & Frohn's ENTR study (their Figures 4 and 5), with the training curves.
- `progfast.learner`: `progressive_learner` builds a fastai `Learner` for a folder of images in one line; `Learner.fit_entr` runs Wanger & Frohn's ENTR training recipe and measures what it cost.
- `progfast.mixsize`: MixSize: a random image size for every training batch with the compute per step kept constant, evaluation across test sizes (the scale-resiliency curve), batch-norm recalibration at a test size, and multi-scale TTA.
- `progfast.models`: Khor's small all-convolutional network (Figure 5 of the paper): it accepts any input size, which is what progressive resizing needs.
- `progfast.resizer`: `LearnedResizer`, a small CNN that learns to resize images for the classifier behind it (Talebi & Milanfar), and `with_resizer`, which puts one in front of any model or learner.
- `progfast.schedule`: One abstraction for every quantity that changes with training progress: image size, blur sigma, dropout, weight decay, MixUp strength."""

__version__ = "0.0.1"
