"""Issue 19: privacy-utility of DP-FedAvg, and what secure aggregation costs.

* Privacy-utility: digits (IID), 100 nodes, 20 per round (q = 0.2), MLP, lr 0.1, 2 local epochs,
  ROUNDS rounds; central DP-FedAvg with clip C = 0.5 (about the median update norm without DP),
  z in {0.5, 1, 2}, fixed and adaptive clipping (gamma 0.5, eta 0.2, sigma_b = max(K/20, z) so the
  count's noise takes a small share for every z); epsilon at delta 1e-5 from the RDP accountant.
  Mean and spread over three seeds.
* SecAgg cost: digits, 100 nodes, 10/50/100 per round, lan and unstable-wan, without secure
  aggregation, with classic SecAgg and with SecAgg+ (k from Bell et al.'s bound; 32-bit ring), run
  one after the other per setting, with no dropouts and with about 10% (a round deadline at the
  90th percentile of the arrivals of the same setting's first round without a deadline). Simulated
  round time and bytes per round (mean of 3 rounds), wall time per round; at 100 nodes per round
  the wall times again in alternated runs, and a profile of one SecAgg+ round by component.
* DP overhead in wall time: the privacy-utility setting with z = 1 against no DP.
"""

from __future__ import annotations

import cProfile
import logging
import pstats
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.privacy.secagg_graph import failure_bounds, neighbours_for

ROUNDS = 40
SEEDS = (0, 1, 2)
CLIP = 0.5
K = 20


def _train(
    privacy: dict, seed: int, rounds: int = ROUNDS, clients: int = K
) -> tuple[float, float | None, float, float]:
    pool = NodePool.simulated(100, dataset="digits", partition="iid", network="lan", seed=seed)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=clients, local_epochs=2, lr=0.1, privacy=privacy)
    t = time.perf_counter()
    coord.run(rounds=rounds, progress=False)
    wall = time.perf_counter() - t
    final = coord.history.final
    return final["test_accuracy"], final.get("epsilon"), wall, coord.privacy.clip


def _utility() -> str:
    lines = [
        "| z | clipping | final accuracy (mean ± sd, 3 seeds) | epsilon at delta 1e-5 | final clip norm C (mean) |",
        "|---|---|---|---|---|",
    ]
    base = [_train({}, s)[0] for s in SEEDS]
    lines.append(f"| no DP | - | {statistics.mean(base):.3f} ± {statistics.stdev(base):.3f} | inf | - |")
    for z in (0.5, 1.0, 2.0):
        for adaptive in (False, True):
            privacy = {"mode": "central", "noise_multiplier": z, "clip": CLIP}
            if adaptive:
                privacy |= {"adaptive_quantile": 0.5, "clip_count_stddev": max(K / 20, z)}
            runs = [_train(privacy, s) for s in SEEDS]
            acc = [r[0] for r in runs]
            lines.append(
                f"| {z:g} | {'adaptive' if adaptive else 'fixed'} | {statistics.mean(acc):.3f} ± "
                f"{statistics.stdev(acc):.3f} | {runs[0][1]:.2f} | {statistics.mean(r[3] for r in runs):.3g} |"
            )
    return "\n".join(lines)


PROTOCOLS = {"plain": {}, "classic": {"secagg": True}, "plus": {"secagg": "plus"}}


def _secagg_run(k: int, network: str, privacy: dict, deadline: float | None) -> tuple[list, float]:
    pool = NodePool.simulated(100, dataset="digits", partition="iid", network=network, seed=0)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=k, privacy=privacy, deadline_s=deadline)
    reports: list = []
    coord.bus.subscribe(reports.append)
    t = time.perf_counter()
    coord.run(rounds=3, progress=False)
    return reports, (time.perf_counter() - t) / 3


def _adaptive_at_scale() -> str:
    """Adaptive clipping where the paper runs it: all 100 nodes per round (noise / K five times smaller), seed 0."""
    lines = [
        "| z | K | clipping | final accuracy (seed 0) | epsilon (q = 1) | final C |",
        "|---|---|---|---|---|---|",
    ]
    for z in (1.0, 2.0):
        for adaptive in (False, True):
            privacy = {"mode": "central", "noise_multiplier": z, "clip": CLIP}
            if adaptive:
                privacy |= {"adaptive_quantile": 0.5, "clip_count_stddev": max(100 / 20, z)}
            acc, eps, _, clip = _train(privacy, 0, clients=100)
            kind = "adaptive" if adaptive else "fixed"
            lines.append(f"| {z:g} | 100 | {kind} | {acc:.3f} | {eps:.2f} | {clip:.3g} |")
    return "\n".join(lines)


def _x25519_floor(k: int, degree: int | None = None, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds for the agreements one round cannot avoid: two per masked pair (mask key, share channel),
    over all pairs of ``k`` nodes or the ``k * degree / 2`` edges of a ring of that degree (SecAgg+);
    wall time, or CPU time with ``clock=time.process_time``."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    keys = [X25519PrivateKey.from_private_bytes(bytes([i % 256, i // 256]) * 16) for i in range(2 * k)]
    publics = [key.public_key() for key in keys]
    if degree is None or degree >= k - 1:
        edges = {(u, v) for u in range(k) for v in range(u + 1, k)}
    else:
        edges = {tuple(sorted((u, (u + d) % k))) for u in range(k) for d in range(1, degree // 2 + 1)}
    t = clock()
    for kind in (0, k):
        for u, v in sorted(edges):
            keys[kind + u].exchange(publics[kind + v])
    return clock() - t


def _crypto_floor(k: int, degree: int | None = None, size: int = 6570) -> float:
    """CPU seconds of the primitives one round cannot avoid, called back to back with no protocol around them:
    per masked pair two X25519 agreements, two HKDFs, one AES-GCM key, two share encryptions and two
    decryptions (one each way), one AES-CTR mask of ``size`` 32-bit words and its two ring additions; per node
    two private keys and its self-mask expanded twice (node and server). What a round costs above this
    floor is the protocol's own code."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from hypergpu_lab.privacy.secagg import CIPHERTEXT_BYTES, FixedPoint, derive, expand

    edges = k * (k - 1) // 2 if degree is None or degree >= k - 1 else k * degree // 2
    ring, nonce, payload = FixedPoint(), bytes(12), bytes(CIPHERTEXT_BYTES - 28)
    t = time.process_time()
    keys = [X25519PrivateKey.from_private_bytes(bytes([i % 256, i // 256]) * 16) for i in range(2 * k)]
    publics = [key.public_key() for key in keys]
    y = np.zeros(size, dtype=ring.dtype)
    for e in range(edges):
        u, v = e % k, (e + 1 + e // k) % k
        seed = derive(keys[u].exchange(publics[v]), "mask", 1, u, v)
        channel = AESGCM(derive(keys[k + u].exchange(publics[k + v]), "channel", 1, u, v))
        for _ in range(2):
            channel.decrypt(nonce, channel.encrypt(nonce, payload, None), None)
        m = expand(seed, size, ring)
        y += m
        y -= m
    for u in range(2 * k):
        expand(bytes([u % 256]) * 32, size, ring)
    return time.process_time() - t


def _secagg() -> str:
    lines = [
        "| nodes/round | network | dropouts (SecAgg+ run) | SecAgg+ k | sim s/round plain / classic / plus "
        "| MB/round plain / classic / plus | wall s/round plain / classic / plus | wall ratio classic / plus "
        "| X25519 floor s/round classic / plus | recovered classic / plus | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for network in ("lan", "unstable-wan"):
        for k in (10, 50, 100):
            for drop in (False, True):
                cells = {}
                for name, privacy in PROTOCOLS.items():
                    deadline = None
                    if drop:
                        first, _ = _secagg_run(k, network, privacy, None)
                        arrivals = [n.arrival - first[0].t_start for n in first[0].nodes if n.arrival is not None]
                        deadline = float(np.percentile(arrivals, 90))
                    reports, wall = _secagg_run(k, network, privacy, deadline)
                    cells[name] = (
                        statistics.mean(r.duration for r in reports),
                        statistics.mean(r.bytes_moved for r in reports) / 1e6,
                        wall,
                        sum(any(e.startswith("SecAgg recovery") for e in r.events) for r in reports),
                        statistics.mean(r.selected - r.accepted for r in reports),
                    )
                p, c, s = cells["plain"], cells["classic"], cells["plus"]
                dropped = f"deadline p90: {s[4]:.1f} of {k} missing/round" if drop else "none"
                degree = min(neighbours_for(k), k - 1)
                lines.append(
                    f"| {k} | {network} | {dropped} | {degree}{' (all)' if degree == k - 1 else ''} "
                    f"| {p[0]:.2f} / {c[0]:.2f} / {s[0]:.2f} | {p[1]:.2f} / {c[1]:.2f} / {s[1]:.2f} "
                    f"| {p[2]:.3f} / {c[2]:.3f} / {s[2]:.3f} | {c[2] / p[2]:.1f}x / {s[2] / p[2]:.1f}x "
                    f"| {_x25519_floor(k):.3f} / {_x25519_floor(k, degree):.3f} | {c[3]}/3 / {s[3]}/3 "
                    f"| {_load().split(',')[0]} |"
                )
    return "\n".join(lines)


def _wall_side_by_side(k: int = 100, pairs: int = 5, small: int = 16) -> str:
    """Wall time per round at ``k`` nodes per round: plain, classic, SecAgg+ (bound's k) and SecAgg+ with
    ``small`` neighbours, alternated ``pairs`` times (lan, 3 rounds each)."""
    before = _load()
    runs = {**PROTOCOLS, "small": {"secagg": "plus", "secagg_neighbours": small}}
    wall: dict[str, list[float]] = {name: [] for name in runs}
    cpu: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(pairs):
        for name, privacy in runs.items():
            c = time.process_time()
            wall[name].append(_secagg_run(k, "lan", privacy, None)[1])
            cpu[name].append((time.process_time() - c) / 3)
    m = {name: statistics.median(w) for name, w in wall.items()}
    p = {name: statistics.median(w) for name, w in cpu.items()}
    degree = neighbours_for(k)
    bound, weak = failure_bounds(k, degree), failure_bounds(k, small)
    cpu_clock = time.process_time

    def cell(name: str) -> str:
        return f"{m[name]:.3f} s ({m[name] / m['plain']:.1f}x; CPU {p[name]:.3f} s, {p[name] / p['plain']:.1f}x"

    return (
        f"Wall time per round at {k} nodes per round (lan, {pairs} alternated runs of each, 3 rounds, medians; "
        f"process CPU time beside it): {m['plain']:.3f} s plain (CPU {p['plain']:.3f} s); classic SecAgg "
        f"{cell('classic')}; CPU floor: {k * (k - 1)} X25519 agreements {_x25519_floor(k, clock=cpu_clock):.3f} s, "
        f"all primitives {_crypto_floor(k):.3f} s); SecAgg+ with k = {degree} (correctness / privacy failure bounds "
        f"{bound[0]:.1e} / {bound[1]:.1e}) {cell('plus')}; CPU floor: {k * degree} agreements "
        f"{_x25519_floor(k, degree, cpu_clock):.3f} s, all primitives {_crypto_floor(k, degree):.3f} s); SecAgg+ with "
        f"k = {small} (`secagg_neighbours: {small}`, bounds {weak[0]:.1e} / {weak[1]:.1e}) {cell('small')}). "
        f"Load average before: {before}; after: {_load()}."
    )


PROFILE_PARTS = {  # where a SecAgg+ round's time goes: substrings of "file:function" in the profile
    "X25519 agreements (exchange, key parsing)": ("x25519", "secagg.py:_public"),
    "HKDF key derivation": ("hmac", "secagg.py:derive"),
    "AES-CTR mask expansion (PRG)": ("CipherContext", "create_encryption_ctx", "ciphers/base.py", "secagg.py:expand"),
    "AES-GCM share encryption and decryption": ("aead",),
    "Shamir sharing and reconstruction": ("shamir.py", "integers"),
    "ring arithmetic (mask sums, unmasking sum)": ("secagg.py:mask_inputs", "secagg.py:_ring_sum", "secagg.py:unmask"),
}


def _profile(k: int = 100) -> str:
    """cProfile of one lan round at ``k`` nodes with SecAgg+ (after a warm-up round), grouped by component."""
    pool = NodePool.simulated(100, dataset="digits", partition="iid", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp", clients_per_round=k, privacy={"secagg": "plus"})
    coord.step()
    prof = cProfile.Profile()
    t = time.perf_counter()
    prof.enable()
    coord.step()
    prof.disable()
    total = time.perf_counter() - t
    stats = pstats.Stats(prof).stats  # (file, line, name) -> (calls, primitive calls, tottime, cumtime, callers)
    parts = dict.fromkeys(PROFILE_PARTS, 0.0)
    for (path, _, name), (_, _, tottime, _, _) in stats.items():
        where = f"{path}:{name}"
        part = next((p for p, keys in PROFILE_PARTS.items() if any(key in where for key in keys)), None)
        if part is not None:
            parts[part] += tottime
    rest = total - sum(parts.values())
    cells = "; ".join(f"{part} {sec:.3f} s" for part, sec in parts.items())
    return (
        f"Profile of one SecAgg+ round at {k} nodes per round (lan, cProfile self time, so the total is "
        f"inflated by the profiler; load {_load()}): {total:.3f} s in all; {cells}; training (in worker threads, "
        f"outside the profile), the simulated network and the rest {rest:.3f} s."
    )


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average: ")[-1]


def _dp_overhead() -> str:
    plain = statistics.median(_train({}, 0, rounds=30)[2] for _ in range(3))
    private = statistics.median(
        _train({"mode": "central", "noise_multiplier": 1.0, "clip": CLIP}, 0, rounds=30)[2] for _ in range(3)
    )
    return (
        f"DP overhead (30 rounds, 20 of 100 nodes, MLP, median of 3): {plain:.2f} s without DP, "
        f"{private:.2f} s with central DP-FedAvg z = 1 ({(private / plain - 1) * 100:+.0f}%)."
    )


def main() -> str:
    logging.getLogger("absl").setLevel(logging.ERROR)
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    t = time.perf_counter()
    _secagg_run(
        10, "lan", PROTOCOLS["plus"], None
    )  # warm-up: loads cryptography and dp-accounting before any row is timed
    body = "\n\n".join(
        [
            f"Machine: 2-core VM (shared); `uptime` at the start: {load}.",
            "### Privacy-utility (central DP-FedAvg, digits)\n\n" + _utility() + "\n\n" + _adaptive_at_scale(),
            "### SecAgg cost\n\n" + _secagg() + "\n\n" + _wall_side_by_side() + "\n\n" + _profile(),
            "### DP overhead\n\n" + _dp_overhead(),
        ]
    )
    notes = (
        "Adaptive clipping follows Andrew et al. 2021 (tests/privacy/test_dp.py checks it against a numpy "
        "reference: centred clipped-count bits with noise sigma_b, z_delta = (z^-2 - (2 sigma_b)^-2)^-1/2 on the "
        "updates, C <- C exp(-eta (b~ - gamma))). At K = 20 it still runs away for z >= 1 (see the final C): C "
        "tracks the median update norm, and the noise z_delta C sqrt(P) / K it sets (sqrt(P) / K = 4 for the "
        "6,570-parameter MLP) makes the next round's updates larger, a loop with no fixed point; the paper's "
        "experiments use hundreds of clients per round. With all 100 nodes per round (second table) the same "
        "rule settles and matches fixed clipping. Fixed clipping is the better choice at this scale. "
        "SecAgg is the full protocol (two X25519 key pairs per node, Shamir shares of the mask key and of the "
        "self-mask seed, AES-GCM share relay, unmasking from t = n/2 + 1 survivors). `recovered` counts rounds in "
        "which dropped nodes' pairwise masks were rebuilt from shares. A 'deadline p90' row aims at ~10% "
        "dropouts; on unstable-wan the SecAgg round has two more message steps before training than the plain "
        "round that set the deadline, so more nodes miss it there. The wall ratio's floor is the X25519 "
        "column: two agreements per masked pair (mask key, share channel), K (K - 1) a round for classic SecAgg "
        "and K k for SecAgg+, serial on one CPU, where a deployment spreads them over K devices. SecAgg+ "
        '(`secagg: "plus"`, Bell et al. 2020) masks and shares keys only among k neighbours of a seeded '
        "Harary graph (unmasking from t = k / 2 + 1 of a node's k + 1 share holders); k is the smallest even degree "
        "whose union bounds (binomial tails over the K nodes) keep "
        "a round's correctness failure below 2^-20 and its privacy failure below 2^-40 with 10% dropouts and "
        "10% of nodes colluding with the server (`hypergpu_lab/privacy/secagg_graph.py`): k = 56 at K = 100 "
        "(60 at 1,000, 64 at 10,000: O(log K)), and no k below K - 1 meets them at K <= 50, where SecAgg+ is "
        "classic SecAgg (the same bytes; its wall times there differ only by noise). The 2x goal at 100 nodes "
        "is not met, and cannot be on this CPU without weakening the protocol: the primitives a SecAgg+ round "
        "with k = 56 cannot skip cost 0.26 s CPU (0.17 s of it the 5,600 agreements) against 0.09 s CPU and 0.06 s "
        "wall for the whole plain round; a smaller `secagg_neighbours` trades the failure bounds for time (k = 16 "
        "in the side-by-side line). "
        "Flower's SecAggPlusWorkflow has no automatic choice (the caller passes num_shares = k + 1 and the "
        "reconstruction threshold), so `secagg: true` stays classic SecAgg and SecAgg+ is opt-in."
    )
    return body + f"\n\n{notes}\n\n(whole suite: {time.perf_counter() - t:.0f} s wall)"
