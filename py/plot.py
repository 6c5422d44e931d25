#!/usr/bin/python3
"""Draw the benchmark plots from build/bench/results.json (bench/run.py).

  py/plot.py [results.json] [--out DIR]

The plots go to build/bench/img unless --out says otherwise. The committed
plots (py/img) are written only from a full run of every workload
(results.json says "publishable"): `make bench` without QUICK, or
`make bench-docs`.

Writes the seed README's five plots (single_alloc, single_calloc,
multiple_alloc_fixed_size, multiple_alloc_random_size, re_alloc: median time
against the swept parameter, one line per allocator) and summary.png (median
time and peak RSS of every workload relative to mimalloc, one bar per
allocator at the median of the per-repetition ratios, error bars from their
min to their max, with the geometric mean) for our workloads, and
mimalloc-bench.png, the same for mimalloc-bench's programs.
"""
import argparse
import json
import math
import os
import statistics
import sys

import matplotlib

sys.dont_write_bytecode = True  # plot.py may import bench/run.py
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STYLE = {
    "hahalloc": dict(color="#d62728", lw=2.4, marker="o", ms=4),
    "hahalloc-report": dict(color="#9467bd", lw=1.6, ls="-.", marker="o", ms=3),
    "hahalloc-nosummary": dict(color="#ff9896", lw=1.6, ls="--", marker="o", ms=3),
    "glibc": dict(color="#222222", lw=1.6, marker="s", ms=3),
    "mimalloc": dict(color="#1f77b4", lw=1.6, marker="^", ms=3),
    "jemalloc": dict(color="#2ca02c", lw=1.6, marker="v", ms=3),
    "tcmalloc": dict(color="#ff7f0e", lw=1.6, marker="D", ms=3),
}


def human_bytes(v, _pos=None):
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if v >= div:
            q = v / div
            return ("%d %s" % (q, unit)) if q == int(q) else ("%.1f %s" % (q, unit))
    return "%d B" % v


def arg(w, key, default):
    for a in w["args"]:
        if a.startswith(key + "="):
            return a.split("=", 1)[1]
    return default


def seed_plots(data, outdir):
    workloads = {w["name"]: w for w in data["workloads"]}
    mode = data["mode"]
    specs = {
        "seed-alloc": ("single_alloc.png",
                       lambda w: "%s mallocs of one size, then their frees" % pow2(int(arg(w, "count", "32768"))),
                       "block size", "time per %s malloc + free (ms)", "count", "32768", True),
        "seed-calloc": ("single_calloc.png",
                        lambda w: "%s callocs of one size, then their frees" % pow2(int(arg(w, "count", "32"))),
                        "block size", "time per %s calloc + free (ms)", "count", "32", True),
        "seed-fixed": ("multiple_alloc_fixed_size.png",
                       lambda w: "%s random malloc/free steps of 1 MiB, buffer of x slots (x/2 live)"
                       % pow2(int(arg(w, "ops", "1048576"))),
                       "x (buffer slots; about x/2 blocks live)", "time for %s steps (ms)", "ops", "1048576", False),
        "seed-random": ("multiple_alloc_random_size.png",
                        lambda w: "%s random malloc/free steps, sizes 8 B-1 MiB, buffer of x slots (x/2 live)"
                        % pow2(int(arg(w, "ops", "1048576"))),
                        "x (buffer slots; about x/2 blocks live)", "time for %s steps (ms)", "ops", "1048576", False),
        "seed-realloc": ("re_alloc.png",
                         lambda w: "%s blocks grown by realloc from 16 B to S (x1.25 steps), then shrunk back"
                         % arg(w, "blocks", "16"),
                         "S (largest size reached)", "time per grow + shrink cycle (ms)%s", None, None, True),
    }
    written = []
    for name, (fname, title, xlabel, ylabel, key, default, bytes_axis) in specs.items():
        if name not in workloads:
            continue
        w = workloads[name]
        fig, ax = plt.subplots(figsize=(9.5, 5))
        any_line = False
        for col in data["columns"]:
            samples = data["samples"][name].get(col, [])
            if not samples:
                continue
            xs = sorted({float(x) for s in samples for x in s["points"]})
            ys = []
            for x in xs:
                vals = [s["points"][k] for s in samples for k in s["points"] if float(k) == x]
                ys.append(statistics.median(vals) * 1e3)
            ax.plot(xs, ys, label=col, **STYLE.get(col, {}))
            any_line = True
        if not any_line:
            plt.close(fig)
            continue
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if bytes_axis:
            ax.xaxis.set_major_formatter(FuncFormatter(human_bytes))
        else:
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: "%d" % v))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel % (pow2(int(arg(w, key, default))) if key else ""))
        ax.set_title("%s\n(median of %d runs, %s mode; lower is better)" % (title(w), data["reps"], mode),
                     fontsize=10)
        ax.grid(True, which="major", alpha=0.35)
        ax.grid(True, which="minor", alpha=0.12)
        ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        path = os.path.join(outdir, fname)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def pow2(n):
    if n > 0 and n & (n - 1) == 0:
        return "2^%d" % (n.bit_length() - 1)
    return str(n)


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def summary_chart(data, outdir, group, fname, what):
    """Time and peak RSS of every workload of `group` relative to the base
    (mimalloc): bars at the median of the per-repetition ratios, error bars
    from their min to their max; the geometric mean last, its error bar the
    range of the per-repetition geometric means. A column that failed a
    workload gets an x on the axis instead of a bar."""
    base = data["base"]
    cols = [c for c in data["columns"] if c != base]
    names = [w["name"] for w in data["workloads"] if (w["group"] == "mimalloc-bench") == (group == "mimalloc-bench")]
    if not names:
        return None
    failures = {tuple(k.split("/", 1)) for k in data.get("failures", {})}
    fig, axes = plt.subplots(2, 1, figsize=(max(9, 1.0 + 0.75 * (len(names) + 1) * max(1, len(cols)) / 5), 10),
                             sharex=True)
    groups = names + ["geometric\nmean"]
    width = 0.84 / len(cols)
    for ax, (kind, label) in zip(axes, (("time", "time"), ("rss", "peak RSS"))):
        lo_all, hi_all = [], []
        for i, c in enumerate(cols):
            xs, ys, err_lo, err_hi, fx = [], [], [], [], []
            for g, n in enumerate(groups):
                st = data["geomeans"][group][c][kind] if g == len(names) else data["ratios"][n][c][kind]
                x = g + (i - (len(cols) - 1) / 2) * width
                if not st:
                    if g < len(names) and ((n, c) in failures or (n, base) in failures):
                        fx.append(x)
                    continue
                xs.append(x)
                ys.append(st[0])
                err_lo.append(max(0.0, st[0] - st[1]))
                err_hi.append(max(0.0, st[2] - st[0]))
                lo_all.append(st[1])
                hi_all.append(st[2])
            style = STYLE.get(c, {})
            ax.bar(xs, ys, width=width, label=c, color=style.get("color"), edgecolor="white", linewidth=0.3,
                   hatch=style.get("hatch"), yerr=[err_lo, err_hi], error_kw=dict(lw=0.8, capsize=1.5,
                                                                                  ecolor="#333333"))
            if fx:
                ax.plot(fx, [1.0] * len(fx), ls="", marker="x", ms=8, mew=2, color=style.get("color"))
        ax.axhline(1.0, color="#1f77b4", lw=1, ls=":")
        ax.axvline(len(names) - 0.5, color="#999999", lw=0.8)
        ax.set_yscale("log")
        if lo_all and hi_all:
            ax.set_ylim(min(0.8, min(lo_all) / 1.3), max(1.25, max(hi_all) * 1.3))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: "%gx" % v))
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _p: ""))
        ax.set_ylabel("%s relative to %s\n(log scale, lower is better)" % (label, base))
        ax.grid(True, axis="y", which="both", alpha=0.25)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=35, ha="right", fontsize=9)
    axes[0].legend(ncol=min(len(cols), 6), fontsize=9, loc="upper left")
    m = data["machine"]
    reps = data.get("reps_mimalloc_bench") if group == "mimalloc-bench" else data["reps"]
    fig.suptitle("%s: hahalloc commit %s, %s\nmedian of %s interleaved runs per workload (%s mode), error bars "
                 "min-max of the per-run ratios; x: the column (or %s) failed\n%s, %s cores, %s" % (
                     what, m.get("hahalloc_commit", "?") + (
                         " (library sources of %s)" % m["hahalloc_src_commit"]
                         if m.get("hahalloc_src_commit") not in (None, "", m.get("hahalloc_commit")) else ""),
                     m.get("date", ""), reps or data["reps"], data["mode"],
                     base, m.get("cpu", ""), m.get("nproc", ""), m.get("glibc", "")), fontsize=10)
    fig.tight_layout()
    path = os.path.join(outdir, fname)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("results", nargs="?", default=os.path.join(ROOT, "build", "bench", "results.json"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "img"))
    args = ap.parse_args()
    try:
        with open(args.results) as f:
            data = json.load(f)
    except OSError as e:
        sys.exit("plot.py: %s (run bench/run.py first)" % e)
    if data.get("mode") == "smoke":
        sys.exit("plot.py: smoke results are not plotted")
    committed = os.path.realpath(os.path.join(HERE, "img"))
    if os.path.realpath(args.out) == committed and not data.get("publishable"):
        args.out = os.path.join(ROOT, "build", "bench", "img")
        print("plot.py: a %s or partial run: plots go to %s, py/img is left as it is" % (
            data.get("mode"), os.path.relpath(args.out, ROOT)))
    os.makedirs(args.out, exist_ok=True)
    # the ratios, as bench/run.py computes them for the tables
    sys.path.insert(0, os.path.join(ROOT, "bench"))
    import run  # noqa: E402
    run.compute(data)
    written = seed_plots(data, args.out)
    for group, fname, what in (("mimalloc-bench", "mimalloc-bench.png", "mimalloc-bench's programs"),
                               ("ours", "summary.png", "our workloads")):
        path = summary_chart(data, args.out, group, fname, what)
        if path:
            written.append(path)
    print("wrote " + " ".join(os.path.relpath(p, ROOT) for p in written))


if __name__ == "__main__":
    main()
