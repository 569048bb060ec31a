"""The Ray backend (issue 9): nodes in actors that hold their shards, same results as in process.

The Ray tests share one local ``ray.init`` (about 20 s here) and need the ``ray`` extra; without
it they are skipped. The first test needs no Ray: it pins down how the coordinator records a node
whose result a backend lost.
"""

from __future__ import annotations

import gc
import types

import pytest
import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.backends import InProcessBackend, Task
from hypergpu_lab.nodes import NodeState
from hypergpu_lab.training import node_seed


class _DropsNode:
    """A backend that loses one node's result, as a dead actor does."""

    def __init__(self, inner: InProcessBackend, lost: int) -> None:
        self.inner, self.lost, self.failures = inner, lost, {}

    def train(self, weights, tasks):
        self.failures = {self.lost: "actor died"}
        return [r for r in self.inner.train(weights, tasks) if r.node != self.lost]

    def close(self) -> None:
        pass


def test_a_result_the_backend_lost_is_a_failed_node_and_the_round_goes_on() -> None:
    pool = NodePool.simulated(4, dataset="digits", network="perfect", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    coord.backend = _DropsNode(InProcessBackend(coord.trainer, pool), lost=2)
    rep = coord.step()
    by_node = {r.node: r for r in rep.nodes}
    assert (by_node[2].status, by_node[2].reason) == ("failed", "backend: actor died")
    assert by_node[2].update_hash is None and by_node[2].upload_attempts == 0
    assert [by_node[n].status for n in (0, 1, 3)] == ["accepted"] * 3
    assert (rep.accepted, rep.failed, rep.status) == (3, 1, "ok")
    assert pool[2].consecutive_failures == 1 and pool[2].total_failures == 1


try:
    import ray
except ImportError:  # the extra is not installed: the Ray tests are skipped, the test above still runs
    ray = None
needs_ray = pytest.mark.skipif(ray is None, reason="needs the 'ray' extra: pip install 'hypergpu-lab[ray]'")


@pytest.fixture(scope="module")
def RayBackend():  # the fixture stands for the class
    """One local Ray for the module's tests (2 CPUs, no dashboard, a small object store), shut down after."""
    from hypergpu_lab.backends.ray import RayBackend

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 2**20)
    yield RayBackend
    if started:
        ray.shutdown()


def _tensors_reachable(root: object) -> list[torch.Tensor]:
    """Every tensor the object graph under ``root`` holds (classes, modules and functions not followed)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
    seen, stack, found = set(), [root], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            found.append(obj)
            continue
        stack.extend(gc.get_referents(obj))
    return found


def _run(pool: NodePool, rounds: int = 3) -> tuple[Coordinator, list]:
    coord = Coordinator(pool=pool, model="mlp")
    return coord, [coord.step() for _ in range(rounds)]


@pytest.mark.ray
@needs_ray
def test_ray_equals_in_process_and_the_driver_holds_no_shards(RayBackend) -> None:
    options = {"dataset": "digits", "partition": "dirichlet", "alpha": 0.5, "network": "mixed", "seed": 0}
    backend = RayBackend(num_actors=2)  # 3 nodes per actor: each actor vectorises over a subset
    pool = NodePool.simulated(6, backend=backend, **options)
    try:
        assert pool.backend is backend and backend.hosted == [[0, 1, 2], [3, 4, 5]]
        # The driver's pool keeps metadata only: no shard, and no tensor but the held-out test set.
        assert all(node.x is None and node.y is None for node in pool)
        held = {t.untyped_storage().data_ptr() for t in _tensors_reachable(pool)}
        assert held <= {pool.x_test.untyped_storage().data_ptr(), pool.y_test.untyped_storage().data_ptr()}

        local = NodePool.simulated(6, **options)
        assert [n.num_samples for n in pool] == [n.num_samples for n in local]
        assert [n.gpu for n in pool] == [n.gpu for n in local]
        ray_coord, ray_reports = _run(pool)
        ref_coord, ref_reports = _run(local)
        assert isinstance(ref_coord.backend, InProcessBackend) and ray_coord.backend is backend
        # Every node's batches come from its own seed, so the same steps run on both sides; an actor
        # batches 3 nodes where the driver batches 6, and batched kernels (BLAS, oneDNN) pick their
        # blocking by shape, so only float32 rounding differs (tests/test_training.py bounds it).
        for a, b in zip(ray_reports, ref_reports):
            assert [(r.node, r.status, r.reason, r.num_samples) for r in a.nodes] == [
                (r.node, r.status, r.reason, r.num_samples) for r in b.nodes
            ]
            for ra, rb in zip(a.nodes, b.nodes):
                assert (ra.loss is None) == (rb.loss is None)
                assert ra.loss is None or ra.loss == pytest.approx(rb.loss, abs=1e-6)
            assert a.t_end == b.t_end  # simulated time depends on samples and FLOPs, not on values
            assert a.test_accuracy == pytest.approx(b.test_accuracy, abs=0.01)
            assert a.test_loss == pytest.approx(b.test_loss, abs=1e-5)
        assert sum(r.accepted for r in ray_reports) >= 12  # mostly delivered, over a mixed network
        torch.testing.assert_close(ray_coord.weights, ref_coord.weights, atol=1e-5, rtol=0)
    finally:
        backend.close()


@pytest.mark.ray
@needs_ray
def test_a_killed_actor_fails_its_nodes_for_the_round_then_restarts_from_the_object_store(RayBackend) -> None:
    backend = RayBackend(num_actors=2)
    pool = NodePool.simulated(6, dataset="digits", network="perfect", seed=1, backend=backend)
    local = NodePool.simulated(6, dataset="digits", network="perfect", seed=1)
    try:
        coord = Coordinator(pool=pool, model="mlp")
        assert coord.step().accepted == 6
        first = ray.get(backend.actor_of(0).pid.remote())
        ray.kill(backend.actor_of(0))  # dies before round 2 reaches it
        rep = coord.step()
        by_node = {r.node: r for r in rep.nodes}
        assert [(by_node[n].status, by_node[n].reason) for n in (0, 1, 2)] == [("failed", "backend: actor died")] * 3
        assert [by_node[n].status for n in (3, 4, 5)] == ["accepted"] * 3
        assert (rep.accepted, rep.failed) == (3, 3) and pool[0].consecutive_failures == 1
        assert backend.restarts == [1, 0]
        # The run goes on: the restarted actor got the same shards back and trains them exactly as in process.
        rep = coord.step()
        assert rep.accepted == 6 and pool[0].consecutive_failures == 0
        assert ray.get(backend.actor_of(0).pid.remote()) != first
        weights = coord.weights.clone()
        tasks = [Task(n, 10, node_seed(coord.seed, 4, n), flip_labels=n == 5) for n in range(6)]
        ref = InProcessBackend(coord.trainer, local).train(weights, tasks)
        got = backend.train(weights, tasks)
        for a, b in zip(got, ref):
            torch.testing.assert_close(a.delta, b.delta, atol=1e-6, rtol=0)
    finally:
        backend.close()


@pytest.mark.ray
@needs_ray
def test_an_actor_killed_mid_round_with_the_crash_policy_marks_its_nodes_crashed(RayBackend) -> None:
    backend = RayBackend(num_actors=2, on_actor_death="crash")
    pool = NodePool.simulated(6, dataset="digits", network="perfect", seed=2, backend=backend)
    try:
        assert backend._shards == [[], []]  # nothing kept for restarts: the actors hold the only copies
        coord = Coordinator(pool=pool, model="mlp")
        victim = backend.actors[1]

        class KillAfterSubmit:  # the round's task is in flight when the actor is killed
            def __init__(self, actor) -> None:
                self.actor, self.train = actor, self

            def remote(self, *args):
                ref = self.actor.train.remote(*args)
                ray.kill(self.actor)
                return ref

        backend.actors[1] = KillAfterSubmit(victim)
        rep = coord.step()
        by_node = {r.node: r for r in rep.nodes}
        if rep.failed:  # the kill normally lands before the task finishes
            assert [(by_node[n].status, by_node[n].reason) for n in (3, 4, 5)] == [
                ("failed", "backend: actor died")
            ] * 3
            assert backend.actors[1] is None
            assert [pool[n].state for n in range(6)] == [NodeState.ONLINE] * 3 + [NodeState.CRASHED] * 3
        else:  # it finished first: the death shows in the next round instead
            backend.actors[1] = victim
            rep = coord.step()
            assert rep.failed == 3 and backend.actors[1] is None
        rep = coord.step()  # the run goes on with the surviving nodes only
        assert rep.selected == 3 and rep.accepted == 3 and {r.node for r in rep.nodes} == {0, 1, 2}
    finally:
        backend.close()


def test_a_local_ray_that_times_out_during_startup_is_started_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray's own 30 s raylet wait fails on a busy machine; one more start is made, other errors are raised."""
    ray_backend = pytest.importorskip("hypergpu_lab.backends.ray")
    calls: list[str] = []

    def init(**_: object) -> None:
        calls.append("init")
        if calls.count("init") == 1:
            raise Exception("The current node timed out during startup. This could happen because ...")

    fake = types.SimpleNamespace(is_initialized=lambda: False, init=init, shutdown=lambda: calls.append("shutdown"))
    monkeypatch.setattr(ray_backend, "ray", fake)
    backend = ray_backend.RayBackend()
    backend._init_ray()
    assert calls == ["init", "shutdown", "init"] and backend._owns_ray

    def broken(**_: object) -> None:
        raise ValueError("bad runtime_env")

    fake.init = broken
    with pytest.raises(ValueError, match="bad runtime_env"):
        ray_backend.RayBackend()._init_ray()
