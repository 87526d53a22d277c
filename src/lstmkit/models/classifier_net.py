"""The text-classification network: embeddings → (bidirectional) LSTM over padded batches → pooling → logits.

Pooling reads only each sequence's own steps (``lengths``), so a text's logits do not depend on how much
padding its batch adds:

- ``attention``: a learned score ``v·tanh(W h_t)`` per step, softmax over the valid steps, weighted sum of
  ``h_t`` (Yang et al. 2016's word attention; Zhou et al. 2016's attention BiLSTM);
- ``max`` / ``mean``: element-wise max / mean of ``h_t`` over the valid steps (Conneau et al. 2017 found max
  pooling the best BiLSTM sentence encoder);
- ``last``: the final states of both directions (the classic encoder).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from lstmkit.layers import LSTM

POOLINGS = ("attention", "max", "mean", "last", "max_mean")


@dataclass(frozen=True)
class ClassifierNetConfig:
    vocab_size: int
    n_classes: int
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.3  # on the embeddings and before the output layer
    padding_idx: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


class ClassifierNet(nn.Module):
    """``net(ids (B, T), lengths (B,)) -> logits (B, C)``."""

    def __init__(self, cfg: ClassifierNetConfig) -> None:
        super().__init__()
        if cfg.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {cfg.pooling!r}")
        self.cfg = cfg
        D = 2 if cfg.bidirectional else 1
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.padding_idx)
        self.lstm = LSTM(
            cfg.embed_dim, cfg.hidden_size, cfg.num_layers, batch_first=True, bidirectional=cfg.bidirectional,
            dropout=cfg.dropout if cfg.num_layers > 1 else 0.0, forget_bias=1.0,
        )  # fmt: skip
        width = D * cfg.hidden_size
        if cfg.pooling == "attention":
            self.att_proj = nn.Linear(width, width)
            self.att_score = nn.Linear(width, 1, bias=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(2 * width if cfg.pooling == "max_mean" else width, cfg.n_classes)

    def encode(self, ids: Tensor, lengths: Tensor) -> Tensor:
        """The pooled text vector (B, D·H) (``2·D·H`` for ``max_mean``)."""
        T = ids.shape[1]
        x = self.drop(self.embedding(ids))  # (B, T, E)
        h, state = self.lstm(x, lengths=lengths)  # (B, T, D·H), zeros past each length
        mask = torch.arange(T, device=ids.device)[None, :] < lengths.to(ids.device)[:, None]  # (B, T)
        pool = self.cfg.pooling
        if pool == "last":
            h_n = state.h.view(self.cfg.num_layers, -1, h.shape[0], self.cfg.hidden_size)[-1]  # (D, B, H)
            return torch.cat(list(h_n), dim=-1)  # (B, D·H)
        if pool == "attention":
            score = self.att_score(torch.tanh(self.att_proj(h))).squeeze(-1)  # (B, T)
            weight = torch.softmax(score.masked_fill(~mask, float("-inf")), dim=1)  # (B, T)
            return torch.einsum("bt,btk->bk", weight, h)  # (B, D·H)
        m = mask.unsqueeze(-1)  # (B, T, 1)
        mx = h.masked_fill(~m, float("-inf")).amax(dim=1)
        mean = (h * m).sum(dim=1) / lengths.to(h.device, h.dtype).unsqueeze(-1)
        if pool == "max":
            return mx
        if pool == "mean":
            return mean
        return torch.cat([mx, mean], dim=-1)

    def forward(self, ids: Tensor, lengths: Tensor) -> Tensor:
        return self.out(self.drop(self.encode(ids, lengths)))  # (B, C)
