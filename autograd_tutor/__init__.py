"""autograd-tutor: learn PyTorch's autograd by predicting gradients before PyTorch reveals them."""
