"""The PNG chart of a run: throughputs, latency percentiles and scale-out, cores in the title."""

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
    fig, (ax_rate, ax_lat, ax_scale) = plt.subplots(
        1, 3, figsize=(18, 6), gridspec_kw={"width_ratios": [1.4, 1, 1]}
    )

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
    ax_rate.set_xscale("log")
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
    for offset, (side, colour) in enumerate(sides):
        values = [figures.get(f"{side} {p}", {}).get("median", 0.0) for p in pcts]
        xs = [i + offset * 0.27 for i in range(len(pcts))]
        ax_lat.bar(xs, values, width=0.27, label=side, color=colour)
    rate = measurements.get("latency", {}).get("details", {}).get("offered_rate_per_s", 0)
    ax_lat.set_xticks([i + 0.27 for i in range(len(pcts))], pcts)
    ax_lat.set_yscale("log")
    ax_lat.set_ylabel("ms (median of repetitions), log scale")
    ax_lat.set_title(f"latency at {rate:,.0f}/s offered (half capacity)")
    ax_lat.legend()

    scale = measurements.get("scale_out", {})
    levels = scale.get("details", {}).get("levels", [])
    if levels:
        sleep_s = scale["details"]["sleep_seconds"]
        by_label = scale["figures"]
        rates = [by_label[f"{n} worker process{'es' if n > 1 else ''}"]["median"] for n in levels]
        ax_scale.plot(levels, rates, "o-", label="measured")
        ax_scale.plot(levels, [n / sleep_s for n in levels], "--", color="grey", label="ideal")
        ax_scale.set_xticks(levels)
    ax_scale.set_xlabel("worker processes (one partition)")
    ax_scale.set_ylabel("sleep(100 ms) jobs per second")
    ax_scale.set_title("scale-out")
    ax_scale.legend()

    fig.suptitle(
        f"jobexec benchmark ({data['profile']['name']}) on {machine['cores']} cores, "
        f"{machine['cpu']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
