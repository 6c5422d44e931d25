"""mimalloc-bench's original programs as workloads of bench/run.py.

`make bench MIMALLOC_BENCH=DIR` (bench/run.py --mimalloc-bench DIR) runs the
programs of a checkout of github.com/daanx/mimalloc-bench whose benchmarks
were built by that project's own build (its bench/CMakeLists.txt, as its
README says; the programs land in DIR/out/bench). Nothing of mimalloc-bench
is in this repository: this module only knows the programs' names, the
arguments we give them on a 2-core machine, where their input files are, and
how to read the figure that the fixed-duration ones print.

The arguments follow mimalloc-bench's bench.sh (`procs` = the number of CPUs
here), scaled so that each run takes 1-5 s under glibc where the program has
a size argument. QUICK runs use smaller arguments and leave out the programs
that cannot be made short (no size argument, or seconds of built-in sleeps).

Time: most programs are timed by their wall time. larson, xmalloc-test,
rptest and glibc-thread run for a fixed time and print their throughput;
like bench.sh, we turn it into a "relative time" (larson and xmalloc-test
print it; rptest: 2e6 / memory ops per CPU second; glibc-thread: 1e9 /
iterations), lower is better.
"""
import os
import re

NPROC = max(1, os.cpu_count() or 1)
N = str(NPROC)

# The number bench.sh factors, and a shorter prefix of it for QUICK runs
# (cfrac's run time depends on the factors, not only on the length).
CFRAC_FULL = "17545186520507317056371138836327483792789528"
CFRAC_QUICK = "175451865205073170563711388363274"


def _w(name, prog, full, quick, desc, metric="wall", stdin=None, optional=False, why_not_quick=None):
    return {"name": name, "prog": prog, "full": full, "quick": quick, "desc": desc, "metric": metric,
            "stdin": stdin, "optional": optional, "why_not_quick": why_not_quick}


# Arguments may name inputs as "@espresso" (the input file; QUICK: its first
# 400 lines) or get them on stdin ("barnes": QUICK: 16,384 bodies, not 163,840).
WORKLOADS = [
    _w("cfrac", "cfrac", [CFRAC_FULL], [CFRAC_QUICK],
       "factors a 44-digit number by continued fractions: many small, short-lived big-number blocks (1 thread)"),
    _w("espresso", "espresso", ["@espresso"], ["@espresso"],
       "the espresso logic minimiser on largest.espresso: small blocks, many reallocs (1 thread)"),
    _w("barnes", "barnes", [], [], stdin="barnes",
       desc="Barnes-Hut n-body simulation (SPLASH-2), 163,840 bodies read from bench/barnes/input: few, long-lived "
            "allocations (1 thread)"),
    _w("alloc-test1", "alloc-test", ["1"], None,
       "alloc-test (CacheLib): random sizes 8 B-1 KiB in a random-replacement buffer, every block written (1 thread)",
       why_not_quick="no size argument: about 5 s a run"),
    _w("alloc-testN", "alloc-test", [N], None,
       "alloc-test on %s threads, each with its own buffer" % N, why_not_quick="no size argument: about 5-9 s a run"),
    _w("larsonN", "larson", ["2", "8", "1000", "5000", "100", "4141", N], ["1", "8", "1000", "5000", "100", "4141", N],
       "larson server simulation: %s threads replace random blocks of 8-1000 B, successor threads free their "
       "predecessors' blocks; 2 s, relative time from its throughput (plus 2.5 s of built-in sleep)" % N,
       metric="larson"),
    _w("larsonN-sized", "larson-sized", ["2", "8", "1000", "5000", "100", "4141", N], None,
       "larson built with C++ sized deallocation (operator delete with the size)", metric="larson",
       why_not_quick="the program of larsonN, with 2.5 s of built-in sleep"),
    _w("xmalloc-testN", "xmalloc-test", ["-w", N, "-t", "2", "-s", "64"], ["-w", N, "-t", "0.5", "-s", "64"],
       "xmalloc-test: %s threads only allocate 64 B blocks, %s threads only free them (remote frees); "
       "2 s, relative time from its frees per second" % (N, N), metric="xmalloc"),
    _w("cache-scratch1", "cache-scratch", ["1", "1000", "1", "2000000", N], None,
       "passive false sharing (Hoard): a thread frees a block from the main thread, then allocates and writes "
       "small blocks (1 thread)", why_not_quick="the same program as cache-scratchN"),
    _w("cache-scratchN", "cache-scratch", [N, "1000", "1", "2000000", N], [N, "1000", "1", "200000", N],
       "passive false sharing on %s threads" % N),
    _w("cache-thrash1", "cache-thrash", ["1", "1000", "1", "2000000", N], None,
       "active false sharing (Hoard): threads allocate and write 1-byte blocks (1 thread)",
       why_not_quick="the same program as cache-thrashN"),
    _w("cache-thrashN", "cache-thrash", [N, "1000", "1", "2000000", N], [N, "1000", "1", "200000", N],
       "active false sharing on %s threads" % N),
    _w("mstressN", "mstress", [N, "100", "200"], [N, "50", "10"],
       "mstress: rounds of %s short-lived threads allocate trees of blocks that migrate between threads "
       "through a shared array; 200 rounds at 100%% load" % N),
    _w("mleak", "mleak", ["25"], ["1"],
       "mleak: 10 threads at a time, created and destroyed 2,500 times, each leaks and frees random blocks "
       "(bench.sh's mleak10 is 5, 0.5 s here: too short for this machine's noise)"),
    _w("rptestN", "rptest", [N, "0", "1", "2", "500", "1000", "100", "8", "16000"], None,
       "rpmalloc's benchmark: %s threads, random sizes 8-16,000 B, cross-thread frees; relative time from its "
       "memory ops per CPU second (about 16 s a run, most of it built-in sleep)" % N, metric="rptest",
       why_not_quick="about 16 s of built-in sleep a run"),
    _w("malloc-large", "malloc-large", [], None,
       "2,000 blocks of 5-25 MiB, up to 20 live, each zeroed (std::make_unique<char[]>) (1 thread)",
       why_not_quick="no size argument: about 10 s a run"),
    _w("glibc-simple", "glibc-simple", [], None,
       "glibc's malloc benchmark: 2M malloc/free of 16 B in batches of 25-1600 blocks, one and two threads",
       why_not_quick="no size argument: about 3 s a run"),
    _w("glibc-thread", "glibc-thread", [N], None,
       "glibc's threaded malloc benchmark: %s threads, random sizes 4 B-32 KiB, 2 s; relative time from its "
       "iterations" % N, metric="glibc-thread", why_not_quick="a fixed 2 s run"),
    _w("sh6benchN", "sh6bench", [str(2 * NPROC)], None,
       "MicroQuill SmartHeap sh6bench, %d threads (its sources are downloaded by mimalloc-bench's "
       "build-bench-env.sh; run when built)" % (2 * NPROC), optional=True, why_not_quick="left out of QUICK runs"),
    _w("sh8benchN", "sh8bench", [str(2 * NPROC)], None,
       "MicroQuill SmartHeap sh8bench, %d threads (as sh6bench)" % (2 * NPROC), optional=True,
       why_not_quick="left out of QUICK runs"),
]

# The inputs, relative to the checkout's bench/ directory.
INPUTS = {"espresso": "espresso/largest.espresso", "barnes": "barnes/input"}


class Missing(Exception):
    pass


def _is_prog(path):
    return os.path.isfile(path) and os.access(path, os.X_OK)


def locate(directory):
    """(directory of the built programs, the checkout's bench/ directory).

    DIR may be the checkout (programs in DIR/out/bench, as mimalloc-bench's
    build puts them) or the build directory itself."""
    d = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(d):
        raise Missing("MIMALLOC_BENCH=%s: no such directory" % directory)
    probes = ("cfrac", "mstress", "larson")
    bindir = None
    for cand in (os.path.join(d, "out", "bench"), d, os.path.join(d, "build"), os.path.join(d, "out", "release")):
        if any(_is_prog(os.path.join(cand, p)) for p in probes):
            bindir = cand
            break
    if bindir is None:
        raise Missing("MIMALLOC_BENCH=%s: no built benchmark programs in %s (nor in the directory itself). "
                      "Build mimalloc-bench's benchmarks with its own build, as its README says "
                      "(its bench/CMakeLists.txt), then point MIMALLOC_BENCH at the checkout."
                      % (directory, os.path.join(d, "out", "bench")))
    srcdir = None
    cands = [os.path.join(d, "bench"), os.path.join(bindir, "..", "..", "bench")]
    cache = os.path.join(bindir, "CMakeCache.txt")
    if os.path.exists(cache):
        with open(cache, errors="replace") as f:
            for line in f:
                if line.startswith("CMAKE_HOME_DIRECTORY:"):
                    cands.insert(0, line.split("=", 1)[1].strip())
    for cand in cands:
        if os.path.exists(os.path.join(cand, INPUTS["barnes"])):
            srcdir = os.path.realpath(cand)
            break
    if srcdir is None:
        raise Missing("MIMALLOC_BENCH=%s: cannot find the checkout's bench/ directory (barnes and espresso "
                      "read their inputs from it)" % directory)
    return bindir, srcdir


def select(names, quick):
    """The workloads to run: (chosen, [(name, why left out)])."""
    chosen, left = [], []
    for w in WORKLOADS:
        if names and w["name"] not in names and w["prog"] not in names:
            continue
        if quick and w["quick"] is None:
            left.append((w["name"], w["why_not_quick"]))
            continue
        chosen.append(w)
    return chosen, left


def check(directory, work):
    """Locate the programs of `work`; returns (bindir, srcdir, runnable
    workloads, notes). Raises Missing when a required one is absent."""
    bindir, srcdir = locate(directory)
    runnable, notes, missing = [], [], []
    for w in work:
        if _is_prog(os.path.join(bindir, w["prog"])):
            runnable.append(w)
        elif w["optional"]:
            notes.append("%s: not built in %s (optional; its sources come from mimalloc-bench's "
                         "build-bench-env.sh)" % (w["name"], bindir))
        else:
            missing.append(w["prog"])
    if missing:
        raise Missing("MIMALLOC_BENCH: %s missing in %s. Build mimalloc-bench's benchmarks with its own build, "
                      "as its README says, or leave them out with BENCH_OPTS=--only=..."
                      % (", ".join(sorted(set(missing))), bindir))
    for key, rel in INPUTS.items():
        if any(w["prog"] == key for w in runnable) and not os.path.exists(os.path.join(srcdir, rel)):
            raise Missing("MIMALLOC_BENCH: input %s not found" % os.path.join(srcdir, rel))
    return bindir, srcdir, runnable, notes


def prepare(w, bindir, srcdir, scratch, quick):
    """argv, stdin path and shown arguments of one workload. QUICK inputs are
    written into `scratch` (a private directory of this run)."""
    args = list(w["quick"] if quick else w["full"])
    shown = list(args)
    for i, a in enumerate(args):
        if a == "@espresso":
            src = os.path.join(srcdir, INPUTS["espresso"])
            if quick:
                with open(src) as f:
                    lines = f.readlines()[:400]
                dst = os.path.join(scratch, "espresso-400.espresso")
                with open(dst, "w") as f:
                    f.writelines(lines)
                args[i], shown[i] = dst, "(first 400 lines of %s)" % INPUTS["espresso"]
            else:
                args[i], shown[i] = src, INPUTS["espresso"]
    stdin = None
    if w["stdin"] == "barnes":
        src = os.path.join(srcdir, INPUTS["barnes"])
        stdin = src
        shown.append("< " + INPUTS["barnes"])
        if quick:
            with open(src) as f:
                lines = f.read().split("\n")
            # one parameter a line, in the order barnes asks: the second is
            # the number of bodies
            if len(lines) > 1 and lines[1].strip().isdigit():
                lines[1] = "16384"
                stdin = os.path.join(scratch, "barnes-16k.input")
                with open(stdin, "w") as f:
                    f.write("\n".join(lines))
                shown[-1] = "< %s with 16384 bodies" % INPUTS["barnes"]
    return [os.path.join(bindir, w["prog"])] + args, stdin, shown


_PATTERNS = {
    "larson": (re.compile(r"relative time:\s*([0-9.]+)"), lambda v: v),
    "xmalloc": (re.compile(r"rtime:\s*([0-9.]+)"), lambda v: v),
    "rptest": (re.compile(r"\.\.\.([0-9]+) memory ops"), lambda v: 2e6 / v if v > 0 else None),
    "glibc-thread": (re.compile(r"([0-9.]+) iterations"), lambda v: 1e9 / v if v > 0 else None),
}


def metric(w, out, wall):
    """The time of one run: its wall time, or the relative time that a
    fixed-duration program's output gives; None when the output lacks it."""
    if w["metric"] == "wall":
        return wall
    pat, conv = _PATTERNS[w["metric"]]
    m = pat.search(out)
    if not m:
        return None
    try:
        return conv(float(m.group(1)))
    except (ValueError, ZeroDivisionError):
        return None
