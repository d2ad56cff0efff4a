"""Write the backward of a custom autograd.Function: y = x * sin(x).

`forward` is done: it computes y and saves x for the backward pass. Write `backward`: it
gets grad_output (the gradient of the loss with respect to y) and returns the gradient of
the loss with respect to x. Then run:

    python x_sin_x.py                                   # runs the loss below
    autograd-tutor check custom-functions/1 x_sin_x.py  # checks backward, explains mistakes

The check runs torch.autograd.gradcheck on XSin and compares y and grad with the
reference solution's, under the same seed: keep the names XSin, x, y and grad.
"""

import torch


class XSin(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * torch.sin(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        # TODO: return the gradient of the loss with respect to x
        raise NotImplementedError("TODO backward: return grad_output times dy/dx")


x = torch.randn(5, requires_grad=True)
y = XSin.apply(x)
weights = torch.arange(1.0, 6.0)  # a loss whose grad_output is not all ones
(weights * y).sum().backward()
grad = x.grad

print("x    =", x.detach())
print("grad =", grad)
