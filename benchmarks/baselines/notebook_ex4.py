"""Baseline for `autograd-tutor exercise 4 --reveal`: the notebook's Exercise 4 as a script.

The notebook's own cells, in order, unchanged except that `plt.show()` becomes `savefig`:
the data, the 200-step training loop with its progress lines, and the two panels (training
loss; data with the learned and the true line) in the dark style. The benchmark runs it as
`python notebook_ex4.py OUTPUT_DIR` with MPLBACKEND=Agg.
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt
import torch

plt.style.use("dark_background")
out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
out.mkdir(parents=True, exist_ok=True)

# Generate simple data: y = 2x + 1
torch.manual_seed(42)
X = torch.linspace(-3, 3, 20)
y_true = 2 * X + 1 + torch.randn(20) * 0.3   # true line + noise

# Initialize learnable parameters (random starting point)
w = torch.tensor(0.0, requires_grad=True)
b = torch.tensor(0.0, requires_grad=True)

learning_rate = 0.01

print(f"Initial parameters: w = {w.item():.4f}, b = {b.item():.4f}")
print("Target:             w = 2.0, b = 1.0")
print(f"Learning rate: {learning_rate}")

losses = []

for step in range(200):
    # --- Step 1: Forward pass ---
    y_pred = w * X + b
    # --- Step 2: Compute loss ---
    loss = ((y_true - y_pred) ** 2).mean()
    # --- Step 3: Backward pass ---
    loss.backward()
    # --- Step 4: Update parameters ---
    with torch.no_grad():
        w -= learning_rate * w.grad
        b -= learning_rate * b.grad
    # --- Step 5: Zero gradients ---
    w.grad.zero_()
    b.grad.zero_()

    losses.append(loss.item())

    if (step + 1) % 40 == 0:
        print(f"Step {step+1:3d}: loss = {loss.item():.4f}, w = {w.item():.4f}, b = {b.item():.4f}")

print(f"\nFinal: w = {w.item():.4f} (target: 2.0), b = {b.item():.4f} (target: 1.0)")

# Visualize the result
fig, axes = plt.subplots(1, 2, figsize=(12, 4))

# Loss curve
axes[0].plot(losses, linewidth=2)
axes[0].set_xlabel('Step')
axes[0].set_ylabel('MSE Loss')
axes[0].set_title('Training Loss')
axes[0].grid(alpha=0.3)

# Data + learned line
with torch.no_grad():
    x_line = torch.linspace(-3, 3, 100)
    y_line = w * x_line + b

axes[1].scatter(X.numpy(), y_true.numpy(), alpha=0.7, label='Data')
axes[1].plot(x_line.numpy(), y_line.numpy(), 'r-', linewidth=2,
             label=f'Learned: y = {w.item():.2f}x + {b.item():.2f}')
axes[1].plot(x_line.numpy(), (2*x_line + 1).numpy(), 'g--', linewidth=2, alpha=0.5,
             label='True: y = 2x + 1')
axes[1].set_xlabel('x')
axes[1].set_ylabel('y')
axes[1].set_title('Learned Fit')
axes[1].legend()
axes[1].grid(alpha=0.3)

plt.tight_layout()
plt.savefig(out / "exercise4.png")  # the notebook's plt.show()
