"""The contribution measure, attacked: on a fixed seed under plain FedAvg, attackers earn (almost) nothing,
a Sybil split earns no more than the node it came from, and rewards rank nodes as their Shapley values do.

The rewards are split by the chain's rule (``split_pool`` of ``round_scores``), the scores those the
recorder sends to the embedded chain in tests/chain/test_chain_recorder.py."""

from __future__ import annotations

import pytest

from bench.contribution import shares
from hypergpu_lab.adaptation.monitor import NetworkMonitor
from hypergpu_lab.adaptation.selection import NodeSelector
from hypergpu_lab.faults import Fault


@pytest.mark.parametrize(
    ("faults", "limit"),
    [
        ([Fault("sign_flip", (2,))], 0.01),
        ([Fault("scale", (2,))], 0.01),
        ([Fault("noise", (2,))], 0.01),
        ([Fault("free_rider", (2,))], 0.01),
        ([Fault("free_rider", (2, 5))], 0.01),  # two colluding free riders
        ([Fault("label_flip", (2,))], 0.10),  # below an honest node's share
    ],
    ids=["sign_flip", "scale", "noise", "free_rider", "collusion", "label_flip"],
)
def test_attackers_share_of_rewards_stays_below_its_bound(faults, limit) -> None:
    share, _ = shares(faults, rounds=6, seed=0)
    attackers = {n for f in faults for n in f.nodes}
    honest = [share[n] for n in range(10) if n not in attackers]
    assert sum(share[n] for n in attackers) <= limit
    assert sum(share[n] for n in attackers) <= min(honest)  # ties at zero: an honest node may harm a round too


def test_contribution_selection_gives_a_node_whose_updates_are_all_rejected_zero() -> None:
    from hypergpu_lab import Coordinator, NodePool

    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp", faults=[Fault("nan", (1,))])
    monitor = NetworkMonitor()
    coord.bus.subscribe(monitor.observe)
    coord.run(rounds=3, progress=False)
    selector = NodeSelector(strategy="contribution")
    assert monitor.accepted_share(1) == 0.0
    assert selector.contribution(1, monitor) == 0.0
    assert all(selector.contribution(n, monitor) > 0.5 for n in (0, 2, 3))


def test_a_node_split_in_three_sybils_earns_no_more_than_it_did_whole() -> None:
    # An attacker registers its one shard as three nodes of the same federation.
    from bench.contribution import SYBIL, SYBIL_IDS, pool_of, sybil_pool

    whole, _ = shares([], rounds=6, seed=0, pool=pool_of(10, 0))
    split, _ = shares([], rounds=6, seed=0, pool=sybil_pool(0))

    assert sum(split[n] for n in SYBIL_IDS) <= whole[SYBIL]


def test_rewards_rank_honest_nodes_as_their_exact_shapley_values_do() -> None:
    # 6 nodes, all 64 coalitions trained for 10 rounds each: the exact Shapley value of final test accuracy.
    from bench.contribution import shapley_vs_rewards

    result = shapley_vs_rewards(2)
    assert result["coalitions"] == 64
    assert result["rho"] >= 0.8
