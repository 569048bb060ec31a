"""Where privacy enters a round: the hooks :meth:`Coordinator.step` calls, one per stage.

=====================  ===========================================================================
``before_training``    SecAgg key advertisement and broadcast, priced by the network (nodes start
                       training when they hold the cohort's public keys)
``on_nodes``           node side, before upload: local DP (clip + noise), SecAgg clip/encode/mask
``upload_bytes``       a masked input's size in the ring (32 or 64 bits per value)
``aggregate_input``    server side: central DP-FedAvg (clip, sum, noise, adaptive clip) or SecAgg
                       unmasking with the recovery step; returns the one row the strategy applies
``account``            epsilon after the round (dp-accounting)
``stop_reason``        why the next round would exceed the privacy budget, if it would
=====================  ===========================================================================

With privacy off every hook is the identity and nothing here draws a random number, so results are
unchanged (``tests/golden``). State a later round reads (the rounds accounted, the adaptive clip
norm, each node's local releases) is in :meth:`state_dict`, which goes into the checkpoint.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..errors import ConfigError
from ..network import Transfer
from ..streams import stream
from . import accountant, dp
from .secagg import (
    CIPHERTEXT_BYTES,
    HEADER_BYTES,
    PUBLIC_KEY_BYTES,
    UNMASK_SHARE_BYTES,
    FixedPoint,
    SecAggAbort,
    SecAggClient,
    SecAggServer,
    mask_inputs,
    threshold_for,
)
from .secagg_graph import harary, neighbours_for
from .settings import FIELD, PrivacySettings

if TYPE_CHECKING:
    from ..network import Network

log = logging.getLogger(__name__)

DP_TAG = 0x4450_4E5A  # "DPNZ": the server's Gaussian noise of a round (word 0: updates, 1: clipped count)
LOCAL_TAG = 0x4C44_504E  # "LDPN": a node's local noise
SECAGG_NET_TAG = 0x5341_4E54  # "SANT": the protocol's extra transfers
_ADVERTISE, _BROADCAST, _SHARES_UP, _SHARES_DOWN, _REQUEST, _RESPONSE = 1, 2, 5, 6, 3, 4
_UPLOADS = (_ADVERTISE, _SHARES_UP, _RESPONSE)  # node -> server: priced at the link's uplink rate

# Aggregations that need each update in the clear: they cannot run on a masked sum or one noisy mean.
NEEDS_INDIVIDUAL = "needs_individual_updates"


class PrivacyPipeline:
    """Differential privacy and secure aggregation for one run (a no-op when both are off)."""

    def __init__(
        self,
        settings: PrivacySettings,
        *,
        seed: int,
        num_nodes: int,
        expected_clients: int,
        size: int,
    ) -> None:
        self.settings, self.seed, self.size = settings, seed, size
        self.num_nodes, self.expected = num_nodes, max(expected_clients, 1)
        self.q = min(self.expected / num_nodes, 1.0)
        s = settings
        self.count_stddev = (s.clip_count_stddev or self.expected / 20) if s.adaptive else None
        self.update_z = dp.update_noise_multiplier(s.noise_multiplier, self.count_stddev) if s.mode == "central" else 0
        self.clip = s.clip
        self.rounds_accounted = 0  # central: rounds that released a model
        self.releases: dict[int, int] = {}  # local: per node, noised updates sent
        self.ring = FixedPoint(s.secagg_bits, s.frac_bits)
        self.server: SecAggServer | None = None  # the last round's server-side state (SecAgg)
        self._clients: dict[int, SecAggClient] = {}  # node side of the round in progress (simulated nodes)

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def masked(self) -> bool:
        """Updates reach the server masked: no per-update check or statistic is possible there."""
        return self.settings.secagg

    # -- before training: SecAgg rounds 0 and 1 -----------------------------------------------
    def before_training(self, rnd: Any, network: Network) -> None:
        """SecAgg's key advertisement and share exchange, priced by the network, before anyone trains.

        Round 0: each node uploads two public keys, the server broadcasts the cohort's (U1). Round 1:
        each node uploads its encrypted shares for the others, the server relays each node its
        inbox (the senders are U2). A node trains once it holds its inbox; one that fails a message
        leaves the round (its download is marked failed with the reason). The server waits for every
        message of a step, so a slow node delays everyone: the price of a synchronous protocol.
        """
        if not self.masked:
            return
        self.server = server = SecAggServer(self.ring, self.size + self._extra, round=rnd.number)
        self._clients, agreements = {}, {}
        ready = [n for n in rnd.plan.nodes if rnd.down[n].ok]
        failed: dict[int, Transfer] = {}
        step = self._step(network, rnd, {n: rnd.down[n].end for n in ready}, 2 * PUBLIC_KEY_BYTES, _ADVERTISE, failed)
        for n in sorted(step):
            self._clients[n] = SecAggClient(self.seed, rnd.number, n, agreements)
            server.publics[n] = self._clients[n].public_keys
        self._graph(server, rnd.number)
        t = max(step.values(), default=rnd.t0)
        holders = {n: server.holders(n) for n in server.publics}  # each node gets its neighbours' keys (and its own)
        keys = {n: len(h) * (2 * PUBLIC_KEY_BYTES + 4) for n, h in holders.items()}
        step = self._step(network, rnd, dict.fromkeys(server.publics, t), keys, _BROADCAST, failed)
        shares = self._step(
            network, rnd, step, {n: (len(h) - 1) * CIPHERTEXT_BYTES for n, h in holders.items()}, _SHARES_UP, failed
        )
        for n in sorted(shares):
            mine = {v: server.publics[v] for v in holders[n]}
            server.relayed[n] = self._clients[n].share_keys(mine, server.threshold)
        t = max(shares.values(), default=rnd.t0)
        inboxes = server.inboxes()
        relay = {n: len(inboxes.get(n, {})) * CIPHERTEXT_BYTES for n in shares}
        inbox = self._step(network, rnd, dict.fromkeys(shares, t), relay, _SHARES_DOWN, failed)
        for n in inbox:
            self._clients[n].receive(inboxes.get(n, {}))
        short = len(server.cohort) < server.threshold  # the paper aborts: too few shares to ever unmask
        for n in ready:
            d = rnd.down[n]
            if n in inbox and not short:
                rnd.down[n] = dataclasses.replace(d, end=inbox[n])
                continue
            why = failed.get(n)
            reason = (
                f"{why.reason} in SecAgg key exchange"
                if why is not None
                else f"SecAgg: {len(server.cohort)} nodes shared keys, t = {server.threshold} needed"
            )
            rnd.down[n] = dataclasses.replace(d, end=why.end if why else t, ok=False, reason=reason)

    def _graph(self, server: SecAggServer, round_: int) -> None:
        """SecAgg+: the round's Harary graph over U1 and ``t`` of each node's ``k + 1`` holders; classic: all of U1."""
        u1 = len(server.publics)
        if not self.settings.secagg_plus:
            server.threshold = threshold_for(u1)
            return
        k = min(self.settings.secagg_neighbours or neighbours_for(u1), max(u1 - 1, 0))
        k = k if k == u1 - 1 else k - k % 2
        server.graph = harary(sorted(server.publics), k, self.seed, round_) if u1 > 1 else None
        server.threshold = threshold_for(k + 1)

    def _step(
        self,
        network: Network,
        rnd: Any,
        starts: dict[int, float],
        payload: int | dict[int, int],
        kind: int,
        failed: dict,
    ) -> dict[int, float]:
        """One protocol message per node (from its start time; ``payload`` bytes, or per node): the arrival
        times of those that got through."""
        arrived = {}
        for n, start in starts.items():
            size = payload if isinstance(payload, int) else payload[n]
            tr = self._transfer(network, n, size + HEADER_BYTES, start, rnd.number, kind)
            rnd.overhead_bytes += tr.bytes_sent
            if tr.ok:
                arrived[n] = tr.end
            else:
                failed[n] = tr
        return arrived

    # -- node side -----------------------------------------------------------------------------
    def on_nodes(self, rnd: Any) -> None:
        """Node side, before upload: local noise, then (SecAgg) clip, encode and mask."""
        s = self.settings
        if not self.enabled:
            return
        if s.mode == "local":
            for n, res in list(rnd.results.items()):
                rnd.results[n] = self._local_noise(rnd.number, res)
                self.releases[n] = self.releases.get(n, 0) + 1
        if not self.masked:
            return
        for n, res in list(rnd.results.items()):
            if not bool(torch.isfinite(res.delta).all()):  # an honest node checks what the server no longer can
                del rnd.results[n]
                rnd.notes += (f"node {n} withheld a non-finite update (SecAgg: the server cannot check it)",)
        weights = self._secagg_weights(rnd)
        inputs = {}
        for n, res in rnd.results.items():
            x = self._node_vector(res.delta.detach().to(torch.float64).numpy(), weights[n])
            inputs[n], clamped = self.ring.encode(x, len(self.server.cohort))
            if clamped:
                rnd.notes += (f"node {n}: update clamped to the SecAgg ring's range (raise secagg_bits)",)
        s_publics = {n: self.server.publics[n][1] for n in self.server.cohort}
        for n, y in mask_inputs(self._clients, inputs, s_publics, self.ring, self.server.graph).items():
            wire = torch.from_numpy(self.ring.to_wire(y))
            rnd.results[n] = dataclasses.replace(rnd.results[n], delta=wire, update_norm=float("nan"))

    def sent_size(self, size: int) -> int:
        """Values in one update as it reaches the server (SecAgg appends the clipping bit)."""
        return size + self._extra if self.masked else size

    def upload_bytes(self, model_bytes: int) -> int:
        """What one node uploads: the model's bytes, or the masked vector in the ring."""
        return (self.size + self._extra) * self.ring.bits // 8 if self.masked else model_bytes

    @property
    def _extra(self) -> int:
        """Values a masked input carries after the update: the adaptive clipping bit."""
        return 1 if self.settings.mode == "central" and self.settings.adaptive else 0

    def _secagg_weights(self, rnd: Any) -> dict[int, float]:
        """Per node: 1 under central DP (the fixed-denominator mean); else its share of the cohort's samples."""
        if self.settings.mode == "central":
            return dict.fromkeys(rnd.results, 1.0)
        samples = {n: rnd.results[n].num_samples for n in rnd.results}
        self._sample_total = sum(samples.values()) or 1  # sent with the keys: public, like NodeRecord.num_samples
        return {n: k / self._sample_total for n, k in samples.items()}

    def _node_vector(self, delta: np.ndarray, weight: float) -> np.ndarray:
        """What a node puts in the ring: its (clipped, weighted) update, and its clipping bit."""
        if self.settings.mode != "central":
            return delta * weight
        norm = float(np.linalg.norm(delta))
        clipped = delta * min(1.0, self.clip / max(norm, 1e-30))
        return np.concatenate([clipped, [float(norm <= self.clip)] * self._extra])

    def _local_noise(self, round_: int, res: Any) -> Any:
        s = self.settings
        clipped, _ = dp.clip_rows(res.delta[None].to(torch.float64), s.clip)
        noise = dp.gaussian(stream(self.seed, LOCAL_TAG, round_, res.node), self.size)
        noised = (clipped[0] + s.noise_multiplier * s.clip * noise).to(res.delta.dtype)
        return dataclasses.replace(res, delta=noised, update_norm=float(torch.linalg.vector_norm(noised)))

    # -- server side ---------------------------------------------------------------------------
    def aggregate_input(
        self, rnd: Any, stacked: torch.Tensor, weights: torch.Tensor, network: Network
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The rows and weights the strategy aggregates; None when nothing can be released.

        Off (or local DP alone): the accepted updates as they are. Central DP: one row, the noisy
        clipped mean. SecAgg: one row, the unmasked (noisy) mean.
        """
        s = self.settings
        if not self.masked and s.mode != "central":
            return stacked, weights
        nodes = [m.node for m, _ in rnd.applied]
        if self.masked:
            decoded = self._unmask(rnd, nodes, stacked, network)
            if decoded is None:
                return None
            if s.mode != "central":  # the weighted FedAvg mean of the nodes in the sum
                share = sum(m.result.num_samples for m, _ in rnd.applied) / self._sample_total
                return torch.from_numpy(decoded / share).to(torch.float32)[None], torch.ones(1, dtype=torch.float64)
            total, within = torch.from_numpy(decoded[: self.size]), float(decoded[self.size :].sum())
        else:
            clipped, norms = dp.clip_rows(stacked, self.clip)
            total, within = clipped.to(torch.float64).sum(0), float((norms <= self.clip).sum())
        return self._central(rnd, total, within).to(torch.float32)[None], torch.ones(1, dtype=torch.float64)

    def _central(self, rnd: Any, total: torch.Tensor, within: float) -> torch.Tensor:
        """DP-FedAvg: add the noise to the clipped sum, divide by K; adapt the clip norm (Andrew et al.)."""
        s, k = self.settings, len(rnd.plan.nodes)
        noise = dp.gaussian(stream(self.seed, DP_TAG, rnd.number, 0), self.size)
        mean = dp.noisy_mean(total, noise, self.update_z * self.clip, k)
        if s.adaptive:
            count_noise = float(stream(self.seed, DP_TAG, rnd.number, 1).standard_normal()) * self.count_stddev
            before = self.clip
            self.clip = dp.adapt_clip(
                self.clip, round(within), len(rnd.applied), count_noise, k, s.adaptive_quantile, s.clip_lr
            )
            rnd.notes += (f"adaptive clipping: clip norm {before:.4g} -> {self.clip:.4g}",)
        return mean

    def _unmask(self, rnd: Any, nodes: list[int], stacked: torch.Tensor, network: Network) -> np.ndarray | None:
        """SecAgg round 4: the survivors send their unmasking shares; with ``t`` of them, the sum."""
        server = self.server
        for i, n in enumerate(nodes):
            server.masked[n] = self.ring.from_wire(stacked[i].numpy())
        survivors, ends, failed = set(nodes), [], {}
        held = {n: [u for u in server.holders(n) if u in server.relayed] for n in nodes}  # shares n holds, of U2
        ask = {n: 4 * len(survivors.intersection(server.holders(n))) for n in nodes}  # which of them survived
        requests = self._step(network, rnd, dict.fromkeys(nodes, rnd.close), ask, _REQUEST, failed)
        answer = {n: len(h) * UNMASK_SHARE_BYTES for n, h in held.items()}
        answers = self._step(network, rnd, requests, answer, _RESPONSE, failed)
        for w in sorted(answers):
            server.responses[w] = self._clients[w].unmasking_shares(survivors, held[w], server.publics)
        ends = [*answers.values(), *(tr.end for tr in failed.values())]
        rnd.close = max(rnd.close, *ends) if ends else rnd.close
        try:
            total = server.unmask()
        except SecAggAbort as exc:
            for m, _ in rnd.applied:
                rnd.status[m.node] = ("failed", f"SecAgg unmasking aborted: {exc}")
            rnd.applied[:] = []
            rnd.notes += (f"SecAgg: unmasking aborted ({exc}); nothing applied",)
            return None
        if dropped := server.dropped():
            rnd.notes += (
                f"SecAgg recovery: pairwise masks of {len(dropped)} dropped node(s) removed with their "
                f"mask keys rebuilt from {server.threshold} of {len(answers)} survivors' shares"
                + (f" (SecAgg+: k = {len(server.holders(dropped[0])) - 1} neighbours)" if server.graph else ""),
            )
        if len(answers) < len(nodes):
            rnd.notes += (
                f"SecAgg: {len(nodes) - len(answers)} survivor(s) did not answer; their inputs stay in the sum",
            )
        return self.ring.decode(total)

    def _transfer(self, network: Network, node: int, nbytes: int, start: float, round_: int, kind: int) -> Transfer:
        rng = stream(self.seed, SECAGG_NET_TAG, round_, node, kind * 1024)
        return network.transfer(node, nbytes, start, rng, upload=kind in _UPLOADS)

    # -- accounting ----------------------------------------------------------------------------
    def account(self, rnd: Any) -> float | None:
        """Epsilon at ``delta`` after this round (None without DP)."""
        s = self.settings
        if s.mode == "central":
            if rnd.applied:
                self.rounds_accounted += 1
            return self.epsilon(self.rounds_accounted)
        if s.mode == "local":
            return self.epsilon(max(self.releases.values(), default=0))
        return None

    def epsilon(self, count: int) -> float:
        """Epsilon after ``count`` releases (central: rounds; local: the worst node's updates)."""
        s = self.settings
        if s.mode == "central":
            return accountant.central_epsilon(s.noise_multiplier, self.q, count, s.delta, s.accountant)
        return accountant.local_epsilon(s.noise_multiplier, count, s.delta, s.accountant)

    def stop_reason(self) -> str | None:
        """Why the next round must not run: its epsilon would exceed the budget (None if it may run)."""
        s = self.settings
        if s.budget is None or not s.dp:
            return None
        spent = self.rounds_accounted if s.mode == "central" else max(self.releases.values(), default=0)
        after = self.epsilon(spent + 1)
        if after <= s.budget:
            return None
        return (
            f"privacy budget: epsilon {self.epsilon(spent):.3g} spent, the next round would reach "
            f"{after:.3g} > budget {s.budget:g} (delta {s.delta:g})"
        )

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        if not self.enabled:
            return {}
        return {
            "clip": self.clip,
            "rounds_accounted": self.rounds_accounted,
            "releases": {str(k): v for k, v in sorted(self.releases.items())},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.clip = float(state["clip"])
        self.rounds_accounted = int(state["rounds_accounted"])
        self.releases = {int(k): int(v) for k, v in state["releases"].items()}


def check_strategy(settings: PrivacySettings, strategy: Any) -> None:
    """Refuse an aggregation that needs each update in the clear when the server gets one sum."""
    if not (settings.secagg or settings.mode == "central"):
        return
    if getattr(strategy, NEEDS_INDIVIDUAL, False):
        why = (
            "secure aggregation gives the server only the sum of the masked updates"
            if settings.secagg
            else "central DP-FedAvg releases one noisy mean, not the individual updates"
        )
        raise ConfigError(
            "train.strategy",
            getattr(strategy, "name", strategy),
            "an aggregation of the sum (fedavg, mean, fedavgm, fedprox, fedadam, fedadagrad, fedyogi)",
            hint=f"{strategy.name} needs every update in the clear, but {why}",
        )


def check_train(settings: PrivacySettings, *, late_updates: str, max_update_norm: float | None) -> None:
    """Combinations with the rest of the training config that cannot hold."""
    if not settings.enabled:
        return
    if late_updates == "buffer" and (settings.secagg or settings.mode == "central"):
        raise ConfigError(
            "train.late_updates",
            late_updates,
            "drop while privacy.secagg or central DP is on",
            hint="a buffered straggler would join another round's cohort (its masks do not cancel there; "
            "the accountant counts one release per round)",
        )
    if settings.secagg and max_update_norm is not None:
        raise ConfigError(
            "train.max_update_norm",
            max_update_norm,
            "None with secagg (the server cannot see a masked update's norm)",
            hint=f"bound updates with {FIELD}.clip and mode: central instead",
        )


def expected_clients(clients_per_round: int | None, fraction: float, num_nodes: int) -> int:
    """Clients per round, for the sampling probability q = clients per round / nodes."""
    return clients_per_round if clients_per_round is not None else max(1, math.ceil(fraction * num_nodes))
