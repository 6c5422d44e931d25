#!/usr/bin/python3
"""Run the hahalloc benchmarks against glibc, mimalloc, jemalloc and tcmalloc.

Every workload is one program in build/bench/, NOT linked to hahalloc: each
allocator is injected with LD_PRELOAD (glibc is the program with no preload),
so the same binary runs under all of them. For each workload the allocators
are run interleaved (A B C D E F, then B C D E F A, ...), several repetitions,
and the driver keeps the median wall time and the median peak RSS of the
child (getrusage through wait4). The benchmark's stderr goes to /dev/null
(hahalloc prints its exit heap summary there).

Columns: glibc, hahalloc (default settings, exit summary ON),
hahalloc-nosummary (HAHALLOC_SUMMARY=0), mimalloc, jemalloc, tcmalloc
(peers whose Debian package is missing are skipped).

Writes build/bench/results.json (every sample) and build/bench/BENCHMARKS.md,
and prints the tables. With --write-docs, a full run of every workload also
writes docs/BENCHMARKS.md; QUICK, smoke and partial runs never touch it.
py/plot.py draws the plots from results.json.

  bench/run.py [--quick] [--smoke] [--reps N] [--only w1,w2] [--write-docs]
"""
import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "bench")
HAHALLOC = os.path.join(ROOT, "build", "libhahalloc.so")
LAUNCH = os.path.join(BIN, "launch")

# name, group, program, full args, quick args, description
WORKLOADS = [
    ("churn1", "issue2", "churn", ["threads=1", "steps=16000000"], ["threads=1", "steps=3000000"],
     "single-thread small-object churn: 4096 slots, 8-128 B (tail to 32 KiB), one random block replaced per step"),
    ("churn2", "issue2", "churn", ["threads=2", "steps=16000000"], ["threads=2", "steps=3000000"],
     "the same churn on 2 threads, each with its own working set"),
    ("prodcons", "issue2", "prodcons", ["items=2000000"], ["items=500000"],
     "cross-thread producer/consumer: 1 producer allocates, hands blocks through a ring, 1 consumer frees"),
    ("seed-alloc", "seed", "seed", ["mode=alloc"], ["mode=alloc", "count=4096", "reps=1"],
     "seed 1: 2^15 mallocs (then frees) of one size, sizes 8 B-32 KiB"),
    ("seed-calloc", "seed", "seed", ["mode=calloc"], ["mode=calloc", "reps=2"],
     "seed 2: 2^5 callocs (then frees) of one size, sizes 1 KiB-16 MiB"),
    ("seed-fixed", "seed", "seed", ["mode=fixed", "ops=131072"], ["mode=fixed", "ops=32768"],
     "seed 3: random malloc/free of 1 MiB over a buffer of x slots (x/2 live), x = 2-1024"),
    ("seed-random", "seed", "seed", ["mode=random", "ops=262144"], ["mode=random", "ops=65536"],
     "seed 4: the same with sizes log-uniform 8 B-1 MiB"),
    ("seed-realloc", "seed", "seed", ["mode=realloc", "reps=8"], ["mode=realloc", "reps=2"],
     "seed 5: 16 blocks grown by realloc 16 B -> S (x1.25 steps) and shrunk back, S = 64 B-4 MiB"),
    ("larson", "field", "larson", ["slots=5000", "ops=100000", "gens=100"],
     ["slots=5000", "ops=100000", "gens=25"],
     "larson-like server: 2 thread chains, successors free their predecessors' blocks, 8-1000 B"),
    ("xmalloc", "field", "xmalloc", ["items=8000000"], ["items=2000000"],
     "xmalloc-test-like: 2 producers only allocate, 2 consumers only free (batches of 256), 16-128 B"),
    ("mstress", "field", "mstress", ["iters=80"], ["iters=20"],
     "mstress-like: 4 threads per round, created and destroyed 80 times, objects migrate through a shared array"),
    ("cache-scratch", "field", "cache", ["mode=scratch", "iters=1000", "reps=60000"],
     ["mode=scratch", "iters=400", "reps=50000"],
     "passive false sharing: 2 threads free an object from the main thread, then write small objects"),
    ("cache-thrash", "field", "cache", ["mode=thrash", "iters=1000", "reps=60000"],
     ["mode=thrash", "iters=400", "reps=50000"],
     "active false sharing: 2 threads allocate and write 8-byte objects"),
    ("alloctest1", "field", "alloctest", ["threads=1", "steps=16000000"], ["threads=1", "steps=4000000"],
     "alloc-test-like: Pareto sizes 8 B-1 KiB, 16384 slots, 1 thread"),
    ("alloctestN", "field", "alloctest", ["threads=2", "steps=16000000"], ["threads=2", "steps=4000000"],
     "alloc-test-like on 2 threads"),
    ("cfrac", "field", "cfrac", ["dmax=20000"], ["dmax=5000"],
     "cfrac-like: continued fractions of sqrt(D) with heap big numbers, every convergent verified"),
    ("trees", "field", "trees", ["depth=15"], ["depth=13"],
     "binary trees: a long-lived tree and many short-lived ones, 24 B nodes + 8-64 B labels"),
    ("large", "field", "large", ["steps=200"], ["steps=50"],
     "large blocks: 1-32 MiB, 4 live, every page written, every 8th grown by realloc"),
]
ISSUE2 = ["churn1", "churn2", "prodcons"]
ISSUE2_REPS = 11
SMOKE_ARGS = {  # even smaller than QUICK, for `make bench-smoke`
    "churn1": ["threads=1", "steps=100000"], "churn2": ["threads=2", "steps=100000"],
    "prodcons": ["items=20000"], "seed-alloc": ["mode=alloc", "count=256", "reps=1"],
    "seed-calloc": ["mode=calloc", "reps=1", "max=4M"], "seed-fixed": ["mode=fixed", "ops=1024"],
    "seed-random": ["mode=random", "ops=1024"], "seed-realloc": ["mode=realloc", "reps=1", "max=1M"],
    "larson": ["slots=500", "ops=2000", "gens=4"], "xmalloc": ["items=20000"],
    "mstress": ["iters=3", "steps=5000"], "cache-scratch": ["mode=scratch", "iters=10", "reps=100"],
    "cache-thrash": ["mode=thrash", "iters=10", "reps=100"], "alloctest1": ["threads=1", "steps=50000"],
    "alloctestN": ["threads=2", "steps=50000"], "cfrac": ["dmax=100"], "trees": ["depth=8"],
    "large": ["steps=8"],
}

# (column, Debian package, library file name)
PEERS = [
    ("mimalloc", "libmimalloc2.0", "libmimalloc.so.2"),
    ("jemalloc", "libjemalloc2", "libjemalloc.so.2"),
    ("tcmalloc", "libtcmalloc-minimal4", "libtcmalloc_minimal.so.4"),
]
ORDER = ["hahalloc", "hahalloc-nosummary", "glibc", "mimalloc", "jemalloc", "tcmalloc"]


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


def allocators():
    """Ordered {column: (preload or None, extra env)} for what is installed."""
    cols = {}
    if os.path.exists(HAHALLOC):
        cols["hahalloc"] = (HAHALLOC, {})
        cols["hahalloc-nosummary"] = (HAHALLOC, {"HAHALLOC_SUMMARY": "0"})
    else:
        print("warning: %s not found: hahalloc columns skipped (run `make` first)" % HAHALLOC)
    cols["glibc"] = (None, {})
    for name, pkg, soname in PEERS:
        path = find_peer(pkg, soname)
        if path:
            cols[name] = (path, {})
        else:
            print("note: %s (Debian package %s) not installed: skipped" % (name, pkg))
    return {k: cols[k] for k in ORDER if k in cols}


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


def run_once(argv, env, timeout, stderr_path=os.devnull):
    """Run argv through build/bench/launch; returns dict(time, rss_kib, status, out, timed_out)."""
    with tempfile.TemporaryFile(mode="w+") as out, \
            tempfile.NamedTemporaryFile(mode="r", suffix=".res") as res, \
            open(stderr_path, "w") as err:
        subprocess.run([LAUNCH, res.name, str(max(1, int(math.ceil(timeout))))] + argv,
                       env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        out.seek(0)
        text = out.read()
        fields = res.read().split()
    if len(fields) != 4:
        return {"time": 0.0, "rss_kib": 0, "status": 127 << 8, "out": text, "timed_out": False}
    return {"time": float(fields[0]), "rss_kib": int(fields[1]), "status": int(fields[2]),
            "out": text, "timed_out": fields[3] == "1"}


def describe_status(r):
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
    if not any(l.startswith("ok ") for l in r["out"].splitlines()):
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


def make_ratio(samples, med_t):
    """Time ratios as the median, over repetitions, of the ratio within one
    repetition: the allocators of a repetition run back to back and share the
    machine's load of the moment, so pairing them cancels most of it. Falls
    back to the ratio of medians when a column lost samples (a failure), and
    for other tables (RSS)."""
    def ratio(w, a, b, table=med_t):
        x, y = table[w].get(a), table[w].get(b)
        if not x or not y:
            return None
        if table is med_t:
            sa, sb = samples[w].get(a) or [], samples[w].get(b) or []
            if sa and len(sa) == len(sb):
                return median([p["time"] / q["time"] for p, q in zip(sa, sb) if q["time"] > 0])
        return x / y
    return ratio


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else None


def machine_info(cols):
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
        "hahalloc_dirty": bool(sh("git -C %s status --porcelain -- src include 2>/dev/null" % ROOT)),
        "hahalloc_sha256": sh("sha256sum %s | cut -c1-12" % HAHALLOC) if os.path.exists(HAHALLOC) else "",
        "peers": {},
    }
    for name, pkg, _ in PEERS:
        if name in cols:
            info["peers"][name] = "%s %s" % (pkg, sh("dpkg-query -W -f='${Version}' %s" % pkg))
    return info


def check_preloads(cols, bindir):
    """Print which object provides malloc under each column."""
    ok = {}
    for name, (pre, extra) in cols.items():
        r = run_once([os.path.join(bindir, "churn"), "which"], child_env(pre, extra), 20)
        line = r["out"].strip().splitlines()[0] if r["out"].strip() else describe_status(r) or "?"
        want = os.path.basename(pre) if pre else "libc.so"
        good = want in line and os.WIFEXITED(r["status"]) and os.WEXITSTATUS(r["status"]) == 0
        ok[name] = good
        print("  %-19s %s%s" % (name, line, "" if good else "   <-- preload did not take effect"))
    return ok


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


def fmt_mib(kib):
    return "-" if kib is None else "%.1f" % (kib / 1024.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short runs (make bench QUICK=1)")
    ap.add_argument("--smoke", action="store_true",
                    help="every workload once, tiny, hahalloc and glibc only; no docs")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 3)")
    ap.add_argument("--only", default="", help="comma-separated workload names")
    ap.add_argument("--write-docs", action="store_true",
                    help="write docs/BENCHMARKS.md, if this is a full run of every workload with the "
                    "default repetitions (make bench passes it unless QUICK=1)")
    ap.add_argument("--out", default=os.path.join(BIN, "results.json"))
    ap.add_argument("--report-only", action="store_true",
                    help="rewrite docs/BENCHMARKS.md from the results file, running nothing")
    args = ap.parse_args()
    if args.report_only:
        with open(args.out) as f:
            data = json.load(f)
        if not data.get("publishable"):
            sys.exit("%s holds a %s or partial run: docs/BENCHMARKS.md is left as it is "
                     "(run `make bench` for a full run)" % (os.path.relpath(args.out, ROOT), data.get("mode")))
        med_t, med_rss = data["median_time"], data["median_rss_kib"]

        ratio_saved = make_ratio(data["samples"], med_t)
        failures = {tuple(k.split("/", 1)): v for k, v in data.get("failures", {}).items()}
        work = [(w["name"],) for w in data["workloads"]]
        md = report(data, ratio_saved, med_t, med_rss, data["columns"], work, failures)
        print(md["console"])
        with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "w") as f:
            f.write(md["doc"])
        print("wrote docs/BENCHMARKS.md from %s" % os.path.relpath(args.out, ROOT))
        return

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    # Only a full run of every workload with the default repetitions may
    # replace the committed results (docs/BENCHMARKS.md, py/img/*.png).
    publishable = mode == "full" and not args.only and not args.reps
    reps = args.reps or (1 if args.smoke else 3 if args.quick else 5)
    cols = allocators()
    if args.smoke:
        cols = {k: v for k, v in cols.items() if k in ("hahalloc", "glibc")}
    work = [w for w in WORKLOADS if not args.only or w[0] in args.only.split(",")]
    if not work:
        sys.exit("no workload matches --only=%s" % args.only)
    for w in work + [(None, None, "launch")]:
        if not os.access(os.path.join(BIN, w[2]), os.X_OK):
            sys.exit("missing %s: run `make bench-bins` first" % os.path.join(BIN, w[2]))
    # Run private copies of the programs and of the library: others share
    # build/ and may rebuild or clean it while a long run goes on.
    global LAUNCH
    private = tempfile.mkdtemp(prefix="hahalloc-bench.")
    for prog in sorted({w[2] for w in work} | {"churn", "launch"}):
        shutil.copy2(os.path.join(BIN, prog), os.path.join(private, prog))
    LAUNCH = os.path.join(private, "launch")
    for col, (pre, extra) in list(cols.items()):
        if pre and pre.startswith(ROOT):
            dst = os.path.join(private, os.path.basename(pre))
            if not os.path.exists(dst):
                shutil.copy2(pre, dst)
            cols[col] = (dst, extra)
    bindir = private

    print("hahalloc benchmarks, %s mode, %d repetition(s), allocators: %s" % (mode, reps, ", ".join(cols)))
    preload_ok = check_preloads(cols, bindir)
    info = machine_info(cols)
    base_timeout = 30 if mode != "full" else 120

    results = {w[0]: {c: [] for c in cols} for w in work}
    failures = {}  # (workload, column) -> description
    t_start = time.time()
    # Issue 2's workloads decide a bar near 1.2x: in a full run they get more
    # repetitions, so that their paired ratios settle on this noisy machine.
    def reps_of(name):
        return max(reps, ISSUE2_REPS) if name in ISSUE2 and not (args.quick or args.smoke or args.reps) else reps

    n_runs = sum(reps_of(w[0]) for w in work) * len(cols)
    done = 0
    names = list(cols)
    for wi, w in enumerate(work):
        name, group, prog, full, quick, desc = w
        wargs = SMOKE_ARGS.get(name, quick) if args.smoke else quick if args.quick else full
        argv = [os.path.join(bindir, prog)] + wargs
        wreps = reps_of(name)
        for rep in range(wreps):
            # rotate the order each repetition so no allocator always runs first
            order = names[rep % len(names):] + names[:rep % len(names)]
            line = "[%3d%%] %-13s rep %d/%d:" % (100 * done // n_runs, name, rep + 1, wreps)
            sys.stdout.write(line)
            sys.stdout.flush()
            for col in order:
                done += 1
                if (name, col) in failures:
                    continue
                samples = [s["time"] for c in cols for s in results[name][c]]
                timeout = base_timeout if not samples else min(base_timeout, max(5.0, 25 * min(samples)))
                pre, extra = cols[col]
                r = run_once(argv, child_env(pre, extra), timeout)
                bad = describe_status(r)
                if bad:
                    failures[(name, col)] = bad
                    # rerun once with stderr kept, to show what the allocator said
                    with tempfile.NamedTemporaryFile(suffix=".err", delete=False) as ef:
                        errpath = ef.name
                    run_once(argv, child_env(pre, extra), timeout, errpath)
                    with open(errpath, errors="replace") as f:
                        tail = f.read()[-600:]
                    os.unlink(errpath)
                    failures[(name, col)] = bad + ((" | stderr: " + tail.strip().replace("\n", " / ")) if tail.strip() else "")
                    sys.stdout.write(" %s=%s" % (col, bad))
                    continue
                results[name][col].append({"time": r["time"], "rss_kib": r["rss_kib"],
                                           "points": parse_points(r["out"])})
                sys.stdout.write(" %s %.3f" % (col, r["time"]))
                sys.stdout.flush()
            sys.stdout.write("\n")
            sys.stdout.flush()
    elapsed = time.time() - t_start
    print("ran %d programs in %.0f s" % (done, elapsed))
    shutil.rmtree(private, ignore_errors=True)

    # ---- medians and ratios ----
    med_t = {w: {c: median([s["time"] for s in results[w][c]]) for c in cols} for w in results}
    med_rss = {w: {c: median([s["rss_kib"] for s in results[w][c]]) for c in cols} for w in results}

    ratio = make_ratio(results, med_t)

    data = {
        "mode": mode, "reps": reps, "publishable": publishable, "machine": info, "columns": list(cols),
        "preload_ok": preload_ok, "elapsed_s": elapsed,
        "workloads": [{"name": w[0], "group": w[1], "program": w[2],
                       "args": (SMOKE_ARGS.get(w[0], w[4]) if args.smoke else w[4] if args.quick else w[3]),
                       "description": w[5]} for w in work],
        "samples": results, "median_time": med_t, "median_rss_kib": med_rss,
        "failures": {"%s/%s" % k: v for k, v in failures.items()},
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)

    md = report(data, ratio, med_t, med_rss, cols, work, failures)
    print()
    print(md["console"])
    # The committed results change only in a full run of every workload:
    # a QUICK, smoke or partial run writes its report beside its results.
    preview = os.path.join(os.path.dirname(args.out), "BENCHMARKS.md")
    if not args.smoke:
        with open(preview, "w") as f:
            f.write(md["doc"])
    if args.write_docs and publishable:
        with open(os.path.join(ROOT, "docs", "BENCHMARKS.md"), "w") as f:
            f.write(md["doc"])
        print("wrote docs/BENCHMARKS.md and %s" % os.path.relpath(args.out, ROOT))
    elif not args.smoke:
        print("wrote %s and %s (docs/BENCHMARKS.md unchanged: %s)" % (
            os.path.relpath(preview, ROOT), os.path.relpath(args.out, ROOT),
            "not a full run of every workload" if not publishable else "no --write-docs"))
    if args.smoke:
        bad = [k for k in failures if k[1] == "hahalloc"]
        print("bench-smoke: %d passed, %d failed" % (len(work) - len(bad), len(bad)))
        sys.exit(1 if bad else 0)


def report(data, ratio, med_t, med_rss, cols, work, failures):
    peers = [c for c in ("glibc", "mimalloc", "jemalloc", "tcmalloc") if c in cols]
    has_h = "hahalloc" in cols
    wnames = [w[0] for w in work]
    out = []

    def cell_t(w, c):
        if (w, c) in failures:
            return failures[(w, c)].split(" |")[0]
        return fmt_t(med_t[w][c])

    # 1. issue 2: hahalloc / peer on the three workloads
    i2 = [w for w in ISSUE2 if w in wnames]
    if has_h and i2:
        out.append("### Issue 2: median time ratio hahalloc / peer (below 1.00 = hahalloc faster)\n")
        hdr = "| workload | " + " | ".join("hahalloc/%s" % p for p in peers) + \
              " | " + " | ".join("nosummary/%s" % p for p in peers) + " |"
        out.append(hdr)
        out.append("|" + "---|" * (1 + 2 * len(peers)))
        for w in i2:
            out.append("| %s | " % w + " | ".join(fmt_r(ratio(w, "hahalloc", p), 1.0) for p in peers) +
                       " | " + " | ".join(fmt_r(ratio(w, "hahalloc-nosummary", p), 1.0) for p in peers) + " |")
        out.append("")
        out.append("Bar (issue 2): below 1.00 against glibc on all three; at most 1.20 against mimalloc on the churn.")
        out.append("")

    # 2. median times, with the spread of the samples as a noise gauge
    def spread(w):
        rel = []
        for c in cols:
            ts = [s["time"] for s in data["samples"][w][c]]
            if len(ts) >= 2 and median(ts):
                rel.append((max(ts) - min(ts)) / median(ts))
        return "%.0f%%" % (100 * median(rel)) if rel else "-"

    out.append("### Median wall time (s), whole process\n")
    out.append("Spread: (max - min) / median of one allocator's samples, the median over allocators; "
               "a ratio closer to 1.00 than that is within the noise.\n")
    out.append("| workload | " + " | ".join(cols) + " | spread |")
    out.append("|" + "---|" * (2 + len(cols)))
    for w in wnames:
        out.append("| %s | " % w + " | ".join(cell_t(w, c) for c in cols) + " | %s |" % spread(w))
    out.append("")

    # 3. median peak RSS
    out.append("### Median peak RSS (MiB)\n")
    out.append("| workload | " + " | ".join(cols) + " |")
    out.append("|" + "---|" * (1 + len(cols)))
    for w in wnames:
        out.append("| %s | " % w + " | ".join(
            (failures[(w, c)].split(" |")[0] if (w, c) in failures else fmt_mib(med_rss[w][c])) for c in cols) + " |")
    out.append("")

    # 4. ratios to mimalloc (the summary chart) with geometric means
    base = "mimalloc" if "mimalloc" in cols else "glibc"
    others = [c for c in cols if c != base]
    gm = {}
    for kind, table in (("Time", med_t), ("Peak RSS", med_rss)):
        out.append("### %s ratio to %s (below 1.00 = better than %s)\n" % (kind, base, base))
        out.append("| workload | " + " | ".join(others) + " |")
        out.append("|" + "---|" * (1 + len(others)))
        for w in wnames:
            out.append("| %s | " % w + " | ".join(fmt_r(ratio(w, c, base, table)) for c in others) + " |")
        g = {c: geomean([ratio(w, c, base, table) for w in wnames]) for c in others}
        gm[kind] = g
        out.append("| **geometric mean** | " + " | ".join("**%s**" % fmt_r(g[c]) for c in others) + " |")
        out.append("")

    # 5. hahalloc against every peer, with slowdowns flagged
    if has_h:
        out.append("### hahalloc (summary on) time ratio to each peer (bold: hahalloc slower)\n")
        out.append("| workload | " + " | ".join("/%s" % p for p in peers) + " |")
        out.append("|" + "---|" * (1 + len(peers)))
        for w in wnames:
            out.append("| %s | " % w + " | ".join(fmt_r(ratio(w, "hahalloc", p), 1.0) for p in peers) + " |")
        out.append("| **geometric mean** | " + " | ".join(
            "**%s**" % fmt_r(geomean([ratio(w, "hahalloc", p) for w in wnames])) for p in peers) + " |")
        out.append("")
        slow = [(w, ratio(w, "hahalloc", "glibc")) for w in wnames if (ratio(w, "hahalloc", "glibc") or 0) > 1.0]
        if slow:
            out.append("Slower than glibc: " + ", ".join("%s (%.2fx)" % s for s in slow) + ".\n")
        if "mimalloc" in cols:
            worst = sorted(((ratio(w, "hahalloc", "mimalloc") or 0, w) for w in wnames), reverse=True)[:5]
            out.append("Furthest behind mimalloc: " + ", ".join("%s (%.2fx)" % (w, r) for r, w in worst if r) + ".\n")
        else:
            out.append("hahalloc is not slower than glibc on any workload.\n" if all(
                ratio(w, "hahalloc", "glibc") for w in wnames) else "")
    if failures:
        out.append("### Failures\n")
        for (w, c), v in sorted(failures.items()):
            out.append("- %s under %s: %s" % (w, c, v))
        out.append("")
    tables = "\n".join(out)
    data["geomeans_vs_" + base] = gm

    m = data["machine"]
    head = [
        "# Benchmarks",
        "",
        "Generated by `make bench%s` (bench/run.py) on %s; %s mode, %d repetitions per allocator "
        "(issue 2's workloads: %s), allocators interleaved, medians reported. Figures for hahalloc are with its default settings "
        "(exit heap summary ON); the `hahalloc-nosummary` column is `HAHALLOC_SUMMARY=0`. Each benchmark "
        "runs with its stderr sent to /dev/null. Times are the wall time of the whole process; RSS is the "
        "child's peak resident set (getrusage). The machine is shared and noisy: read ratios, not absolute "
        "times. A time ratio is the median over repetitions of the ratio within one repetition, whose "
        "allocators run back to back under the same load; the wall-time table gives plain medians." % (
            " QUICK=1" if data["mode"] == "quick" else "", m["date"], data["mode"], data["reps"],
            ", ".join("%s %d" % (w, len(data["samples"][w].get("hahalloc", [])))
                      for w in ISSUE2 if w in data["samples"]) or "-"),
        "",
        "## Machine",
        "",
        "- CPU: %s, `nproc` = %s" % (m["cpu"], m["nproc"]),
        "- kernel %s, %s (Debian libc6 %s), %s" % (m["kernel"], m["glibc"], m["glibc_package"], m["compiler"]),
        "- peers: %s" % (", ".join(m["peers"].values()) or "none installed"),
        "- hahalloc: commit %s%s, libhahalloc.so sha256 %s..." % (
            m["hahalloc_commit"], " (built with uncommitted changes in src/)" if m["hahalloc_dirty"] else "",
            m.get("hahalloc_sha256", "")),
        "",
        "## How to run",
        "",
        "```sh",
        "make bench              # full run, about 10 minutes on 2 cores",
        "make bench QUICK=1      # under 2 minutes",
        "make bench-smoke        # every workload once, tiny, hahalloc and glibc",
        "bench/run.py --only churn1,prodcons --reps 7   # a subset",
        "bench/callgrind.sh build/libhahalloc.so        # instructions per malloc/free pair",
        "```",
        "",
        "## Results",
        "",
        "![time and peak RSS relative to mimalloc](../py/img/summary.png)",
        "",
        tables,
        "## The seed's five scenarios",
        "",
        "| | |",
        "|---|---|",
        "| ![](../py/img/single_alloc.png) | ![](../py/img/single_calloc.png) |",
        "| ![](../py/img/multiple_alloc_fixed_size.png) | ![](../py/img/multiple_alloc_random_size.png) |",
        "| ![](../py/img/re_alloc.png) | |",
        "",
        "## Workloads",
        "",
        "All programs are in `bench/`, built `-O2 -pthread` into `build/bench/` and never linked to hahalloc. "
        "Every block they allocate is written to and checked before it is freed, so an allocator that "
        "corrupts memory fails the run.",
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

    console = tables
    return {"doc": doc, "console": console}


if __name__ == "__main__":
    main()
