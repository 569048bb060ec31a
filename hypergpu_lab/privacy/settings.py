"""The privacy options of a run (``TrainConfig.privacy``), validated once, by dotted field.

A plain mapping in the config (so it round-trips through JSON and YAML); :func:`parse` turns it
into a frozen :class:`PrivacySettings`. Every key is optional: ``{}`` means privacy off, and then
nothing in :mod:`hypergpu_lab.privacy` touches a round.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .. import checks
from ..errors import ConfigError

FIELD = "train.privacy"
MODES = ("off", "central", "local")
ACCOUNTANTS = ("rdp", "pld")


@dataclass(frozen=True)
class PrivacySettings:
    """Differential privacy (central or local Gaussian) and secure aggregation, per run."""

    mode: str = "off"  # off | central (DP-FedAvg, McMahan et al. 2018) | local (noise on the node)
    noise_multiplier: float = 1.0  # z: noise std / clip norm (central: the total z, adaptive clipping included)
    clip: float = 1.0  # C: L2 bound of one node's update (the initial C with adaptive clipping)
    adaptive_quantile: float | None = None  # gamma of Andrew et al. 2021; None = fixed clipping
    clip_lr: float = 0.2  # eta_C: geometric step of the clip norm per round
    clip_count_stddev: float | None = None  # sigma_b of the noisy clipped count; None = clients per round / 20
    delta: float = 1e-5  # epsilon is reported at this delta
    budget: float | None = None  # stop the run before epsilon would exceed this
    accountant: str = "rdp"  # rdp | pld (both from Google's dp-accounting)
    secagg: bool | str = (
        False  # True or "classic": Bonawitz et al. 2017 (all pairs); "plus": SecAgg+ (Bell et al. 2020)
    )
    secagg_neighbours: int | None = None  # SecAgg+: k, an even number of neighbours; None = from Bell et al.'s bound
    secagg_bits: int = 32  # ring Z_(2^bits) of the masked fixed-point values: 32 or 64
    secagg_frac_bits: int | None = None  # fixed-point fraction bits; None = bits / 2

    @property
    def dp(self) -> bool:
        return self.mode != "off"

    @property
    def enabled(self) -> bool:
        return self.dp or self.secagg

    @property
    def secagg_plus(self) -> bool:
        """SecAgg+: masks and key shares only among ``k`` neighbours in a random Harary graph."""
        return self.secagg == "plus"

    @property
    def adaptive(self) -> bool:
        return self.adaptive_quantile is not None

    @property
    def frac_bits(self) -> int:
        return self.secagg_frac_bits if self.secagg_frac_bits is not None else self.secagg_bits // 2


def parse(options: Any) -> PrivacySettings:
    """A :class:`PrivacySettings` from the config mapping; a bad key or value raises a field-named ConfigError."""
    if isinstance(options, PrivacySettings):
        return options
    options = checks.mapping_of_str(FIELD, options if options is not None else {})
    known = [f.name for f in fields(PrivacySettings)]
    if unknown := sorted(set(options) - set(known)):
        raise ConfigError(f"{FIELD}.{unknown[0]}", options[unknown[0]], "a known key: " + ", ".join(known))
    p = FIELD + "."
    o = {**{f.name: f.default for f in fields(PrivacySettings)}, **options}
    checks.choice(p + "mode", o["mode"], MODES)
    z = checks.number(p + "noise_multiplier", o["noise_multiplier"], 0, 1e6)
    clip = checks.number(p + "clip", o["clip"], 0, 1e9, open_low=True)
    quantile = checks.optional(checks.number, p + "adaptive_quantile", o["adaptive_quantile"], 0, 1, open_low=True)
    if quantile is not None and quantile >= 1:
        raise ConfigError(p + "adaptive_quantile", quantile, "a quantile in (0, 1), or None for fixed clipping")
    clip_lr = checks.number(p + "clip_lr", o["clip_lr"], 0, 10)
    stddev = checks.optional(checks.number, p + "clip_count_stddev", o["clip_count_stddev"], 0, 1e6, open_low=True)
    delta = checks.number(p + "delta", o["delta"], 0, 1, open_low=True)
    if delta >= 1:
        raise ConfigError(p + "delta", delta, "a probability in (0, 1), typically below 1 / number of nodes")
    budget = checks.optional(checks.number, p + "budget", o["budget"], 0, 1e6, open_low=True)
    checks.choice(p + "accountant", o["accountant"], ACCOUNTANTS)
    secagg = _secagg(p + "secagg", o["secagg"])
    k = checks.optional(checks.integer, p + "secagg_neighbours", o["secagg_neighbours"], low=2, high=10**6)
    if k is not None and (k % 2 or secagg != "plus"):
        accepted = "an even number of neighbours (Harary graph)" if k % 2 else 'None unless secagg is "plus"'
        raise ConfigError(p + "secagg_neighbours", k, accepted)
    bits = checks.integer(p + "secagg_bits", o["secagg_bits"], accepted="32 or 64")
    if bits not in (32, 64):
        raise ConfigError(p + "secagg_bits", bits, "32 or 64")
    frac = checks.optional(checks.integer, p + "secagg_frac_bits", o["secagg_frac_bits"], low=0, high=bits - 8)
    if o["mode"] == "off":
        for name in ("adaptive_quantile", "budget"):
            if o[name] is not None:
                raise ConfigError(p + name, o[name], "None while mode is off", hint="set mode: central or local")
    if o["mode"] == "local" and quantile is not None:
        raise ConfigError(p + "adaptive_quantile", quantile, "None in local mode (adaptive clipping is central)")
    return PrivacySettings(
        mode=o["mode"],
        noise_multiplier=z,
        clip=clip,
        adaptive_quantile=quantile,
        clip_lr=clip_lr,
        clip_count_stddev=stddev,
        delta=delta,
        budget=budget,
        accountant=o["accountant"],
        secagg=secagg,
        secagg_neighbours=k,
        secagg_bits=bits,
        secagg_frac_bits=frac,
    )


def _secagg(name: str, value: Any) -> bool | str:
    """False, True (classic SecAgg; "classic" says the same) or "plus" (SecAgg+)."""
    if isinstance(value, bool) or value == "plus":
        return value
    if value == "classic":
        return True
    raise ConfigError(
        name, value, 'false, true or "classic" (Bonawitz et al. 2017), or "plus" (SecAgg+, Bell et al. 2020)'
    )
