"""autograd-tutor: learn PyTorch's autograd by predicting gradients before PyTorch reveals them."""

__version__ = "0.1.0"
