"""Command line: ``hypergpu-lab run | demo | dashboard | serve | replay | presets | summary | compare | export``.

Bad input exits with status 2 and one line that names the field, the value and
what is accepted; nothing is half-written (run folders appear whole, and only
after everything that can refuse the configuration has run).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import checks, logs
from .config import PRESETS, RunConfig, preset
from .errors import CheckpointError, ConfigError, DataNotFoundError
from .ui.jupyter import notebooks_dir, voila_command  # no widgets: the dashboard's command line

log = logging.getLogger("hypergpu_lab.cli")

CHAIN_KEY_ENV = "HYPERGPU_LAB_CHAIN_KEY"  # the coordinator's private key for --chain-rpc
CHAIN_RPC_ENV = "HYPERGPU_LAB_CHAIN_RPC"  # the RPC URL when --chain-rpc is given without one
CHAIN_NODE_SEED_ENV = "HYPERGPU_LAB_CHAIN_NODE_SEED"  # secret seed of the node accounts on a real chain
CHAIN_FLUSH_S = 120.0  # how long a finished run waits for its pending rounds to reach the chain


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hypergpu-lab", description="Network-aware federated training lab.")
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    p.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines as text or JSON objects")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train a configured run headless")
    src = run.add_mutually_exclusive_group()
    src.add_argument("--preset", default=None, help="one of: " + ", ".join(PRESETS) + " (default quickstart)")
    src.add_argument("--config", type=Path, help="a RunConfig as .json, .yaml or .yml")
    run.add_argument("--rounds", type=int, help="total rounds (overrides the config)")
    run.add_argument("--seed", type=int, help="seed for data, network and training (overrides the config)")
    run.add_argument("--name", help="run name = folder name under --out (default: the config's name)")
    run.add_argument("--out", type=Path, help="parent folder for the run folder (metrics, checkpoints)")
    run.add_argument("--resume", action="store_true", help="continue the run in --out/NAME from its last checkpoint")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    chain = run.add_mutually_exclusive_group()
    chain.add_argument(
        "--chain",
        choices=["embedded"],
        help="record contributions and pay rewards on an in-process chain (py-evm; it ends with the process)",
    )
    chain.add_argument(
        "--chain-rpc",
        nargs="?",
        const="",
        metavar="URL",
        help=f"record on a JSON-RPC node; the coordinator's private key is read from ${CHAIN_KEY_ENV} (never "
        f"an argument); without URL the URL is read from ${CHAIN_RPC_ENV} (for URLs that carry an API key)",
    )
    chain.add_argument(
        "--no-chain",
        action="store_true",
        help="resume a run that recorded on a chain without recording the rounds that follow",
    )
    run.add_argument(
        "--chain-reward",
        type=int,
        default=10**18,
        metavar="UNITS",
        help="token base units paid per recorded round, split by contribution (default 10**18: one token)",
    )

    demo = sub.add_parser("demo", help="the quickstart run on embedded defaults, with a result table")
    demo.add_argument("--rounds", type=int, default=20)
    demo.add_argument("--no-progress", action="store_true")

    dash = sub.add_parser("dashboard", help="serve the monitoring dashboard with Voila on 127.0.0.1")
    dash.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    dash.add_argument("--notebook", type=Path, help="notebook to serve (default: notebooks/dashboard.ipynb)")
    dash.add_argument(
        "--cull-idle-s",
        type=int,
        default=300,
        help="shut down a closed page's kernel after this many idle seconds (default 300)",
    )

    serve = sub.add_parser("serve", help="serve a run folder: its run, steered by commands (the dashboard starts this)")
    serve.add_argument("folder", type=Path, help="a run folder made by the dashboard (config.json, service.json)")

    replay = sub.add_parser("replay", help="re-run a run folder's config + command log; check the final weights")
    replay.add_argument("folder", type=Path, help="a run folder served by 'hypergpu-lab serve'")

    sub.add_parser("presets", help="list the presets")

    summary = sub.add_parser("summary", help="one line per run folder, and totals across them")
    summary.add_argument("runs", nargs="+", type=Path, help="run folders, or folders holding run folders")
    summary.add_argument("--target", type=float, default=0.9, help="accuracy for 'sim s to target' (default 0.9)")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")

    cmp = sub.add_parser("compare", help="runs side by side, keyed by folder (shared names never merge)")
    cmp.add_argument("runs", nargs="+", type=Path, help="two or more run folders")
    cmp.add_argument("--target", type=float, default=0.9, help="accuracy for 'sim s to target' (default 0.9)")
    cmp.add_argument("--json", action="store_true", help="print the table and the accuracy curves as JSON")

    exp = sub.add_parser("export", help="a run folder as a ZIP: model, config, metrics, summary and log")
    exp.add_argument("run", type=Path, help="the run folder")
    exp.add_argument("--to", type=Path, default=Path("."), help="folder for the ZIP (default: here)")
    exp.add_argument("--name", help="ZIP name (default: the run folder's name); kept readable and in --to")
    exp.add_argument("--force", action="store_true", help="replace an existing ZIP of that name")
    return p


def _config(args: argparse.Namespace) -> RunConfig:
    cfg = RunConfig.from_file(args.config) if args.config else preset(args.preset or "quickstart")
    return with_overrides(cfg, rounds=args.rounds, seed=args.seed, name=args.name)


def with_overrides(
    cfg: RunConfig, *, rounds: int | None = None, seed: int | None = None, name: str | None = None
) -> RunConfig:
    """``cfg`` with the command line's --rounds, --seed and --name (None: keep), validated again."""
    data = cfg.to_dict()
    if rounds is not None:
        data["rounds"] = rounds
    if seed is not None:
        data["pool"]["seed"] = seed
    if name is not None:
        data["name"] = name
    return RunConfig.from_dict(data)


def _run(args: argparse.Namespace) -> int:
    """Validate everything, build the coordinator, and only then create (or reopen) the run folder."""
    from . import checkpoint
    from .coordinator import Coordinator
    from .runs import RunFolder, safe_child

    out = checks.writable_folder("--out", args.out) if args.out is not None else None
    cfg = _config(args)
    folder = None
    if args.resume:
        if out is None:
            raise ConfigError("--resume", True, "used together with --out (the parent of the run folder)")
        folder = RunFolder.open(safe_child(out, cfg.name))
        cfg = RunConfig.from_dict({**folder.read_config(), **({"rounds": args.rounds} if args.rounds else {})})
        ledger, chain_options = _chain(args, folder)
        if checkpoint.latest_valid(folder.checkpoints) is not None:
            coord = Coordinator.restore(folder.path, chain=ledger, chain_options=chain_options)
        elif checkpoint.list_checkpoints(folder.checkpoints) or folder.read_metrics():
            # Restarting from round 0 would truncate the recorded rounds: refuse, change nothing.
            raise CheckpointError(
                f"--resume: no readable checkpoint in {folder.checkpoints} "
                f"({len(checkpoint.list_checkpoints(folder.checkpoints))} found, none verifies) for the "
                f"{len(folder.read_metrics())} recorded rounds; nothing was changed. Accepted: a run folder "
                "with a valid checkpoint (or start again under another --name)"
            )
        else:  # created but never reached a round: start it
            coord = Coordinator.from_config(cfg, run_dir=folder)
            coord.attach_chain(ledger, chain_options)
    else:
        if out is not None and safe_child(out, cfg.name).exists():
            RunFolder.create(out, cfg.name, {})  # raises the "already exists, pass --resume" error
        coord = Coordinator.from_config(cfg)  # missing data fails here, before a run folder exists
        ledger, chain_options = _chain(args, None)  # a bad chain option refuses before the folder exists
        if out is not None:
            folder = RunFolder.create(out, cfg.name, cfg.to_dict())
            coord.attach_run_folder(folder)
        coord.attach_chain(ledger, chain_options)  # after the folder: its outbox lives there
    start = time.perf_counter()
    with folder.logging(fmt=logs.formatter(args.log_format)) if folder is not None else contextlib.nullcontext():
        log.info("run %s: rounds %d to %d", cfg.name, coord.round + 1, max(cfg.rounds, coord.round))
        try:
            history = coord.run(until=max(cfg.rounds, coord.round), progress=not args.no_progress)
        finally:  # what is pending goes to the chain even when the run failed
            chain_code, chain_line = _close_chain(coord, args)
        log.info("run %s: %s at round %d (%s)", cfg.name, coord.status.value, coord.round, coord.control.detail)
    _print_result(history, time.perf_counter() - start, folder.path if folder else None)
    if chain_line:
        print(chain_line)
    return _exit_code(coord) or chain_code


def _chain(args: argparse.Namespace, folder: Any) -> tuple[Any, dict[str, Any] | None]:
    """The ledger ``run`` records on (None without one) and the recorder's options.

    A run folder with a chain outbox is a run whose rounds are owed to a chain: resuming it without a
    chain would leave the rest unrecorded and unpaid, so that takes an explicit ``--no-chain``.
    """

    from .chain.outbox import FILENAME, read_session
    from .chain.rewards import check_reward

    outbox = folder.path / FILENAME if folder is not None else None
    known = read_session(outbox) if outbox is not None else None
    if args.chain is None and args.chain_rpc is None:
        if args.resume and known is not None and not args.no_chain:
            raise ConfigError(
                "--chain",
                None,
                f"--chain embedded, or --chain-rpc URL with the key in ${CHAIN_KEY_ENV}: this run records on a "
                f"chain ({outbox} feeds session {known.get('session_id')} on chain {known.get('chain_id')})",
                "or --no-chain to resume without recording the rounds that follow",
            )
        return None, None
    options = {"reward_per_round": check_reward(args.chain_reward, "--chain-reward") or None}
    try:
        from .chain import ChainClient, ChainError, NodeAccounts, Signer
    except ImportError as exc:
        raise ConfigError("--chain", args.chain or "rpc", "the chain extras: pip install -e '.[chain]'") from exc
    if args.chain == "embedded":
        return ChainClient.embedded(), options

    from .chain.redact import redact_url

    url = args.chain_rpc or os.environ.get(CHAIN_RPC_ENV, "")
    if not url:
        raise ConfigError("--chain-rpc", None, f"a JSON-RPC URL, given or in ${CHAIN_RPC_ENV}")
    key = os.environ.get(CHAIN_KEY_ENV, "")
    if not key:
        raise ConfigError(f"${CHAIN_KEY_ENV}", None, "the coordinator's private key (0x + 64 hex) in this variable")
    try:
        signer = Signer(key)  # held from here on; the text of the key goes no further
    except ValueError:
        raise ConfigError(f"${CHAIN_KEY_ENV}", "(set; not shown)", "a secp256k1 private key: 0x + 64 hex") from None
    del key
    seed = os.environ.get(CHAIN_NODE_SEED_ENV)
    accounts = NodeAccounts(seed=seed) if seed else None
    contracts = (known or {}).get("contracts") if args.resume else None
    try:
        if contracts:  # attach to what the run recorded on, so every round lands once in one place
            try:
                return ChainClient(url, private_key=signer, deployment=contracts, accounts=accounts), options
            except ChainError as exc:
                log.warning("the run's contracts are not on this chain (%s); deploying new ones", exc)
        return ChainClient(url, private_key=signer, accounts=accounts), options
    except ChainError as exc:
        raise ConfigError("--chain-rpc", redact_url(url), f"a reachable JSON-RPC node ({exc})") from None


def _close_chain(coord: Any, args: argparse.Namespace) -> tuple[int, str]:
    """Wait for the pending rounds to reach the chain; (75 when some are still pending, else 0; a summary)."""
    recorder = getattr(coord, "recorder", None)
    if recorder is None:
        if args.no_chain:
            print("hypergpu-lab: --no-chain: the rounds of this run were not recorded on a chain", file=sys.stderr)
        return 0, ""
    status = recorder.close(timeout=CHAIN_FLUSH_S)
    info = recorder.ledger.describe()
    where = "the embedded chain (it ends with this process)" if args.chain == "embedded" else info.endpoint
    line = (
        f"chain: {status.sent} rounds recorded in session {status.session_id} on {where}, chain id "
        f"{info.chain_id}, tracker {recorder.ledger.tracker_address}; {status.pending} pending, {status.failed} parked"
    )
    if status.failed:
        print(f"hypergpu-lab: {status.failed} rounds parked: {recorder.failures()}", file=sys.stderr)
    if status.pending:
        print(
            f"hypergpu-lab: {status.pending} rounds not yet on the chain ({status.last_error}); they stay in the "
            f"run folder's outbox: run again with --resume and the same chain to send them",
            file=sys.stderr,
        )
        return 75, line
    return 0, line


def _expand_runs(paths: list[Path]) -> list[Path]:
    """Run folders as given, plus the run folders inside any folder that is not one itself."""
    from .analytics import run_folders

    found: list[Path] = []
    for path in paths:
        if (path / "config.json").is_file():
            found.append(path)
        elif path.is_dir() and (inner := run_folders(path)):
            found.extend(inner)
        else:
            raise ConfigError("runs", str(path), "a run folder (with config.json) or a folder holding run folders")
    return found


def _target(value: float) -> float:
    return checks.number("--target", value, 0, 1)


def _summary(args: argparse.Namespace) -> int:
    from .analytics import format_table, run_labels, summarize_folder, totals

    target = _target(args.target)
    runs = _expand_runs(args.runs)
    summaries = [summarize_folder(p, target=target) for p in runs]
    labelled = [dataclasses.replace(s, name=label) for s, label in zip(summaries, run_labels(runs))]
    rows = [s.row() for s in labelled] + [totals(labelled)]
    if args.json:
        print(json.dumps({"runs": [dataclasses.asdict(s) for s in labelled], "total": rows[-1]}, indent=2))
    else:
        print(format_table(rows))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .analytics import compare, format_table

    target = _target(args.target)
    runs = _expand_runs(args.runs)
    if len(runs) < 2:
        raise ConfigError("runs", [str(p) for p in args.runs], "two or more run folders")
    table, curves = compare(runs, target=target)
    print(json.dumps({"table": table, "curves": curves}, indent=2) if args.json else format_table(table))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_run

    dest = checks.writable_folder("--to", args.to)
    path = export_run(args.run, dest, args.name, force=args.force)
    print(f"wrote {path}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .coordinator import Coordinator

    cfg = preset("quickstart", rounds=args.rounds)
    print(
        f"HyperGPU Lab demo: {cfg.pool.num_nodes} simulated GPU nodes, {cfg.pool.dataset} "
        f"({cfg.pool.partition} alpha={cfg.pool.alpha}), '{cfg.pool.network}' network, "
        f"{cfg.train.model} + {cfg.train.strategy}, {cfg.rounds} rounds"
    )
    start = time.perf_counter()
    coord = Coordinator.from_config(cfg)
    print("nodes:")
    for node in coord.pool:
        link = coord.pool.network.links[node.id]
        print(
            f"  node {node.id:>3}  {node.gpu.name:<18} {link.profile.name:<9} {link.base_latency_ms:7.1f} ms  "
            f"{node.num_samples:>5} samples"
        )
    history = coord.run(rounds=cfg.rounds, progress=not args.no_progress)
    _print_result(history, time.perf_counter() - start, None)
    return _exit_code(coord)


def _exit_code(coord: Any) -> int:
    """0 for a finished run; a stopped (Ctrl-C) or waiting run says why on stderr and exits non-zero."""
    from .run_control import RunState

    state = coord.control.state
    if state is RunState.FINISHED:
        return 0
    print(f"hypergpu-lab: run {state.value}: {coord.control.detail}", file=sys.stderr)
    return 130 if state is RunState.STOPPED else 75  # 75: EX_TEMPFAIL, try again when nodes return


def _dashboard(args: argparse.Namespace) -> int:
    import subprocess

    if not 1 <= args.port <= 65535:
        raise ConfigError("--port", args.port, "an integer in [1, 65535]")
    if args.cull_idle_s < 1:
        raise ConfigError("--cull-idle-s", args.cull_idle_s, "an integer >= 1")
    notebook = args.notebook or notebooks_dir() / "dashboard.ipynb"
    if not Path(notebook).is_file():
        raise ConfigError("--notebook", str(notebook), "an existing .ipynb file")
    try:
        import voila  # noqa: F401
    except ImportError:
        raise ConfigError("dashboard", "voila not installed", "pip install -e '.[ui]'") from None
    print(f"HyperGPU Lab dashboard: open http://127.0.0.1:{args.port}/ (Ctrl+C stops the server)", flush=True)
    return subprocess.call(voila_command(Path(notebook), args.port, args.cull_idle_s), cwd=Path(notebook).parent)


def _serve(args: argparse.Namespace) -> int:
    from .run_control import RunState
    from .service import RunService

    state = RunService(args.folder).serve()
    return 0 if state in (RunState.FINISHED, RunState.STOPPED) else 1


def _replay(args: argparse.Namespace) -> int:
    import json

    from .service import replay, weights_hash

    coord = replay(args.folder)
    got = weights_hash(coord)
    final = args.folder / "final.json"
    want = json.loads(final.read_text(encoding="utf-8"))["weights_sha256"] if final.is_file() else None
    print(f"replayed {coord.round} rounds of {args.folder}: weights sha256 {got}")
    if want is None:
        print("the run has not finished (no final.json): nothing to compare with")
        return 0
    if got != want:
        print(f"DIFFERENT final weights: the run recorded {want}")
        return 1
    print("same final weights as the recorded run")
    return 0


def _print_result(history, wall: float, folder: Path | None) -> None:  # type: ignore[no-untyped-def]
    print(history.table(every=1 if len(history) <= 25 else 5))
    final = history.final
    if final is not None:
        acc = final["test_accuracy"]
        eps = f"; epsilon {final['epsilon']:.3f} spent" if final.get("epsilon") is not None else ""
        print(
            f"\nfinal test accuracy {acc:.3f} after {final['round']} rounds; "
            f"{final['t_end']:.1f} simulated s, {wall:.1f} wall s{eps}"
            if acc is not None
            else ""
        )
    if folder is not None:
        print(f"run folder: {folder}")


def _configure_logging(verbose: bool, kind: str) -> None:
    """A stderr handler at WARNING (INFO with -v), text or JSON; added once, and only if none is set up.

    The handler, not the logger, holds the level: a run folder's log (``RunFolder.logging``) still
    gets INFO lines while the terminal shows warnings only.
    """
    root = logging.getLogger()
    if root.handlers:  # an embedding application (or pytest) already decides where logs go
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO if verbose else logging.WARNING)
    handler.setFormatter(logs.formatter(kind))
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _configure_logging(args.verbose, args.log_format)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "dashboard":
            return _dashboard(args)
        if args.command == "serve":
            return _serve(args)
        if args.command == "replay":
            return _replay(args)
        if args.command in ("summary", "compare", "export"):
            return {"summary": _summary, "compare": _compare, "export": _export}[args.command](args)
        for name, data in PRESETS.items():
            print(
                f"{name:<14} {data['pool']['num_nodes']:>5} nodes  {data['pool']['dataset']:<10} "
                f"{data['pool'].get('partition', 'natural'):<10} network={data['pool']['network']}"
            )
        return 0
    except (ConfigError, DataNotFoundError, CheckpointError) as exc:
        print(f"hypergpu-lab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hypergpu-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
