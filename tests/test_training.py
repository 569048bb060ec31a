"""The vectorised engine against its oracle, the per-node torch.optim.SGD loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hypergpu_lab import training
from hypergpu_lab.errors import ConfigError
from hypergpu_lab.models import ParamLayout, build_model, measure_cost
from hypergpu_lab.training import Job, SGDConfig, Trainer, can_vectorise, node_seed


def _jobs(sizes: list[int], batch_sizes: list[int], shape: tuple[int, ...], seed: int = 0) -> list[Job]:
    gen = torch.Generator().manual_seed(seed)
    return [
        Job(
            i,
            torch.randn(n, *shape, generator=gen),
            torch.randint(0, 10, (n,), generator=gen),
            b,
            node_seed(seed, 1, i),
        )
        for i, (n, b) in enumerate(zip(sizes, batch_sizes))
    ]


class _TanhNet(nn.Module):
    """Not a plain layer chain (Tanh, average pooling, a skip): the vectorised engine runs it under vmap."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.avg_pool2d(torch.tanh(self.conv(x)) + x, 2)
        return self.fc(h.flatten(1))


@pytest.mark.parametrize(
    "model_name, shape, engine",
    [
        ("mlp", (1, 8, 8), "layer-stack"),
        ("cnn", (1, 8, 8), "layer-stack"),
        ("cnn", (3, 12, 12), "layer-stack"),
        ("tanh-net", (1, 8, 8), "vmap"),
    ],
)
@pytest.mark.parametrize(
    "sgd",
    [
        SGDConfig(lr=0.1),
        SGDConfig(lr=0.05, momentum=0.9, weight_decay=1e-3, epochs=2),
        SGDConfig(lr=0.05, momentum=0.5, prox_mu=0.5, epochs=2),
    ],
)
def test_vectorised_equals_per_node_loop(model_name: str, shape: tuple[int, ...], engine: str, sgd: SGDConfig) -> None:
    # Prepare: unequal shards (partial last batches, nodes finishing early) and two batch sizes.
    model = _TanhNet() if model_name == "tanh-net" else build_model(model_name, shape, 10, seed=3)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([1, 7, 23, 40, 64], [10, 10, 8, 10, 8], shape)

    # Execute
    trainer = Trainer(model, sgd, vectorise=True)
    vec = trainer.train(start, jobs)
    loop = Trainer(model, sgd, vectorise=False).train(start, jobs)
    assert trainer.engine == engine

    # Assert: same weights within 1e-5, same losses and step counts, in job order.
    for v, ref, job in zip(vec, loop, jobs):
        assert v.node == ref.node == job.node
        assert v.steps == ref.steps == sgd.epochs * -(-len(job.y) // job.batch_size)
        assert v.num_samples == len(job.y)
        torch.testing.assert_close(v.delta, ref.delta, atol=1e-5, rtol=0)
        assert v.loss == pytest.approx(ref.loss, abs=1e-5)
        assert float(v.delta.abs().max()) > 0


def test_group_chunking_by_memory_budget_changes_nothing() -> None:
    # Prepare: a budget so small that every node trains in its own group.
    model = build_model("cnn", (1, 8, 8), 10, seed=0)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([12, 30, 5], [4, 4, 4], (1, 8, 8))

    # Execute
    together = Trainer(model, SGDConfig()).train(start, jobs)
    apart = Trainer(model, SGDConfig(), memory_budget_bytes=1.0).train(start, jobs)

    # Assert
    for a, b in zip(together, apart):
        torch.testing.assert_close(a.delta, b.delta, atol=1e-6, rtol=0)


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "tanh-net"])
def test_batches_gathered_per_step_or_per_epoch_give_the_same_bits(
    model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Prepare: uneven shards (padded windows, nodes finishing early) and momentum.
    model = _TanhNet() if model_name == "tanh-net" else build_model(model_name, (1, 8, 8), 10, seed=1)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([3, 17, 40], [8, 8, 8], (1, 8, 8))
    sgd = SGDConfig(lr=0.05, momentum=0.9, epochs=2)

    # Execute: the epoch's batches gathered at once (small), then a cap that forces a gather per step.
    whole = Trainer(model, sgd).train(start, jobs)
    monkeypatch.setattr(training, "_EPOCH_GATHER_BYTES", 0)
    per_step = Trainer(model, sgd).train(start, jobs)

    # Assert
    for a, b in zip(whole, per_step):
        assert torch.equal(a.delta, b.delta) and a.loss == b.loss and a.steps == b.steps


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_result_of_a_node_does_not_depend_on_its_group(model_name: str) -> None:
    # Prepare: groups of different sizes and widths (the last steps are padded to the widest node left).
    model = build_model(model_name, (1, 8, 8), 10, seed=0)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([20, 33, 9, 47, 12], [5] * 5, (1, 8, 8))

    # Execute: every node alone, in pairs, and all together.
    together = Trainer(model, SGDConfig(momentum=0.9)).train(start, jobs)
    pairs = [r for i in range(0, 5, 2) for r in Trainer(model, SGDConfig(momentum=0.9)).train(start, jobs[i : i + 2])]
    alone = [Trainer(model, SGDConfig(momentum=0.9)).train(start, [j])[0] for j in jobs]

    # Assert: the same batches and steps; only float32 rounding differs, since batched kernels (BLAS, oneDNN)
    # choose their blocking by shape. This bounds how far a Ray actor's subset may drift from in-process.
    for t, p, a in zip(together, pairs, alone):
        torch.testing.assert_close(t.delta, p.delta, atol=1e-6, rtol=0)
        torch.testing.assert_close(t.delta, a.delta, atol=1e-6, rtol=0)
        assert t.loss == pytest.approx(p.loss, abs=1e-6) and t.loss == pytest.approx(a.loss, abs=1e-6)
        assert t.steps == p.steps == a.steps


class _BNNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_batchnorm_model_falls_back_to_the_loop_and_trains() -> None:
    # Prepare
    model = _BNNet()
    layout = ParamLayout.of(model)
    start = layout.flatten(model)
    jobs = _jobs([32, 20], [8, 8], (1, 8, 8))

    # Execute
    trainer = Trainer(model, SGDConfig())
    results = trainer.train(start, jobs)

    # Assert: the loop engine ran; running statistics (float buffers) travel in the flat vector.
    assert not can_vectorise(model) and not trainer.vectorise
    assert "net.2.running_mean" in layout.names
    assert all(float(r.delta.abs().max()) > 0 for r in results)
    with pytest.raises(ConfigError, match="vectorise"):
        Trainer(model, SGDConfig(), vectorise=True)


def test_fedprox_term_pulls_towards_the_global_model() -> None:
    # Prepare: the same jobs with and without the proximal term.
    model = build_model("mlp", (1, 8, 8), 10, seed=0)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([50, 80], [5, 5], (1, 8, 8))

    # Execute
    plain = Trainer(model, SGDConfig(lr=0.1, epochs=3)).train(start, jobs)
    prox = Trainer(model, SGDConfig(lr=0.1, epochs=3, prox_mu=1.0)).train(start, jobs)

    # Assert: mu/2 ||w - w_t||^2 shrinks every node's drift from the global model.
    for a, b in zip(plain, prox):
        assert b.update_norm < a.update_norm


def test_sgd_config_rejects_bad_values() -> None:
    for kwargs, field in [
        ({"prox_mu": -1.0}, "prox_mu"),
        ({"lr": 0}, "lr"),
        ({"momentum": 1.0}, "momentum"),
        ({"weight_decay": -1}, "weight_decay"),
        ({"epochs": 0}, "local_epochs"),
    ]:
        with pytest.raises(ConfigError, match=field):
            SGDConfig(**kwargs)


def test_node_seed_depends_on_run_round_and_node_only() -> None:
    seeds = {node_seed(s, r, n) for s in range(3) for r in range(3) for n in range(3)}
    assert len(seeds) == 27
    assert node_seed(1, 2, 3) == node_seed(1, 2, 3)
    assert 0 <= node_seed(2**31, 10**6, 10**5) < 2**63


def test_flat_layout_round_trip_and_cost_figures() -> None:
    # Prepare
    model = build_model("mlp", (1, 8, 8), 10, seed=0)
    layout = ParamLayout.of(model)

    # Execute
    flat = layout.flatten(model)
    other = build_model("mlp", (1, 8, 8), 10, seed=1)
    layout.load_into(other, flat)
    cost = measure_cost(model, (1, 8, 8), 10)

    # Assert: 64-32-10 MLP on 8x8 inputs.
    params = 64 * 64 + 64 + 64 * 32 + 32 + 32 * 10 + 10
    assert layout.size == params and layout.nbytes == 4 * params
    torch.testing.assert_close(layout.flatten(other), flat)
    # forward 2*MACs, backward 2x forward (input and weight grads; first layer's input grad is skipped)
    macs = 64 * 64 + 64 * 32 + 32 * 10
    assert 2 * macs * 2 <= cost.train_flops_per_sample <= 2 * macs * 3
    assert cost.param_bytes == 4 * params
    assert np.isclose(cost.activation_bytes_per_sample, 4 * (64 + 64 + 64 + 32 + 32 + 10))


def test_build_model_errors_and_custom_modules() -> None:
    with pytest.raises(ConfigError, match="model"):
        build_model("resnet", (1, 8, 8), 10)
    with pytest.raises(ConfigError, match="mlp"):
        build_model("cnn", (60,), 10)
    custom = nn.Linear(3, 2)
    assert build_model(custom, (3,), 2) is custom
    # Seeded init leaves the caller's global RNG alone.
    state = torch.random.get_rng_state()
    a, b = build_model("cnn", (1, 8, 8), 10, seed=5), build_model("cnn", (1, 8, 8), 10, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.testing.assert_close(ParamLayout.of(a).flatten(a), ParamLayout.of(b).flatten(b), atol=0, rtol=0)


@pytest.mark.parametrize("name, shape", [("mlp", (1, 8, 8)), ("cnn", (1, 8, 8)), ("cnn", (3, 32, 32)), ("mlp", (60,))])
def test_direct_flop_count_equals_torchs_flop_counter(name: str, shape: tuple[int, ...]) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, shape, 10)
    counter = FlopCounterMode(display=False)
    with counter:
        torch.nn.functional.cross_entropy(model(torch.zeros(2, *shape)), torch.zeros(2, dtype=torch.long)).backward()
    assert measure_cost(model, shape, 10).train_flops_per_sample == counter.get_total_flops() / 2


def test_device_auto_resolves_and_a_missing_cuda_is_a_clear_error() -> None:
    from hypergpu_lab.training import resolve_device

    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_engine_matches_the_cpu_engine() -> None:
    model = build_model("cnn", (1, 8, 8), 10, seed=0)
    start = ParamLayout.of(model).flatten(model)
    jobs = _jobs([12, 30, 5], [4, 4, 4], (1, 8, 8))
    cpu = Trainer(model, SGDConfig(momentum=0.9)).train(start, jobs)
    gpu = Trainer(model, SGDConfig(momentum=0.9), device="cuda").train(start, jobs)
    for a, b in zip(cpu, gpu):
        assert b.delta.device.type == "cpu"
        torch.testing.assert_close(a.delta, b.delta, atol=1e-4, rtol=1e-3)


def test_layer_stack_matches_the_loop_on_real_digits_with_tied_pixels() -> None:
    # Prepare: digits pixels are small integers, so max-pool windows hold exact ties; both engines must pick
    # the same maximum (the first in the window), or gradients would differ.
    from hypergpu_lab import NodePool

    pool = NodePool.simulated(4, dataset="digits", partition="iid", seed=0)
    model = build_model("cnn", pool.input_shape, pool.num_classes, seed=0)
    start = ParamLayout.of(model).flatten(model)
    jobs = [Job(n.id, n.x, n.y, 16, node_seed(0, 1, n.id)) for n in pool]
    sgd = SGDConfig(lr=0.05, momentum=0.9)

    # Execute
    vec = Trainer(model, sgd).train(start, jobs)
    loop = Trainer(model, sgd, vectorise=False).train(start, jobs)

    # Assert
    for v, ref in zip(vec, loop):
        torch.testing.assert_close(v.delta, ref.delta, atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
@pytest.mark.parametrize(
    "sgd", [SGDConfig(lr=0.1), SGDConfig(lr=0.05, momentum=0.9, weight_decay=1e-3, prox_mu=0.1, epochs=2)]
)
def test_reused_buffers_give_identical_results_and_leak_nothing_between_calls(model_name: str, sgd: SGDConfig) -> None:
    # Prepare: two different rounds' jobs (unequal shards, one stopping early) on one trainer
    model = build_model(model_name, (1, 8, 8), 10, seed=1)
    start = ParamLayout.of(model).flatten(model)
    first = _jobs([3, 17, 40, 9], [8, 8, 8, 8], (1, 8, 8), seed=1)
    first[1] = Job(first[1].node, first[1].x, first[1].y, 8, first[1].seed, max_steps=2)
    second = _jobs([50, 2, 31, 64, 12, 5], [8, 8, 8, 8, 8, 8], (1, 8, 8), seed=2)
    trainer = Trainer(model, sgd, vectorise=True)

    # Execute
    a = trainer.train(start, first)
    kept = [r.delta.clone() for r in a]
    b = trainer.train(start + 0.01, second)
    buffer = trainer._buffers.get("grad", (1, start.numel()))  # grown to the larger round's K
    again = trainer.train(start, first)
    fresh = Trainer(model, sgd, vectorise=True).train(start, first)

    # Assert: the same bits as a fresh engine; the first call's deltas untouched by the later calls;
    # the gradient buffer stays the same memory once grown and no result points into it
    for x, y in zip(again, fresh):
        assert torch.equal(x.delta, y.delta) and x.loss == y.loss and x.steps == y.steps
    assert all(torch.equal(r.delta, k) for r, k in zip(a, kept))
    assert trainer._buffers.get("grad", (1, start.numel())).data_ptr() == buffer.data_ptr()
    scratch = {t.untyped_storage().data_ptr() for t in trainer._buffers._flat.values()}
    assert all(r.delta.untyped_storage().data_ptr() not in scratch for r in a + b + again)
