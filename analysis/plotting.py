"""Shared pieces of every figure: a figure on the Agg canvas (no pyplot state, no display), the
"no data yet" panel, and one colour per method (the ensemble oracle in black)."""
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ORACLE = "(ensemble oracle)"


def figure(width=8.0, height=5.0, ncols=1):
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, axes


def no_data(ax, what: str):
    ax.text(0.5, 0.5, f"no {what} in the results yet", ha="center", va="center",
            transform=ax.transAxes, fontsize=13, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])


def method_colors(methods) -> dict:
    palette = [f"C{i}" for i in range(10)]
    ordered = sorted(m for m in set(methods) if m != ORACLE)
    colors = {m: palette[i % 10] for i, m in enumerate(ordered)}
    colors[ORACLE] = "black"
    return colors
