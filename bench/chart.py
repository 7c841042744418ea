"""The PNG chart of a run, cores in the title.

Top row: throughputs, latency percentiles, scale-out. Bottom row: I/O-bound jobs by slots, every
ratio target against its aim (held green, missed red), memory before and after.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

THROUGHPUT_KEYS = ("bridge_throughput", "end_to_end", "scheduler", "tracing_overhead")


def draw(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measurements: dict[str, Any] = data["measurements"]
    machine = data["machine"]
    fig, axes = plt.subplots(2, 3, figsize=(18, 12), gridspec_kw={"width_ratios": [1.4, 1.2, 1]})
    (ax_rate, ax_lat, ax_scale), (ax_io, ax_ratio, ax_mem) = axes

    labels, medians, lows, highs = [], [], [], []
    for key in THROUGHPUT_KEYS:
        for label, fig_data in measurements.get(key, {}).get("figures", {}).items():
            if not fig_data["unit"].endswith("/s"):  # CPU time per job is not a rate
                continue
            samples = fig_data["samples"]
            labels.append(f"{label} [{fig_data['unit']}]")
            medians.append(fig_data["median"])
            lows.append(fig_data["median"] - min(samples))
            highs.append(max(samples) - fig_data["median"])
    ax_rate.barh(labels, medians, xerr=[lows, highs], color="tab:blue", capsize=3)
    if medians:  # a log axis needs a positive value to show
        ax_rate.set_xscale("log")
    else:
        _not_in_run(ax_rate)
    ax_rate.invert_yaxis()
    ax_rate.set_xlabel("per second (median, min-max), log scale")
    ax_rate.set_title("throughput")
    for y, value in enumerate(medians):
        ax_rate.annotate(f"{value:,.0f}", (value, y), xytext=(4, -3), textcoords="offset points")

    figures = measurements.get("latency", {}).get("figures", {})
    pcts = ("p50", "p95", "p99")
    sides = (
        ("jobexec record -> terminal", "tab:blue"),
        ("minimal Kafka->Celery record -> end", "tab:green"),
        ("raw Celery publish -> start", "tab:orange"),
    )
    if figures:
        for offset, (side, colour) in enumerate(sides):
            values = [figures.get(f"{side} {p}", {}).get("median", 0.0) for p in pcts]
            xs = [i + offset * 0.27 for i in range(len(pcts))]
            ax_lat.bar(xs, values, width=0.27, label=side, color=colour)
        ax_lat.set_xticks([i + 0.27 for i in range(len(pcts))], pcts)
        ax_lat.set_yscale("log")
        ax_lat.legend()
    else:
        _not_in_run(ax_lat)
    rate = measurements.get("latency", {}).get("details", {}).get("offered_rate_per_s", 0)
    ax_lat.set_ylabel("ms (median of repetitions), log scale")
    ax_lat.set_title(f"latency at {rate:,.0f}/s offered (half capacity)" if rate else "latency")

    scale = measurements.get("scale_out", {})
    levels = scale.get("details", {}).get("levels", [])
    if levels:
        sleep_s = scale["details"]["sleep_seconds"]
        by_label = scale["figures"]
        rates = [by_label[f"{n} worker process{'es' if n > 1 else ''}"]["median"] for n in levels]
        ax_scale.plot(levels, rates, "o-", label="measured")
        ax_scale.plot(levels, [n / sleep_s for n in levels], "--", color="grey", label="ideal")
        ax_scale.set_xticks(levels)
        ax_scale.legend()
    else:
        _not_in_run(ax_scale)
    ax_scale.set_xlabel("worker processes (one partition)")
    ax_scale.set_ylabel("sleep(100 ms) jobs per second")
    ax_scale.set_title("scale-out")

    _io(ax_io, measurements.get("io_bound", {}))
    _ratios(ax_ratio, measurements)
    _memory(ax_mem, measurements.get("memory", {}))

    fig.suptitle(
        f"jobexec benchmark ({data['profile']['name']}) on {machine['cores']} cores, "
        f"{machine['cpu']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _io(ax: Any, io: dict[str, Any]) -> None:
    """jobexec's `http` jobs/s by slots per pool; the raw Celery task and plain consumer as
    points at the slots they ran with."""
    figures: dict[str, Any] = io.get("figures", {})
    for pool, colour in (("threads", "tab:blue"), ("gevent", "tab:purple")):
        points = sorted(
            (int(label.rsplit(" ", 1)[1]), fig["median"])
            for label, fig in figures.items()
            if label.startswith(f"jobexec http, {pool} -c ")
        )
        if points:
            ax.plot(*zip(*points, strict=True), "o-", color=colour, label=f"jobexec, {pool}")
    for prefix, marker, colour in (
        ("raw Celery httpx task, ", "s", "tab:orange"),
        ("plain consumer + ", "^", "tab:green"),
    ):
        for label, fig in figures.items():
            if label.startswith(prefix) and "prefork" not in label:
                slots = int(label.replace(" threads", "").rsplit(" ", 1)[1])
                ax.plot(slots, fig["median"], marker, color=colour, label=label)
    if figures:
        ax.set_xscale("log", base=2)
        ax.legend(fontsize=8, loc="upper left")
    else:
        _not_in_run(ax)
    ax.set_xlabel("slots (threads or greenlets) in one worker process")
    ax.set_ylabel("http jobs/s (50 ms endpoint)")
    ax.set_title("I/O-bound jobs")


def _ratios(ax: Any, measurements: dict[str, Any]) -> None:
    """Each ratio target's measured value as a bar, its aim as a tick."""
    targets = [
        t for m in measurements.values() for t in m.get("targets", []) if t.get("unit") == "x"
    ]
    labels = [t["label"] for t in targets]
    ax.barh(
        labels,
        [t["measured"] for t in targets],
        color=["tab:green" if t["holds"] else "tab:red" for t in targets],
    )
    for y, t in enumerate(targets):
        ax.plot([t["threshold"]] * 2, [y - 0.4, y + 0.4], color="black")
    ax.invert_yaxis()
    if targets:  # a log axis needs a positive value to show
        ax.set_xscale("log")
    else:
        _not_in_run(ax)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_xlabel("measured ratio (bar) and aim (black tick), log scale")
    ax.set_title("targets: held (green), missed (red)")


def _memory(ax: Any, memory: dict[str, Any]) -> None:
    figures: dict[str, Any] = memory.get("figures", {})

    def median(prefix: str) -> float | None:  # the worker's labels go on with its pool size
        return next((f["median"] for label, f in figures.items() if label.startswith(prefix)), None)

    pairs = []
    for name in ("bridge", "worker"):
        before, after = median(f"{name} before"), median(f"{name} after")
        if before is not None and after is not None:
            pairs.append((name, before, after))
    xs = range(len(pairs))
    ax.bar([x - 0.2 for x in xs], [b for _, b, _ in pairs], 0.4, label="before")
    ax.bar([x + 0.2 for x in xs], [a for _, _, a in pairs], 0.4, label="after")
    details = memory.get("details", {})
    names = {
        "bridge": f"bridge\n{details.get('bridge_events', 0):,} events",
        "worker": f"worker (main + pool)\n{details.get('worker_events', 0):,} jobs",
    }
    ax.set_xticks(list(xs), [names[n] for n, _, _ in pairs], fontsize=8)
    ax.set_ylabel("RSS, MB")
    ax.set_title("memory before and after")
    if pairs:
        ax.legend()
    else:
        _not_in_run(ax)


def _not_in_run(ax: Any) -> None:
    """An empty panel says so, instead of axes and a legend with nothing behind them."""
    ax.text(0.5, 0.5, "not in this run", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])
