"""Faster, better-generalizing CNN training on small image datasets for fastai: progressive resizing, progressive deblurring, mixed-size training

Modules:

- `progfast.schedule`: One abstraction for every quantity that changes with training progress: image size, blur sigma, dropout, weight decay, MixUp strength."""

__version__ = "0.0.1"
