"""Faster, better-generalizing CNN training on small image datasets for fastai: progressive resizing, progressive
deblurring, mixed-size training"""

__version__ = "0.0.1"
