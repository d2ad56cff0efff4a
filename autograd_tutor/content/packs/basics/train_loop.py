"""Exercise 4: Manual Training Step.

Fit a linear model y_hat = w * x + b to data generated from y = 2x + 1, with the same
forward-backward-update loop every deep learning model uses, but without an optimizer.

Fill in the five TODOs in the loop, then run:

    python train_loop.py                   # trains and prints progress
    autograd-tutor check 4 train_loop.py   # checks the result and explains mistakes

Keep the names `w`, `b` and `losses`: the checker reads them after your file runs.
"""

import torch


def todo(what: str) -> torch.Tensor:
    """Stands in for code not written yet, so running the file says what is missing."""
    raise NotImplementedError(f"TODO {what}")


# Generate simple data: y = 2x + 1
torch.manual_seed(42)
X = torch.linspace(-3, 3, 20)
y_true = 2 * X + 1 + torch.randn(20) * 0.3  # true line + noise

# Initialize learnable parameters (random starting point)
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)

learning_rate = 0.01

print(f"Initial parameters: w = {w.item():.4f}, b = {b.item():.4f}")
print("Target:             w = 2.0, b = 1.0")
print(f"Learning rate: {learning_rate}")

# ============================================================
# YOUR TASK: Implement the training loop
# ============================================================

losses: list[float] = []

for step in range(200):
    # --- Step 1: Forward pass ---
    # Compute predictions: y_pred = w * X + b
    y_pred = todo("Step 1: the forward pass")  # TODO: write this

    # --- Step 2: Compute loss ---
    # MSE loss: mean of (y_true - y_pred)^2
    loss = todo("Step 2: the loss")  # TODO: write this

    # --- Step 3: Backward pass ---
    # Compute gradients of loss w.r.t. w and b
    # TODO: write this (one line)

    # --- Step 4: Update parameters ---
    # Must use torch.no_grad() so the update itself isn't tracked
    # TODO: write this (a `with torch.no_grad():` block that updates w and b)

    # --- Step 5: Zero gradients ---
    # Without this, gradients accumulate (Exercise 3!)
    # TODO: write this (reset w.grad and b.grad)

    losses.append(loss.item())

    if (step + 1) % 40 == 0:
        print(
            f"Step {step + 1:3d}: loss = {loss.item():.4f}, w = {w.item():.4f}, b = {b.item():.4f}"
        )

print(f"\nFinal: w = {w.item():.4f} (target: 2.0), b = {b.item():.4f} (target: 1.0)")
