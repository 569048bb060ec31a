"""The contribution measures (contribution/): Shapley and leave-one-out against brute-force oracles."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.contribution import CoalitionValue, exact_shapley, make_scorer, robust_agreement, validation_rows
from hypergpu_lab.contribution.agreement import NETWORK_UP_TO, coordinate_median
from hypergpu_lab.contribution.coalitions import fedavg_weights
from hypergpu_lab.contribution.shapley import LeaveOneOutScorer, ShapleyScorer, _prefix_masks, informative
from hypergpu_lab.errors import ConfigError


def _permutation_shapley(v: dict[frozenset[int], float], n: int) -> list[float]:
    """The definition: mean marginal contribution over all n! orders (the oracle)."""
    phi = [0.0] * n
    orders = list(itertools.permutations(range(n)))
    for order in orders:
        seen: frozenset[int] = frozenset()
        for i in order:
            phi[i] += v[seen | {i}] - v[seen]
            seen = seen | {i}
    return [p / len(orders) for p in phi]


def test_exact_shapley_over_masks_equals_the_permutation_definition() -> None:
    rng = np.random.default_rng(0)
    n = 5
    values = torch.tensor(rng.normal(size=2**n))
    v = {frozenset(i for i in range(n) if m >> i & 1): float(values[m]) for m in range(2**n)}
    assert exact_shapley(values, n) == pytest.approx(_permutation_shapley(v, n), abs=1e-12)


@pytest.fixture(scope="module")
def round_inputs() -> tuple[Coordinator, torch.Tensor, list[int]]:
    pool = NodePool.simulated(8, dataset="digits", partition="dirichlet", alpha=0.5, network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    g = torch.Generator().manual_seed(1)
    deltas = 0.05 * torch.randn(8, coord.layout.size, generator=g)
    deltas[3] = -deltas[3] * 10  # one harmful update
    return coord, deltas, [n.num_samples for n in pool]


def _value(coord: Coordinator, metric: str = "loss") -> CoalitionValue:
    return CoalitionValue(coord.trainer.coalition_logits, coord.pool.x_test, coord.pool.y_test, metric=metric)


def test_coalition_values_are_the_fedavg_models_evaluated_one_by_one(round_inputs) -> None:
    coord, deltas, samples = round_inputs
    masks = torch.tensor([[True] * 8, [False] * 8, [i % 3 == 0 for i in range(8)]])
    got = _value(coord, "accuracy")(coord.weights, deltas, torch.tensor(samples, dtype=torch.float64), masks)
    for row, mask in zip(got.tolist(), masks):
        w = torch.tensor(samples, dtype=torch.float32) * mask
        model = coord.weights + (w / w.sum() if w.sum() else w) @ deltas
        expected = float(
            (coord.trainer.logits(model, coord.pool.x_test).argmax(1) == coord.pool.y_test).double().mean()
        )
        assert row == pytest.approx(expected, abs=1e-12)


def test_sampled_shapley_is_efficient_deterministic_and_close_to_exact(round_inputs) -> None:
    coord, deltas, samples = round_inputs
    value = _value(coord)
    ends = value(
        coord.weights, deltas, torch.tensor(samples, dtype=torch.float64), torch.tensor([[False] * 8, [True] * 8])
    )
    exact = ShapleyScorer(value, exact_up_to=8)(1, coord.weights, deltas, samples)
    sampled = ShapleyScorer(value, permutations=64, exact_up_to=0, seed=5)
    phi = sampled(1, coord.weights, deltas, samples)
    assert sum(phi) == pytest.approx(float(ends[1] - ends[0]), abs=1e-6)  # efficiency holds per permutation
    assert sum(exact) == pytest.approx(float(ends[1] - ends[0]), abs=1e-6)  # other batch shapes: float32 rounding
    assert phi == sampled(1, coord.weights, deltas, samples)  # seeded permutations
    assert phi != sampled(2, coord.weights, deltas, samples)  # a new round draws new ones
    assert int(np.argmin(phi)) == int(np.argmin(exact)) == 3  # the harmful update is worth least
    assert np.corrcoef(phi, exact)[0, 1] > 0.9


def test_leave_one_out_is_the_value_lost_without_each_update(round_inputs) -> None:
    coord, deltas, samples = round_inputs
    value = _value(coord)
    w = torch.tensor(samples, dtype=torch.float64)
    full = float(value(coord.weights, deltas, w, torch.ones(1, 8, dtype=torch.bool))[0])
    loo = LeaveOneOutScorer(value)(1, coord.weights, deltas, samples)
    for i in (0, 3):
        mask = torch.ones(1, 8, dtype=torch.bool)
        mask[0, i] = False
        assert loo[i] == pytest.approx(
            full - float(value(coord.weights, deltas, w, mask)[0]), abs=1e-6
        )  # batch-shape rounding


def test_a_round_that_tells_nobody_apart_gets_no_values(round_inputs) -> None:
    coord, deltas, samples = round_inputs
    scorer = ShapleyScorer(_value(coord), round_tolerance=math.inf)
    assert scorer(1, coord.weights, deltas, samples) is None  # no values: the chain scores by agreement
    assert informative([-0.2, 0.0, -1e-9]) is None  # nobody helped: None rather than a round that pays nobody
    assert informative([-0.2, 1e-9]) == [-0.2, 1e-9]


class _Counted:
    """A real CoalitionValue that records how many coalition models each call evaluates."""

    def __init__(self, value: CoalitionValue) -> None:
        self.value, self.calls = value, []

    def __call__(self, origin, deltas, samples, masks):  # type: ignore[no-untyped-def]
        self.calls.append(len(masks))
        return self.value(origin, deltas, samples, masks)


def _round_move(coord: Coordinator, deltas: torch.Tensor, samples: list[int], value: CoalitionValue) -> float:
    """|v(full) - v(empty)| as the scorer's own two-coalition call sees it."""
    ends = value(
        coord.weights, deltas, torch.tensor(samples, dtype=torch.float64), torch.tensor([[False] * 8, [True] * 8])
    )
    return abs(float(ends[1] - ends[0]))


@pytest.mark.parametrize("exact_up_to", [8, 6])  # all 256 coalitions; 2 permutations' prefixes
def test_a_round_within_the_tolerance_stops_after_the_empty_and_full_coalitions(round_inputs, exact_up_to) -> None:
    coord, deltas, samples = round_inputs
    counted = _Counted(_value(coord, "accuracy"))  # values in steps of 1/rows: the same in any batch
    move = _round_move(coord, deltas, samples, counted.value)
    assert move > 0
    scorer = ShapleyScorer(counted, exact_up_to=exact_up_to, round_tolerance=move)  # moved by exactly the tolerance
    assert scorer(1, coord.weights, deltas, samples) is None  # the chain pays the round by agreement
    assert counted.calls == [2]  # two coalition models, nothing else


@pytest.mark.parametrize("exact_up_to", [8, 6])
def test_a_round_above_the_tolerance_gets_the_values_of_one_batched_call(round_inputs, exact_up_to) -> None:
    # The loss metric: a 2-row batch rounds float32 differently, so reusing the first call's ends would show here.
    coord, deltas, samples = round_inputs
    counted = _Counted(_value(coord))
    move = _round_move(coord, deltas, samples, counted.value)
    once = ShapleyScorer(counted, exact_up_to=exact_up_to)(1, coord.weights, deltas, samples)
    (single,) = counted.calls  # tolerance 0: one batched call of every coalition the round needs
    assert single == 256 if exact_up_to == 8 else 2 < single <= 2 + 2 * 7
    counted.calls.clear()
    checked = ShapleyScorer(counted, exact_up_to=exact_up_to, round_tolerance=move / 2)(
        1, coord.weights, deltas, samples
    )
    assert checked == once  # the same floats
    assert counted.calls == [2, single]


def test_the_round_tolerance_must_be_a_finite_number_at_least_zero() -> None:
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    for bad in (-0.01, math.nan, math.inf, "0.1", True):
        with pytest.raises(ConfigError, match="round_tolerance"):
            coord.score_contributions("shapley", round_tolerance=bad)
    coord.score_contributions("shapley", round_tolerance=1 / 180)
    assert coord.scorer.round_tolerance == 1 / 180


def test_records_carry_the_contribution_under_every_strategy() -> None:
    # The value reconstructs FedAvg coalitions from the round's updates: the strategy does not move it.
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    seen = []
    for strategy in ("fedavg", "median", "fedadam"):
        coord = Coordinator(pool=pool, model="mlp", strategy=strategy, contribution="shapley")
        values = [r.contribution for r in coord.step().nodes]
        assert all(v is not None and math.isfinite(v) for v in values)
        seen.append(values)
    assert seen[0] == seen[1] == seen[2]
    plain = Coordinator(pool=pool, model="mlp").step()
    assert all(r.contribution is None for r in plain.nodes)  # off unless asked for or a chain records


def test_bad_contribution_settings_name_the_field() -> None:
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    with pytest.raises(ConfigError, match="contribution"):
        Coordinator(pool=pool, model="mlp", contribution="banzhaf")
    coord = Coordinator(pool=pool, model="mlp")
    with pytest.raises(ConfigError, match="contribution_options"):
        coord.score_contributions("shapley", samples=3)
    with pytest.raises(ConfigError, match="metric"):
        make_scorer(
            "loo", {"metric": "f1"}, logits=coord.trainer.coalition_logits, x=pool.x_test, y=pool.y_test, seed=0
        )


@pytest.mark.parametrize(
    "n",
    [1, 2, 3, 4, 7, 10, NETWORK_UP_TO, NETWORK_UP_TO + 1, 25, 399, 400, 401],
)
def test_the_gates_median_selects_the_same_values_as_before_and_as_numpy(n: int) -> None:
    # Both ways (a selection network up to NETWORK_UP_TO rows, a sort of the columns above) select the
    # middle values np.partition selects.
    rng = np.random.default_rng(n)
    rows = rng.normal(size=(n, 301))
    rows[:, :100] = np.round(rows[:, :100] * 2) / 2  # ties
    part = np.partition(rows, sorted({(n - 1) // 2, n // 2}), axis=0)  # the gate's median before the network
    before = part[n // 2] if n % 2 else (part[n // 2 - 1] + part[n // 2]) / 2
    got = coordinate_median(rows)
    # Selected, not computed: the same values; only an exact zero's sign may differ (min/max of 0.0 and -0.0).
    assert np.array_equal(got, before) and got[got != 0].tobytes() == before[before != 0].tobytes()
    assert np.array_equal(got, np.median(rows, axis=0))


def test_agreement_is_the_cosine_with_the_median_times_the_squared_norm_ratio() -> None:
    rng = np.random.default_rng(0)
    honest = rng.normal(size=(7, 50)) + 3.0
    stacked = torch.tensor(np.vstack([honest, -honest[0], 10 * honest[1], np.zeros(50)]), dtype=torch.float32)
    steps = [1, 2, 1, 1, 3, 1, 1, 1, 1, 1]
    rows = stacked.double().numpy() / np.array(steps, dtype=np.float64)[:, None]
    m = np.median(rows, axis=0)
    got = robust_agreement(stacked, steps)
    for i, u in enumerate(rows):
        nu, nm = np.linalg.norm(u), np.linalg.norm(m)
        expected = 0.0 if nu == 0 else u @ m / (nu * nm) * min(nu / nm, nm / nu) ** 2
        assert got[i] == pytest.approx(expected, abs=1e-12)
    assert got[7] < 0 < got[8] < 0.02 and got[9] == 0.0  # sign flip, 10x scale, free rider


@pytest.mark.parametrize("n", [NETWORK_UP_TO + 1, 40, 41])
@pytest.mark.parametrize("equal_steps", [True, False])
def test_many_rows_agreement_equals_the_float64_oracle(n: int, equal_steps: bool) -> None:
    # Prepare: more rows than the selection network takes; float32 updates with ties and exact zeros
    # (as digits' zero pixels give), some NaN-free attackers; equal steps select among float32 rows.
    rng = np.random.default_rng(n)
    honest = rng.normal(size=(n - 3, 700)) + 1.0
    honest[:, :200] = 0.0
    honest[:, 200:300] = np.round(honest[:, 200:300] * 2) / 2
    stacked = torch.tensor(np.vstack([honest, -honest[0], 10 * honest[1], np.zeros(700)]), dtype=torch.float32)
    steps = [5] * n if equal_steps else rng.integers(1, 6, size=n).tolist()
    rows = stacked.double().numpy() / np.array(steps, dtype=np.float64)[:, None]
    m = np.median(rows, axis=0)
    nm = np.linalg.norm(m)
    # Execute
    got = robust_agreement(stacked, steps)
    # Check: the paper-free oracle, each row against the float64 median of the scaled rows.
    for i, u in enumerate(rows):
        nu = np.linalg.norm(u)
        expected = 0.0 if nu == 0 else u @ m / (nu * nm) * min(nu / nm, nm / nu) ** 2
        assert got[i] == pytest.approx(expected, abs=1e-12)
    assert got[n - 3] < 0 < got[n - 2] < 0.02 and got[n - 1] == 0.0


def test_a_cnn_rounds_shapley_values_are_those_of_the_coalition_models_forward() -> None:
    # Prepare: a real CNN round's updates (10 nodes), captured where the coordinator scores them.
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="lan", seed=0)
    coord = Coordinator(pool=pool, model="cnn")
    coord.score_contributions("shapley")
    seen = []
    scorer = coord.scorer
    coord.scorer = lambda *args: seen.append(args) or scorer(*args)  # type: ignore[func-returns-value]
    coord.run(rounds=2, progress=False)
    _, origin, deltas, samples = seen[-1]

    def plain(o: torch.Tensor, d: torch.Tensor, c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return coord.trainer.batched_logits(torch.addmm(o.unsqueeze(0), c, d), x)  # every model in full

    for metric, tol in (("loss", 1e-6), ("accuracy", 0.0)):
        new = ShapleyScorer(CoalitionValue(coord.trainer.coalition_logits, pool.x_test, pool.y_test, metric=metric))
        old = ShapleyScorer(CoalitionValue(plain, pool.x_test, pool.y_test, metric=metric))
        # Execute
        got, expected = new(2, origin, deltas, samples), old(2, origin, deltas, samples)
        # Assert: loss values agree to float32 summation order; accuracies (argmax) exactly.
        assert got is not None and expected is not None
        assert got == pytest.approx(expected, abs=tol, rel=0)


def _previous_prefix_masks(perms: list[np.ndarray], n: int) -> tuple[np.ndarray, dict[int, int]]:
    """The prefix masks as the scorer built them before (the oracle): coalition bitmasks as Python ints, in a
    dict in order of first appearance, the empty and full coalitions first."""
    rows = {0: 0, (1 << n) - 1: 1}
    for p in perms:
        m = 0
        for node in p[:-1]:
            m |= 1 << int(node)
            rows.setdefault(m, len(rows))
    return np.array([[(key >> i) & 1 for i in range(n)] for key in rows], dtype=bool), rows


@pytest.mark.parametrize("n, pairs", [(1, 1), (2, 1), (3, 3), (4, 8), (10, 1), (10, 4), (70, 1), (70, 2)])
def test_prefix_masks_are_each_permutations_prefixes_once_in_order_of_first_appearance(n: int, pairs: int) -> None:
    # Prepare: antithetic pairs as the scorer draws them; small n with several pairs repeats prefixes,
    # and 70 nodes is past the 63 that int64 bitmasks held (the previous way raised OverflowError there).
    rng = np.random.default_rng(n * 100 + pairs)
    perms = []
    for _ in range(pairs):
        p = rng.permutation(n)
        perms += [p, p[::-1]]
    # Execute
    masks, rows = _prefix_masks(np.stack(perms))
    # Assert: the same rows in the same order, and each permutation's chain of prefixes points at them.
    expected, index = _previous_prefix_masks(perms, n)
    assert masks.dtype == bool and np.array_equal(masks, expected)
    for q, p in enumerate(perms):
        m = 0
        assert rows[q, 0] == 0
        for j, node in enumerate(p, 1):
            m |= 1 << int(node)
            assert rows[q, j] == index[m]


def test_fedavg_weights_are_the_torch_formulas_bit_for_bit() -> None:
    # Oracle: the coefficients as CoalitionValue computed them in torch before (float64, then float32).
    rng = np.random.default_rng(0)
    masks = rng.random((40, 9)) < 0.4
    masks[0], masks[1] = False, True  # the empty and the full coalition
    samples = rng.integers(1, 5000, size=9).astype(np.float64)
    weights = torch.from_numpy(masks).to(torch.float64) * torch.from_numpy(samples)
    total = weights.sum(1, keepdim=True)
    expected = torch.where(total > 0, weights / total.clamp(min=1e-300), 0.0)
    got = fedavg_weights(masks, samples)
    assert np.array_equal(got, expected.numpy())
    assert np.array_equal(got.astype(np.float32), expected.to(torch.float32).numpy())


def test_accuracy_from_transposed_logits_is_argmax_accuracy_with_ties_and_nan() -> None:
    # Prepare: logits [K, n, C] as the flat path returns them (a transposed view), with ties, NaN and inf.
    g = torch.Generator().manual_seed(0)
    storage = torch.round(torch.randn(7, 10, 50, generator=g) * 2) / 2  # [K, C, n]: many ties
    storage[0, 3, 5] = storage[1, 7, 9] = storage[1, 2, 9] = float("nan")
    storage[2, :, 4] = float("inf")
    logits = storage.transpose(1, 2)
    y = torch.randint(0, 10, (50,), generator=g)
    value = CoalitionValue(lambda *args: logits, torch.zeros(50, 1), y)
    # Execute and assert: the first maximum (NaN first) as argmax picks it, and the mean as float64 gives it.
    expected = (logits.contiguous().argmax(-1) == y).to(torch.float64).mean(1)
    assert torch.equal(value._score(logits), expected)
    assert torch.equal(value._score(logits.contiguous()), expected)


def test_the_gate_gives_the_previous_formulas_values_bit_for_bit() -> None:
    # Oracle: robust_agreement as written before (astype then divide in place; np.linalg.norm).
    g = torch.Generator().manual_seed(3)
    stacked = torch.randn(10, 6570, generator=g) * 0.01
    stacked[4] *= -1.0
    steps = [11, 7, 21, 9, 11, 23, 19, 10, 18, 18]
    for st in (steps, None):
        rows = stacked.numpy().astype(np.float64)
        if st is not None:
            rows /= np.maximum(np.asarray(st, dtype=np.float64), 1.0)[:, None]
        ref = coordinate_median(rows)
        ref_norm = math.sqrt(float(np.add.reduce(ref * ref)))
        norms, dots = np.linalg.norm(rows, axis=1), rows @ ref
        expected = {
            i: d / (u * ref_norm) * min(u / ref_norm, ref_norm / u) ** 2 for i, (u, d) in enumerate(zip(norms, dots))
        }
        assert robust_agreement(stacked, st) == expected


@pytest.fixture(scope="module")
def scored_rounds() -> tuple[Coordinator, list[tuple]]:
    """Real rounds of 10 MLP nodes (20 coalitions each), captured where the coordinator scores them."""
    pool = NodePool.simulated(10, dataset="digits", partition="dirichlet", alpha=0.5, network="lan", seed=0)
    coord = Coordinator(pool=pool, model="mlp")
    coord.score_contributions("shapley")
    seen, scorer = [], coord.scorer
    coord.scorer = lambda *args: seen.append(args) or scorer(*args)  # type: ignore[func-returns-value]
    coord.run(rounds=4, progress=False)
    coord.scorer = scorer
    return coord, seen


def _one_by_one(coord: Coordinator, origin: torch.Tensor, deltas: torch.Tensor, samples: list[int]):  # type: ignore[no-untyped-def]
    """v(S) of each coalition's FedAvg model built and evaluated on its own, on the scorer's validation rows."""
    rows = validation_rows(len(coord.pool.y_test), len(coord.pool.y_test) // 2, coord.seed)
    x, y = coord.pool.x_test[rows], coord.pool.y_test[rows]
    cache: dict[frozenset[int], float] = {}

    def v(members: frozenset[int]) -> float:
        if members not in cache:
            w = torch.tensor([s if i in members else 0 for i, s in enumerate(samples)], dtype=torch.float64)
            model = origin + ((w / w.sum()).to(torch.float32) @ deltas if members else 0.0)
            cache[members] = float((coord.trainer.logits(model, x).argmax(1) == y).to(torch.float64).mean())
        return cache[members]

    return v


def test_a_rounds_shapley_values_are_those_of_each_coalition_model_on_its_own(scored_rounds) -> None:
    # Oracle: the straightforward path: each coalition of the scorer's own seeded permutations built as
    # FedAvg weights, evaluated one model at a time, marginal contributions summed in permutation order.
    coord, seen = scored_rounds
    for round_, origin, deltas, samples in seen:
        v = _one_by_one(coord, origin, deltas, samples)
        perms = coord.scorer._permutations(round_, len(samples))
        phi = [0.0] * len(samples)
        for p in perms:
            members: frozenset[int] = frozenset()
            for node in p:
                phi[int(node)] += v(members | {int(node)}) - v(members)
                members |= {int(node)}
        expected = informative([x / len(perms) for x in phi])
        assert coord.scorer(round_, origin, deltas, samples) == expected  # the same floats


def test_leave_one_out_and_exact_values_are_those_of_each_coalition_model_on_its_own(scored_rounds) -> None:
    coord, seen = scored_rounds
    round_, origin, deltas, samples = seen[-1]
    v = _one_by_one(coord, origin, deltas, samples)
    value = coord.scorer.value
    everyone = frozenset(range(10))
    loo = LeaveOneOutScorer(value)(round_, origin, deltas, samples)
    assert loo == informative([v(everyone) - v(everyone - {i}) for i in range(10)])
    # Exact over the first 6 updates: all 64 coalitions, against the definition over all 720 orders.
    six = samples[:6]
    v6 = _one_by_one(coord, origin, deltas[:6], six)
    got = ShapleyScorer(value, exact_up_to=6)(round_, origin, deltas[:6], six)
    table = {frozenset(s): v6(frozenset(s)) for k in range(7) for s in itertools.combinations(range(6), k)}
    assert got == pytest.approx(informative(_permutation_shapley(table, 6)), abs=1e-12)


def test_a_round_of_70_updates_is_scored(round_inputs) -> None:
    # More updates than an int64 bitmask holds: the sampled path keeps working and stays efficient.
    coord, deltas, samples = round_inputs
    g = torch.Generator().manual_seed(7)
    many = 0.05 * torch.randn(70, coord.layout.size, generator=g)
    counts = [int(c) for c in torch.randint(5, 50, (70,), generator=g)]
    value = _value(coord, "accuracy")
    phi = ShapleyScorer(value)(1, coord.weights, many, counts)
    ends = value(
        coord.weights, many, torch.tensor(counts, dtype=torch.float64), torch.tensor([[False] * 70, [True] * 70])
    )
    assert phi is not None and len(phi) == 70
    assert sum(phi) == pytest.approx(float(ends[1] - ends[0]), abs=1e-9)
