"""The teaching notebooks that draw Plotly charts keep their outputs, so a reader without a kernel sees them.

nbval (``--nbval-lax``) re-runs the cells but does not look at what is stored; this test does. A
notebook that sets ``pio.renderers.default`` must be stored fully executed, top to bottom, with no
error output, with plotly.js embedded once (no CDN), and every figure stored twice: the plotly
mimetype (JupyterLab's renderer) and an HTML copy (nbconvert, nbviewer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PLOTLY_MIME = "application/vnd.plotly.v1+json"


def _charted() -> list[Path]:
    return sorted(p for p in NOTEBOOKS.glob("*.ipynb") if "pio.renderers.default" in p.read_text(encoding="utf-8"))


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]


def _html(output: dict) -> str:
    text = output.get("data", {}).get("text/html", "")
    return "".join(text) if isinstance(text, list) else text


def test_the_course_notebooks_draw_charts() -> None:
    names = {p.stem for p in _charted()}
    assert {"01_quickstart", "02_network_conditions", "03_adaptive_training", "09_live_lab"} <= names


@pytest.mark.parametrize("path", _charted(), ids=lambda p: p.stem)
def test_outputs_are_stored(path: Path) -> None:
    cells = _code_cells(path)
    counts = [c["execution_count"] for c in cells]
    assert counts == list(range(1, len(cells) + 1)), f"{path.name}: not stored as one top-to-bottom run"
    outputs = [o for c in cells for o in c["outputs"]]
    assert not [o for o in outputs if o["output_type"] == "error"], f"{path.name}: a stored error"

    embedded = [o for o in outputs if "plotly.js v" in _html(o)[:2000]]
    assert len(embedded) == 1, f"{path.name}: plotly.js must be embedded exactly once, found {len(embedded)}"
    assert not [o for o in outputs if 'src="https://cdn.plot.ly' in _html(o)], f"{path.name}: plotly.js from a CDN"

    figures = [o for o in outputs if PLOTLY_MIME in o.get("data", {})]
    assert figures, f"{path.name}: no stored chart"
    for figure in figures:
        assert figure["data"][PLOTLY_MIME]["data"], f"{path.name}: an empty chart"
        assert "Plotly.newPlot" in _html(figure), f"{path.name}: a chart without its static HTML copy"

    for cell in cells:  # a cell that ends by showing a figure has stored it
        last = "".join(cell["source"]).strip().splitlines()[-1]
        if last == "fig" or last.startswith("snapshot("):
            assert any(PLOTLY_MIME in o.get("data", {}) for o in cell["outputs"]), f"{path.name}: {last!r} not stored"
