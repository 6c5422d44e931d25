#!/usr/bin/env python3
"""What tracking costs (issues 3 and 11): the small-object churn with no
report (HAHALLOC_SUMMARY=0: no exit report and no call sites; sizes and
statistics are kept, as mem_lhihiks promises them), with the report but no
call sites (num-callers=0), with the default report (the call site, past
the runtime's and the standard library's frames), with 4 and with 12 frames
(valgrind's default); both on a minimal churn of its own and on issue 2's
churn (bench/churn, one thread, when built); and the same leak-finding run
under valgrind memcheck. The report is asked for with HAHALLOC_SUMMARY=1: a
bare LD_PRELOAD is a silent malloc. Runs are interleaved and repeated;
medians of wall time are compared.

The exit report's own time (the scan, addr2line: tens of milliseconds) is
in every report-on run; the churns run long enough that it stays small.

Then the exit scan itself: a program with 20 million live 16-byte blocks,
run under the hahalloc command (report on) and with HAHALLOC_SUMMARY=0: the
scan's time and memory as the JSON report gives them, and the peak RSS and
wall time of both runs.

usage: bench_tracking.py BUILD_DIR [STEPS] [REPEATS] [LIVE_BLOCKS]"""
import json, os, shutil, statistics, subprocess, sys, tempfile, time

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20000000  # long enough that the exit scan is noise
REPEATS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
LIVE = int(sys.argv[4]) if len(sys.argv) > 4 else 20000000
LIB = os.path.join(BUILD, "libhahalloc.so")
CHURN = os.path.join(BUILD, "tests", "leak", "churn")
base = {k: v for k, v in os.environ.items() if not k.startswith("HAHALLOC_") and k != "LD_PRELOAD"}
ON = {"LD_PRELOAD": LIB, "HAHALLOC_SUMMARY": "1", "HAHALLOC_OUTPUT": "/dev/null"}

CONFIGS = [
    ("glibc malloc (no hahalloc)", {}),
    ("hahalloc, HAHALLOC_SUMMARY=0", {"LD_PRELOAD": LIB, "HAHALLOC_SUMMARY": "0"}),
    ("hahalloc, report, num-callers=0", dict(ON, HAHALLOC_OPTIONS="num-callers=0")),
    ("hahalloc, default report", ON),
    ("hahalloc, report, num-callers=4", dict(ON, HAHALLOC_OPTIONS="num-callers=4")),
    ("hahalloc, report, num-callers=12", dict(ON, HAHALLOC_OPTIONS="num-callers=12")),
]


def timed(argv, env):
    t = time.perf_counter()
    subprocess.run(argv, env=dict(base, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t


def table(title, argv):
    times = {name: [] for name, _ in CONFIGS}
    for _ in range(REPEATS):
        for name, env in CONFIGS:
            times[name].append(timed(argv, env))
    med = {k: statistics.median(v) for k, v in times.items()}
    ref = med["hahalloc, HAHALLOC_SUMMARY=0"]
    print(f"{title}, median of {REPEATS} interleaved runs")
    print(f"{'configuration':<36} {'seconds':>8} {'vs SUMMARY=0':>13} {'median of ratios':>17}")
    for name, _ in CONFIGS:
        ratio = statistics.median(a / b for a, b in zip(times[name], times["hahalloc, HAHALLOC_SUMMARY=0"]))
        print(f"{name:<36} {med[name]:8.3f} {med[name] / ref:12.2f}x {ratio:16.2f}x")


table(f"small-object churn (tests/leak/churn.c), {STEPS} steps", [CHURN, str(STEPS)])
ISSUE2_CHURN = os.path.join(BUILD, "bench", "churn")
if os.path.exists(ISSUE2_CHURN):
    print()
    table("issue 2's churn (bench/churn threads=1 steps=16000000)",
          [ISSUE2_CHURN, "threads=1", "steps=16000000"])

if shutil.which("valgrind"):
    steps = max(STEPS // 20, 10000)
    h = statistics.median(timed([CHURN, str(steps)], ON) for _ in range(3))
    v = timed(["valgrind", "--leak-check=full", CHURN, str(steps)], {})
    print(f"\nleak-finding run ({steps} steps, leaks found at exit):")
    print(f"{'hahalloc default report':<36} {h:8.3f}")
    print(f"{'valgrind --leak-check=full':<36} {v:8.3f} {v / h:12.1f}x slower")


def run_rss(argv, env):
    t = time.perf_counter()
    p = subprocess.Popen(argv, env=dict(base, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t, ru.ru_maxrss


LIVE_PROG = os.path.join(BUILD, "tests", "leak", "live")
with tempfile.TemporaryDirectory() as d:
    out = os.path.join(d, "r.json")
    off = run_rss([LIVE_PROG, str(LIVE)], {"LD_PRELOAD": LIB, "HAHALLOC_SUMMARY": "0"})
    on = run_rss([os.path.join(BUILD, "hahalloc"), "--json", "--output=" + out, "--", LIVE_PROG, str(LIVE)], {})
    r = json.load(open(out))
    blocks = r["in_use"]["blocks"]
    print(f"\nexit scan of {blocks:,} live blocks (16 bytes each, all reachable):")
    print(f"  scan: {r['scan']['ms']} ms, {r['scan']['bytes'] / blocks:.1f} bytes of its own per block")
    print(f"  run without the report: {off[0]:.2f} s, peak RSS {off[1] / 1024:.0f} MiB")
    print(f"  run with the report:    {on[0]:.2f} s, peak RSS {on[1] / 1024:.0f} MiB "
          f"({on[1] / off[1]:.2f}x, {(on[1] - off[1]) * 1024 / blocks:.1f} bytes per block)")
