"""Gain importance of a trained ranker as CSV and as a bar chart."""
from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_path, write_text


def write_importance(importance: dict[str, float], groups: dict[str, str], folder: Path,
                     top: int = 30) -> None:
    ranked = sorted(importance.items(), key=lambda kv: (-kv[1], kv[0]))
    write_text(Path(folder) / "importance.csv", "feature,group,gain\n" + "".join(
        f"{name},{groups[name]},{gain:.3f}\n" for name, gain in ranked))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ranked[:top][::-1]
    palette = plt.get_cmap("tab10")
    order = sorted(set(groups.values()))
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(shown) + 1.2))
    ax.barh([n for n, _ in shown], [g for _, g in shown],
            color=[palette(order.index(groups[n]) % 10) for n, _ in shown])
    ax.set_xlabel("total gain")
    ax.set_title(f"Top {len(shown)} features by gain (colour = group)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette(k % 10)) for k in range(len(order))]
    ax.legend(handles, order, fontsize=7, loc="lower right")
    fig.tight_layout()
    with atomic_path(Path(folder) / "importance.png") as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
