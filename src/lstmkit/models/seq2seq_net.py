r"""The translation network: a bidirectional LSTM encoder, an LSTM decoder with global attention, and decoding.

Encoder (Bahdanau et al. 2015, §3.2): embeddings → a bidirectional :class:`lstmkit.LSTM` over the padded
source with ``lengths=``, so each source's annotations :math:`\bar h_s = [\overrightarrow{h}_s; \overleftarrow{h}_s]`
(2H) and final states ignore padding. A *bridge* maps each layer's final (forward, backward) states to the
decoder's initial state: :math:`h_0 = \tanh(W_h [\overrightarrow{h}; \overleftarrow{h}])`,
:math:`c_0 = W_c [\overrightarrow{c}; \overleftarrow{c}]`.

Decoder with Luong et al. 2015's global attention, *general* score, no input feeding:

.. math::
    h_t = \mathrm{LSTM}(E y_{t-1}, h_{t-1}), \quad
    a_t(s) = \mathrm{softmax}_s\big(h_t^\top W_a \bar h_s\big) \text{ over the source's valid positions}, \\
    c_t = \sum_s a_t(s)\,\bar h_s, \quad
    \tilde h_t = \tanh(W_c [c_t; h_t]), \quad p(y_t \mid y_{<t}, x) = \mathrm{softmax}(W_o \tilde h_t)

Why this form: without input feeding, :math:`h_t` depends only on the previous *tokens*, so in training
(teacher forcing: the reference :math:`y_{<t}` is fed) the decoder LSTM runs over the whole target in one
fused call and the attention for every step is one batched matrix product — several times faster on a CPU
than a Python loop of cell steps, which input feeding (Luong §3.3) or Bahdanau's attention-before-the-cell
would need. Masked (padding) source positions get exactly 0 attention.

Decoding (:func:`greedy_decode`, :func:`beam_search`) runs the decoder one token at a time. Hypotheses
are ranked by length-normalised log-probability :math:`\frac{1}{|y|^\alpha}\sum_t \log p(y_t \mid y_{<t}, x)`
(``|y|`` counts the end token, α = ``length_penalty``; Wu et al. 2016 use a variant). ``<pad>``, ``<unk>``
and ``<bos>`` are never emitted, and at ``max_len`` tokens the end token is forced.

Shapes: B batch, S source length, T target length, E embedding, H hidden, V target vocabulary, K beam.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from lstmkit.layers import LSTM, LSTMState
from lstmkit.text.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID

NEVER_EMITTED = (PAD_ID, UNK_ID, BOS_ID)


@dataclass(frozen=True)
class Seq2SeqNetConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embed_dim: int = 64
    hidden_size: int = 128  # per encoder direction, and the decoder's units
    num_layers: int = 1
    dropout: float = 0.1  # on embeddings and before the output layer

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Memory:
    """What the decoder reads from the encoder."""

    outputs: Tensor  # (B, S, 2H) annotations, zero past each length
    keys: Tensor  # (B, S, H) = W_a h̄_s, precomputed once per source
    mask: Tensor  # (B, S) bool, True at valid positions

    def repeat(self, k: int) -> Memory:
        """Each row repeated ``k`` times in place (row b → rows b·k … b·k+k−1), for beam search."""
        return Memory(*(t.repeat_interleave(k, dim=0) for t in (self.outputs, self.keys, self.mask)))


class Seq2SeqNet(nn.Module):
    """``net(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, V)`` (teacher forcing)."""

    def __init__(self, cfg: Seq2SeqNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        E, H, L = cfg.embed_dim, cfg.hidden_size, cfg.num_layers
        between = cfg.dropout if L > 1 else 0.0
        self.src_embedding = nn.Embedding(cfg.src_vocab_size, E, padding_idx=PAD_ID)
        self.tgt_embedding = nn.Embedding(cfg.tgt_vocab_size, E, padding_idx=PAD_ID)
        self.encoder = LSTM(E, H, L, batch_first=True, bidirectional=True, dropout=between, forget_bias=1.0)
        self.bridge_h = nn.Linear(2 * H, H)
        self.bridge_c = nn.Linear(2 * H, H)
        self.decoder = LSTM(E, H, L, batch_first=True, dropout=between, forget_bias=1.0)
        self.att_W = nn.Linear(2 * H, H, bias=False)  # Luong's W_a (general score)
        self.combine = nn.Linear(3 * H, H)  # W_c [c_t; h_t]
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(H, cfg.tgt_vocab_size)

    # ---------------------------------------------------------------- encoder
    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, LSTMState]:
        """The attention memory and the decoder's initial state."""
        B, S = src.shape
        L, H = self.cfg.num_layers, self.cfg.hidden_size
        outputs, (h_n, c_n) = self.encoder(self.drop(self.src_embedding(src)), lengths=lengths)  # (B, S, 2H)
        # (L·2, B, H) → (L, B, 2H): each layer's forward and backward final states side by side.
        h_n = h_n.view(L, 2, B, H).permute(0, 2, 1, 3).reshape(L, B, 2 * H)
        c_n = c_n.view(L, 2, B, H).permute(0, 2, 1, 3).reshape(L, B, 2 * H)
        state = LSTMState(torch.tanh(self.bridge_h(h_n)).contiguous(), self.bridge_c(c_n).contiguous())  # (L, B, H)
        mask = torch.arange(S, device=src.device)[None, :] < lengths.to(src.device)[:, None]  # (B, S)
        return Memory(outputs, self.att_W(outputs), mask), state

    # ---------------------------------------------------------------- decoder
    def attend(self, h: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """Attention weights (B, T, S) — rows sum to 1, zero at padding — and contexts (B, T, 2H)."""
        scores = torch.bmm(h, memory.keys.transpose(1, 2))  # (B, T, S)
        scores = scores.masked_fill(~memory.mask[:, None, :], float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S)
        return weights, torch.bmm(weights, memory.outputs)  # (B, T, 2H)

    def decode(self, prev: Tensor, state: LSTMState, memory: Memory) -> tuple[Tensor, LSTMState, Tensor]:
        """Logits (B, T, V) for the tokens after ``prev`` (B, T), the new state, and the attention (B, T, S)."""
        h, state = self.decoder(self.drop(self.tgt_embedding(prev)), state)  # (B, T, H)
        weights, context = self.attend(h, memory)
        h_tilde = torch.tanh(self.combine(torch.cat([context, h], dim=-1)))  # (B, T, H)
        return self.out(self.drop(h_tilde)), state, weights

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        memory, state = self.encode(src, src_lengths)
        logits, _, _ = self.decode(tgt_in, state, memory)
        return logits  # (B, T, V)

    @torch.no_grad()
    def sequence_logprob(self, src: Tensor, src_lengths: Tensor, tgt: list[list[int]]) -> Tensor:
        """Σ log p of each full target sequence (its tokens, then the end token) under teacher forcing (B,)."""
        seqs = [list(t) + [EOS_ID] for t in tgt]
        T = max(len(s) for s in seqs)
        tgt_in = torch.full((len(seqs), T), PAD_ID, dtype=torch.int64)
        tgt_out = torch.full((len(seqs), T), PAD_ID, dtype=torch.int64)
        for i, s in enumerate(seqs):
            tgt_in[i, : len(s)] = torch.tensor([BOS_ID] + s[:-1])
            tgt_out[i, : len(s)] = torch.tensor(s)
        logp = torch.log_softmax(self(src, src_lengths, tgt_in), dim=-1)  # (B, T, V)
        picked = logp.gather(-1, tgt_out.unsqueeze(-1)).squeeze(-1)  # (B, T)
        return picked.masked_fill(tgt_out == PAD_ID, 0.0).sum(dim=1)


# ------------------------------------------------------------------------------------------ decoding
def _step_logprobs(net: Seq2SeqNet, prev: Tensor, state: LSTMState, memory: Memory, force_end: bool) -> tuple[Tensor, LSTMState]:
    logits, state, _ = net.decode(prev.unsqueeze(1), state, memory)
    logp = torch.log_softmax(logits[:, 0].float(), dim=-1)  # (N, V)
    logp[:, list(NEVER_EMITTED)] = float("-inf")
    if force_end:
        end = logp[:, EOS_ID].clone()
        logp.fill_(float("-inf"))
        logp[:, EOS_ID] = end
    return logp, state


@torch.no_grad()
def greedy_decode(net: Seq2SeqNet, src: Tensor, src_lengths: Tensor, max_len: int) -> list[list[int]]:
    """The most probable next token at every step, until the end token (or ``max_len`` tokens)."""
    net.eval()
    memory, state = net.encode(src, src_lengths)
    B = src.shape[0]
    prev = torch.full((B,), BOS_ID, dtype=torch.int64)
    done = torch.zeros(B, dtype=torch.bool)
    out: list[list[int]] = [[] for _ in range(B)]
    for t in range(max_len + 1):
        logp, state = _step_logprobs(net, prev, state, memory, force_end=t == max_len)
        prev = logp.argmax(dim=-1)  # (B,)
        for b in torch.nonzero(~done & (prev != EOS_ID)).flatten().tolist():
            out[b].append(int(prev[b]))
        done |= prev == EOS_ID
        if bool(done.all()):
            break
    return out


@torch.no_grad()
def beam_search(net: Seq2SeqNet, src: Tensor, src_lengths: Tensor, max_len: int, beam_size: int = 5,
                length_penalty: float = 1.0) -> tuple[list[list[int]], Tensor]:  # fmt: skip
    """Batched beam search: the best hypothesis per source by length-normalised log-probability, and its score (B,).

    Every source keeps ``beam_size`` hypotheses; at each step all K·V one-token extensions are scored
    (a finished hypothesis has one extension: itself, unchanged) and the best K by normalised score stay.
    With K at least the number of possible hypotheses the search is exhaustive, so it returns the exact
    argmax (the property the tests check against brute force).
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got {beam_size}")
    net.eval()
    K = beam_size
    memory, state = net.encode(src, src_lengths)
    B = src.shape[0]
    memory = memory.repeat(K)
    state = LSTMState(state.h.repeat_interleave(K, dim=1), state.c.repeat_interleave(K, dim=1))  # (L, B·K, H)
    neg_inf = float("-inf")
    score = torch.full((B, K), neg_inf)
    score[:, 0] = 0.0  # one live hypothesis per source at the start: the others would duplicate it
    length = torch.zeros(B, K)
    done = torch.zeros(B, K, dtype=torch.bool)
    history = torch.zeros(B, K, 0, dtype=torch.int64)
    prev = torch.full((B * K,), BOS_ID, dtype=torch.int64)
    for t in range(max_len + 1):
        logp, state = _step_logprobs(net, prev, state, memory, force_end=t == max_len)
        V = logp.shape[-1]
        logp = logp.view(B, K, V)
        # A finished hypothesis continues only with <pad>, at no cost: it stays as it was.
        logp = torch.where(done[..., None], torch.full_like(logp, neg_inf), logp)
        logp[..., PAD_ID] = torch.where(done, 0.0, neg_inf)
        raw = score[..., None] + logp  # (B, K, V)
        new_len = (length + (~done).float())[..., None]  # (B, K, 1)
        norm = raw / new_len.clamp(min=1.0) ** length_penalty
        flat = norm.view(B, K * V).topk(K, dim=1).indices  # (B, K)
        origin, token = flat // V, flat % V
        score = raw.view(B, K * V).gather(1, flat)
        length = new_len.squeeze(-1).gather(1, origin)
        was_done = done.gather(1, origin)
        done = was_done | (token == EOS_ID)
        history = torch.cat([history.gather(1, origin[..., None].expand(-1, -1, history.shape[2])), token[..., None]], dim=2)
        rows = (origin + torch.arange(B)[:, None] * K).view(-1)  # (B·K,) rows of the previous step
        state = LSTMState(state.h[:, rows], state.c[:, rows])
        prev = token.view(-1)
        if bool(done.all()):
            break
    final = score / length.clamp(min=1.0) ** length_penalty
    pick = final.argmax(dim=1)  # (B,)
    seqs = history[torch.arange(B), pick].tolist()
    out = [[i for i in s if i not in (EOS_ID, PAD_ID)] for s in seqs]
    return out, final[torch.arange(B), pick]
