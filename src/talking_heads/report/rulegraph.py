"""Draw Snakemake's rule graph (``snakemake --rulegraph`` DOT text) as an SVG without Graphviz.

    snakemake --rulegraph --configfile configs/workflow/survey.yaml \\
        | python -m talking_heads.report.rulegraph workflow/report/rulegraph.svg

Rules are placed in layers by their longest path from a source (the first rules at the top,
``all`` at the bottom), ordered within a layer to follow their inputs, and drawn as rounded
boxes in the colours Snakemake assigns (HSV triples).
"""

from __future__ import annotations

import colorsys
import re
import sys
from graphlib import TopologicalSorter
from pathlib import Path

NODE = re.compile(r'^\s*(\d+)\[label = "([^"]+)", color = "([\d.]+) ([\d.]+) ([\d.]+)"')
EDGE = re.compile(r"^\s*(\d+) -> (\d+)")
SPACING = 2.2  # horizontal distance between box centres (boxes are 1.8 wide)


def parse_rulegraph(dot: str) -> tuple[dict[str, tuple[str, tuple[float, float, float]]], list]:
    """``{id: (rule, rgb)}`` and the ``(from, to)`` edges of a ``--rulegraph`` DOT text."""
    nodes, edges = {}, []
    for line in dot.splitlines():
        if match := NODE.match(line):
            hue, saturation, value = (float(match.group(i)) for i in (3, 4, 5))
            nodes[match.group(1)] = (match.group(2), colorsys.hsv_to_rgb(hue, saturation, value))
        elif match := EDGE.match(line):
            edges.append((match.group(1), match.group(2)))
    return nodes, edges


def layers(nodes: dict, edges: list) -> list[list[str]]:
    """Node ids per layer: layer = longest path from a node without inputs."""
    inputs: dict[str, list[str]] = {node: [] for node in nodes}
    for source, target in edges:
        inputs[target].append(source)
    depth: dict[str, int] = {}
    for node in TopologicalSorter(inputs).static_order():
        depth[node] = max((depth[p] + 1 for p in inputs[node]), default=0)
    rows: list[list[str]] = [[] for _ in range(max(depth.values()) + 1)]
    for node in sorted(depth, key=lambda n: (depth[n], nodes[n][0])):
        rows[depth[node]].append(node)
    position: dict[str, float] = {}
    for row in rows:  # order by the mean position of the inputs (barycentre)
        row.sort(key=lambda n: sum(position[p] for p in inputs[n]) / max(1, len(inputs[n])))
        for index, node in enumerate(row):
            position[node] = index - (len(row) - 1) / 2
    return rows


def draw(dot: str, out: Path) -> Path:
    """The rule graph of ``dot`` as an SVG at ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    nodes, edges = parse_rulegraph(dot)
    rows = layers(nodes, edges)
    width = max(len(row) for row in rows)
    xy = {
        n: (SPACING * (i - (len(row) - 1) / 2), -depth)
        for depth, row in enumerate(rows)
        for i, n in enumerate(row)
    }
    figure, axes = plt.subplots(figsize=(1.1 * SPACING * width + 1, 0.9 * len(rows) + 0.5))
    for source, target in edges:
        (x0, y0), (x1, y1) = xy[source], xy[target]
        axes.annotate(
            "",
            xy=(x1, y1 + 0.18),
            xytext=(x0, y0 - 0.18),
            arrowprops={"arrowstyle": "->", "color": "grey", "lw": 1.2},
        )
    for node, (x, y) in xy.items():
        rule, colour = nodes[node]
        axes.add_patch(
            FancyBboxPatch(
                (x - 0.9, y - 0.18),
                1.8,
                0.36,
                boxstyle="round,pad=0.02,rounding_size=0.1",
                facecolor="white",
                edgecolor=colour,
                linewidth=2,
            )
        )
        axes.text(x, y, rule, ha="center", va="center", fontsize=9, family="sans-serif")
    axes.set_xlim(-SPACING * width / 2 - 0.5, SPACING * width / 2 + 0.5)
    axes.set_ylim(-len(rows) + 0.5, 0.5)
    axes.axis("off")
    out.parent.mkdir(parents=True, exist_ok=True)
    # rule names stay searchable text; fixed ids and no date: the same graph gives the same file
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "rulegraph"}):
        figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(figure)
    return out


if __name__ == "__main__":  # pragma: no cover - command-line use
    draw(sys.stdin.read(), Path(sys.argv[1] if len(sys.argv) > 1 else "rulegraph.svg"))
