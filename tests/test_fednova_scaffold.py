"""FedNova and SCAFFOLD against numpy references of their papers' update rules, in both engines."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool, checkpoint
from hypergpu_lab.models import ParamLayout, build_model
from hypergpu_lab.strategies import FedAvg, FedNova, Scaffold, UpdateContext
from hypergpu_lab.strategies.base import effective_steps
from hypergpu_lab.training import Job, SGDConfig, Trainer, node_seed


def _context(nodes: list[int], steps: list[int], lr: float = 0.1, momentum: float = 0.0, n: int = 10) -> UpdateContext:
    return UpdateContext(tuple(nodes), torch.tensor(steps), lr, momentum, n)


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.9])
def test_effective_steps_is_what_momentum_sgd_sums(rho: float) -> None:
    """FedNova eq. 7: a = Sum_{j<tau} (1 - rho^(tau-j)) / (1 - rho); here checked by running torch's SGD on g = 1."""
    for tau in (1, 2, 7, 30):
        w = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([w], lr=1.0, momentum=rho)
        for _ in range(tau):
            opt.zero_grad()
            w.sum().backward()  # gradient 1
            opt.step()
        formula = sum((1 - rho ** (tau - j)) / (1 - rho) if rho else 1.0 for j in range(tau))
        assert float(effective_steps(torch.tensor([tau]), rho)) == pytest.approx(formula, rel=1e-12)
        assert -float(w.detach()) == pytest.approx(formula, rel=1e-6)


def test_fednova_matches_the_papers_normalised_average() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    k, p = 6, 50
    w = rng.normal(size=p).astype(np.float32)
    deltas = rng.normal(size=(k, p)).astype(np.float32)
    n = rng.integers(5, 100, size=k).astype(np.float64)
    steps = rng.integers(1, 40, size=k)

    # Execute
    new = FedNova().aggregate_updates(
        torch.from_numpy(w), torch.from_numpy(deltas), torch.from_numpy(n), _context(list(range(k)), steps.tolist())
    )

    # Assert: w + tau_eff Sum_i p_i delta_i / tau_i, tau_eff = Sum_i p_i tau_i (Wang et al. 2020, eq. 6, plain SGD)
    pi = n / n.sum()
    expected = w + (pi * steps).sum() * (pi[:, None] * deltas / steps[:, None]).sum(0)
    np.testing.assert_allclose(new.numpy(), expected, atol=1e-5, rtol=0)


def test_fednova_equals_fedavg_when_every_node_took_the_same_steps() -> None:
    deltas = torch.randn(4, 30, generator=torch.Generator().manual_seed(1))
    w, n = torch.zeros(30), torch.tensor([10.0, 20.0, 5.0, 7.0], dtype=torch.float64)
    nova = FedNova().aggregate_updates(w, deltas, n, _context([0, 1, 2, 3], [8, 8, 8, 8], momentum=0.9))
    torch.testing.assert_close(nova, FedAvg().aggregate(w, deltas, n), atol=1e-6, rtol=0)


def test_scaffold_server_matches_algorithm_1_over_two_rounds() -> None:
    """c_i+ = c_i - c + (x - y_i) / (K_i lr); x += lr_g mean(dy); c += |S|/N mean(dc) (option II)."""
    # Prepare
    rng = np.random.default_rng(2)
    p, big_n, lr, lr_g = 20, 8, 0.05, 1.0
    x = rng.normal(size=p)
    c, ci = np.zeros(p), {i: np.zeros(p) for i in range(big_n)}
    strategy = Scaffold(server_lr=lr_g)
    w = torch.from_numpy(x.astype(np.float32))
    for nodes in ([0, 3, 5], [3, 6]):
        dy = rng.normal(size=(len(nodes), p)).astype(np.float32)
        steps = rng.integers(1, 10, size=len(nodes))

        # Execute
        w = strategy.aggregate_updates(
            w, torch.from_numpy(dy), torch.ones(len(nodes)), _context(nodes, steps.tolist(), lr, 0.0, big_n)
        )

        # Reference
        dc = []
        for row, i in enumerate(nodes):
            new = ci[i] - c - dy[row] / (steps[row] * lr)
            dc.append(new - ci[i])
            ci[i] = new
        x = x + lr_g * dy.mean(0)
        c = c + len(nodes) / big_n * np.mean(dc, axis=0)

        # Assert
        np.testing.assert_allclose(w.numpy(), x, atol=1e-5)
        np.testing.assert_allclose(strategy.c.numpy(), c, atol=1e-4)
        for i in nodes:
            np.testing.assert_allclose(strategy.ci[i].numpy(), ci[i], atol=1e-4)
            np.testing.assert_allclose(strategy.correction(i).numpy(), c - ci[i], atol=1e-4)


def _jobs(correction: torch.Tensor | None, max_steps: list[int | None] | None = None) -> list[Job]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for i, n in enumerate([7, 23, 40]):
        corr = None if correction is None else correction * (i + 1)
        limit = None if max_steps is None else max_steps[i]
        x, y = torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)
        out.append(Job(i, x, y, 8, node_seed(0, 1, i), corr, limit))
    return out


def test_one_corrected_step_moves_by_lr_times_the_correction() -> None:
    """The client step y <- y - lr (g_i(y) + c - c_i): on one step, the correction's effect is exactly -lr (c - c_i)."""
    model = build_model("mlp", (1, 8, 8), 10, seed=3)
    start = ParamLayout.of(model).flatten(model)
    corr = torch.randn(start.numel(), generator=torch.Generator().manual_seed(5)) * 0.1
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 8, 8, generator=gen), torch.randint(0, 10, (8,), generator=gen)
    for vectorise in (True, False):
        trainer = Trainer(model, SGDConfig(lr=0.1), vectorise=vectorise)
        plain = trainer.train(start, [Job(0, x, y, 8, 1)])[0]
        fixed = trainer.train(start, [Job(0, x, y, 8, 1, corr)])[0]
        torch.testing.assert_close(fixed.delta - plain.delta, -0.1 * corr, atol=1e-6, rtol=0)


@pytest.mark.parametrize("sgd", [SGDConfig(lr=0.1), SGDConfig(lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=2)])
@pytest.mark.parametrize("max_steps", [None, [1, 2, 5]])
def test_vectorised_equals_loop_with_corrections_and_partial_work(
    sgd: SGDConfig, max_steps: list[int | None] | None
) -> None:
    # Prepare
    model = build_model("cnn", (1, 8, 8), 10, seed=3)
    start = ParamLayout.of(model).flatten(model)
    corr = torch.randn(start.numel(), generator=torch.Generator().manual_seed(4)) * 0.05
    jobs = _jobs(corr, max_steps)

    # Execute
    vec = Trainer(model, sgd, vectorise=True).train(start, jobs)
    loop = Trainer(model, sgd, vectorise=False).train(start, jobs)

    # Assert: the same weights and steps; partial work stops each node at its limit
    for v, ref, job in zip(vec, loop, jobs):
        full = sgd.epochs * -(-len(job.y) // 8)
        assert v.steps == ref.steps == (full if job.max_steps is None else min(full, job.max_steps))
        torch.testing.assert_close(v.delta, ref.delta, atol=1e-5, rtol=0)
        assert v.loss == pytest.approx(ref.loss, abs=1e-5)


def _coord(strategy: str, *, vectorise: bool = True) -> Coordinator:
    pool = NodePool.simulated(6, dataset="digits", partition="dirichlet", alpha=0.1, network="lan", seed=2)
    return Coordinator(
        pool=pool, model="mlp", strategy=strategy, momentum=0.0, vectorise=vectorise, policy="adaptive", batch_size=16
    )


@pytest.mark.parametrize("strategy", ["fednova", "scaffold"])
def test_runs_in_the_vectorised_engine_as_in_the_loop(strategy: str) -> None:
    vec, loop = _coord(strategy), _coord(strategy, vectorise=False)
    vec.run(rounds=3, progress=False)
    loop.run(rounds=3, progress=False)
    assert vec.trainer.engine == "layer-stack" and loop.trainer.engine == "loop"
    torch.testing.assert_close(vec.weights, loop.weights, atol=1e-4, rtol=0)


def test_scaffold_downloads_the_model_and_c() -> None:
    coord = _coord("scaffold")
    rep = coord.step()
    assert rep.bytes_moved == sum(
        2 * coord.layout.nbytes * r.download_attempts + r.upload_bytes * r.upload_attempts for r in rep.nodes
    )


def test_scaffold_control_variates_restore_bit_for_bit(tmp_path: Path) -> None:
    # Prepare
    whole = _coord("scaffold")
    whole.run(rounds=4, progress=False)
    half = _coord("scaffold")
    half.run(rounds=2, progress=False)
    half.save_checkpoint(tmp_path / "s.ckpt")

    # Execute
    resumed = _coord("scaffold")
    resumed.load_state_dict(checkpoint.load(tmp_path / "s.ckpt"))

    # Assert: c and every c_i come back bit for bit, and the run continues as if never stopped
    assert torch.equal(resumed.strategy.c, half.strategy.c)
    assert resumed.strategy.ci.keys() == half.strategy.ci.keys()
    assert all(torch.equal(resumed.strategy.ci[n], v) for n, v in half.strategy.ci.items())
    resumed.run(rounds=2, progress=False)
    assert torch.equal(resumed.weights, whole.weights)
    assert torch.equal(resumed.strategy.c, whole.strategy.c)
    assert dataclasses.asdict(resumed.config) == dataclasses.asdict(whole.config)
