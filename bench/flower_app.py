"""The Flower side of ``python -m bench flower``: a ServerApp and a ClientApp for the same workload.

Flower's Ray backend runs each ClientApp in a Ray actor, a separate process that
imports this module by name, so the apps live here at module level, the way
Flower's own quickstarts write them. Everything a client trains on comes from
hypergpu_lab itself, so both sides see the same bytes:

* data: ``load_dataset("digits", seed=0)`` and ``partition(labels, 10, "iid", seed=0)``, loaded once
  by the driver, which writes each shard to its own ``.npz`` file (:func:`export_shards`), as each
  client of a real federation holds its own data on disk; supernode ``partition-id`` i loads shard
  i, exactly the rows of the lab's node i (so Ray's actor processes need not import scikit-learn
  and load the whole dataset each, which would only slow Flower down);
* model: ``build_model("mlp", ...)``, the 64-32-10 MLP with seed-0 initial weights;
* local training: plain ``torch.optim.SGD`` (lr 0.1, no momentum), batch 32, 5 epochs,
  over the batch order the lab's nodes use (``epoch_orders(node_seed(seed, round, node))``),
  which is the lab's per-node reference engine line for line;
* evaluation: the server evaluates the global model on the same held-out test set
  after every round (no client-side evaluation, as on the lab's side).

The server thread runs in the process that calls ``run_simulation``; it records a
``time.perf_counter()`` stamp and the test accuracy after each round in
:data:`ROUND_ENDS` and :data:`ACCURACY`, which ``bench.flower`` reads back.
"""

from __future__ import annotations

import os
import time
from functools import cache
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from torch import nn

from hypergpu_lab.data import load_dataset
from hypergpu_lab.models import ParamLayout, build_model
from hypergpu_lab.partition import partition
from hypergpu_lab.training import epoch_orders, node_seed

from .sidebyside import BATCH, EPOCHS, LR, ROUNDS, SEED

NODES = 10
INPUT_SHAPE, NUM_CLASSES = (1, 8, 8), 10  # digits; bench.flower checks them against the lab's pool
#: Environment variable naming the folder of the exported shards.
DATA_ENV = "HYPERGPU_BENCH_FLOWER_DATA"

#: perf_counter() when the server finished round r (after aggregation and evaluation); 0 = before round 1.
ROUND_ENDS: dict[int, float] = {}
#: Test accuracy of the global model after round r.
ACCURACY: dict[int, float] = {}
#: The final global model as one flat float32 vector (the lab's ParamLayout order).
FINAL: list[torch.Tensor] = []
#: torch threads of the client processes (the weighted mean over the clients of the last round).
CLIENT_THREADS: list[float] = []


@cache
def dataset():  # type: ignore[no-untyped-def]
    """The digits train/test split, loaded once per process (server and every Ray actor)."""
    return load_dataset("digits", seed=SEED)


def export_shards(folder: str | os.PathLike[str]) -> None:
    """Write node i's rows of the IID split to ``folder/node{i}.npz`` and point the clients there.

    The clients run in Ray actor processes, which inherit this process's environment.
    """
    data = dataset()
    for i, idx in enumerate(partition(data.y_train.numpy(), NODES, "iid", seed=SEED)):
        np.savez(
            Path(folder) / f"node{i}.npz",
            x=data.x_train[torch.as_tensor(idx)].numpy(),
            y=data.y_train[torch.as_tensor(idx)].numpy(),
        )
    os.environ[DATA_ENV] = str(folder)


@cache
def shard(node: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Node ``node``'s own data, as :func:`export_shards` wrote it."""
    with np.load(Path(os.environ[DATA_ENV]) / f"node{node}.npz") as f:
        return torch.from_numpy(f["x"]), torch.from_numpy(f["y"])


def new_model(input_shape: tuple[int, ...] = INPUT_SHAPE) -> nn.Module:
    return build_model("mlp", input_shape, NUM_CLASSES, seed=SEED)


def evaluate_model(model: nn.Module) -> float:
    """Test accuracy on the held-out set, as ``Coordinator.evaluate`` computes it."""
    data = dataset()
    model.eval()
    with torch.no_grad():
        return int((model(data.x_test).argmax(1) == data.y_test).sum()) / len(data.y_test)


# -- ClientApp ------------------------------------------------------------------------------------
client_app = ClientApp()


@client_app.train()
def train(msg: Message, context: Context) -> Message:
    node = int(context.node_config["partition-id"])
    server_round = int(msg.content["config"]["server-round"])
    lr = float(msg.content["config"]["lr"])
    batch = int(msg.content["config"]["batch-size"])
    x, y = shard(node)
    model = new_model(tuple(x.shape[1:]))
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0)
    total, steps = 0.0, 0
    for order in epoch_orders(node_seed(SEED, server_round, node), len(y), EPOCHS):
        perm = torch.from_numpy(order)
        for s in range(0, len(y), batch):
            idx = perm[s : s + batch]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total, steps = total + loss.item(), steps + 1
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord(
                {"train_loss": total / max(steps, 1), "num-examples": len(y), "torch-threads": torch.get_num_threads()}
            ),
        }
    )
    return Message(content=content, reply_to=msg)


# -- ServerApp ------------------------------------------------------------------------------------
server_app = ServerApp()


def _central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
    if server_round == 0:  # Flower also evaluates the initial model; the lab does not, so skip it
        ROUND_ENDS[0] = time.perf_counter()
        return None
    model = new_model()
    model.load_state_dict(arrays.to_torch_state_dict())
    acc = evaluate_model(model)
    ACCURACY[server_round] = acc
    if server_round == ROUNDS:
        FINAL.append(ParamLayout.of(model).flatten(model))
    ROUND_ENDS[server_round] = time.perf_counter()
    return MetricRecord({"accuracy": acc})


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    strategy = FedAvg(fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=NODES, min_available_nodes=NODES)
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(new_model().state_dict()),
        num_rounds=ROUNDS,
        train_config=ConfigRecord({"lr": LR, "batch-size": BATCH}),
        evaluate_fn=_central_evaluate,
    )
    CLIENT_THREADS.append(float(result.train_metrics_clientapp[ROUNDS]["torch-threads"]))
