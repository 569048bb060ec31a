"""Keyed random streams: reproducible by name, independent of what was drawn before, uniform."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hypergpu_lab.streams import stream


def test_a_stream_is_a_function_of_its_name_only() -> None:
    # Prepare: draw from the stream, then from others in between.
    first = stream(7, 1, 3, 4, 1).random(5)
    stream(7, 1, 3, 4, 2).random(1000)
    stream(8, 1, 3, 4, 1).standard_normal(17)
    # Execute
    again = stream(7, 1, 3, 4, 1).random(5)
    # Assert
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize(
    "a, b",
    [
        ((7, 1, 3, 4, 1), (8, 1, 3, 4, 1)),
        ((7, 1, 3, 4, 1), (7, 2, 3, 4, 1)),
        ((7, 1, 3, 4, 1), (7, 1, 4, 3, 1)),
        ((7, 1, 3, 4, 1), (7, 1, 3, 4, 2)),
        ((7, 1, 3, 4, 0), (7, 1, 3, 4)),  # the same counter words, zero-padded: the key still differs
    ],
    ids=["key", "tag", "swapped-words", "last-word", "trailing-zero"],
)
def test_any_change_of_name_gives_another_stream(a: tuple[int, ...], b: tuple[int, ...]) -> None:
    # Execute
    first, second = stream(*a).random(4), stream(*b).random(4)
    # Assert
    assert not np.any(first == second)


def test_more_than_three_words_are_refused() -> None:
    with pytest.raises(ValueError, match="at most 3 words"):
        stream(0, 1, 1, 2, 3, 4)


def test_threads_do_not_disturb_each_other() -> None:
    # Prepare: the reference draws, single-threaded.
    expected = {t: stream(t, 5).random(2000) for t in range(4)}
    got: dict[int, np.ndarray] = {}

    def work(t: int) -> None:
        out = []
        for i in range(2000):  # re-key on every draw, while the other threads do the same
            out.append(stream(t, 5).random(i + 1)[i])
        got[t] = np.array(out)

    # Execute
    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # Assert
    for t in range(4):
        np.testing.assert_array_equal(got[t], expected[t])


def test_first_draws_across_neighbouring_streams_are_uniform() -> None:
    """The lab uses a stream's first few draws (a transfer's jitter and loss), so those must be uniform across names."""
    # Execute: the first draw of 20,000 streams that differ only in their round word.
    u = np.array([stream(0, 9, r, 3, 1).random() for r in range(20_000)])
    # Assert: chi-square over 20 equal bins against its analytic distribution (19 dof: mean 19, sd ~6.2),
    # and the mean within 5 standard errors of 1/2 (sd of U(0,1) is 1/sqrt(12)).
    counts = np.histogram(u, bins=20, range=(0.0, 1.0))[0]
    chi2 = float(((counts - 1000) ** 2 / 1000).sum())
    assert chi2 < 19 + 5 * np.sqrt(2 * 19)
    assert abs(u.mean() - 0.5) < 5 / np.sqrt(12 * len(u))
    # Neighbouring streams are uncorrelated: lag-1 correlation within 5 standard errors of 0.
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / np.sqrt(len(u))
