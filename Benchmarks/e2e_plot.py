"""Latency CDF plot for Benchmarks/e2e.py: sockperf's per-message samples of each mode drawn as
one cumulative distribution per path, written as a self-contained SVG (no plotting library to
install; any browser shows it).

sockperf ping-pong's "latency" is half the round trip (its own convention); the plot says so.
"""

import math

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def read_sockperf_full_log(path):
    """The latency column (µs) of a `sockperf ping-pong --full-log` file, in send order."""
    samples = []
    with open(path) as log:
        in_table = False
        for line in log:
            if line.startswith("packet,"):
                in_table = True
                continue
            if not in_table:
                continue
            fields = line.split(",")
            if len(fields) != 4:
                in_table = False  # the closing rule line
                continue
            try:
                samples.append(float(fields[3]))
            except ValueError:
                in_table = False
    return samples


def quantile(ordered, q):
    """The q-quantile (0 ≤ q ≤ 1) of an ascending list, nearest rank."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def write_cdf_svg(path, samples_by_mode, title, upper_quantile=0.999):
    """Two panels over one x axis (latency µs, log scale): the CDF (fraction of messages at or
    below x) and, under it, the tail (fraction above x, log scale down to 1e-4) where p99 and
    beyond can be read. Drawn up to the largest mode's `upper_quantile`, so a few
    multi-millisecond outliers do not squash the part that matters; each legend entry gives the
    mode's p50/p99 over all its messages and their count."""
    width, height = 880, 760
    left, right, top = 70, 250, 40
    cdf_h, gap, tail_h, bottom = 330, 40, 270, 60
    plot_w = width - left - right
    tail_top = top + cdf_h + gap
    ordered = {mode: sorted(s) for mode, s in samples_by_mode.items() if s}
    if not ordered:
        raise ValueError("no samples to plot")
    low = max(min(s[0] for s in ordered.values()) * 0.9, 0.1)
    high = max(max(quantile(s, upper_quantile) for s in ordered.values()) * 1.5, low * 2)
    log_low, log_high = math.log10(low), math.log10(high)
    tail_decades = 4  # 1 … 1e-4

    def x_of(value):
        value = min(max(value, low), high)
        return left + (math.log10(value) - log_low) / (log_high - log_low) * plot_w

    def y_cdf(fraction):
        return top + (1 - fraction) * cdf_h

    def y_tail(fraction_above):
        exponent = min(max(-math.log10(max(fraction_above, 10 ** -tail_decades)), 0), tail_decades)
        return tail_top + exponent / tail_decades * tail_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15">{escape(title)}</text>']
    # x grid: 1-2-5 per decade (every integer step when the range is narrower), on both panels.
    steps_per_decade = (1, 2, 5) if log_high - log_low > 1.2 else range(1, 10)
    tick = 10 ** math.floor(log_low)
    while tick <= high:
        for step in steps_per_decade:
            value = tick * step
            if low <= value <= high:
                x = x_of(value)
                for y0, h in ((top, cdf_h), (tail_top, tail_h)):
                    out.append(f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + h}" stroke="#ddd"/>')
                out.append(f'<text x="{x:.1f}" y="{tail_top + tail_h + 16}" text-anchor="middle">{value:g}</text>')
        tick *= 10
    for tenth in range(11):
        y = y_cdf(tenth / 10)
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tenth / 10:.1f}</text>')
    for decade in range(tail_decades + 1):
        y = y_tail(10 ** -decade)
        label = ("1", "0.1", "0.01", "0.001", "0.0001")[decade]
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for y0, h in ((top, cdf_h), (tail_top, tail_h)):
        out.append(f'<rect x="{left}" y="{y0}" width="{plot_w}" height="{h}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 18}" text-anchor="middle">'
               f'sockperf ping-pong latency (half the round trip), µs, log scale</text>')
    out.append(f'<text transform="translate(18,{top + cdf_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'fraction of messages at or below</text>')
    out.append(f'<text transform="translate(18,{tail_top + tail_h / 2:.1f}) rotate(-90)" text-anchor="middle">'
               f'fraction above (tail, log)</text>')
    for index, (mode, samples) in enumerate(ordered.items()):
        colour = COLOURS[index % len(COLOURS)]
        count = len(samples)
        # At most ~600 points per curve and panel: quantiles at even steps of the CDF's linear
        # scale and of the tail's log scale (down to one message above).
        steps = min(count, 600)
        cdf_points, tail_points = [], []
        for k in range(steps + 1):
            fraction = k / steps
            value = quantile(samples, fraction) if k else samples[0]
            if value > high:
                break
            cdf_points.append(f"{x_of(value):.1f},{y_cdf(fraction):.1f}")
        for k in range(601):
            above = 10 ** (-tail_decades * k / 600)  # 1 … 1e-4 on a log scale
            value = quantile(samples, 1 - above) if above < 1 else samples[0]
            if value > high or above * count < 1:
                break
            tail_points.append(f"{x_of(value):.1f},{y_tail(above):.1f}")
        for points in (cdf_points, tail_points):
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{" ".join(points)}"/>')
        legend_y = top + 10 + index * 36
        out.append(f'<line x1="{left + plot_w + 14}" y1="{legend_y}" x2="{left + plot_w + 40}" y2="{legend_y}" '
                   f'stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{left + plot_w + 46}" y="{legend_y + 4}">{escape(mode)}</text>')
        out.append(f'<text x="{left + plot_w + 46}" y="{legend_y + 18}" fill="#555">'
                   f'p50 {quantile(samples, 0.5):.1f} p99 {quantile(samples, 0.99):.1f} n={count}</text>')
    out.append("</svg>")
    with open(path, "w") as svg:
        svg.write("\n".join(out) + "\n")


def escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
