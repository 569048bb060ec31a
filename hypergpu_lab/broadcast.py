"""Downlink compression: the global model broadcast as compressed deltas, with server-side error feedback.

Uplink codecs alone cannot shorten a round by more than the upload's share of it: every selected
node still downloads the float32 model. Following Sattler et al. 2019 (STC, "Robust and
communication-efficient federated learning from non-i.i.d. data", downstream compression with
partial participation) and Tang et al. 2019 (DoubleSqueeze), the server keeps the model the nodes
hold, the *replica* ``r``, and each round publishes one encoded message

    m_t = C(w_t - r_{t-1}),    r_t = r_{t-1} + decode(m_t)

so ``w_t - r_t`` is the server's error-feedback residual: what it failed to send is part of the
next message, never lost. Every node trains from ``r_t`` (the server's exact ``w`` only receives
the aggregated updates and is what is evaluated).

A node that missed broadcasts (not selected, offline, a failed download) is sent the messages it
missed, or the float32 replica where that is smaller: its download is ``min(sum of missed
messages' bytes, 4 P)``, priced from the encoded sizes. Either way it then holds ``r_t`` exactly, so
one replica serves every node. Every node starts holding the initial model (``r_0 = w_0``).

State a later round reads (the replica, the message sizes, each node's last sync) is in
:meth:`Broadcast.state_dict`, so a resumed run downloads the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from .compression import CompressionSpec, decode, encode
from .streams import stream

_BROADCAST_TAG = 0x4243_5354  # "BCST": stream tag of QSGD's rounding on the downlink (see streams.py)


class Broadcast:
    """The server's replica of the nodes' model, the broadcast log's sizes, and who holds which round."""

    def __init__(self, spec: CompressionSpec, weights: torch.Tensor, *, seed: int) -> None:
        if spec.kind == "none":
            raise ValueError("an uncompressed broadcast needs no replica: send the weights")
        self.spec, self.seed = spec, seed
        self.replica = weights.detach().to(torch.float32).clone()
        self.sent = [0]  # sent[t]: bytes of the messages of rounds 1..t (message t = sent[t] - sent[t-1])
        self.synced: dict[int, int] = {}  # node -> the round whose replica it holds (absent: 0, the initial model)
        self.wall_s = 0.0  # real seconds spent encoding and decoding (a benchmark figure)

    @property
    def published(self) -> int:
        """The last round with a message."""
        return len(self.sent) - 1

    def publish(self, round_: int, weights: torch.Tensor) -> None:
        """Encode ``weights - replica`` as round ``round_``'s message and move the replica by its decoding.

        A round whose model did not change sends an empty message (0 bytes).
        """
        if round_ != self.published + 1:
            raise ValueError(f"broadcast of round {round_} after round {self.published}")
        t = time.perf_counter()
        d = weights.detach().to(torch.float32) - self.replica
        nbytes = 0
        if bool(d.any()):
            rng = stream(self.seed, _BROADCAST_TAG, round_) if self.spec.kind == "qsgd" else None
            enc = encode(d.numpy(), self.spec, rng)
            self.replica = self.replica + torch.from_numpy(decode(enc, self.spec))  # a new tensor: never alias
            nbytes = enc.nbytes
        self.sent.append(self.sent[-1] + nbytes)
        self.wall_s += time.perf_counter() - t

    def download_bytes(self, node: int) -> int:
        """What bringing ``node`` up to the current replica costs: the messages it missed, or the float32 model."""
        missed = self.sent[-1] - self.sent[self.synced.get(node, 0)]
        return min(missed, 4 * self.replica.numel())

    def delivered(self, node: int) -> None:
        """``node``'s download arrived: it holds the current replica."""
        self.synced[node] = self.published

    def state_dict(self) -> dict[str, Any]:
        return {
            "replica": self.replica.clone(),
            "sent": list(self.sent),
            "synced": {int(n): int(r) for n, r in sorted(self.synced.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.replica = state["replica"].clone()
        self.sent = [int(b) for b in state["sent"]]
        self.synced = {int(n): int(r) for n, r in state["synced"].items()}
