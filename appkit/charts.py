"""Plotly figures for the pages, built from plain dicts and lists read from tlcore.

Kept apart from the pages so the Train and Runs pages draw the same curves, and so
each page reads as what the user sees rather than as figure plumbing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from appkit.text import plot_text

FROZEN_COLOUR = "#9aa5b1"
TRAINABLE_COLOUR = "#e8590c"
SPLIT_COLOURS = {"train": "#1c7ed6", "val": "#f59f00", "test": "#7048e8"}


def _layout(fig: go.Figure, title: str, height: int = 300) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left"),
        height=height,
        margin=dict(l=10, r=40, t=40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.3, xanchor="left", x=0.0),
        # the toolbar stands down the right edge: across the top it covered the title of a
        # chart in a narrow column (the Train page draws three side by side)
        modebar=dict(orientation="v"),
    )
    return fig


def class_counts(counts: dict[str, dict[str, int]], items: str = "images") -> go.Figure:
    """Items (images, texts) per class, one bar per split: an imbalance shows at a glance."""
    fig = go.Figure()
    for split, per_class in counts.items():
        if not per_class:
            continue
        fig.add_bar(
            name=split,
            x=[plot_text(name) for name in per_class],
            y=list(per_class.values()),
            marker_color=SPLIT_COLOURS.get(split),
            text=list(per_class.values()),  # the count on each bar, not only on hover
            textposition="inside",
            insidetextanchor="middle",
        )
    fig.update_layout(barmode="stack", xaxis_title="class", yaxis_title=items)
    return _layout(fig, f"{items.capitalize()} per class")


def layer_groups(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """The model from input (top) to output (bottom), bar length = parameters."""
    names = [str(r["group"]) for r in rows]
    params = [int(r["params"]) for r in rows]
    colours = [TRAINABLE_COLOUR if r["trainable"] else FROZEN_COLOUR for r in rows]
    status = [f"{'trains' if r['trainable'] else 'frozen'} · {int(r['params']):,}" for r in rows]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=params,
            orientation="h",
            marker_color=colours,
            customdata=list(zip(status, [r.get("layers", "") for r in rows], strict=True)),
            hovertemplate="%{y}: %{x:,} parameters, %{customdata[1]} layers, %{customdata[0]}"
            "<extra></extra>",
            text=status,
            textposition="outside",
            cliponaxis=False,
        )
    )
    fig.update_yaxes(autorange="reversed", title="input → output")
    fig.update_xaxes(title="parameters", range=[0, max(params, default=1) * 1.3])
    return _layout(fig, "Layer groups (orange = trains, grey = frozen)", 60 + 34 * len(rows))


def _epoch_series(epochs: Sequence[dict[str, Any]], key: str) -> tuple[list, list]:
    xs, ys = [], []
    for event in epochs:
        value = event.get(key)
        if value is not None:
            xs.append(event["epoch"])
            ys.append(value)
    return xs, ys


MAX_STEP_POINTS = 400  # a per-step line is thinned to this many points: the same picture,
# a fraction of the bytes for the browser to redraw while a run trains


def _thin(xs: list, ys: list, limit: int = MAX_STEP_POINTS) -> tuple[list, list]:
    """Every k-th point (and the last), so long runs draw as fast as short ones."""
    if len(xs) <= limit:
        return xs, ys
    stride = -(-len(xs) // limit)
    keep = [*range(0, len(xs), stride), *([len(xs) - 1] if (len(xs) - 1) % stride else [])]
    return [xs[i] for i in keep], [ys[i] for i in keep]


def loss_curves(steps: Sequence[dict[str, Any]], epochs: Sequence[dict[str, Any]]) -> go.Figure:
    """Loss per step (thin) and per epoch (train and validation)."""
    fig = go.Figure()
    if steps:
        # x in epochs: the j-th step (1-based) of an epoch of n steps sits at epoch - 1 + j / n
        by_epoch: dict[int, list[dict]] = {}
        for s in steps:
            by_epoch.setdefault(int(s["epoch"]), []).append(s)
        per_epoch = max(len(v) for v in by_epoch.values())
        xs, ys = [], []
        for epoch, items in sorted(by_epoch.items()):
            for j, s in enumerate(items, start=1):
                xs.append(epoch - 1 + j / per_epoch)
                ys.append(s["loss"])
        xs, ys = _thin(xs, ys)
        fig.add_scatter(
            x=xs, y=ys, mode="lines", name="train (steps)", line=dict(width=1, color="#a5d8ff")
        )
    _train_and_val_lines(fig, epochs, "loss")
    return _layout(fig, "Loss (lower is better)")


def _train_and_val_lines(fig: go.Figure, epochs: Sequence[dict[str, Any]], metric: str) -> None:
    """``train_<metric>`` and ``val_<metric>`` per epoch, in the splits' colours."""
    for split, name in (("train", "train"), ("val", "validation")):
        xs, ys = _epoch_series(epochs, f"{split}_{metric}")
        fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=name,
                        line=dict(color=SPLIT_COLOURS[split]))  # fmt: skip
    fig.update_xaxes(title="epoch")


def accuracy_curves(epochs: Sequence[dict[str, Any]]) -> go.Figure:
    fig = go.Figure()
    _train_and_val_lines(fig, epochs, "acc")
    fig.update_yaxes(title="accuracy", range=[0, 1.02], tickformat=".0%")
    return _layout(fig, "Accuracy (higher is better)")


def lr_curves(steps: Sequence[dict[str, Any]], epochs: Sequence[dict[str, Any]]) -> go.Figure:
    """The learning rate as the schedule moves it, per step when known."""
    fig = go.Figure()
    points = [(s["epoch"], s.get("step", 0), s.get("lr")) for s in steps if s.get("lr")]
    if points:
        xs, ys = _thin(list(range(1, len(points) + 1)), [p[2] for p in points])
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name="learning rate",
        )
        fig.update_xaxes(title="step")
    else:
        groups: dict[str, tuple[list, list]] = {}
        for event in epochs:
            for group, lr in (event.get("lr") or {}).items():
                xs, ys = groups.setdefault(group, ([], []))
                xs.append(event["epoch"])
                ys.append(lr)
        for group, (xs, ys) in groups.items():
            fig.add_scatter(x=xs, y=ys, mode="lines+markers", name=group)
        fig.update_xaxes(title="epoch")
    fig.update_yaxes(title="learning rate", exponentformat="e")
    return _layout(fig, "Learning rate")


def confusion(classes: Sequence[str], matrix: Sequence[Sequence[int]], title: str) -> go.Figure:
    """Rows are the true class, columns the guess; the diagonal is what it got right."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=[plot_text(name) for name in classes],
            y=[plot_text(name) for name in classes],
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}, guessed %{x}: %{z}<extra></extra>",
            showscale=False,
        )
    )
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="model's guess", side="bottom")
    return _layout(fig, title, 120 + 50 * len(classes))


def lr_range_test(
    lrs: Sequence[float], losses: Sequence[float], suggestion: float | None
) -> go.Figure:
    """The range test: loss as the learning rate grows; pick where it falls fastest."""
    fig = go.Figure(go.Scatter(x=list(lrs), y=list(losses), mode="lines", name="loss"))
    if suggestion:
        fig.add_vline(x=suggestion, line_dash="dash", line_color=TRAINABLE_COLOUR)
        fig.add_annotation(x=suggestion, y=1, yref="paper", text=f"suggested {suggestion:.1e}")
    fig.update_xaxes(type="log", title="learning rate")
    fig.update_yaxes(title="loss")
    return _layout(fig, "Learning-rate range test")


# -- the transfer-learning ladder (Few-shot page) --------------------------------------------
LADDER_COLOURS = {
    "zero-shot": "#7048e8",
    "one-shot": "#1c7ed6",
    "few-shot": "#1c7ed6",
    "all photos": "#2f9e44",
    "trained": "#e8590c",
}


def transfer_ladder(ladder: dict[str, Any]) -> go.Figure:
    """Accuracy per rung, from no photos (class names) to a trained model, against chance."""
    rungs = ladder["rungs"]
    fig = go.Figure()
    fig.add_scatter(
        x=[r["label"] for r in rungs],
        y=[r["accuracy"] for r in rungs],
        mode="lines+markers+text",
        text=[f"{r['accuracy']:.0%}" for r in rungs],
        textposition="top center",
        marker={"size": 12, "color": [LADDER_COLOURS.get(r["kind"], "#495057") for r in rungs]},
        line={"color": "#adb5bd"},
        error_y={"type": "data", "array": [r["spread"] or 0 for r in rungs], "visible": True},
        customdata=[r["detail"] for r in rungs],
        hovertemplate="%{x}: %{y:.1%}<br>%{customdata}<extra></extra>",
        name="validation accuracy",
    )
    fig.add_hline(y=ladder["chance"], line_dash="dot", line_color="#868e96",
                  annotation_text="chance")  # fmt: skip
    fig.update_layout(
        xaxis={"title": "photos of your classes per class", "type": "category"},
        yaxis={"title": "accuracy", "range": [0, 1.08], "tickformat": ".0%"},
        showlegend=False,
    )
    return _layout(fig, f"The transfer-learning ladder ({ladder['n_val']} validation photos)", 380)


def class_colours(n: int) -> list[str]:
    """``n`` colours, all different up to 26 classes: Plotly's default ten repeat from the
    eleventh class on (with 12 flowers, bluebell and tigerlily were both blue)."""
    import plotly.express as px

    if n <= 10:
        return list(px.colors.qualitative.Plotly)
    return list(px.colors.qualitative.Dark24 if n <= 24 else px.colors.qualitative.Alphabet)


def embedding_map(frame: Any) -> go.Figure:
    """Validation items as dots (``x``, ``y``, ``label``, ``file``), one colour per class;
    past 26 classes the marker's shape tells apart the classes that share a colour."""
    import plotly.express as px

    labels = sorted(frame["label"].unique())
    many = len(labels) > 26
    fig = px.scatter(frame, x="x", y="y", color="label", symbol="label" if many else None,
                     category_orders={"label": labels}, hover_name="file",
                     color_discrete_sequence=class_colours(len(labels)),
                     hover_data={"x": False, "y": False})  # fmt: skip
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=30, b=10))
    return fig
