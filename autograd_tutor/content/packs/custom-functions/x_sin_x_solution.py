"""The reference solution of x_sin_x.py: backward by the chain and product rules."""

import torch


class XSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (torch.sin(x) + x * torch.cos(x))


x = torch.randn(5, requires_grad=True)
y = XSin.apply(x)
weights = torch.arange(1.0, 6.0)  # a loss whose grad_output is not all ones
(weights * y).sum().backward()
grad = x.grad

print("x    =", x.detach())
print("grad =", grad)
