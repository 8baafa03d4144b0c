"""Shared test helper: fit a model to one random toy batch with Adam, recording the losses."""

import torch


def fit_toy_batch(model: torch.nn.Module, data_seed: int, lr: float, steps: int) -> list[float]:
    """Cross-entropy on 16 random 28×28 images with random labels; the loss after each step."""
    g = torch.Generator().manual_seed(data_seed)
    x = torch.rand(16, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (16,), generator=g)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss))
    return losses
