"""Exercise 4's reference solution: the scaffold with its five TODOs done."""
# mypy: disable-error-code="operator, union-attr"

import torch

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

losses: list[float] = []

for step in range(200):
    # --- Step 1: Forward pass ---
    # Compute predictions: y_pred = w * X + b
    y_pred = w * X + b

    # --- Step 2: Compute loss ---
    # MSE loss: mean of (y_true - y_pred)^2
    loss = ((y_true - y_pred) ** 2).mean()

    # --- Step 3: Backward pass ---
    # Compute gradients of loss w.r.t. w and b
    loss.backward()

    # --- Step 4: Update parameters ---
    # Must use torch.no_grad() so the update itself isn't tracked
    with torch.no_grad():
        w -= learning_rate * w.grad
        b -= learning_rate * b.grad

    # --- Step 5: Zero gradients ---
    # Without this, gradients accumulate (Exercise 3!)
    w.grad.zero_()
    b.grad.zero_()

    losses.append(loss.item())

    if (step + 1) % 40 == 0:
        print(
            f"Step {step + 1:3d}: loss = {loss.item():.4f}, w = {w.item():.4f}, b = {b.item():.4f}"
        )

print(f"\nFinal: w = {w.item():.4f} (target: 2.0), b = {b.item():.4f} (target: 1.0)")
