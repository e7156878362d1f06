"""The three models of lesson 01, shared by the unit tests."""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """conv 3→16, pool, conv 16→32, pool, flatten, linear 32·7·7→10 (for 3×28×28 input)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.features(x)))


class SequenceClassifier(nn.Module):
    """embedding 100×50, 2-layer LSTM (hidden 50), linear 50→20 on the last hidden state."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(100, 50)
        self.lstm = nn.LSTM(50, 50, num_layers=2, batch_first=True)
        self.fc = nn.Linear(50, 20)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(self.embedding(tokens))
        return self.fc(hidden[-1])


def mlp() -> nn.Sequential:
    return nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 5))
