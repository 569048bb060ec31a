"""Helpers shared by the network tests (a module with its own name, as tests/chain/chain_support.py)."""

from __future__ import annotations


class ScriptedRng:
    """Stands in for np.random.Generator: jitter normals are 0, uniforms come from a script."""

    def __init__(self, uniforms: list[float]) -> None:
        self.uniforms = list(uniforms)
        self.calls: list[str] = []

    def standard_normal(self) -> float:
        self.calls.append("normal")
        return 0.0

    def random(self) -> float:
        self.calls.append("uniform")
        return self.uniforms.pop(0)
