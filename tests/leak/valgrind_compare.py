#!/usr/bin/env python3
"""Definite and indirect leaks of real programs (not ours): hahalloc's
report against `valgrind --leak-check=full`. Bytes and blocks must be equal.
Skipped (and says so) where valgrind is not installed.

usage: valgrind_compare.py BUILD_DIR"""
import json, os, re, shutil, subprocess, sys, tempfile

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
LIB = os.path.join(BUILD, "libhahalloc.so")

if not shutil.which("valgrind"):
    print("test-leak-valgrind: valgrind is not installed: skipped")
    print("0 passed, 0 failed, 1 skipped")
    sys.exit(0)

work = tempfile.mkdtemp(prefix="hh-vg-")
nums = os.path.join(work, "nums.txt")
with open(nums, "w") as f:
    x = 12345
    for _ in range(20000):
        x = (x * 1103515245 + 12345) % (1 << 31)
        f.write(f"{x % 100000}\n")
tree = os.path.join(work, "tree")
for d in ("a/b/c", "a/d", "e"):
    os.makedirs(os.path.join(tree, d), exist_ok=True)
    for i in range(5):
        with open(os.path.join(tree, d, f"f{i}.txt"), "w") as f:
            f.write(f"line {i} include <stdio.h>\n" * (i + 1))

# (name, argv); programs missing on this machine are skipped.
PROGRAMS = [
    ("sort", ["sort", nums]),
    ("sort -n -u", ["sort", "-n", "-u", nums]),
    ("ls -lR", ["ls", "-lR", tree]),
    ("tar", ["tar", "cf", "/dev/null", tree]),
    ("date", ["date", "+%Y"]),
    ("tr", ["tr", "a-z", "A-Z", nums]),
    ("awk", ["awk", "{s+=$1} END {print s}", nums]),
    ("sed", ["sed", "-e", "s/1/one/g", nums]),
    ("grep -r", ["grep", "-r", "include", tree]),
    ("diff", ["diff", nums, os.path.join(tree, "e", "f1.txt")]),
    ("python3", ["python3", "-c", "import json; print(json.dumps({'a': [1, 2, 3]}))"]),
    ("perl", ["perl", "-e", "my %h; $h{$_} = $_ for 1..1000; print scalar(keys %h), qq(\\n)"]),
    ("git", ["git", "--version"]),
    ("sqlite3", ["sqlite3", ":memory:", "create table t(a); insert into t values (1); select * from t;"]),
    ("gzip", ["gzip", "-c", nums]),
    ("find", ["find", tree, "-name", "*.txt"]),
]

ENV = dict(os.environ, PERL_HASH_SEED="0", PERL_PERTURB_KEYS="0", PYTHONHASHSEED="0", LC_ALL="C")
for k in list(ENV):
    if k.startswith("HAHALLOC_") or k == "LD_PRELOAD":
        del ENV[k]


def hahalloc(argv):
    out = os.path.join(work, "r.json")
    if os.path.exists(out):
        os.unlink(out)  # report files are appended to, never truncated
    env = dict(ENV, LD_PRELOAD=LIB, HAHALLOC_FORMAT="json", HAHALLOC_OUTPUT=out)
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)
    s = json.load(open(out))["summary"]
    return (s["definite"]["bytes"], s["definite"]["blocks"], s["indirect"]["bytes"], s["indirect"]["blocks"])


def valgrind(argv):
    p = subprocess.run(["valgrind", "--leak-check=full", "--trace-children=no"] + argv, env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)

    def get(kind):
        m = re.search(kind + r" lost: ([\d,]+) bytes in ([\d,]+) blocks", p.stderr)
        return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else (0, 0)

    d, i = get("definitely"), get("indirectly")
    return (d[0], d[1], i[0], i[1])


passed = failed = skipped = 0
print(f"{'program':<14} {'hahalloc definite / indirect':>32}   {'valgrind definite / indirect':>32}")
for name, argv in PROGRAMS:
    if not shutil.which(argv[0]):
        print(f"{name:<14} skipped: not installed")
        skipped += 1
        continue
    try:
        h, v = hahalloc(argv), valgrind(argv)
    except Exception as ex:  # noqa: BLE001
        print(f"FAIL {name}: {ex}")
        failed += 1
        continue
    fmt = lambda t: f"{t[0]} B/{t[1]} blk / {t[2]} B/{t[3]} blk"
    ok = h == v
    passed += ok
    failed += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name:<14} {fmt(h):>28}   {fmt(v):>28}")
shutil.rmtree(work, ignore_errors=True)
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed < 8 else 0)
