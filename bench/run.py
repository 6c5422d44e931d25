#!/usr/bin/python3
"""Run the hahalloc benchmarks against glibc, mimalloc, jemalloc and tcmalloc.

Two sets of workloads, each in its own tables:
- mimalloc-bench's original programs (cfrac, espresso, barnes, larson,
  xmalloc-test, mstress, ...), when a checkout whose benchmarks were built by
  mimalloc-bench's own build is given: --mimalloc-bench DIR, or
  `make bench MIMALLOC_BENCH=DIR` (see bench/mbench.py);
- our own programs in build/bench/ (issue 2's churn, the seed's five
  scenarios, and `-like` versions of some of mimalloc-bench's programs).

No program is linked to hahalloc: each allocator is injected with LD_PRELOAD
(glibc is the program with no preload), so the same binary runs under all of
them. Columns (--columns, --add-columns):
  hahalloc            LD_PRELOAD=build/libhahalloc.so and no HAHALLOC_*
                      variable: the drop-in default
  hahalloc-report     the program run by `build/hahalloc --`: the leak-report
                      command's default
  hahalloc-nosummary  LD_PRELOAD with HAHALLOC_SUMMARY=0 (not run by default)
  glibc, mimalloc, jemalloc, tcmalloc (Debian packages)
  NAME=PATH           LD_PRELOAD=PATH, named NAME: another build of hahalloc
                      (an earlier commit, say) side by side with this one
  NAME=PATH:VAR=VAL   the same, with VAR=VAL in its environment (as many as
                      needed): HAHALLOC_SUMMARY=0 gives a build older than
                      issue 5's policy the silent drop-in of today
For each workload the columns run interleaved (A B C D E F, then B C D E F A,
...), several repetitions; a run's time is its wall time (or, for the
fixed-duration programs, the relative time they print) and its peak RSS is
the child's (getrusage through wait4). Ratios to mimalloc are medians of the
ratios within one repetition, with their min-max as the spread.

Writes build/bench/results.json (every sample) and build/bench/BENCHMARKS.md,
and prints the tables. With --write-docs, a full run of every workload also
writes docs/BENCHMARKS.md and the summary paragraph of README.md; QUICK,
smoke and partial runs never touch them. py/plot.py draws the plots.

  bench/run.py [--quick] [--smoke] [--reps N] [--only w1,w2] [--write-docs]
               [--mimalloc-bench DIR] [--columns a,b] [--add-columns a,b]
               [--check] [--report-only]
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mbench  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bench")
HAHALLOC = os.path.join(ROOT, "build", "libhahalloc.so")
TOOL = os.path.join(ROOT, "build", "hahalloc")
LAUNCH = os.path.join(BIN, "launch")
MB = "mimalloc-bench"

# Our own workloads: name, group, program, full args, quick args, description.
# Those named `-like` are our versions of mimalloc-bench programs of that name.
OURS = [
    ("churn1", "issue2", "churn", ["threads=1", "steps=16000000"], ["threads=1", "steps=3000000"],
     "single-thread small-object churn: 4096 slots, 8-128 B (tail to 32 KiB), one random block replaced per step"),
    ("churn2", "issue2", "churn", ["threads=2", "steps=16000000"], ["threads=2", "steps=3000000"],
     "the same churn on 2 threads, each with its own working set"),
    ("prodcons", "issue2", "prodcons", ["items=2000000"], ["items=500000"],
     "cross-thread producer/consumer: 1 producer allocates, hands blocks through a ring, 1 consumer frees"),
    ("prodcons-hold", "field", "prodcons", ["items=2000000", "hold=8000000"], ["items=500000", "hold=2000000"],
     "the producer/consumer beside 8 million 16-64 B blocks the producer holds (a server's heap beside its traffic)"),
    ("seed-alloc", "seed", "seed", ["mode=alloc"], ["mode=alloc", "count=4096", "reps=1"],
     "seed 1: 2^15 mallocs (then frees) of one size, sizes 8 B-32 KiB"),
    ("seed-calloc", "seed", "seed", ["mode=calloc"], ["mode=calloc", "reps=1", "max=4M"],
     "seed 2: 2^5 callocs (then frees) of one size, sizes 1 KiB-16 MiB"),
    ("seed-fixed", "seed", "seed", ["mode=fixed", "ops=131072"], ["mode=fixed", "ops=8192"],
     "seed 3: random malloc/free of 1 MiB over a buffer of x slots (x/2 live), x = 2-1024"),
    ("seed-random", "seed", "seed", ["mode=random", "ops=262144"], ["mode=random", "ops=16384"],
     "seed 4: the same with sizes log-uniform 8 B-1 MiB"),
    ("seed-realloc", "seed", "seed", ["mode=realloc", "reps=8"], ["mode=realloc", "reps=1", "max=1M"],
     "seed 5: 16 blocks grown by realloc 16 B -> S (x1.25 steps) and shrunk back, S = 64 B-4 MiB"),
    ("larson-like", "field", "larson", ["slots=5000", "ops=100000", "gens=100"],
     ["slots=5000", "ops=100000", "gens=10"],
     "larson-like server: 2 thread chains, successors free their predecessors' blocks, 8-1000 B"),
    ("xmalloc-like", "field", "xmalloc", ["items=8000000"], ["items=2000000"],
     "xmalloc-test-like: 2 producers only allocate, 2 consumers only free (batches of 256), 16-128 B"),
    ("mstress-like", "field", "mstress", ["iters=80"], ["iters=8"],
     "mstress-like: 4 threads per round, created and destroyed 80 times, objects migrate through a shared array"),
    ("cache-scratch-like", "field", "cache", ["mode=scratch", "iters=1000", "reps=60000"],
     ["mode=scratch", "iters=400", "reps=50000"],
     "passive false sharing: 2 threads free an object from the main thread, then write small objects"),
    ("cache-thrash-like", "field", "cache", ["mode=thrash", "iters=1000", "reps=60000"],
     ["mode=thrash", "iters=400", "reps=50000"],
     "active false sharing: 2 threads allocate and write 8-byte objects"),
    ("alloctest1-like", "field", "alloctest", ["threads=1", "steps=16000000"], ["threads=1", "steps=4000000"],
     "alloc-test-like: Pareto sizes 8 B-1 KiB, 16384 slots, 1 thread"),
    ("alloctestN-like", "field", "alloctest", ["threads=2", "steps=16000000"], ["threads=2", "steps=4000000"],
     "alloc-test-like on 2 threads"),
    ("cfrac-like", "field", "cfrac", ["dmax=20000"], ["dmax=5000"],
     "cfrac-like: continued fractions of sqrt(D) with heap big numbers, every convergent verified"),
    ("trees", "field", "trees", ["depth=15"], ["depth=13"],
     "binary trees: a long-lived tree and many short-lived ones, 24 B nodes + 8-64 B labels"),
    ("large", "field", "large", ["steps=200"], ["steps=10"],
     "large blocks: 1-32 MiB, 4 live, every page written, every 8th grown by realloc"),
    ("hold", "field", "hold", ["count=24000000"], ["count=3000000"],
     "a large heap: 24 million blocks of 16-64 B built up by one thread, held, then freed (about 1 GiB)"),
    ("rebuild", "field", "hold", ["count=4000000", "rounds=12"], ["count=1000000", "rounds=4"],
     "4 million blocks of 16-64 B built and freed 12 times over (a batch program's rounds)"),
    ("startup", "field", "startup", ["count=2000"], ["count=100"],
     "process start-up: coreutils' true run 2000 times, each loading the allocator (a script's or a build's cost)"),
]
ISSUE2 = ["churn1", "churn2", "prodcons"]
ISSUE2_REPS = 11
SMOKE_ARGS = {  # even smaller than QUICK, for `make bench-smoke`
    "churn1": ["threads=1", "steps=100000"], "churn2": ["threads=2", "steps=100000"],
    "prodcons": ["items=20000"], "seed-alloc": ["mode=alloc", "count=256", "reps=1"],
    "seed-calloc": ["mode=calloc", "reps=1", "max=4M"], "seed-fixed": ["mode=fixed", "ops=1024"],
    "seed-random": ["mode=random", "ops=1024"], "seed-realloc": ["mode=realloc", "reps=1", "max=1M"],
    "larson-like": ["slots=500", "ops=2000", "gens=4"], "xmalloc-like": ["items=20000"],
    "mstress-like": ["iters=3", "steps=5000"], "cache-scratch-like": ["mode=scratch", "iters=10", "reps=100"],
    "cache-thrash-like": ["mode=thrash", "iters=10", "reps=100"], "alloctest1-like": ["threads=1", "steps=50000"],
    "alloctestN-like": ["threads=2", "steps=50000"], "cfrac-like": ["dmax=100"], "trees": ["depth=8"],
    "large": ["steps=8"], "startup": ["count=20"], "hold": ["count=20000"], "rebuild": ["count=20000", "rounds=2"], "prodcons-hold": ["items=20000", "hold=20000"],
}

# (column, Debian package, library file name)
PEERS = [
    ("mimalloc", "libmimalloc2.0", "libmimalloc.so.2"),
    ("jemalloc", "libjemalloc2", "libjemalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
]
HAHALLOC_COLUMNS = {
    "hahalloc": "LD_PRELOAD=libhahalloc.so, no HAHALLOC_* variable (the drop-in default)",
    "hahalloc-report": "run by `hahalloc --` (the leak-report command's default)",
    "hahalloc-nosummary": "LD_PRELOAD=libhahalloc.so with HAHALLOC_SUMMARY=0",
}
ORDER = ["hahalloc", "hahalloc-report", "hahalloc-nosummary", "glibc", "mimalloc", "jemalloc", "tcmalloc"]
DEFAULT_COLUMNS = ["hahalloc", "hahalloc-report", "glibc", "mimalloc", "jemalloc", "tcmalloc"]
BASE = "mimalloc"
extra_desc = {}  # NAME=PATH columns: NAME -> what it is


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:
        return ""


def find_peer(package, soname):
    """The library's path from `dpkg -L package`, or None if not installed."""
    out = sh("dpkg -L %s 2>/dev/null" % package)
    paths = [p for p in out.splitlines() if os.path.basename(p) == soname and os.path.exists(p)]
    if paths:
        return sorted(paths, key=len)[0]
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"):
        if sh("dpkg-query -W -f='${Status}' %s 2>/dev/null" % package).endswith("installed") \
                and os.path.exists(os.path.join(d, soname)):
            return os.path.join(d, soname)
    return None


def columns(names, external_only=False):
    """Ordered {column: (preload or None, extra env, argv prefix)} and a list
    of what is missing (external_only: not hahalloc, which make builds)."""
    cols, missing = {}, []
    for name in names:
        if name in HAHALLOC_COLUMNS:
            if external_only:
                cols[name] = (HAHALLOC, {}, [])
            elif not os.path.exists(HAHALLOC):
                missing.append("%s: %s not found (run `make lib`)" % (name, HAHALLOC))
            elif name == "hahalloc":
                cols[name] = (HAHALLOC, {}, [])
            elif name == "hahalloc-nosummary":
                cols[name] = (HAHALLOC, {"HAHALLOC_SUMMARY": "0"}, [])
            elif not os.access(TOOL, os.X_OK):
                missing.append("%s: %s not found (run `make lib`)" % (name, TOOL))
            else:
                cols[name] = (None, {}, [TOOL, "--"])
        elif "=" in name:
            label, spec = name.split("=", 1)
            path, *settings = spec.split(":")
            if label in ORDER:
                sys.exit("column %s: %s is taken by a built-in column" % (name, label))
            if any("=" not in s for s in settings):
                sys.exit("column %s: after the path, only VAR=VAL settings (separated by ':')" % name)
            env = dict(s.split("=", 1) for s in settings)
            if os.path.exists(path):
                cols[label] = (os.path.abspath(path), env, [])
                rev = sh("git -C %s rev-parse --short HEAD 2>/dev/null" % shlex.quote(os.path.dirname(os.path.abspath(path))))
                extra_desc[label] = "%sLD_PRELOAD=%s%s" % ("".join("%s=%s " % kv for kv in env.items()), os.path.abspath(path),
                                                         " (a build of commit %s)" % rev if rev else "")
            else:
                missing.append("%s: %s not found" % (label, path))
        elif name == "glibc":
            cols[name] = (None, {}, [])
        else:
            peer = [p for p in PEERS if p[0] == name]
            if not peer:
                sys.exit("unknown column %s (known: %s)" % (name, ", ".join(ORDER)))
            path = find_peer(peer[0][1], peer[0][2])
            if path:
                cols[name] = (path, {}, [])
            else:
                missing.append("%s: Debian package %s is not installed (apt-get install %s)" % (
                    name, peer[0][1], peer[0][1]))
    return {k: cols[k] for k in ORDER + sorted(extra_desc) if k in cols}, missing


def child_env(preload, extra):
    env = dict(os.environ)
    for k in list(env):
        if k in ("LD_PRELOAD", "BENCH_PRELOAD") or k.startswith("HAHALLOC_") or k.startswith("MALLOC_") \
                or k.startswith("MIMALLOC_") or k.startswith("JEMALLOC_") or k.startswith("TCMALLOC_"):
            del env[k]
    # build/bench/launch moves BENCH_PRELOAD to LD_PRELOAD in the child only
    env["BENCH_PRELOAD"] = preload or ""
    env.update(extra)
    return env


def run_once(argv, env, timeout, stdin_path=None, cwd=None, stderr_path=os.devnull):
    """Run argv through build/bench/launch; returns dict(wall, rss_kib, status, out, timed_out)."""
    with tempfile.TemporaryFile(mode="w+", errors="replace") as out, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".res") as res, \
            open(stderr_path, "w") as err, \
            open(stdin_path or os.devnull, "rb") as inp:
        subprocess.run([LAUNCH, res.name, str(max(1, int(math.ceil(timeout))))] + argv,
                       env=env, stdout=out, stderr=err, stdin=inp, cwd=cwd)
        out.seek(0)
        text = out.read()
        fields = res.read().split()
    if len(fields) != 4:
        return {"wall": 0.0, "rss_kib": 0, "status": 127 << 8, "out": text, "timed_out": False}
    return {"wall": float(fields[0]), "rss_kib": int(fields[1]), "status": int(fields[2]),
            "out": text, "timed_out": fields[3] == "1"}


def describe_status(r, w):
    if r["timed_out"]:
        return "TIMEOUT"
    st = r["status"]
    if os.WIFSIGNALED(st):
        sig = os.WTERMSIG(st)
        try:
            return "CRASH (%s)" % signal.Signals(sig).name
        except ValueError:
            return "CRASH (signal %d)" % sig
    code = os.WEXITSTATUS(st)
    if code != 0:
        fail = [l for l in r["out"].splitlines() if l.startswith("FAIL")]
        return "EXIT %d%s" % (code, (": " + fail[0]) if fail else "")
    if w["group"] == MB:
        if mbench.metric(w["mb"], r["out"], r["wall"]) is None:
            return "NO RESULT"
    elif not any(l.startswith("ok ") for l in r["out"].splitlines()):
        return "NO RESULT"
    return None


def parse_points(text):
    pts = {}
    for line in text.splitlines():
        if line.startswith("point "):
            _, x, t = line.split()
            pts[x] = float(t)
    return pts


def median(xs):
    return statistics.median(xs) if xs else None


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


# ---- statistics -----------------------------------------------------------

def paired(samples, w, a, b, key, failed=frozenset()):
    """Ratios a/b of one workload, one per repetition that both completed:
    the columns of a repetition run back to back under the same load, so
    pairing them cancels most of the machine's drift. None at all when
    either column failed the workload in any repetition: a failure is shown
    as one, not as the median of the runs that went through."""
    if (w, a) in failed or (w, b) in failed:
        return {}
    sa = {s["rep"]: s for s in samples[w].get(a, [])}
    sb = {s["rep"]: s for s in samples[w].get(b, [])}
    return {r: sa[r][key] / sb[r][key] for r in sorted(sa) if r in sb and sb[r][key] > 0 and sa[r][key] > 0}


def ratio_stats(samples, w, a, b, key, failed=frozenset()):
    """[median, min, max, n] of the per-repetition ratios a/b, or None."""
    rs = list(paired(samples, w, a, b, key, failed).values())
    if not rs:
        return None
    return [median(rs), min(rs), max(rs), len(rs)]


def geomean_stats(samples, names, a, b, key, failed=frozenset()):
    """Geometric mean over `names` of the median ratios a/b, with the range
    of the per-repetition geometric means (repetition r of every workload);
    also how many workloads it covers (failed ones are left out)."""
    per = {w: paired(samples, w, a, b, key, failed) for w in names}
    have = [w for w in names if per[w]]
    if not have:
        return None
    g = geomean([median(list(per[w].values())) for w in have])
    reps = set.intersection(*[set(per[w]) for w in have])
    byrep = [geomean([per[w][r] for w in have]) for r in sorted(reps)]
    lo, hi = (min(byrep), max(byrep)) if byrep else (g, g)
    return [g, lo, hi, len(have), len(names), len(byrep)]


def compute(data):
    """Medians, ratios to the base and geometric means, stored in data."""
    samples, cols = data["samples"], data["columns"]
    names = [w["name"] for w in data["workloads"]]
    for w in names:  # results of an older run.py: no repetition index, no wall time
        for c in cols:
            for i, smp in enumerate(samples[w][c]):
                smp.setdefault("rep", i)
                smp.setdefault("wall", smp["time"])
    data["median_time"] = {w: {c: median([s["time"] for s in samples[w][c]]) for c in cols} for w in names}
    data["median_wall"] = {w: {c: median([s["wall"] for s in samples[w][c]]) for c in cols} for w in names}
    data["median_rss_kib"] = {w: {c: median([s["rss_kib"] for s in samples[w][c]]) for c in cols} for w in names}
    base = BASE if BASE in cols else "glibc"
    data["base"] = base
    F = failed_set(data)
    data["ratios"] = {w: {c: {"time": ratio_stats(samples, w, c, base, "time", F),
                              "rss": ratio_stats(samples, w, c, base, "rss_kib", F)} for c in cols} for w in names}
    data["geomeans"] = {}
    for group in groups_of(data):
        gw = [w["name"] for w in data["workloads"] if group_of(w) == group]
        data["geomeans"][group] = {c: {"time": geomean_stats(samples, gw, c, base, "time", F),
                                       "rss": geomean_stats(samples, gw, c, base, "rss_kib", F)} for c in cols}


def failed_set(data):
    return frozenset(tuple(k.split("/", 1)) for k in data.get("failures", {}))


def group_of(w):
    return MB if w["group"] == MB else "ours"


def groups_of(data):
    gs = []
    for w in data["workloads"]:
        if group_of(w) not in gs:
            gs.append(group_of(w))
    return gs


# ---- checks ---------------------------------------------------------------

def check_deps(args, names):
    """Everything a run needs, checked before it starts; exits with the list
    of what is missing and how to get it."""
    problems = []
    if not args.smoke:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            problems.append("matplotlib for %s (py/plot.py draws the plots): apt-get install python3-matplotlib"
                            % sys.executable)
    cols, missing = columns(names, args.check_external)
    if missing and not args.allow_missing:
        problems += missing
    elif missing:
        for m in missing:
            print("note: column left out: " + m)
    mb = None
    if args.mimalloc_bench:
        want = [x for x in args.only.split(",") if x] if args.only else []
        work, left = mbench.select(want, args.quick or args.smoke)
        try:
            bindir, srcdir, runnable, notes = mbench.check(args.mimalloc_bench, work)
            mb = {"dir": os.path.abspath(args.mimalloc_bench), "bindir": bindir, "srcdir": srcdir,
                  "work": runnable, "left_out": left, "notes": notes}
        except mbench.Missing as e:
            problems.append(str(e))
    if problems:
        sys.exit("make bench: missing dependencies:\n  - " + "\n  - ".join(problems) +
                 ("\n(BENCH_OPTS=--allow-missing runs without the missing peers)" if missing else ""))
    return cols, mb


def check_preloads(cols, bindir):
    """Print which object provides malloc under each column."""
    ok = {}
    for name, (pre, extra, prefix) in cols.items():
        r = run_once(prefix + [os.path.join(bindir, "churn"), "which"], child_env(pre, extra), 20)
        line = r["out"].strip().splitlines()[0] if r["out"].strip() else describe_status(
            r, {"group": "ours"}) or "?"
        want = os.path.basename(pre) if pre else "libhahalloc.so" if prefix else "libc.so"
        good = want in line and os.WIFEXITED(r["status"]) and os.WEXITSTATUS(r["status"]) == 0
        ok[name] = good
        print("  %-19s %s%s" % (name, line, "" if good else "   <-- preload did not take effect"))
    return ok


def cmake_flags(bindir):
    """How mimalloc-bench's programs were compiled, from its CMakeCache.txt."""
    vals = {}
    try:
        with open(os.path.join(bindir, "CMakeCache.txt"), errors="replace") as f:
            for line in f:
                if ":" in line and "=" in line and not line.startswith(("//", "#")):
                    k, v = line.split("=", 1)
                    vals[k.split(":")[0]] = v.strip()
    except OSError:
        return ""
    bt = vals.get("CMAKE_BUILD_TYPE", "")
    cc = os.path.basename(vals.get("CMAKE_C_COMPILER", "?"))
    flags = " ".join(x for x in (vals.get("CMAKE_C_FLAGS", ""), vals.get("CMAKE_C_FLAGS_" + bt.upper(), ""))
                     if x and x != "-w -Wno-implicit-function-declaration")
    return "%s %s (CMAKE_BUILD_TYPE=%s)" % (cc, flags.strip(), bt)


def machine_info(cols, mb):
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": sh("nproc"),
        "cpu": cpu,
        "kernel": platform.release(),
        "glibc": os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else "",
        "glibc_package": sh("dpkg-query -W -f='${Version}' libc6 2>/dev/null"),
        "compiler": sh("cc --version | head -1"),
        "hahalloc_commit": sh("git -C %s rev-parse --short HEAD 2>/dev/null" % ROOT),
        # the last commit that changed what is measured (the library)
        "hahalloc_src_commit": sh("git -C %s log -1 --format=%%h -- src include Makefile 2>/dev/null" % ROOT),
        "hahalloc_dirty": bool(sh("git -C %s status --porcelain -- src include 2>/dev/null" % ROOT)),
        "hahalloc_sha256": sh("sha256sum %s | cut -c1-12" % HAHALLOC) if os.path.exists(HAHALLOC) else "",
        "peers": {},
    }
    for name, pkg, _ in PEERS:
        if name in cols:
            info["peers"][name] = "%s %s" % (pkg, sh("dpkg-query -W -f='${Version}' %s" % pkg))
    if mb:
        info["mimalloc_bench"] = {
            "dir": mb["dir"], "bindir": mb["bindir"],
            "commit": sh("git -C %s rev-parse --short HEAD 2>/dev/null" % mb["dir"]) or "unknown: not a git checkout",
            "compiled": cmake_flags(mb["bindir"]),
        }
    return info


# ---- the run --------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (make bench QUICK=1)")
    ap.add_argument("--smoke", action="store_true",
                    help="every workload once, tiny, hahalloc and glibc only; no docs")
    ap.add_argument("--reps", type=int, default=None,
                    help="repetitions (default 5 and 3 for mimalloc-bench; quick 3, or 1 with mimalloc-bench)")
    ap.add_argument("--only", default="", help="comma-separated workload (or program) names")
    ap.add_argument("--mimalloc-bench", metavar="DIR", default=os.environ.get("MIMALLOC_BENCH", ""),
                    help="a mimalloc-bench checkout whose benchmarks its own build has built")
    ap.add_argument("--no-ours", action="store_true", help="only mimalloc-bench's programs")
    ap.add_argument("--columns", default=",".join(DEFAULT_COLUMNS),
                    help="columns to run (default %s; also hahalloc-nosummary)" % ",".join(DEFAULT_COLUMNS))
    ap.add_argument("--add-columns", default="", help="columns to run besides --columns")
    ap.add_argument("--allow-missing", action="store_true", help="run without the peers that are not installed")
    ap.add_argument("--check", action="store_true", help="check the dependencies and exit")
    ap.add_argument("--check-external", action="store_true",
                    help="check the dependencies that `make lib` does not build, and exit")
    ap.add_argument("--write-docs", action="store_true",
                    help="write docs/BENCHMARKS.md and README.md's summary, if this is a full run of every "
                    "workload with the default repetitions (make bench passes it unless QUICK=1)")
    ap.add_argument("--out", default=os.path.join(BIN, "results.json"))
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite docs/BENCHMARKS.md and README.md's summary from the results file, running nothing")
    args = ap.parse_args()
    if args.report_only:
        with open(args.out) as f:
            data = json.load(f)
        if not data.get("publishable"):
            sys.exit("%s holds a %s or partial run: docs/BENCHMARKS.md is left as it is "
                     "(run `make bench` for a full run)" % (os.path.relpath(args.out, ROOT), data.get("mode")))
        compute(data)
        md = report(data)
        print(md["console"])
        publish(md)
        print("wrote docs/BENCHMARKS.md and README.md's summary from %s" % os.path.relpath(args.out, ROOT))
        return

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    names = [c for c in args.columns.split(",") + args.add_columns.split(",") if c]
    if args.smoke:
        names = [c for c in names if c in ("hahalloc", "glibc")]
    cols, mb = check_deps(args, names)
    if args.check or args.check_external:
        print("make bench: dependencies found (columns: %s%s)" % (
            ", ".join(cols), "; mimalloc-bench programs in %s" % mb["bindir"] if mb else ""))
        return
    # Only a full run of every workload with the default repetitions may
    # replace the committed results (docs/BENCHMARKS.md, py/img/*.png).
    # They hold mimalloc-bench's programs: a run without them does not.
    why_not = ("a %s run" % mode if mode != "full" else
               "a partial run (--only, --reps or --no-ours)" if args.only or args.reps or args.no_ours else
               "a run without some default column" if any(c not in cols for c in DEFAULT_COLUMNS) else
               "a run without mimalloc-bench's programs (MIMALLOC_BENCH=DIR)" if not mb else "")
    publishable = not why_not
    if mb:
        reps_mb = args.reps or (1 if args.smoke or args.quick else 3)
    reps = args.reps or (1 if args.smoke else (1 if mb else 3) if args.quick else 5)

    only = [x for x in args.only.split(",") if x]
    work = []
    if mb:
        for w in mb["work"]:
            work.append({"name": w["name"], "group": MB, "program": w["prog"], "mb": w,
                         "description": w["desc"], "reps": reps_mb})
    if not args.no_ours:
        for name, group, prog, full, quick, desc in OURS:
            if only and name not in only and prog not in only and group not in only:
                continue
            wreps = max(reps, ISSUE2_REPS) if name in ISSUE2 and mode == "full" and not args.reps else reps
            wargs = SMOKE_ARGS.get(name, quick) if args.smoke else quick if args.quick else full
            work.append({"name": name, "group": group, "program": prog, "argv_args": wargs, "args": wargs,
                         "description": desc, "reps": wreps})
    if not work:
        sys.exit("no workload matches --only=%s" % args.only)
    for prog in sorted({w["program"] for w in work if w["group"] != MB} | {"churn", "launch"}):
        if not os.access(os.path.join(BIN, prog), os.X_OK):
            sys.exit("missing %s: run `make bench-bins` first" % os.path.join(BIN, prog))

    # Run private copies of the programs and of the library: others share
    # build/ and may rebuild or clean it while a long run goes on.
    global LAUNCH
    private = tempfile.mkdtemp(prefix="hahalloc-bench.")
    scratch = os.path.join(private, "cwd")  # the programs' working directory
    os.makedirs(scratch)
    for prog in sorted({w["program"] for w in work if w["group"] != MB} | {"churn", "launch"}):
        shutil.copy2(os.path.join(BIN, prog), os.path.join(private, prog))
    LAUNCH = os.path.join(private, "launch")
    if os.path.exists(HAHALLOC):
        shutil.copy2(HAHALLOC, os.path.join(private, "libhahalloc.so"))
    for col, (pre, extra, prefix) in list(cols.items()):
        if pre == HAHALLOC:
            pre = os.path.join(private, "libhahalloc.so")
        if prefix and prefix[0] == TOOL:
            # the command finds the library beside itself: the private copy
            shutil.copy2(TOOL, os.path.join(private, "hahalloc"))
            prefix = [os.path.join(private, "hahalloc")] + prefix[1:]
        cols[col] = (pre, extra, prefix)
    if mb:
        mbdir = os.path.join(private, "mimalloc-bench")
        os.makedirs(mbdir)
        for prog in sorted({w["program"] for w in work if w["group"] == MB}):
            shutil.copy2(os.path.join(mb["bindir"], prog), os.path.join(mbdir, prog))
    for w in work:
        if w["group"] == MB:
            argv, stdin, shown = mbench.prepare(w["mb"], mbdir, mb["srcdir"], private, args.quick or args.smoke)
            w.update(argv=argv, stdin=stdin, args=shown)
        else:
            w.update(argv=[os.path.join(private, w["program"])] + w["argv_args"], stdin=None)

    print("hahalloc benchmarks, %s mode, %s, columns: %s" % (
        mode, "repetitions: %d%s" % (reps, (", mimalloc-bench %d" % reps_mb) if mb else ""), ", ".join(cols)))
    if mb:
        print("mimalloc-bench programs from %s" % mb["bindir"])
        for name, why in mb["left_out"]:
            print("  left out in %s mode: %s (%s)" % (mode, name, why))
        for n in mb["notes"]:
            print("  note: " + n)
    preload_ok = check_preloads(cols, private)
    info = machine_info(cols, mb)

    samples = {w["name"]: {c: [] for c in cols} for w in work}
    failures = {}  # (workload, column) -> description
    t_start = time.time()
    n_runs = sum(w["reps"] for w in work) * len(cols)
    done = 0
    names = list(cols)
    errpath = os.path.join(private, "stderr")
    for w in work:
        name = w["name"]
        mbw = w["group"] == MB
        base_timeout = (600 if mode == "full" else 60) if mbw else (120 if mode == "full" else 30)
        for rep in range(w["reps"]):
            # rotate the order each repetition so no allocator always runs first
            order = names[rep % len(names):] + names[:rep % len(names)]
            sys.stdout.write("[%3d%%] %-14s rep %d/%d:" % (100 * done // n_runs, name, rep + 1, w["reps"]))
            sys.stdout.flush()
            for col in order:
                done += 1
                if (name, col) in failures:
                    continue
                # A timeout catches a hang, not a slow allocator: some are 20x
                # slower than others on a workload, and the machine is shared.
                walls = [s["wall"] for c in cols for s in samples[name][c]]
                timeout = base_timeout if not walls else min(base_timeout, max(
                    60.0, 50 * min(walls), 4 * max(walls)))
                pre, extra, prefix = cols[col]
                r = run_once(prefix + w["argv"], child_env(pre, extra), timeout, w["stdin"], scratch, errpath)
                bad = describe_status(r, w)
                if bad:
                    with open(errpath, errors="replace") as f:
                        tail = f.read()[-600:].strip()
                    failures[(name, col)] = bad + ((" | stderr: " + tail.replace("\n", " / ")) if tail else "")
                    sys.stdout.write(" %s=%s" % (col, bad))
                    continue
                t = mbench.metric(w["mb"], r["out"], r["wall"]) if mbw else r["wall"]
                samples[name][col].append({"rep": rep, "time": t, "wall": r["wall"], "rss_kib": r["rss_kib"],
                                           "points": {} if mbw else parse_points(r["out"])})
                sys.stdout.write(" %s %.3f" % (col, t))
                sys.stdout.flush()
            sys.stdout.write("\n")
            sys.stdout.flush()
    elapsed = time.time() - t_start
    print("ran %d programs in %.0f s" % (done, elapsed))
    shutil.rmtree(private, ignore_errors=True)

    data = {
        "mode": mode, "reps": reps, "reps_mimalloc_bench": reps_mb if mb else None,
        "publishable": publishable, "machine": info, "columns": list(cols),
        "column_desc": {c: HAHALLOC_COLUMNS.get(c, extra_desc.get(c, "")) for c in cols},
        "preload_ok": preload_ok, "elapsed_s": elapsed,
        "left_out": [list(x) for x in mb["left_out"]] if mb else [],
        "notes": mb["notes"] if mb else [],
        "workloads": [{"name": w["name"], "group": w["group"], "program": w["program"], "args": w["args"],
                       "description": w["description"], "reps": w["reps"],
                       "metric": w["mb"]["metric"] if w["group"] == MB else "wall"} for w in work],
        "samples": samples,
        "failures": {"%s/%s" % k: v for k, v in failures.items()},
    }
    compute(data)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)

    md = report(data)
    print()
    print(md["console"])
    preview = os.path.join(os.path.dirname(args.out), "BENCHMARKS.md")
    if not args.smoke:
        with open(preview, "w") as f:
            f.write(md["doc"])
    if args.write_docs and publishable:
        publish(md)
        print("wrote docs/BENCHMARKS.md, README.md's summary and %s" % os.path.relpath(args.out, ROOT))
    elif not args.smoke:
        print("wrote %s and %s (docs/BENCHMARKS.md unchanged: %s)" % (
            os.path.relpath(preview, ROOT), os.path.relpath(args.out, ROOT),
            why_not or "no --write-docs"))
    if args.smoke:
        bad = [k for k in failures if k[1] == "hahalloc"]
        print("bench-smoke: %d passed, %d failed" % (len(work) - len(bad), len(bad)))
        sys.exit(1 if bad else 0)


# ---- the report -----------------------------------------------------------

def fmt_t(t):
    if t is None:
        return "-"
    return "%.3f" % t if t < 10 else "%.1f" % t


def fmt_r(r, bold_above=None):
    if r is None:
        return "-"
    s = "%.2f" % r
    if bold_above is not None and r > bold_above:
        s = "**%s**" % s
    return s


def fmt_spread(st, bold_above=None):
    """'1.23 (1.10-1.31)' from [median, min, max, n]."""
    if not st:
        return "-"
    s = fmt_r(st[0], bold_above)
    return s if st[3] < 2 else "%s (%.2f-%.2f)" % (s, st[1], st[2])


def fmt_mib(kib):
    return "-" if kib is None else "%.1f" % (kib / 1024.0)


README_BEGIN = "<!-- bench-summary: generated by make bench (bench/run.py) from its full run; do not edit -->"
README_END = "<!-- bench-summary end -->"


def publish(md):
    with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "w") as f:
        f.write(md["doc"])
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    a, b = text.find(README_BEGIN), text.find(README_END)
    if a < 0 or b < a:
        print("note: README.md has no bench-summary markers: its summary is not updated")
        return
    text = text[:a] + README_BEGIN + "\n" + md["readme"] + "\n" + text[b:]
    with open(path, "w") as f:
        f.write(text)


def report(data):
    cols = data["columns"]
    base = data["base"]
    failures = {tuple(k.split("/", 1)): v for k, v in data.get("failures", {}).items()}
    F = failed_set(data)
    R = data["ratios"]
    G = data["geomeans"]
    others = [c for c in cols if c != base]
    peers = [c for c in ("glibc", "mimalloc", "jemalloc", "tcmalloc") if c in cols]
    hh = [c for c in cols if c in HAHALLOC_COLUMNS]
    out = []

    def failed(w, c):
        return "FAILED: " + failures[(w, c)].split(" |")[0] if (w, c) in failures else None

    def g_cell(st, bold_above=None):
        if not st:
            return "no run completed"
        s = "**%s**" % fmt_spread(st[:3] + [st[5]])
        return s + (" (%d of %d)" % (st[3], st[4]) if st[3] < st[4] else "")

    def ratio_table(title, names, group, kind, note):
        out.append("#### %s\n" % title)
        out.append(note + "\n")
        out.append("| workload | " + " | ".join(others) + " |")
        out.append("|" + "---|" * (1 + len(others)))
        for w in names:
            out.append("| %s | " % w + " | ".join(
                failed(w, c) or ("n/a: %s failed" % base if (w, base) in failures else fmt_spread(R[w][c][kind]))
                for c in others) + " |")
        out.append("| **geometric mean** | " + " | ".join(g_cell(G[group][c][kind]) for c in others) + " |")
        out.append("")

    def raw_tables(names, wl):
        def spread(w):
            rel = []
            for c in cols:
                ts = [s["time"] for s in data["samples"][w][c]]
                if len(ts) >= 2 and median(ts):
                    rel.append((max(ts) - min(ts)) / median(ts))
            return "%.0f%%" % (100 * median(rel)) if rel else "-"
        out.append("#### Median time (s)\n")
        out.append("Wall time of the whole process, except where the workload says `relative time` (a "
                   "fixed-duration program's throughput turned into seconds, as mimalloc-bench's bench.sh "
                   "does). Spread: (max - min) / median of one column's samples, the median over columns.\n")
        out.append("| workload | " + " | ".join(cols) + " | spread |")
        out.append("|" + "---|" * (2 + len(cols)))
        for w in names:
            tag = " (relative time)" if wl[w].get("metric", "wall") != "wall" else ""
            out.append("| %s%s | " % (w, tag) + " | ".join(
                failed(w, c) or fmt_t(data["median_time"][w][c]) for c in cols) + " | %s |" % spread(w))
        out.append("")
        out.append("#### Median peak RSS (MiB)\n")
        out.append("| workload | " + " | ".join(cols) + " |")
        out.append("|" + "---|" * (1 + len(cols)))
        for w in names:
            out.append("| %s | " % w + " | ".join(
                failed(w, c) or fmt_mib(data["median_rss_kib"][w][c]) for c in cols) + " |")
        out.append("")

    def hahalloc_tables(names, group):
        if "hahalloc" not in cols:
            return
        # hahalloc against each peer, and the report against the default
        out.append("#### hahalloc's time relative to each peer (bold: hahalloc slower)\n")
        vs = [("hahalloc", p) for p in peers] + [(v, "hahalloc") for v in hh if v != "hahalloc"]
        hdr = ["/ %s" % b if a == "hahalloc" else "%s / %s" % (a, b) for a, b in vs]
        hdr += ["RSS %s / hahalloc" % v for v in hh if v != "hahalloc"]
        out.append("| workload | " + " | ".join(hdr) + " |")
        out.append("|" + "---|" * (1 + len(hdr)))
        for w in names:
            cells = [failed(w, a) or failed(w, b) or fmt_spread(
                ratio_stats(data["samples"], w, a, b, "time", F), 1.0) for a, b in vs]
            cells += [failed(w, v) or failed(w, "hahalloc") or fmt_spread(
                ratio_stats(data["samples"], w, v, "hahalloc", "rss_kib", F)) for v in hh if v != "hahalloc"]
            out.append("| %s | " % w + " | ".join(cells) + " |")
        cells = [g_cell(geomean_stats(data["samples"], names, a, b, "time", F)) for a, b in vs]
        cells += [g_cell(geomean_stats(data["samples"], names, v, "hahalloc", "rss_kib", F))
                  for v in hh if v != "hahalloc"]
        out.append("| **geometric mean** | " + " | ".join(cells) + " |")
        out.append("")
        lines = []
        if "glibc" in cols:
            slow = [(w, ratio_stats(data["samples"], w, "hahalloc", "glibc", "time", F)) for w in names]
            slow = [(w, s) for w, s in slow if s and s[0] > 1.0]
            if slow:
                lines.append("Slower than glibc: " + ", ".join(
                    "%s (%.2fx%s)" % (w, s[0], ", within its spread" if s[1] <= 1.0 else "") for w, s in slow) + ".")
            else:
                lines.append("hahalloc is not slower than glibc on any of these workloads.")
        if base in cols:
            worst = sorted(((R[w]["hahalloc"]["time"] or [0])[0], w) for w in names)[::-1][:5]
            worst = [(r, w) for r, w in worst if r > 1.0]
            lines.append(("Furthest behind %s: " % base + ", ".join("%s (%.2fx)" % (w, r) for r, w in worst) + ".")
                         if worst else "hahalloc is not behind %s on any of these workloads." % base)
        out.append("\n\n".join(lines) + "\n")

    wl = {w["name"]: w for w in data["workloads"]}
    for group in groups_of(data):
        names = [w["name"] for w in data["workloads"] if group_of(w) == group]
        if group == MB:
            out.append("### mimalloc-bench's programs\n")
            mi = data["machine"].get("mimalloc_bench", {})
            out.append("The original programs of mimalloc-bench (%s, commit %s), compiled by its own build with "
                       "%s, linked to no allocator; each column is an LD_PRELOAD (see Workloads below for the "
                       "arguments).\n" % (mi.get("bindir", "?"), mi.get("commit", "?"), mi.get("compiled", "?")))
            for n in data.get("notes", []):
                out.append("Not run: %s.\n" % n)
            if data.get("left_out"):
                out.append("Left out of this %s run: %s.\n" % (data["mode"], "; ".join(
                    "%s (%s)" % tuple(x) for x in data["left_out"])))
        else:
            out.append("### Our workloads\n")
            out.append("Our own programs in `bench/`; those named `-like` are our versions of mimalloc-bench "
                       "programs.\n")
            i2 = [w for w in ISSUE2 if w in names]
            if i2 and "hahalloc" in cols:
                out.append("#### Issue 2: time relative to each peer (below 1.00 = hahalloc faster)\n")
                pairs = [(v, p) for v in hh for p in peers]
                out.append("| workload | " + " | ".join("%s / %s" % pr for pr in pairs) + " |")
                out.append("|" + "---|" * (1 + len(pairs)))
                for w in i2:
                    out.append("| %s | " % w + " | ".join(failed(w, v) or failed(w, p) or fmt_r(
                        (ratio_stats(data["samples"], w, v, p, "time", F) or [None])[0], 1.0) for v, p in pairs) + " |")
                out.append("")
                out.append("Bar (issue 2): below 1.00 against glibc on all three; at most 1.20 against "
                           "mimalloc on the churn.\n")
        ratio_table("Time relative to %s" % base, names, group, "time",
                    "Median over repetitions of the ratio within one repetition, with the min-max of those "
                    "ratios; geometric mean of the medians, with the min-max of the per-repetition geometric "
                    "means. Below 1.00 = faster than %s." % base)
        ratio_table("Peak RSS relative to %s" % base, names, group, "rss",
                    "The same for the peak resident set of the process (getrusage of the child).")
        hahalloc_tables(names, group)
        raw_tables(names, wl)
    if failures:
        out.append("### Failures\n")
        for (w, c), v in sorted(failures.items()):
            out.append("- %s under %s: %s" % (w, c, v))
        out.append("")
    tables = "\n".join(out)

    m = data["machine"]
    reps_text = "%d repetitions per column" % data["reps"]
    if data.get("reps_mimalloc_bench"):
        reps_text += " (mimalloc-bench's programs: %d)" % data["reps_mimalloc_bench"]
    i2 = [w for w in ISSUE2 if w in data["samples"]]
    if i2 and data["mode"] == "full":
        reps_text += "; issue 2's workloads: %d" % max(w["reps"] for w in data["workloads"] if w["name"] in i2)
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench%s` (bench/run.py) on %s, hahalloc commit %s; %s mode, %s, columns "
        "interleaved and rotated each repetition. The machine is shared and noisy: read ratios, not absolute "
        "times. A ratio is the median over repetitions of the ratio within one repetition, whose columns run "
        "back to back under the same load; the figures in brackets are the min-max of those ratios." % (
            " QUICK=1" if data["mode"] == "quick" else "", m["date"], commit_text(m), data["mode"], reps_text),
        "",
        "Columns:",
        "",
    ]
    for c in cols:
        head.append("- `%s`: %s" % (c, data.get("column_desc", {}).get(c) or (
            "the system's malloc (no preload)" if c == "glibc" else "LD_PRELOAD of %s" % m["peers"].get(c, c))))
    head += [
        "",
        "Each program's stderr goes to a file (hahalloc's exit report is written there), its stdout to another.",
        "",
        "## Machine",
        "",
        "- CPU: %s, `nproc` = %s" % (m["cpu"], m["nproc"]),
        "- kernel %s, %s (Debian libc6 %s), %s" % (m["kernel"], m["glibc"], m["glibc_package"], m["compiler"]),
        "- peers: %s" % (", ".join(m["peers"].values()) or "none installed"),
        "- hahalloc: commit %s, libhahalloc.so sha256 %s..." % (commit_text(m), m.get("hahalloc_sha256", "")),
    ]
    if m.get("mimalloc_bench"):
        head.append("- mimalloc-bench: %s (commit %s), compiled with %s" % (
            m["mimalloc_bench"]["bindir"], m["mimalloc_bench"]["commit"], m["mimalloc_bench"]["compiled"]))
    head += [
        "",
        "## How to run",
        "",
        "```sh",
        "make bench MIMALLOC_BENCH=DIR   # full run, 1-1.5 hours; DIR: a mimalloc-bench checkout built by its own build",
        "make bench                      # our workloads only",
        "make bench QUICK=1              # under 2 minutes; writes build/bench/, not these results",
        "make bench-docs                 # this file and the plots again from the last full run",
        "make bench-smoke                # every workload of ours once, tiny, hahalloc and glibc",
        "bench/run.py --only churn1,prodcons --reps 7           # a subset",
        "make bench BENCH_OPTS=--add-columns=hahalloc-nosummary  # one more column",
        "bench/callgrind.sh build/libhahalloc.so                # instructions per malloc/free pair",
        "```",
        "",
        "## Results",
        "",
    ]
    if MB in groups_of(data):
        head += ["![time and peak RSS relative to mimalloc, mimalloc-bench](../py/img/mimalloc-bench.png)", ""]
    head += ["![time and peak RSS relative to mimalloc, our workloads](../py/img/summary.png)", "", tables]
    if "seed-alloc" in data["samples"]:
        head += [
            "## The seed's five scenarios",
            "",
            "| | |",
            "|---|---|",
            "| ![](../py/img/single_alloc.png) | ![](../py/img/single_calloc.png) |",
            "| ![](../py/img/multiple_alloc_fixed_size.png) | ![](../py/img/multiple_alloc_random_size.png) |",
            "| ![](../py/img/re_alloc.png) | |",
            "",
        ]
    head += [
        "## Workloads",
        "",
        "mimalloc-bench's programs are run from the build directory of a checkout built by its own build "
        "(nothing of it is in this repository); the arguments follow its bench.sh, scaled to take 1-5 s "
        "under glibc on this machine where the program has a size argument. Our programs are in `bench/`, "
        "built `-O2 -pthread` into `build/bench/`; every block they allocate is written to and checked "
        "before it is freed, so an allocator that corrupts memory fails the run.",
        "",
        "| workload | program and arguments | what it does |",
        "|---|---|---|",
    ]
    for w in data["workloads"]:
        head.append("| %s | `%s %s` | %s |" % (w["name"], w["program"], " ".join(w["args"]), w["description"]))
    head.append("")
    # A hand-written analysis (where hahalloc loses time, and why) is kept in
    # bench/ANALYSIS.md and carried into every generated report.
    analysis = os.path.join(ROOT, "bench", "ANALYSIS.md")
    if os.path.exists(analysis):
        with open(analysis) as f:
            head += ["", f.read().rstrip(), ""]
    doc = "\n".join(head) + "\n"
    return {"doc": doc, "console": tables, "readme": readme_summary(data)}


def commit_text(m):
    """'0a75a1f' or '0a75a1f (library sources of 755462d)'."""
    c, src = m.get("hahalloc_commit", "?"), m.get("hahalloc_src_commit")
    text = c if not src or src == c else "%s (library sources of %s)" % (c, src)
    return text + (", with uncommitted changes in src/" if m.get("hahalloc_dirty") else "")


def readme_summary(data):
    """README.md's paragraph: the headline figures of the run, and its commit."""
    m = data["machine"]
    G = data["geomeans"]
    base = data["base"]

    def g(group, c, kind):
        st = G.get(group, {}).get(c, {}).get(kind)
        if not st:
            return "-"
        n = "" if st[3] == st[4] else " over the %d of %d that ran" % (st[3], st[4])
        if st[5] < 2:
            return "%.2fx%s" % (st[0], n)
        return "%.2fx (%.2f-%.2f)%s" % (st[0], st[1], st[2], n)

    def name(c):  # a NAME=PATH column with the commit it was built from
        rev = re.search(r"a build of commit (\w+)", data.get("column_desc", {}).get(c, ""))
        return "%s (%s)" % (c, rev.group(1)) if rev else c

    parts = ["Last full run: hahalloc commit %s, %s, %d interleaved repetitions on %s cores of a shared "
             "machine (`docs/BENCHMARKS.md` has every table)." % (
                 commit_text(m), m["date"], data.get("reps_mimalloc_bench") or data["reps"], m["nproc"])]
    for group, label in ((MB, "On mimalloc-bench's %d programs"), ("ours", "On our %d workloads")):
        if group not in G:
            continue
        n = len([w for w in data["workloads"] if group_of(w) == group])
        s = (label % n) + ", geometric mean of the time relative to %s (min-max over repetitions): " % base
        s += ", ".join("%s %s" % (name(c), g(group, c, "time")) for c in data["columns"] if c != base)
        s += "; of the peak RSS: " + ", ".join(
            "%s %s" % (name(c), g(group, c, "rss")) for c in data["columns"] if c != base) + "."
        parts.append(s)
    if MB in G:
        mi = m.get("mimalloc_bench", {})
        parts.append("mimalloc-bench commit %s, compiled with %s." % (mi.get("commit", "?"), mi.get("compiled", "?")))
        parts.append("![time and peak RSS relative to mimalloc, mimalloc-bench's programs]"
                     "(py/img/mimalloc-bench.png)")
    parts.append("![time and peak RSS relative to mimalloc, our workloads](py/img/summary.png)")
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
