#!/usr/bin/env python3
"""Real programs on hahalloc, as a user meets it first: an ordinary program,
unmodified, with LD_PRELOAD naming the library.

    tests/clients/run.py LIB [--only NAME,...] [--again NAME=VALUE ...] [--keep]

Each client below is a short job for programs we did not write (python3,
sqlite3, git, perl, gcc and g++, sort, awk, xz) or for a threaded C++ program
of ours (pipeline.cpp, built here without the library). The job runs twice,
each time in an empty directory of its own: once on the C library's malloc,
once with LD_PRELOAD=LIB. It passes when the preloaded run exits as cleanly
as the plain one and its result (what the job collects: outputs, digests of
outputs, the state it left behind) is the same, byte for byte. The jobs are
deterministic by construction: fixed seeds, fixed dates, PYTHONHASHSEED=0.

One line per client, PASS or FAIL with the reason, then a count; the exit
status is 1 when a client failed, 2 when the machine lacks a program (see
tests/deps.sh). The environment is passed on as it is, so a HAHALLOC_*
variable set by the caller reaches every process of the preloaded runs.
CLIENT_TIMEOUT bounds one run of one client, in seconds (default 600).
With --again, each client's preloaded run is made a second time with these
variables added to its environment (HAHALLOC_OUTPUT=..., say), and compared
with the same plain run: the plain run is not made twice.

Python clients run with PYTHONMALLOC=malloc: otherwise CPython serves its
objects of up to 512 bytes from its own pools and hahalloc sees little.
"""
import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = int(os.environ.get("CLIENT_TIMEOUT", "600"))
NEEDED = ["python3", "sqlite3", "git", "perl", "gcc", "g++", "sort", "awk", "xz"]


class Failed(Exception):
    pass


class Runner:
    """Runs the commands of one client, plain or preloaded, in its own
    directory, and collects what the client's result is made of."""

    def __init__(self, lib, workdir, deadline, extra_env=None):
        self.lib = lib
        self.extra_env = extra_env or {}
        self.cwd = workdir
        self.deadline = deadline
        self.result = []

    def run(self, argv, stdin=None, env=None, cwd=None, stderr_too=False):
        """The command's output (with its stderr after it when `stderr_too`);
        Failed unless it exits with status 0."""
        e = dict(os.environ)
        e.update(env or {})
        if self.lib:
            e["LD_PRELOAD"] = self.lib
            e.update(self.extra_env)
        else:
            e.pop("LD_PRELOAD", None)
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise Failed("timed out")
        try:
            p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               cwd=cwd or self.cwd, env=e, timeout=left)
        except subprocess.TimeoutExpired:
            raise Failed("timed out after %ds in %s" % (TIMEOUT, " ".join(argv[:3])))
        if p.returncode != 0:
            why = "killed by signal %d" % -p.returncode if p.returncode < 0 else "exit status %d" % p.returncode
            tail = p.stderr.decode(errors="replace").strip().splitlines()[-3:]
            raise Failed("%s: %s; stderr: %s" % (" ".join(argv[:3]), why, " | ".join(tail)))
        return p.stdout + p.stderr if stderr_too else p.stdout

    def keep(self, label, data):
        """Adds `data` to the result: short text as it is, the rest digested."""
        if isinstance(data, str):
            data = data.encode()
        if len(data) <= 200 and b"\0" not in data:
            shown = data.decode(errors="replace").strip()
        else:
            shown = "%d bytes, sha256 %s" % (len(data), hashlib.sha256(data).hexdigest())
        self.result.append("%s: %s" % (label, shown))


# ---------------------------------------------------------------- input data

WORDS_SEED = 2718


def make_data(d):
    """Inputs every client reads, written once, before any run."""
    r = random.Random(WORDS_SEED)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "ix", "ut", "be"]
    words = sorted({"".join(r.choice(syllables) for _ in range(r.randint(1, 5))) for _ in range(12000)})
    with open(os.path.join(d, "words"), "w") as f:
        f.write("\n".join(words) + "\n")
    # a table for sort and awk: 600,000 rows of id, city, name, score
    cities = words[:400]
    with open(os.path.join(d, "table.tsv"), "w") as f:
        for i in range(600000):
            f.write("%d\t%s\t%s %s\t%.3f\n" % (r.randrange(10 ** 8), r.choice(cities), r.choice(words),
                                               r.choice(words), r.random() * 1000))
    # a lending library for sqlite3
    with open(os.path.join(d, "library.sql"), "w") as f:
        f.write("CREATE TABLE member(id INTEGER PRIMARY KEY, name TEXT, town TEXT, joined INTEGER);\n"
                "CREATE TABLE book(id INTEGER PRIMARY KEY, title TEXT, author TEXT, pages INTEGER, "
                "summary TEXT);\n"
                "CREATE TABLE loan(id INTEGER PRIMARY KEY, book INTEGER, member INTEGER, day INTEGER, "
                "returned INTEGER, note BLOB);\nBEGIN;\n")
        for i in range(15000):
            f.write("INSERT INTO member VALUES(%d,'%s %s','%s',%d);\n"
                    % (i, r.choice(words), r.choice(words), r.choice(cities[:120]), r.randrange(20000)))
        for i in range(30000):
            f.write("INSERT INTO book VALUES(%d,'%s','%s',%d,'%s');\n"
                    % (i, " ".join(r.choice(words) for _ in range(r.randint(1, 6))), r.choice(words[:3000]),
                       r.randint(40, 1200), " ".join(r.choice(words) for _ in range(r.randint(0, 60)))))
        for i in range(150000):
            f.write("INSERT INTO loan VALUES(%d,%d,%d,%d,%d,zeroblob(%d));\n"
                    % (i, r.randrange(30000), r.randrange(15000), r.randrange(3650), r.randint(0, 1),
                       r.randint(0, 1500)))
        f.write("COMMIT;\n"
                "CREATE INDEX loan_book ON loan(book);\nCREATE INDEX loan_member ON loan(member);\n"
                "SELECT count(*), sum(returned), sum(length(note)) FROM loan;\n"
                "SELECT m.town, count(*) AS n FROM loan l JOIN member m ON m.id = l.member "
                "GROUP BY m.town ORDER BY n DESC, m.town LIMIT 20;\n"
                "SELECT b.author, count(DISTINCT l.member), sum(b.pages) FROM loan l JOIN book b "
                "ON b.id = l.book GROUP BY b.author ORDER BY 3 DESC, 1 LIMIT 30;\n"
                "SELECT group_concat(title, '|') FROM (SELECT title FROM book WHERE id % 1009 = 0 "
                "ORDER BY title);\n"
                "UPDATE book SET summary = upper(summary) || ' ' || printf('%06d', id) WHERE pages > 900;\n"
                "DELETE FROM loan WHERE returned = 1 AND day < 1000;\n"
                "WITH RECURSIVE n(x, s) AS (SELECT 1, '' UNION ALL SELECT x + 1, substr(s || x, -300) "
                "FROM n WHERE x < 100000) SELECT max(length(s)), sum(x) FROM n;\n"
                "CREATE TABLE reader AS SELECT member, count(*) AS loans, group_concat(book) AS books "
                "FROM loan GROUP BY member;\n"
                "SELECT count(*), sum(loans), sum(length(books)) FROM reader;\n"
                "VACUUM;\nPRAGMA integrity_check;\n")
    # a source tree for git: 1,500 files in 30 directories
    for i in range(1500):
        sub = os.path.join(d, "tree", "part%02d" % (i % 30))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "note%04d.txt" % i), "w") as f:
            for _ in range(r.randint(3, 90)):
                f.write(" ".join(r.choice(words) for _ in range(10)) + "\n")
    # a C program for gcc: 300 functions that call each other through a table
    with open(os.path.join(d, "prog.c"), "w") as f:
        f.write("#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n")
        for i in range(300):
            f.write("static long fn%d(long x, char *buf) {\n" % i)
            f.write("  long acc = x * %d + %d;\n" % (r.randint(3, 97), r.randint(0, 9999)))
            f.write("  for (int k = 0; k < %d; k++) {\n" % r.randint(2, 12))
            f.write("    acc ^= (acc << %d) + (acc >> %d) + k;\n" % (r.randint(1, 9), r.randint(1, 9)))
            f.write("    if (acc %% %d == 0) acc += (long)strlen(buf);\n  }\n" % r.randint(2, 13))
            f.write("  snprintf(buf, 32, \"f%d:%%ld\", acc %% 1000);\n  return acc;\n}\n" % i)
        f.write("typedef long (*fnp)(long, char *);\nstatic const fnp table[] = {%s};\n"
                % ", ".join("fn%d" % i for i in range(300)))
        f.write("int main(void) {\n  char buf[32] = \"start\";\n  long acc = 1;\n"
                "  for (int i = 0; i < 3000; i++) acc = table[(unsigned long)acc % 300](acc, buf);\n"
                "  printf(\"%ld %s\\n\", acc, buf);\n  return 0;\n}\n")


# ---------------------------------------------------------------- clients

PYTHON_JOB = r'''
import collections, hashlib, json, random, re, threading
out = hashlib.sha256()
r = random.Random(99)
words = open(WORDS).read().split()
text = " ".join(r.choice(words) for _ in range(300000))
freq = collections.Counter(text.split())
out.update(repr(freq.most_common(500)).encode())
index = {}
for pos, w in enumerate(text.split()):
    index.setdefault(w[:3], []).append(pos)
    if pos % 7 == 0:
        index.pop(r.choice(words)[:3], None)
out.update(repr(sorted((k, len(v)) for k, v in index.items())).encode())
out.update(repr(re.findall(r"\b(ka\w*?lo)\b", text)[:2000]).encode())
docs = [{"n": i, "w": words[i % len(words)], "tags": [words[(i * j) % len(words)] for j in range(i % 12)],
         "score": i / 7} for i in range(40000)]
encoded = json.dumps(docs, sort_keys=True)
assert json.loads(encoded) == docs
out.update(encoded.encode())
rows = sorted(((len(w), w[::-1], i) for i, w in enumerate(words * 8)), reverse=True)
out.update(repr(rows[::997]).encode())
totals = [0] * 4
def worker(t):
    rr = random.Random(t)
    seen = {}
    for i in range(80000):
        seen[rr.randrange(4000)] = words[rr.randrange(len(words))] * rr.randint(1, 8)
        if i % 3 == 0:
            seen.pop(rr.randrange(4000), None)
    totals[t] = sum(map(len, seen.values()))
threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
for t in threads: t.start()
for t in threads: t.join()
out.update(repr(totals).encode())
grown = bytearray()
for i in range(150000):
    grown += bytes([i % 253]) * (i % 11)
out.update(grown)
print(out.hexdigest())
'''


def client_python(run, data):
    job = PYTHON_JOB.replace("WORDS", repr(os.path.join(data, "words")))
    run.keep("digest", run.run(["python3", "-c", job], env={"PYTHONMALLOC": "malloc", "PYTHONHASHSEED": "0"}))


def client_sqlite(run, data):
    with open(os.path.join(data, "library.sql"), "rb") as f:
        script = f.read()
    run.keep("queries", run.run(["sqlite3", "library.db"], stdin=script))
    run.keep("after", run.run(["sqlite3", "library.db", "SELECT count(*), sum(pages) FROM book; "
                                                        "PRAGMA integrity_check;"]))


GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.org",
    "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.org",
    "GIT_AUTHOR_DATE": "2021-06-01T12:00:00Z", "GIT_COMMITTER_DATE": "2021-06-01T12:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
}


def client_git(run, data):
    repo = os.path.join(run.cwd, "repo")
    shutil.copytree(os.path.join(data, "tree"), repo)

    def git(*args, stderr_too=False):
        return run.run(["git", "-c", "init.defaultBranch=trunk", "-c", "gc.autoDetach=false",
                        "-c", "core.fsync=none", *args], env=GIT_ENV, cwd=repo, stderr_too=stderr_too)

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "the notes as they were")
    for i in range(0, 1500, 9):
        with open(os.path.join(repo, "part%02d" % (i % 30), "note%04d.txt" % i), "a") as f:
            f.write("edited %d\n" % i)
    git("rm", "-q", "part03/note0003.txt", "part04/note0004.txt")
    git("commit", "-q", "-a", "-m", "edits")
    git("switch", "-q", "-c", "topic", "HEAD~1")
    git("mv", "part05/note0005.txt", "moved.txt")
    with open(os.path.join(repo, "part06", "note0006.txt"), "a") as f:
        f.write("on the topic branch\n")
    git("commit", "-q", "-a", "-m", "topic")
    git("switch", "-q", "trunk")
    git("merge", "-q", "--no-edit", "topic")
    git("tag", "-a", "-m", "first release", "v1")
    git("gc", "-q", "--aggressive")
    run.keep("heads", git("rev-parse", "HEAD", "HEAD^{tree}", "v1"))
    run.keep("log", git("log", "--stat", "--format=%H %an %s"))
    run.keep("diff", git("diff", "--stat", "HEAD~2", "HEAD"))
    run.keep("blame", git("blame", "-s", "part06/note0006.txt"))
    run.keep("grep", git("grep", "-c", "edited"))
    run.keep("graph", git("log", "--graph", "--oneline", "--all"))
    run.keep("show", git("show", "--stat", "v1"))
    run.keep("status", git("status", "--porcelain", "--branch"))
    run.keep("archive", git("archive", "--format=tar", "v1"))
    run.keep("fsck", git("fsck", "--full", "--strict", "--no-progress", stderr_too=True))
    counts = git("count-objects", "-v").decode().splitlines()
    run.keep("objects", "\n".join(l for l in counts if l.split(":")[0] in ("count", "in-pack", "packs")))


PERL_JOB = r'''
use strict; use warnings; use Digest::SHA qw(sha256_hex);
open(my $fh, "<", $ARGV[0]) or die; my @words = map { chomp; $_ } <$fh>;
my (%by_len, %pairs, @lines);
for my $i (0 .. 250000) {
  my $w = $words[($i * 7919) % @words];
  push @{ $by_len{length $w} }, $w;
  $pairs{ $w . "-" . $words[($i * 104729) % @words] }++;
  push @lines, join(" ", map { $words[($i + $_ * 31) % @words] } 0 .. $i % 9) if $i % 4 == 0;
}
delete $pairs{$_} for grep { /ix|ut/ } keys %pairs;
my $joined = join("\n", @lines);
(my $swapped = $joined) =~ s/(\w)(\w)/$2$1/g;
my @sorted = sort { length($a) <=> length($b) or $a cmp $b } keys %pairs;
my $big = "ab" x 2_000_000; $big =~ s/ba/xy/g;
print join(" ", sha256_hex(join ",", map { "$_:" . scalar @{ $by_len{$_} } } sort { $a <=> $b } keys %by_len),
  sha256_hex($swapped), sha256_hex(join ",", @sorted[0 .. 999]), sha256_hex($big), scalar(@sorted)), "\n";
'''


def client_perl(run, data):
    run.keep("digests", run.run(["perl", "-e", PERL_JOB, os.path.join(data, "words")]))


def client_compilers(run, data):
    prog = os.path.join(data, "prog.c")
    run.run(["gcc", "-O2", "-c", prog, "-o", "prog.o"])
    run.run(["gcc", "-O1", "-S", prog, "-o", "prog.s"])
    run.run(["gcc", "prog.o", "-o", "prog"])
    run.run(["gcc", "-O0", "-g", prog, "-o", "prog_debug"])
    run.run(["g++", "-std=c++17", "-O2", "-c", os.path.join(HERE, "pipeline.cpp"), "-o", "pipeline.o"])
    for name in ("prog.o", "prog.s", "pipeline.o"):
        with open(os.path.join(run.cwd, name), "rb") as f:
            run.keep(name, f.read())
    run.keep("prog", run.run([os.path.join(run.cwd, "prog")]))
    run.keep("prog_debug", run.run([os.path.join(run.cwd, "prog_debug")]))


def client_text_tools(run, data):
    table = os.path.join(data, "table.tsv")
    run.keep("sort by city, score", run.run(["sort", "-t", "\t", "-k2,2", "-k4,4gr", "-S", "200M",
                                             "--parallel=2", table]))
    run.keep("distinct names", run.run(["sort", "-u", "-k3,3", table]))
    run.keep("awk per city", run.run(["awk", "-F", "\t", "{ n[$2]++; s[$2] += $4; w[$3] = w[$3] substr($2, 1, 3) }"
                                      " END { for (c in n) printf \"%s %d %.2f\\n\", c, n[c], s[c];"
                                      " for (k in w) t += length(w[k]); print \"total\", t }", table]))
    with open(table, "rb") as f:
        head = f.read(6 << 20)
    packed = run.run(["xz", "-T2", "-3", "-c"], stdin=head)
    run.keep("xz", packed)
    run.keep("xz round trip", run.run(["xz", "-d", "-c"], stdin=packed))


def client_pipeline(run, data):
    run.keep("answers", run.run([os.path.join(data, "pipeline"), "3", "3", "400000"]))


CLIENTS = [
    ("python", client_python),
    ("sqlite", client_sqlite),
    ("git", client_git),
    ("perl", client_perl),
    ("compilers", client_compilers),
    ("text-tools", client_text_tools),
    ("pipeline", client_pipeline),
]


def run_client(fn, lib, scratch, data, extra_env=None):
    """The client's result (a list of lines), or Failed."""
    wd = tempfile.mkdtemp(dir=scratch)
    try:
        r = Runner(lib, wd, time.monotonic() + TIMEOUT, extra_env)
        fn(r, data)
        return r.result
    finally:
        shutil.rmtree(wd, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lib")
    ap.add_argument("--only", default="", help="comma-separated client names")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--again", action="append", default=[], metavar="NAME=VALUE",
                    help="run the preloaded job a second time with these variables")
    args = ap.parse_args()
    again = {}
    for a in args.again:
        k, sep, v = a.partition("=")
        if not sep or not k:
            print("run.py: --again wants NAME=VALUE, not %r" % a, file=sys.stderr)
            return 2
        again[k] = v

    lib = os.path.abspath(args.lib)
    missing = [t for t in NEEDED if shutil.which(t) is None]
    if missing:
        print("run.py: missing programs: %s (tests/deps.sh installs them)" % " ".join(missing), file=sys.stderr)
        return 2
    if not os.path.isfile(lib):
        print("run.py: no such library: %s" % lib, file=sys.stderr)
        return 2
    maps = subprocess.run(["cat", "/proc/self/maps"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=dict(os.environ, LD_PRELOAD=lib))
    if lib.encode() not in maps.stdout:
        print("run.py: LD_PRELOAD=%s is not loaded: %s" % (lib, maps.stderr.decode(errors="replace")),
              file=sys.stderr)
        return 2

    only = [n for n in args.only.split(",") if n]
    scratch = tempfile.mkdtemp(prefix="hahalloc-clients.")
    data = os.path.join(scratch, "data")
    os.makedirs(data)
    failed = passed = 0
    try:
        make_data(data)
        # ours, built with the system's allocator in the build, never preloaded
        subprocess.run(["g++", "-std=c++17", "-O2", "-pthread", "-o", os.path.join(data, "pipeline"),
                        os.path.join(HERE, "pipeline.cpp")], check=True)
        print("# real programs, plain and with LD_PRELOAD=%s" % lib, flush=True)
        for name, fn in CLIENTS:
            if only and name not in only:
                continue
            t0 = time.monotonic()
            try:
                plain = run_client(fn, None, scratch, data)
            except Failed as e:
                failed += 1
                print("FAIL %s: the plain run failed, so the machine is at fault: %s" % (name, e), flush=True)
                continue
            t1 = time.monotonic()
            variants = [("preloaded", None)]
            if again:
                variants.append(("preloaded with " + " ".join("%s=%s" % kv for kv in again.items()), again))
            runs = []
            try:
                for label, extra in variants:
                    t = time.monotonic()
                    runs.append((label, run_client(fn, lib, scratch, data, extra), time.monotonic() - t))
            except Failed as e:
                failed += 1
                print("FAIL %s: %s, %s" % (name, label, e), flush=True)
                continue
            times = ", ".join(["plain %.1fs" % (t1 - t0)] + ["%s %.1fs" % (l, t) for l, _, t in runs])
            bad = [(l, r) for l, r, _ in runs if r != plain]
            if not plain:
                failed += 1
                print("FAIL %s: the job collected nothing" % name, flush=True)
            elif bad:
                failed += 1
                label, res = bad[0]
                diff = next(("%s / %s" % (a, b) for a, b in zip(plain, res) if a != b),
                            "%d lines / %d lines" % (len(plain), len(res)))
                print("FAIL %s: the result %s differs (%s): %s" % (name, label, times, diff[:400]), flush=True)
            else:
                passed += 1
                print("PASS %s (%s)" % (name, times), flush=True)
    finally:
        if args.keep:
            print("# kept %s" % scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
