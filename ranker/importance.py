"""Gain importance of a trained ranker as CSV and as a bar chart."""
from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_path, write_text


def write_importance(importance: dict[str, float], groups: dict[str, str], folder: Path,
                     top: int = 30) -> None:
    ranked = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    write_text(Path(folder) / "importance.csv", "feature,group,gain\n" + "".join(
        f"{name},{groups[name]},{gain:.3f}\n" for name, gain in ranked))
    from matplotlib import colormaps
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    shown = ranked[:top][::-1]
    palette = colormaps["tab10"]
    order = sorted(set(groups.values()))
    # A Figure of its own, not pyplot's: no backend switch in the caller's session.
    fig = Figure(figsize=(8, 0.28 * len(shown) + 1.2))
    ax = fig.subplots()
    ax.barh([n for n, _ in shown], [g for _, g in shown],
            color=[palette(order.index(groups[n]) % 10) for n, _ in shown])
    ax.set_xlabel("total gain")
    ax.set_title(f"Top {len(shown)} features by gain (colour = group)")
    handles = [Rectangle((0, 0), 1, 1, color=palette(k % 10)) for k in range(len(order))]
    ax.legend(handles, order, fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(Path(folder) / "importance.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
