"""The control panel: a settings form validated in place, run buttons, pacing, status and progress.

Every field is checked by building the configuration dataclasses with it; a :class:`ConfigError`
shows its message next to the field that caused it, and Start/Step stay disabled until the form is
valid. Settings that shape the pool or the model rebuild the coordinator (``factory``) on the next
Start or Step, and only while no run is active; the form is read-only while one is.
"""

from __future__ import annotations

import copy
import html
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..config import DATASETS, MODELS, PARTITIONS, STRATEGIES, RunConfig
from ..errors import ConfigError
from ..network import MIXES, PROFILES
from .charts import accuracy_chart, clear, feed_accuracy
from .common import attach_log, error_html, guarded, note_html
from .driver import RunDriver
from .factory import POLICIES, build_coordinator, check_policy, config_of, policy_name, with_policy
from .runner import Runner

log = logging.getLogger(__name__)

Factory = Callable[[RunConfig], Any]

# form field -> dotted configuration field (as ConfigError names it)
FIELDS: dict[str, str] = {
    "dataset": "pool.dataset",
    "partition": "pool.partition",
    "nodes": "pool.num_nodes",
    "network": "pool.network",
    "model": "train.model",
    "strategy": "train.strategy",
    "policy": "train.policy",
    "lr": "train.lr",
    "local_epochs": "train.local_epochs",
    "rounds": "rounds",
}
NETWORKS = (*MIXES, *(p for p in PROFILES if p not in MIXES))
_REBUILD = tuple(f for f in FIELDS if f != "rounds")
_BUTTONS = {
    "start": ("Start", "play", "success"),
    "pause": ("Pause", "pause", ""),
    "resume": ("Resume", "play", ""),
    "stop": ("Stop", "stop", "danger"),
    "step": ("Step", "step-forward", ""),
}


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for key in path:
        data = data[key]
    data[last] = value


def _get(data: dict[str, Any], dotted: str) -> Any:
    for key in dotted.split("."):
        data = data[key]
    return data


class ControlPanel(widgets.VBox):
    """Settings, run control and status for one coordinator (``hypergpu_lab.ui.panel(coord)``).

    Parameters
    ----------
    target
        A coordinator, or the :class:`Runner` a dashboard shares between its panels.
    factory
        ``factory(run_config) -> Coordinator`` used when settings change;
        :func:`~hypergpu_lab.ui.factory.build_coordinator` (in ``out`` when given) by default.
    out
        Parent folder for the run folders of rebuilt coordinators (None: no run folder).
    chart
        Show an accuracy/loss chart under the controls (the dashboard has its own).
    """

    def __init__(
        self,
        target: Any,
        *,
        factory: Factory | None = None,
        out: str | Path | None = None,
        chart: bool = True,
        rate: float = 4.0,
        rounds: int | None = None,
    ) -> None:
        self.runner: RunDriver = target if isinstance(target, RunDriver) else Runner(target, rate=rate)
        self.out = out
        self.factory: Factory = factory or self._default_factory
        coord = self.runner.coord
        self._built: dict[str, Any] = config_of(coord, rounds).to_dict()  # what the coordinator was built from
        self._valid: dict[str, Any] = copy.deepcopy(self._built)  # the form's last valid settings
        self.fields = self._make_fields(self._built)
        self.errors = {name: widgets.HTML(layout=widgets.Layout(margin="0 0 0 8px")) for name in self.fields}
        self.form_error = widgets.HTML()
        self.buttons = {
            k: widgets.Button(description=d, button_style=s, layout=widgets.Layout(width="80px"))
            for k, (d, i, s) in _BUTTONS.items()
        }
        self.pace = widgets.Checkbox(
            value=False, description="pace", indent=False, layout=widgets.Layout(width="60px", margin="0 0 0 12px")
        )
        self.speed = widgets.FloatLogSlider(
            value=1.0,
            base=10,
            min=-2,
            max=3,
            step=0.1,
            readout_format=".2g",
            description="sim s / wall s",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="250px"),
        )
        self.status = widgets.HTML()
        self.status.add_class("hgl-run-status")
        self.progress = widgets.IntProgress(
            value=0, min=0, max=1, layout=widgets.Layout(width="140px", margin="0 8px 0 12px")
        )
        self.message = widgets.HTML()
        self.message.add_class("hgl-message")
        self._message_at: tuple[Any, ...] | None = None  # what the run showed when the last note was written
        self.log_output = widgets.Output(layout=widgets.Layout(max_height="160px", overflow="auto"))
        self._detach_log = attach_log(self.log_output)
        self.chart = accuracy_chart("round") if chart else None

        self.fields["rounds"].add_class("hgl-rounds")
        for name, field in self.fields.items():
            field.add_class(f"hgl-field-{name}")  # for tests and page scripts
        for field in self.fields.values():
            field.observe(self._on_field, names="value")
        for key, button in self.buttons.items():
            button.on_click(guarded(self.message, key)(getattr(self, f"_on_{key}")))
            button.add_class(f"hgl-run-{key}")
        self.pace.observe(self._on_pace, names="value")
        self.speed.observe(self._on_pace, names="value")
        self.runner.on_status(self._show_status)
        self.runner.on_coordinator(self._on_coordinator)
        self.runner.on_reports(self._on_reports)

        row = widgets.HBox(
            [*self.buttons.values(), self.pace, self.speed, self.progress, self.status],
            layout=widgets.Layout(flex_flow="row wrap", align_items="center"),
        )
        self.controls = widgets.VBox([row, self.message])
        self.controls.add_class("hgl-controls")
        self.settings = widgets.VBox(
            [
                *(widgets.HBox([field, self.errors[name]]) for name, field in self.fields.items()),
                self.form_error,
            ]
        )
        super().__init__(
            [
                self.controls,
                widgets.Accordion([self.settings], titles=("Settings",)),
                *([self.chart] if self.chart is not None else []),
                widgets.Accordion([self.log_output], titles=("Log",)),
            ]
        )
        self.validate()
        self._show_status(self.runner)

    # -- the form ------------------------------------------------------------------------------
    def _make_fields(self, built: dict[str, Any]) -> dict[str, widgets.ValueWidget]:
        cfg, style = built, {"description_width": "110px"}
        width = widgets.Layout(width="300px")

        def dropdown(label: str, options: tuple[str, ...], value: Any) -> widgets.Dropdown:
            opts = list(options) + ([value] if value not in options else [])
            return widgets.Dropdown(options=opts, value=value, description=label, style=style, layout=width)

        network = cfg["pool"]["network"]
        return {
            "dataset": dropdown("dataset", DATASETS, cfg["pool"]["dataset"]),
            "partition": dropdown("partition", PARTITIONS, cfg["pool"]["partition"]),
            "nodes": widgets.IntText(value=cfg["pool"]["num_nodes"], description="nodes", style=style, layout=width),
            "network": dropdown("network", NETWORKS, network if isinstance(network, str) else "custom"),
            "model": dropdown("model", MODELS, cfg["train"]["model"]),
            "strategy": dropdown("strategy", STRATEGIES, cfg["train"]["strategy"]),
            "policy": dropdown("policy", POLICIES, policy_name(cfg["train"])),
            "lr": widgets.FloatText(value=cfg["train"]["lr"], description="learning rate", style=style, layout=width),
            "local_epochs": widgets.IntText(
                value=cfg["train"]["local_epochs"], description="local epochs", style=style, layout=width
            ),
            "rounds": widgets.IntText(value=cfg["rounds"], description="rounds", style=style, layout=width),
        }

    def _form_data(self) -> dict[str, Any]:
        """The configuration dict the form shows."""
        data = copy.deepcopy(self._valid)
        for name, field in self.fields.items():
            if name == "policy":
                if field.value != policy_name(data["train"]):  # unchanged: keep the options as built
                    with_policy(data["train"], field.value)
            elif not (name == "network" and field.value == "custom"):
                _set(data, FIELDS[name], field.value)
        return data

    @staticmethod
    def _check(data: dict[str, Any]) -> RunConfig:
        config = RunConfig.from_dict(copy.deepcopy(data))
        check_policy(config)
        return config

    @staticmethod
    def _field_of(error: ConfigError) -> str | None:
        """The form field a ConfigError is about (policy options count as the policy)."""
        dotted = "train.policy" if error.field.startswith(("train.policy", "policy", "mode")) else error.field
        return next((n for n, f in FIELDS.items() if f == dotted), None)

    def validate(self) -> RunConfig | None:
        """Check the form by building the configuration; show each error next to its field. The config, or None.

        On an error the field it names falls back to its last valid value and the rest is checked
        again, so every bad field gets its message, and a pair that is only valid together (a
        dataset and its partition) is judged together.
        """
        data = self._form_data()
        errors: dict[str, str] = {}
        general, config = "", None
        for _ in range(len(self.fields) + 1):
            try:
                config = self._check(data)
                break
            except ConfigError as exc:
                name = self._field_of(exc)
                if name is None or name in errors:
                    general = str(exc)
                    break
                errors[name] = str(exc)
                if name == "policy":
                    data["train"]["policy"] = self._valid["train"]["policy"]
                    data["train"]["policy_options"] = copy.deepcopy(self._valid["train"]["policy_options"])
                else:
                    _set(data, FIELDS[name], _get(self._valid, FIELDS[name]))
        for name, box in self.errors.items():
            box.value = error_html(errors[name]) if name in errors else ""
        self.form_error.value = error_html(general) if general else ""
        if errors or general:
            config = None
        elif config is not None:
            self._valid = config.to_dict()
        self._enable()
        return config

    def _on_field(self, change: dict[str, Any]) -> None:
        config = self.validate()
        if config is not None and self._needs_rebuild():
            self.message.value = note_html(
                "settings changed: a new coordinator is built on the next Start or Step"
                + (" (after this run stops)" if self.runner.active else "")
            )

    def _needs_rebuild(self) -> bool:
        """Whether the last valid settings differ from the coordinator's in anything but the rounds."""
        keys = [FIELDS[f] for f in _REBUILD] + ["train.policy_options"]
        return any(_get(self._valid, k) != _get(self._built, k) for k in keys)

    def _rebuild_if_needed(self) -> None:
        config = self.validate()
        if config is None:
            raise ConfigError("settings", "invalid", "the values the messages next to the fields ask for")
        if not self._needs_rebuild():
            return
        if self.runner.active:
            raise RuntimeError("stop the run before applying new settings")
        self.message.value = note_html("building the node pool and coordinator...")
        old = self.runner.coord
        coord = self.factory(config)
        self._built = config.to_dict()
        self.runner.set_coordinator(coord)
        recorder = getattr(old, "recorder", None)
        if recorder is not None and getattr(coord, "recorder", None) is not recorder:
            threading.Thread(target=recorder.close, name="hypergpu-ui-close-recorder", daemon=True).start()
        self.message.value = note_html(f"new coordinator {coord.run_id}: {len(coord.pool)} nodes")

    def _default_factory(self, config: RunConfig) -> Any:
        recorder = getattr(self.runner.coord, "recorder", None)  # a rebuilt run records on the same chain
        options = {"reward_per_round": recorder.reward_per_round} if recorder is not None else None
        return build_coordinator(config, out=self.out, chain=getattr(recorder, "ledger", None), chain_options=options)

    # -- buttons -------------------------------------------------------------------------------
    @property
    def remote(self) -> bool:
        """The runner attaches to runs in their own process (RemoteRunner): Start launches one."""
        return hasattr(self.runner, "launch")

    def _launch(self, *, running: bool) -> None:
        config = self.validate()
        if config is None:
            raise ConfigError("settings", "invalid", "the values the messages next to the fields ask for")
        self.message.value = note_html("starting the run process...")
        folder = self.runner.launch(config, until=self.fields["rounds"].value, running=running)
        self._built = config.to_dict()
        self.message.value = note_html(f"run {folder.name} started in its own process; it goes on if this page closes")

    def _on_start(self, _: Any = None) -> None:
        if self.runner.active:
            self.runner.resume()
            return
        if self.remote:
            self._launch(running=True)
            return
        self._rebuild_if_needed()
        rounds = self.fields["rounds"].value
        if self.runner.coord.round >= rounds:
            raise ConfigError("rounds", rounds, f"more than the {self.runner.coord.round} rounds already run")
        self.runner.start(until=rounds)

    def _on_pause(self, _: Any = None) -> None:
        self.runner.pause()

    def _on_resume(self, _: Any = None) -> None:
        self.runner.resume()

    def _on_stop(self, _: Any = None) -> None:
        self.runner.stop()

    def _on_step(self, _: Any = None) -> None:
        if self.remote:
            if not self.runner.active:
                self._launch(running=False)
            self.runner.step()
            self.message.value = note_html("one round requested; it shows when the run reports it")
            return
        if not self.runner.active:
            self._rebuild_if_needed()
        report = self.runner.step()
        self.runner.flush()
        self.message.value = note_html(
            f"round {report.round}: {report.accepted} accepted, {report.straggled} "
            f"straggled, {report.failed} failed, {report.rejected} rejected"
        )

    def _on_pace(self, _: Any = None) -> None:
        self.runner.set_speed(self.speed.value if self.pace.value else None)

    # -- status --------------------------------------------------------------------------------
    def _enable(self) -> None:
        status = self.runner.status
        valid = not any(e.value for e in self.errors.values()) and not self.form_error.value
        active = self.runner.active
        allowed = {
            "start": valid and not active,
            "pause": active and status in ("running", "stuck"),
            "resume": active and status in ("paused", "waiting"),
            "stop": active,
            "step": valid and status not in ("running", "stuck"),
        }
        for key, button in self.buttons.items():
            button.disabled = not allowed[key]
        for field in self.fields.values():
            field.disabled = active and field is not self.fields["rounds"]

    def _show_status(self, runner: RunDriver) -> None:
        done, target = runner.progress
        total = target or self.fields["rounds"].value or 1
        colour = {
            "running": "#1a7f37",
            "stuck": "#b00020",
            "failed": "#b00020",
            "waiting": "#9a6700",
            "paused": "#9a6700",
        }.get(runner.status, "#333")
        detail = runner.detail
        with self.progress.hold_sync():
            self.progress.max = max(total, 1)
            self.progress.value = min(done, self.progress.max)
        name = getattr(runner, "run_name", None)
        self._clear_stale_note((runner.status, done, name))
        self.status.value = (
            f"<b style='color:{colour}'>{runner.status}</b> &middot; round {done} of {total}"
            + (f" &middot; run <span class='hgl-run-name'>{html.escape(name)}</span>" if name else "")
            + (f" &middot; {note_html(detail)}" if detail else "")
        )
        self._enable()

    def _clear_stale_note(self, seen: tuple[Any, ...]) -> None:
        """A note ("queued", "one round requested", "started") is about the moment it was written:
        once the run shows another state, round or run, the status line says it and the note goes.
        Errors stay until the next action."""
        if not self.message.value or "#b00020" in self.message.value:
            self._message_at = seen
            return
        if self._message_at is None:
            self._message_at = seen
        elif seen != self._message_at:
            self.message.value = ""
            self._message_at = None

    def _on_reports(self, batch: list[Any]) -> None:
        if self.chart is not None:
            feed_accuracy(self.chart, batch)
        self._show_status(self.runner)

    def _on_coordinator(self, coord: Any) -> None:
        if self.chart is not None:
            clear(self.chart)

    def close(self) -> None:
        self._detach_log()
        super().close()
