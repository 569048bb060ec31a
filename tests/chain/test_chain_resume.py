"""Resume keeps the chain: Coordinator.restore(chain=...), and `hypergpu-lab run --resume` with chain options.

A run that records on a chain owes every round to it. Killed and resumed, it must send what was
pending and record nothing twice; resumed without a chain, it must refuse unless told to; the
coordinator's key comes from the environment, never from the command line or the output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REPO, REWARD

from hypergpu_lab import Coordinator, NodePool
from hypergpu_lab.chain import ChainClient
from hypergpu_lab.chain.outbox import FILENAME, Outbox, read_session
from hypergpu_lab.cli import CHAIN_KEY_ENV, CHAIN_RPC_ENV, main
from hypergpu_lab.runs import RunFolder

CONFIG = {
    "name": "chained",
    "rounds": 9,
    "pool": {"num_nodes": 6, "dataset": "digits", "network": "lan", "seed": 0},
    "train": {"model": "mlp", "checkpoint_every": 3},
}


def _config(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "run.json"
    path.write_text(json.dumps({**CONFIG, **changes}))
    return path


def _acks_of_current_session(outbox: Path) -> list[int]:
    """Rounds acknowledged since the outbox's last "session" line, in order (a round twice = sent twice)."""
    acks: list[int] = []
    for line in outbox.read_text().splitlines():
        entry = json.loads(line)
        if entry["op"] == "session":
            acks = []
        elif entry["op"] == "ack":
            acks.append(entry["round"])
    return acks


# -- in process: Coordinator.restore(..., chain=...) --------------------------------------------------
def test_restore_with_a_chain_sends_what_was_pending_and_records_nothing_twice(chain, tmp_path) -> None:
    # Prepare: 4 rounds, checkpoint every 3; two rounds reach the chain, then the process "dies".
    pool = NodePool.simulated(6, dataset="digits", network="lan", seed=0)
    folder = RunFolder.create(tmp_path, "r", {})
    options = {"reward_per_round": REWARD, "background": False}
    coord = Coordinator(
        pool=pool, model="mlp", checkpoint_every=3, run_dir=folder, run_id="r", chain=chain, chain_options=options
    )
    coord.step(), coord.step()
    coord.recorder.flush()
    coord.step(), coord.step()  # rounds 3 (checkpointed) and 4 queued, never sent
    coord.recorder.close(flush=False)
    session = coord.recorder.session_id

    # Execute: restore from round 3 (rounds 4.. replayed), run to 6.
    resumed = Coordinator.restore(folder.path, chain=chain, chain_options=options)
    assert resumed.round == 3 and resumed.recorder.session_id == session
    resumed.run(until=6, progress=False)
    status = resumed.recorder.close()

    # Assert: rounds 1-6, each once, in the one session; what was paid is what the chain credits.
    assert (status.pending, status.sent, status.failed) == (0, 6, 0)
    assert [h.round for h in chain.history(session)] == [1, 2, 3, 4, 5, 6]
    assert resumed.recorder.paid_by_node() == {n: chain.claimable(n) for n in range(6)}


def test_restore_without_a_chain_has_no_recorder(tmp_path) -> None:
    pool = NodePool.simulated(4, dataset="digits", network="lan", seed=0)
    folder = RunFolder.create(tmp_path, "r", {})
    Coordinator(pool=pool, model="mlp", checkpoint_every=1, run_dir=folder, run_id="r").run(rounds=1, progress=False)
    assert Coordinator.restore(folder.path).recorder is None


# -- the command line --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chained_folder(tmp_path_factory) -> Path:
    """A 3-round CLI run on the embedded chain, in a run folder (outbox and checkpoints in it)."""
    tmp = tmp_path_factory.mktemp("cli")
    cfg = _config(tmp, rounds=3)
    assert main(["run", "--config", str(cfg), "--out", str(tmp / "out"), "--chain", "embedded", "--no-progress"]) == 0
    return tmp


def test_resume_without_a_chain_is_refused_and_says_how(chained_folder, capsys) -> None:
    args = ["run", "--config", str(chained_folder / "run.json"), "--out", str(chained_folder / "out"), "--resume"]
    assert main([*args, "--rounds", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--chain embedded" in err and "--chain-rpc" in err and "--no-chain" in err and FILENAME in err
    assert RunFolder.open(chained_folder / "out" / "chained").read_metrics()[-1]["round"] == 3  # nothing ran


def test_resume_with_no_chain_runs_and_says_the_rounds_are_not_recorded(tmp_path, chained_folder, capsys) -> None:
    import shutil

    shutil.copytree(chained_folder / "out", tmp_path / "out")
    args = ["run", "--config", str(chained_folder / "run.json"), "--out", str(tmp_path / "out"), "--resume"]
    assert main([*args, "--rounds", "4", "--no-chain", "--no-progress"]) == 0
    assert "not recorded" in capsys.readouterr().err
    assert Outbox(tmp_path / "out" / "chained" / FILENAME).counts()["sent"] == 3  # untouched


def test_the_key_is_never_an_argument_and_never_shown(tmp_path, monkeypatch, capsys) -> None:
    cfg = str(_config(tmp_path, rounds=1))
    # No option takes a key.
    with pytest.raises(SystemExit) as exc:
        main(["run", "--config", cfg, "--chain-rpc", "http://127.0.0.1:1", "--chain-key", "0x" + "11" * 32])
    assert exc.value.code == 2
    capsys.readouterr()
    # No key in the environment: the variable is named.
    monkeypatch.delenv(CHAIN_KEY_ENV, raising=False)
    assert main(["run", "--config", cfg, "--chain-rpc", "http://127.0.0.1:1", "--no-progress"]) == 2
    assert CHAIN_KEY_ENV in capsys.readouterr().err
    # A malformed key is refused without being echoed.
    bad = "0x" + "zz" * 31 + "a1b2c3d4"
    monkeypatch.setenv(CHAIN_KEY_ENV, bad)
    assert main(["run", "--config", cfg, "--chain-rpc", "http://127.0.0.1:1", "--no-progress"]) == 2
    out = capsys.readouterr()
    assert CHAIN_KEY_ENV in out.err and "a1b2c3d4" not in out.err + out.out
    # A good key and a dead node: refused naming the node, the key's text nowhere; the URL's secret neither.
    key = "0x" + "4f" * 32
    monkeypatch.setenv(CHAIN_KEY_ENV, key)
    monkeypatch.setenv(CHAIN_RPC_ENV, "http://127.0.0.1:1/v3/SECRET-API-KEY")
    assert main(["run", "--config", cfg, "--chain-rpc", "--no-progress"]) == 2
    out = capsys.readouterr()
    assert "--chain-rpc" in out.err and "127.0.0.1:1" in out.err
    assert "4f4f4f4f" not in out.err + out.out and "SECRET-API-KEY" not in out.err + out.out


def test_chain_reward_is_checked(tmp_path, capsys) -> None:
    cfg = str(_config(tmp_path, rounds=1))
    assert main(["run", "--config", cfg, "--chain", "embedded", "--chain-reward", "-1", "--no-progress"]) == 2
    assert "--chain-reward" in capsys.readouterr().err


# -- killed with SIGKILL and resumed from the command line ---------------------------------------------
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "hypergpu_lab.cli", "run", *args, "--no-progress"]


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **extra,
    }


def _kill_after(proc: subprocess.Popen, outbox: Path, acked: int) -> None:
    """SIGKILL ``proc`` once ``acked`` rounds are acknowledged in ``outbox`` (rounds are still being trained)."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if outbox.exists() and outbox.read_text().count('"op":"ack"') >= acked:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"


@pytest.mark.slow
def test_killed_chain_run_resumed_from_the_cli_records_every_round_once_on_ganache(ganache_node, tmp_path) -> None:
    # Prepare: the key only in the environment; a run that checkpoints every 3 rounds.
    cfg = _config(tmp_path, rounds=12)
    env = _env(**{CHAIN_KEY_ENV: ganache_node.private_key})
    out = tmp_path / "out"
    outbox = out / "chained" / FILENAME
    proc = subprocess.Popen(
        _cli("--config", str(cfg), "--out", str(out), "--chain-rpc", ganache_node.url),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    # Execute: kill -9 mid-run (rounds recorded, others pending or not trained yet), then resume.
    _kill_after(proc, outbox, acked=4)
    killed_out = proc.stdout.read() + proc.stderr.read()
    proc.stdout.close()
    proc.stderr.close()
    refused = subprocess.run(
        _cli("--config", str(cfg), "--out", str(out), "--resume"), env=env, capture_output=True, text=True, timeout=300
    )
    resumed = subprocess.run(
        _cli("--config", str(cfg), "--out", str(out), "--resume", "--chain-rpc", ganache_node.url),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Assert: refused without a chain; resumed, every round 1-12 in one RoundRecorded event and funded once,
    # in the session the run opened, on the contracts it deployed; the key never printed.
    assert refused.returncode == 2 and "--no-chain" in refused.stderr
    assert resumed.returncode == 0, resumed.stderr
    assert "12 rounds recorded" in resumed.stdout and "0 pending, 0 parked" in resumed.stdout
    session = read_session(outbox)
    assert session.get("previous") is None  # the same session, not a new one
    chain = ChainClient(ganache_node.url, private_key=ganache_node.private_key, deployment=session["contracts"])
    from eth_utils import event_abi_to_log_topic

    event = next(e for e in chain.tracker.abi if e["type"] == "event" and e["name"] == "RoundRecorded")
    raw = chain.w3.eth.get_logs(
        {
            "address": chain.deployment.tracker,
            "fromBlock": 0,
            "toBlock": "latest",
            "topics": ["0x" + event_abi_to_log_topic(event).hex()],  # every session, not only the run's
        }
    )
    recorded = [chain.tracker.events.RoundRecorded().process_log(entry)["args"]["round"] for entry in raw]
    assert sorted(recorded) == list(range(1, 13))  # no round twice, none missing, in any session
    funded = chain.distributor.events.RoundFunded.get_logs(from_block=0)
    assert sorted(e["args"]["round"] for e in funded) == list(range(1, 13))
    assert [h.round for h in chain.history(session["session_id"])] == list(range(1, 13))
    key_hex = ganache_node.private_key.removeprefix("0x")
    for text in (killed_out.decode(), refused.stdout, refused.stderr, resumed.stdout, resumed.stderr):
        assert key_hex not in text


@pytest.mark.slow
def test_killed_embedded_chain_run_resumed_loses_no_round(tmp_path) -> None:
    # The embedded chain ends with its process: the resumed run meets a fresh chain at the same addresses.
    cfg = _config(tmp_path, rounds=10)
    out = tmp_path / "out"
    outbox = out / "chained" / FILENAME
    proc = subprocess.Popen(
        _cli("--config", str(cfg), "--out", str(out), "--chain", "embedded"),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _kill_after(proc, outbox, acked=4)
    before = read_session(outbox)["session_id"]

    resumed = subprocess.run(
        _cli("--config", str(cfg), "--out", str(out), "--resume", "--chain", "embedded"),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )

    # Assert: a new session on the new chain holds every round 1-10, each acknowledged once.
    assert resumed.returncode == 0, resumed.stderr
    assert "10 rounds recorded" in resumed.stdout and "0 pending, 0 parked" in resumed.stdout
    session = read_session(outbox)
    assert session["session_id"] != before and session["previous"] == before
    assert sorted(_acks_of_current_session(outbox)) == list(range(1, 11))
    reopened = Outbox(outbox)
    assert reopened.counts() == {"pending": 0, "sent": 10, "failed": 0}
    reopened.close()
