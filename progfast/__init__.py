"""Faster, better-generalizing CNN training on small image datasets for fastai: progressive resizing, progressive deblurring, mixed-size training

Modules:

- `progfast.blur`: Gaussian kernels, a separable blur of a batch on any device and dtype, and `RandomBlur`, the batch transform of randomized progressive deblurring.
- `progfast.data`: progfast's embedded dataset, a class-balanced subset of Fashion-MNIST, as fastai `DataLoaders` built from in-memory tensors, and as an image folder for the folder-based API.
- `progfast.models`: Khor's small all-convolutional network (Figure 5 of the paper): it accepts any input size, which is what progressive resizing needs.
- `progfast.schedule`: One abstraction for every quantity that changes with training progress: image size, blur sigma, dropout, weight decay, MixUp strength."""

__version__ = "0.0.1"
