"""Communication levers: update compression, per-link compression, FedNova and SCAFFOLD.

Workloads (digits, 3 seeds, virtual time throughout):

* time to 90% test accuracy on the ``wan`` (20 nodes, unstable-wan links) and ``hospitals``
  scenarios of ``hypergpu_lab.adaptation.scenarios`` (latency-bound), and on ``slow-links`` (every
  link 1 Mbps: bandwidth-bound), K = 5 uniform-random nodes per round, for
  FedAvg with uncompressed updates, 8-bit updates, top-1% with error feedback, 8-bit updates with a
  compressed model broadcast (downlink: 8-bit, or top-10% with the server's error feedback), the
  adaptive policy choosing a level per link with every other adaptive mechanism off (random
  selection, fixed batch, no over-commitment, no deadline), so only compression differs from the
  baseline; and a bound no codec can beat: the baseline with every link's bandwidth made infinite
  (bytes cost nothing, latency, jitter, loss and compute stay);
* the same on ``wan`` and ``hospitals`` under per-packet loss (``loss_unit="packet"``: 1500-byte
  packets each lost with the profile's probability, only the lost ones resent after the timeout),
  where a big message needs more retransmission rounds than a small one; its bound also sends every
  message as one packet; extra rows there: QSGD s=2 or top-10% signs up with top-5% signs down (fixed widths, or
  with entropy-coded positions: ``coding`` elias or rice), and the per-link choice priced with packet loss,
  over a longer horizon (``PACKET_ROUNDS``). The rows above keep the default per-message model;
* bytes per round, from the encoded updates (``RoundReport.bytes_moved``: downloads + uploads,
  retries counted), per upload and per download (``NodeRecord.upload_bytes``, ``download_bytes``);
* FedNova and SCAFFOLD against FedAvg on a Dirichlet(0.1) split with the adaptive batch policy on
  (nodes take different numbers of local steps): accuracy after a fixed number of rounds;
* the wall time of compression (encode + decode, ``UpdateCompressor.wall_s``) as a share of the
  round's wall time with 100 nodes per round.

``downlink_sweep`` (the downlink ratio of the entropy-coded setting, on any seeds) and ``download_what_if``
(packets per download, and the time if every download were one packet) are called by hand; the commands
are in BENCHMARKS.md.

``QUICK=1`` in the environment runs one seed and fewer rounds (a smoke test, not for the table).
``python -m bench.communication share [OLDER_CHECKOUT]`` prints only the compression share table
(with an older checkout's runs beside this one's, alternating), leaving BENCHMARKS.md alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.adaptation import AdaptivePolicy, build_scenario
from hypergpu_lab.broadcast import Broadcast
from hypergpu_lab.network import LinkProfile
from hypergpu_lab.planning import UniformPolicy

QUICK = os.environ.get("QUICK") == "1"
TARGET = 0.90
SEEDS = (0,) if QUICK else (0, 1, 2)
K, BATCH = 5, 16
ROUNDS = 10 if QUICK else 40
MODEL = "cnn"
# A bandwidth-bound contrast to the latency-bound scenarios: every link 1 Mbps, 20-40 ms, no loss.
SLOW = "slow-links"
SLOW_LINK = LinkProfile("slow-1mbps", latency_ms=(20.0, 40.0), loss=0.0, bandwidth_mbps=1.0)
SLOW_DESCRIPTION = "10 nodes, Dirichlet(0.5), every link 1 Mbps with 20-40 ms latency and no loss"

VARIANTS: dict[str, dict[str, Any]] = {
    "FedAvg, float32 (baseline)": {},
    "FedAvg + int8": {"compression": "int8"},
    "FedAvg + top-1% with EF": {"compression": "topk", "compression_options": {"ratio": 0.01}},
    "FedAvg + int8 up, int8 down": {"compression": "int8", "download_compression": "int8"},
    "FedAvg + int8 up, top-10% down": {
        "compression": "int8",
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.1},
    },
    # Per-link targets, in seconds of transmission: the float32 CNN update takes 22 ms at 20 Mbps, 440 ms at 1 Mbps.
    "per-link choice, 10 ms target": {"per_link": 0.01},
    "per-link choice, 150 ms target": {"per_link": 0.15},
    "bound: bytes free (infinite bandwidth)": {"free_bytes": True},
}
BOUND = "bound: bytes free (infinite bandwidth)"
# Rows only the per-packet tables carry: messages of few packets both ways (QSGD s=2, 3 bits a value, or top-10%
# signs with the node's error feedback up; top-5% signs with the server's error feedback down), and the per-link
# choice, which under per-packet loss adds the retries' expected time to a level's price (see AdaptivePolicy).
PACKET_VARIANTS: dict[str, dict[str, Any]] = {
    "FedAvg + QSGD s=2 up, top-5% signs down (EF)": {
        "compression": "qsgd",
        "compression_options": {"levels": 2},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True},
    },
    "FedAvg + top-10% signs up, top-5% signs down (EF both)": {
        "compression": "topk",
        "compression_options": {"ratio": 0.1, "sign": True},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True},
    },
    # The same codecs with their positions entropy-coded (``coding``: QSGD's nonzeros as Elias-gamma gaps, signs
    # and levels as in its paper, or gaps Golomb-Rice coded; top-k's indices as gaps): same values, fewer packets.
    "FedAvg + QSGD s=2 up, top-5% signs down (EF), Elias-coded (QSGD's paper)": {
        "compression": "qsgd",
        "compression_options": {"levels": 2, "coding": "elias"},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True, "coding": "elias"},
    },
    "FedAvg + QSGD s=2 up, top-5% signs down (EF), Rice-coded gaps": {
        "compression": "qsgd",
        "compression_options": {"levels": 2, "coding": "rice"},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True, "coding": "rice"},
    },
    "FedAvg + QSGD s=2 up, top-4.5% signs down (EF), Rice-coded gaps": {
        "compression": "qsgd",
        "compression_options": {"levels": 2, "coding": "rice"},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.045, "sign": True, "coding": "rice"},
    },
    "FedAvg + top-10% signs up, top-5% signs down (EF both), Rice-coded gaps": {
        "compression": "topk",
        "compression_options": {"ratio": 0.1, "sign": True, "coding": "rice"},
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True, "coding": "rice"},
    },
    "per-link choice, 1000 s target (never compresses: like-for-like baseline)": {"per_link": 1000.0},
    "per-link choice, 0.5 s target": {"per_link": 0.5},
    "per-link choice, 0.5 s target, top-5% signs down (EF)": {
        "per_link": 0.5,
        "download_compression": "topk",
        "download_compression_options": {"ratio": 0.05, "sign": True},
    },
}
BEST_PACKET = "FedAvg + QSGD s=2 up, top-4.5% signs down (EF), Rice-coded gaps"
# Compressed settings need more rounds to reach a final accuracy near float32's: the per-packet tables run
# longer, every row (float32 included) over the same horizon. Time to 90% is the first round at 90%, so the
# horizon changes only the final accuracy column (and the per-round means).
PACKET_ROUNDS = 10 if QUICK else 80


def _policy(seed: int, target_s: float | None) -> Any:
    """Uniform FedAvg sampling, or the adaptive policy with only the per-link compression choice on."""
    if target_s is None:
        return UniformPolicy(seed=seed, batch_size=BATCH, clients_per_round=K)
    return AdaptivePolicy(
        seed=seed,
        clients_per_round=K,
        base_batch=BATCH,
        selection="random",
        batch_strategy="fixed",
        over_commit=1.0,
        max_over_commit=1.0,
        deadline=None,
        compression_by_link=True,
        compression_target_s=target_s,
    )


def time_to_accuracy(
    scenario: str,
    variant: str,
    seed: int,
    loss_unit: str = "message",
    rounds: int | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One run of a named variant (or of ``options``, then ``variant`` is only its name)."""
    opts = dict({**VARIANTS, **PACKET_VARIANTS}[variant] if options is None else options)
    per_link = opts.pop("per_link", None)
    free_bytes = opts.pop("free_bytes", False)
    if scenario == SLOW:
        pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="lan", seed=seed)
        for link in pool.network.links.values():
            link.profile = SLOW_LINK
        sc = None
    else:
        sc = build_scenario(scenario, seed=seed, loss_unit=loss_unit)
        pool = sc.pool
    if free_bytes:  # what any codec could at best give: transmission takes no time, all else stays
        for link in pool.network.links.values():
            link.profile = dataclasses.replace(link.profile, bandwidth_mbps=1e12)
        # and, with per-packet loss, every message one packet (a codec cannot send less than one)
        pool.network.retry = dataclasses.replace(pool.network.retry, mtu_bytes=2**62)
    coord = Coordinator(model=MODEL, pool=pool, policy=_policy(seed, per_link), seed=seed, **opts)
    if sc is not None:
        sc.attach(coord)
    history = coord.run(rounds=ROUNDS if rounds is None else rounds, progress=False)
    hit = next((r for r in history if (r["test_accuracy"] or 0) >= TARGET), None)
    last = [r["test_accuracy"] for r in list(history)[-3:]]
    uploads = [rec.upload_bytes for _, rec in coord.history.node_records if rec.upload_bytes is not None]
    downloads = [rec.download_bytes for _, rec in coord.history.node_records]
    mtu = pool.network.retry.mtu_bytes
    levels = [rec.compression or "none" for _, rec in coord.history.node_records if rec.upload_bytes is not None]
    # Where a node's round time goes: the transfers are the only part compression shortens.
    sent = [rec for _, rec in coord.history.node_records if rec.arrival is not None]
    transfer = sum(r.download_s + r.upload_s for r in sent)
    upload_share = transfer / sum(r.download_s + r.compute_s + r.upload_s for r in sent)
    return {
        "time": hit["t_end"] if hit else None,
        "round": hit["round"] if hit else None,
        "final": sum(last) / len(last),
        "bytes_round": statistics.mean(history.column("bytes_moved")),
        "upload": statistics.mean(uploads) if uploads else 0.0,
        "download": statistics.mean(downloads),
        "model_bytes": coord.layout.nbytes,
        "levels": {lv: levels.count(lv) for lv in sorted(set(levels))},
        "upload_share": upload_share,
        "download_packets": [-(-b // mtu) for b in downloads],  # as first sent, before any retry
    }


LOSS_MODELS = {
    "message": "per-message loss (the default: an attempt is lost whole with the profile's loss and resent whole)",
    "packet": 'per-packet loss (`loss_unit="packet"`, 1500-byte packets each lost with the profile\'s loss, '
    "only the lost ones resent after the timeout)",
}


def time_table(sc: str, loss_unit: str = "message") -> list[str]:
    """One scenario's time-to-accuracy table, every variant over the seeds (per-packet: its own rows and horizon)."""
    variants = list(VARIANTS) if loss_unit == "message" else [*VARIANTS, *PACKET_VARIANTS]
    rounds = ROUNDS if loss_unit == "message" else PACKET_ROUNDS
    results = {v: [time_to_accuracy(sc, v, s, loss_unit, rounds) for s in SEEDS] for v in variants}
    base = results["FedAvg, float32 (baseline)"]
    base_hits = [r["time"] for r in base if r["time"] is not None]
    base_t = statistics.mean(base_hits) if len(base_hits) == len(base) else None
    name = sc if loss_unit == "message" else f"{sc}, per-packet loss"
    described = SLOW_DESCRIPTION if sc == SLOW else build_scenario(sc, seed=0).description
    lines = [
        f"**{name}**: {described}; {LOSS_MODELS[loss_unit]}. Model {base[0]['model_bytes']:,} bytes"
        + ("." if loss_unit == "message" else f"; {rounds} rounds (final accuracy: mean of the last 3)."),
        "",
        "| updates | time to 90% | speed-up | final accuracy | bytes per round | bytes per upload "
        "| bytes per download | transfer share of node time | levels used (uploads) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for v, runs in results.items():
        hits = [r for r in runs if r["time"] is not None]
        if hits:
            t = statistics.mean(r["time"] for r in hits)
            rnd = statistics.mean(r["round"] for r in hits)
            missed = f", {len(runs) - len(hits)} missed" if len(hits) < len(runs) else ""
            when = f"{t:.2f} s ({rnd:.1f} rounds{missed})"
            speed = f"{base_t / t:.2f}x" if base_t and len(hits) == len(runs) else "-"
        else:
            when, speed = "not reached", "-"
        levels: dict[str, int] = {}
        for r in runs:
            for lv, n in r["levels"].items():
                levels[lv] = levels.get(lv, 0) + n
        used = ", ".join(f"{lv} {n}" for lv, n in levels.items())
        lines.append(
            f"| {v} | {when} | {speed} | {statistics.mean(r['final'] for r in runs):.3f} | "
            f"{statistics.mean(r['bytes_round'] for r in runs):,.0f} | "
            f"{statistics.mean(r['upload'] for r in runs):,.0f} | "
            f"{statistics.mean(r['download'] for r in runs):,.0f} | "
            f"{statistics.mean(r['upload_share'] for r in runs):.1%} | {used} |"
        )
    lines.append("")
    return lines


def packet_tables() -> list[str]:
    """wan and hospitals again under per-packet loss: the rows above keep the per-message model."""
    return time_table("wan", "packet") + time_table("hospitals", "packet")


def downlink_sweep(
    ratios: tuple[float, ...] = (0.03, 0.035, 0.04, 0.045, 0.05), seeds: tuple[int, ...] = SEEDS, scenario: str = "wan"
) -> list[str]:
    """QSGD s=2 up with top-r signs down, both Rice-coded, per downlink ratio r, under per-packet loss over
    ``PACKET_ROUNDS``: mean time to 90% over ``seeds`` and the speed-up over float32's on the same seeds."""

    def row(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
        runs = [time_to_accuracy(scenario, name, s, "packet", PACKET_ROUNDS, options) for s in seeds]
        hits = [r["time"] for r in runs if r["time"] is not None]
        final = statistics.mean(r["final"] for r in runs)
        return {"time": statistics.mean(hits) if len(hits) == len(runs) else None, "final": final}

    base = row("FedAvg, float32 (baseline)", None)
    lines = [f"{scenario}, seeds {list(seeds)}: float32 {base['time']:.2f} s, final {base['final']:.3f}"]
    for r in ratios:
        down = {"ratio": r, "sign": True, "coding": "rice"}
        options = {
            "compression": "qsgd",
            "compression_options": {"levels": 2, "coding": "rice"},
            "download_compression": "topk",
            "download_compression_options": down,
        }
        got = row(f"top-{r:.1%} signs down", options)
        speed = f"{base['time'] / got['time']:.2f}x" if got["time"] else "-"
        t = f"{got['time']:.2f} s" if got["time"] else "not reached on every seed"
        lines.append(f"top-{r * 100:g}% signs down: {t}, {speed}, final {got['final']:.3f}")
    return lines


def download_what_if(variant: str = BEST_PACKET, seeds: tuple[int, ...] = SEEDS, scenario: str = "wan") -> list[str]:
    """Packets per download of ``variant`` under per-packet loss (``ROUNDS`` rounds), and its time to 90% if no
    download took more than one packet: a what-if for a compressed catch-up (no codec here does that)."""
    runs = [time_to_accuracy(scenario, variant, s, "packet") for s in seeds]
    packets = [p for r in runs for p in r["download_packets"]]
    share = {p: packets.count(p) / len(packets) for p in sorted(set(packets))}
    missed = Broadcast.download_bytes
    try:  # every node's catch-up priced at one packet at most
        Broadcast.download_bytes = lambda self, node: min(missed(self, node), 1500)  # type: ignore[method-assign]  # the MTU
        capped = [time_to_accuracy(scenario, variant, s, "packet")["time"] for s in seeds]
    finally:
        Broadcast.download_bytes = missed  # type: ignore[method-assign]
    as_built = statistics.mean(r["time"] for r in runs)
    return [
        f"{variant}, {scenario}, seeds {list(seeds)}, {ROUNDS} rounds: time to 90% {as_built:.2f} s",
        "packets per download: " + ", ".join(f"{p}: {v:.1%}" for p, v in share.items()),
        f"every download at most one packet (what-if): {statistics.mean(capped):.2f} s",
    ]


def heterogeneity(strategy: str, seed: int, rounds: int, momentum: float, epochs: int) -> tuple[float, list[int]]:
    """Accuracy after ``rounds`` on Dirichlet(0.1), adaptive batch sizes (uneven local steps), and the
    local steps of every update trained (ceil(samples / batch) x epochs)."""
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.1, network="mixed", seed=seed)
    coord = Coordinator(
        pool=pool,
        model=MODEL,
        strategy=strategy,
        policy="adaptive",
        batch_size=BATCH,
        seed=seed,
        momentum=momentum,
        local_epochs=epochs,
    )
    coord.run(rounds=rounds, progress=False)
    steps = [-(-r.num_samples // r.batch_size) * epochs for _, r in coord.history.node_records if r.loss is not None]
    return coord.evaluate()[0], steps


def compression_share(
    kind: str, options: dict[str, Any], down: str = "none", down_options: dict[str, Any] | None = None, rounds: int = 5
) -> dict[str, float]:
    """Encode + decode wall time (uploads, and the broadcast when ``down`` compresses it) over round wall
    time, 100 nodes per round (after one warm-up round); ``kind`` "none" times the uncompressed round."""
    pool = NodePool.simulated(100, dataset="digits", partition="iid", network="mixed", seed=0)
    coord = Coordinator(
        pool=pool,
        model=MODEL,
        batch_size=BATCH,
        compression=kind,
        compression_options=options,
        download_compression=down,
        download_compression_options=down_options or {},
    )
    coord.step()

    def spent() -> float:
        return coord.compressor.wall_s + (coord.broadcast.wall_s if coord.broadcast is not None else 0.0)

    c0, w0 = spent(), time.perf_counter()
    coord.run(rounds=rounds, progress=False)
    wall = time.perf_counter() - w0
    return {"compress_ms": 1e3 * (spent() - c0) / rounds, "round_ms": 1e3 * wall / rounds}


SHARE_CASES = (
    ("uncompressed", "none", {}, "none"),
    ("int8", "int8", {}, "none"),
    ("qsgd s=16", "qsgd", {}, "none"),
    ("top-1% with EF", "topk", {"ratio": 0.01}, "none"),
    ("sign with EF", "sign", {}, "none"),
    ("int8 up, int8 down", "int8", {}, "int8"),
    # entropy-coded positions (coding), beside the same codec with fixed widths
    ("qsgd s=2", "qsgd", {"levels": 2}, "none"),
    ("qsgd s=2, Rice-coded", "qsgd", {"levels": 2, "coding": "rice"}, "none"),
    ("qsgd s=2, Elias-coded", "qsgd", {"levels": 2, "coding": "elias"}, "none"),
    ("top-10% signs, Rice-coded", "topk", {"ratio": 0.1, "sign": True, "coding": "rice"}, "none"),
    (
        "qsgd s=2 up, top-4.5% signs down, Rice-coded",
        "qsgd",
        {"levels": 2, "coding": "rice"},
        ("topk", {"ratio": 0.045, "sign": True, "coding": "rice"}),
    ),
)


def _share_run(root: str, kind: str, opts: dict[str, Any], down: str | tuple[str, dict[str, Any]]) -> dict[str, float]:
    """One :func:`compression_share` in a fresh process on the code under ``root`` (this checkout, or an
    older one to compare against), with the 1-minute load just after it."""
    code = (
        "import json, logging, sys, torch; torch.set_num_threads(1); "
        "logging.getLogger('hypergpu_lab').setLevel(logging.ERROR); "
        "from bench.communication import compression_share; "
        "print(json.dumps(compression_share(*json.loads(sys.argv[1]))))"
    )
    env = {**os.environ, "PYTHONPATH": root}
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps([kind, opts, *((down,) if isinstance(down, str) else down)])],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "load": float(_load().split(",")[0])}


def share_table(repeats: int = 3, against: str | None = None, only: tuple[str, ...] = ()) -> list[str]:
    """The share of compression in the round, each codec's run alternating with the uncompressed one.

    ``against``: the root of an older checkout (``git archive COMMIT | tar -x -C DIR``), run right after
    this checkout's run of each case, so before and after see the same machine load. ``only``: the labels
    of the cases to run (all when empty; "uncompressed" always runs).
    """
    here = str(Path(__file__).resolve().parent.parent)
    trees = {"": here} if against is None else {"": here, " (before)": against}
    runs: dict[str, list[dict[str, float]]] = {}
    for _ in range(1 if QUICK else repeats):
        for label, kind, opts, down in SHARE_CASES:
            if only and label not in only and kind != "none":
                continue
            coded = "coding" in opts or not isinstance(down, str)  # an older checkout may not have these options
            for tag, root in trees.items() if kind != "none" and not coded else [("", here)]:
                runs.setdefault(label + tag, []).append(_share_run(root, kind, opts, down))
    lines = [
        f"### Compression wall time per round, 100 nodes per round, digits {MODEL.upper()} "
        f"(5 rounds per run after a warm-up round; median of {1 if QUICK else repeats} runs, the cases alternating "
        f"in each pass, each run a fresh process)",
        "",
        "| codec | encode + decode per round | round wall time | share (min-max) | 1-minute load (min-max) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, rs in runs.items():
        shares = sorted(r["compress_ms"] / r["round_ms"] for r in rs)
        loads = sorted(r["load"] for r in rs)
        lines.append(
            f"| {label} | {statistics.median(r['compress_ms'] for r in rs):.1f} ms | "
            f"{statistics.median(r['round_ms'] for r in rs):.0f} ms | "
            f"{statistics.median(shares):.1%} ({shares[0]:.1%}-{shares[-1]:.1%}) | "
            f"{statistics.median(loads):.1f} ({loads[0]:.1f}-{loads[-1]:.1f}) |"
        )
    return lines


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip().split("load average:")[-1].strip()


def main() -> str:
    torch.set_num_threads(1)
    logging.getLogger("hypergpu_lab").setLevel(logging.ERROR)
    wall0, load0 = time.perf_counter(), _load()
    lines = [
        f"### Simulated time to {TARGET:.0%} test accuracy, digits {MODEL.upper()}, K = {K} random nodes per round, "
        f"batch {BATCH}, {ROUNDS} rounds, mean of seeds {list(SEEDS)}",
        "",
    ]
    for sc in ("wan", "hospitals", SLOW):
        lines += time_table(sc)
    lines += packet_tables()

    rounds = 8 if QUICK else 20
    lines += [
        f"### FedNova and SCAFFOLD vs FedAvg: digits {MODEL.upper()}, 10 nodes, Dirichlet(0.1), adaptive policy "
        f"(batch sizes differ, so local steps differ), lr 0.05; test accuracy after {rounds} rounds",
        "",
        "| local SGD | strategy | " + " | ".join(f"seed {s}" for s in SEEDS) + " | mean | local steps per update "
        "(median, 10th-90th percentile) |",
        "|---|---|" + "---:|" * (len(SEEDS) + 2),
    ]
    settings = (
        (0.0, 5, "plain, 5 epochs (client drift)"),
        (0.0, 1, "plain, 1 epoch"),
        (0.9, 1, "momentum 0.9, 1 epoch"),
    )
    for momentum, epochs, label in settings:
        for strategy in ("fedavg", "fednova", "scaffold"):
            out = [heterogeneity(strategy, s, rounds, momentum, epochs) for s in SEEDS]
            accs, steps = [a for a, _ in out], sorted(x for _, st in out for x in st)
            cells = " | ".join(f"{a:.3f}" for a in accs)
            spread = f"{statistics.median(steps):g} ({steps[len(steps) // 10]}-{steps[len(steps) * 9 // 10]})"
            lines.append(f"| {label} | {strategy} | {cells} | {statistics.mean(accs):.3f} | {spread} |")
    lines.append("")

    lines += share_table()
    lines += [
        "",
        "Bytes per round are downloads (the float32 model, or with downlink compression the broadcast messages the "
        "node missed, capped at the float32 model) plus uploads (the encoded update), every attempt, summed from the "
        "transfers; bytes per upload, per download and the levels are per transfer. Transfer share of node time = "
        "(download + upload seconds) / (download + compute + upload) over the updates that arrived; a transfer's time "
        "is latency + jitter + bytes / bandwidth, with retries after losses, and a codec shortens only the bytes term. "
        "The bound row measures that term's whole worth: the baseline again with every link's bandwidth infinite.",
        "",
        "FedNova and SCAFFOLD against the papers (Wang et al. 2020; Karimireddy et al. 2020, whose experiments run "
        "many local steps per round): with 5 local epochs (15-90 steps per update, uneven because shard sizes and the "
        "adaptive batch sizes differ) both beat FedAvg on the mean of 3 seeds, the papers' direction. With 1 epoch "
        "(3-18 steps) they do not: client drift and FedAvg's objective inconsistency (its fixed point weights node i "
        "by p_i tau_i) grow with the number of local steps, and at a few steps of lr 0.05 the local models stay near "
        "the global one, so there is little to correct, while FedNova's normalisation and SCAFFOLD's control variates "
        "(estimated from a few steps, refreshed only when a node is selected) add noise. The 5-epoch setting is the "
        "one that exercises them. SCAFFOLD with momentum 0.9 diverges here (0.10): left as found.",
        "",
        "The per-link rows run the adaptive policy with only its compression choice adapting; its random selection "
        "draws through its own selector, which on wan and hospitals (scenarios with scheduled network events) picks a "
        "different sequence of nodes than uniform FedAvg. On slow-links the sequences coincide (its 10 ms row equals "
        "the top-1% row exactly). On wan and hospitals the 150 ms row, which sent every update uncompressed, is the "
        "like-for-like baseline for the per-link rows.",
        "",
        f"Machine: 2-core VM shared with other sessions; load average before: {load0}; after: {_load()}. "
        f"Benchmark wall time {time.perf_counter() - wall0:.0f} s.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    # ``python -m bench.communication share [OLDER_CHECKOUT]``: only the compression share table, printed
    if sys.argv[1:2] == ["share"]:
        print("\n".join(share_table(against=sys.argv[2] if len(sys.argv) > 2 else None)))
    else:
        print(main())
