#!/usr/bin/env python3
"""tests/leak/familiar.py: valgrind's and LeakSanitizer's users feel at home
(issue 11). Their options in both spellings, suppressions in both formats,
stacks that name the user's line, valgrind's XML, the leak-check API, the
profile and its collapsed stacks, and linking as the README says. Each check
is one behaviour; the last line is the count.

usage: familiar.py BUILD_DIR   (BUILD_DIR holds libhahalloc.so, hahalloc, tests/leak/*)"""
import json, os, re, shutil, subprocess, sys, tempfile
import xml.etree.ElementTree as ET

BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIB = os.path.join(BUILD, "libhahalloc.so")
TOOL = os.path.join(BUILD, "hahalloc")
BIN = os.path.join(BUILD, "tests", "leak")
SRC = os.path.dirname(os.path.abspath(__file__))
LEAKY = os.path.join(BIN, "leaky_O0")
work = tempfile.mkdtemp(prefix="hh-familiar-")
results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + str(detail)[-1500:]), flush=True)


def clean_env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HAHALLOC_") and k != "LD_PRELOAD"}
    e["LC_ALL"] = "C"
    e.update(extra or {})
    return e


def run(argv, env=None, timeout=120, cwd=None):
    try:
        return subprocess.run(argv, env=clean_env(env), capture_output=True, text=True, errors="replace",
                              timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired as ex:
        return subprocess.CompletedProcess(argv, "timeout", ex.stdout or "", ex.stderr or "")


def tool(*args, env=None, cwd=None):
    return run([TOOL, *args], env=env, cwd=cwd)


def sites(src):
    out = {}
    for i, line in enumerate(open(os.path.join(SRC, src)), 1):
        m = re.search(r"SITE\((\w+)\)", line)
        if m:
            out[m.group(1)] = i
    return out


def records(text):
    """Loss records of a text report: [(header line, [frame lines])]."""
    out, cur = [], None
    for line in text.splitlines():
        if re.match(r"^==\d+== .* bytes in [\d,]+ blocks are ", line):
            cur = (line, [])
            out.append(cur)
        elif cur is not None and re.match(r"^==\d+==    (at|by) ", line):
            cur[1].append(line)
        else:
            cur = None
    return out


def kinds_listed(text):
    names = {"definitely lost": "definite", "indirectly lost": "indirect", "possibly lost": "possible",
             "still reachable": "reachable"}
    found = set()
    for head, _ in records(text):
        for k, v in names.items():
            if " are " + k in head:
                found.add(v)
    return found


def summary(text, kind):
    m = re.search(r"%s: ([\d,]+) bytes in ([\d,]+) blocks" % kind, text)
    return (int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))) if m else None


# ---------------------------------------------------------------- options, both spellings

def spellings(opt, value):
    """The three ways to give an option: --opt=value, --opt value, HAHALLOC_OPTIONS."""
    key = opt.lstrip("-")
    return [("--%s=%s" % (key, value), [opt + "=" + value], None),
            ("--%s %s" % (key, value), [opt, value], None),
            ("HAHALLOC_OPTIONS=%s=%s" % (key, value), [], {"HAHALLOC_OPTIONS": "%s=%s" % (key, value)})]


def each_spelling(opt, value, prog, ok, label, extra=()):
    for how, args, env in spellings(opt, value):
        p = tool(*extra, *args, "--", *prog, env=env)
        good, detail = ok(p)
        check(f"{how}: {label}", good, detail or (p.stderr[-800:] if isinstance(p.stderr, str) else p))


def option_suite():
    leaky = [LEAKY]
    each_spelling("--leak-check", "no", leaky,
                  lambda p: ("LEAK SUMMARY" not in p.stderr and not records(p.stderr) and "in use at exit" in p.stderr, None),
                  "the heap summary only")
    each_spelling("--leak-check", "summary", leaky,
                  lambda p: ("LEAK SUMMARY" in p.stderr and not records(p.stderr), None), "totals, no stacks")
    p = tool("--leak-check=summary", "--error-exitcode=5", LEAKY)
    check("--leak-check=summary: leaks are counted, not errors (as valgrind): the program's status, not 5",
          p.returncode == 0 and "LEAK SUMMARY" in p.stderr, f"status {p.returncode}")
    each_spelling("--leak-check", "full", leaky,
                  lambda p: (kinds_listed(p.stderr) == {"definite", "possible"}, None),
                  "the default kinds listed with their stacks")
    p = tool(LEAKY)
    check("default: definite and possible listed, as valgrind's --show-leak-kinds default",
          kinds_listed(p.stderr) == {"definite", "possible"}, p.stderr[-800:])
    each_spelling("--show-leak-kinds", "all", leaky,
                  lambda p: (kinds_listed(p.stderr) == {"definite", "indirect", "possible", "reachable"}, None),
                  "every kind listed")
    each_spelling("--show-leak-kinds", "none", leaky, lambda p: (not records(p.stderr) and "LEAK SUMMARY" in p.stderr, None),
                  "nothing listed, the summary kept")
    each_spelling("--show-leak-kinds", "indirect,reachable", leaky,
                  lambda p: (kinds_listed(p.stderr) == {"indirect", "reachable"}, None), "a list of kinds")
    each_spelling("--show-reachable", "yes", leaky,
                  lambda p: ("reachable" in kinds_listed(p.stderr) and "indirect" in kinds_listed(p.stderr), None),
                  "as valgrind: every kind listed")
    each_spelling("--show-reachable", "no", leaky,
                  lambda p: (kinds_listed(p.stderr) == {"definite", "possible"}, None),
                  "as valgrind: reachable blocks not listed")
    each_spelling("--show-possibly-lost", "no", leaky,
                  lambda p: (kinds_listed(p.stderr) == {"definite"}, None), "possibly lost blocks not listed")
    # which kinds make --error-exitcode fire (leaky_O0: definite, indirect, possible, reachable)
    each_spelling("--errors-for-leak-kinds", "reachable", leaky, lambda p: (p.returncode == 9, p.returncode),
                  "reachable blocks are errors: status 9", extra=("--error-exitcode=9",))
    each_spelling("--errors-for-leak-kinds", "none", leaky, lambda p: (p.returncode == 0, p.returncode),
                  "no kind is an error: the program's status", extra=("--error-exitcode=9",))
    each_spelling("--error-exitcode", "7", leaky, lambda p: (p.returncode == 7, p.returncode),
                  "status 7 on definite and possible leaks (valgrind's default kinds)")
    clean = ["/bin/true"]
    each_spelling("--error-exitcode", "7", clean, lambda p: (p.returncode == 0, p.returncode),
                  "a clean program keeps its status")
    # errors other than leaks count too, as valgrind's do: a double free ignored under
    # HAHALLOC_ON_ERROR=continue, and a write past a live block's end found by the guard at exit
    misuse = {"double_free": "void *volatile p = malloc(32); free(p); free(p);",
              "overrun_at_exit": "keep = malloc(24); volatile int i = 24; keep[i] = 'x';",
              "damage_found_at_exit": "char *volatile a = malloc(32); keep = malloc(32); free(a); "
                                      "*(long *volatile)a = 12345;"}
    for name, body in misuse.items():
        src = os.path.join(work, name + ".c")
        with open(src, "w") as f:
            f.write("#include <stdlib.h>\nchar *volatile keep; /* reachable: no leak */\n"
                    "int main(void) { %s return 0; }\n" % body)
        exe = os.path.join(work, name)
        run(["cc", "-O0", "-o", exe, src])
        p = tool("--error-exitcode=7", "--guard=yes", exe, env={"HAHALLOC_ON_ERROR": "continue"})
        check(f"--error-exitcode=7: {name.replace('_', ' ')} (no leak) makes status 7", p.returncode == 7 and
              "error" in p.stderr, (p.returncode, p.stderr[-400:]))
        if name == "double_free":
            check("a double free is one error in the ERROR SUMMARY",
                  re.search(r"(?m)^==\d+== ERROR SUMMARY: 1 errors from 1 contexts \(suppressed: 0 from 0\)$",
                            p.stderr), p.stderr[-400:])

    # valgrind's last line, which test scripts grep for (jq's shtest: "ERROR SUMMARY: 0 errors")
    def error_summary(text):
        m = re.findall(r"(?m)^==\d+== ERROR SUMMARY: (\d+) errors from (\d+) contexts \(suppressed: \d+ from \d+\)$",
                       text)
        return m[-1] if len(m) == 1 else None
    p = tool("/bin/true")
    check("a clean program: ERROR SUMMARY: 0 errors from 0 contexts, the report's last line",
          error_summary(p.stderr) == ("0", "0") and p.stderr.rstrip("\n").splitlines()[-1].find("ERROR SUMMARY") > 0,
          p.stderr[-400:])
    p = tool("-q", LEAKY)
    check("-q: no ERROR SUMMARY, as valgrind -q", "ERROR SUMMARY" not in p.stderr, p.stderr[-400:])
    p = tool("--leak-check=summary", LEAKY)
    check("--leak-check=summary: leaks are no errors in the ERROR SUMMARY", error_summary(p.stderr) == ("0", "0"),
          p.stderr[-400:])
    for extra in ((), ("--errors-for-leak-kinds=all", "--show-leak-kinds=all")):
        p = tool(*extra, LEAKY)
        want = {(): ("5", "5"), ("--errors-for-leak-kinds=all", "--show-leak-kinds=all"): ("7", "7")}[extra]
        if shutil.which("valgrind"):
            v = run(["valgrind", "--leak-check=full", *extra, LEAKY])
            want = error_summary(v.stderr)
        check(f"ERROR SUMMARY of a leaking program{' with ' + ' '.join(extra) if extra else ''}: valgrind's count "
              f"of loss records of the error kinds ({want})", want is not None and error_summary(p.stderr) == want,
              (error_summary(p.stderr), want, p.stderr[-300:]))

    for opt in ("--log-file", "--output"):
        for n, form in enumerate(("--opt=FILE", "--opt FILE", "HAHALLOC_OPTIONS")):
            d = os.path.join(work, "log-%s-%d" % (opt[2:], n))
            os.mkdir(d)
            path = os.path.join(d, "r.%p.txt")
            how, args, env = spellings(opt, path)[n]
            p = tool(*args, LEAKY, env=env)
            files = os.listdir(d)
            text = open(os.path.join(d, files[0])).read() if len(files) == 1 else ""
            pid = re.search(r"==(\d+)==", text)
            check(f"{opt} with %p ({form}): the report is in FILE.<pid>, not on stderr",
                  pid is not None and files == ["r.%s.txt" % pid.group(1)] and "LEAK SUMMARY" in text and
                  "LEAK SUMMARY" not in p.stderr, f"{files} {p.stderr[-300:]}")
    # a relative file name is taken from where the command started
    d = os.path.join(work, "relative")
    os.mkdir(d)
    p = tool("--log-file", "rel.txt", "sh", "-c", "cd / && exec " + LEAKY, cwd=d)
    check("--log-file with a relative name: written where the command ran, even if the program moves",
          os.path.exists(os.path.join(d, "rel.txt")), os.listdir(d))
    # LeakSanitizer's log_path writes PATH.<pid>
    d = os.path.join(work, "lsan-log")
    os.mkdir(d)
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "log_path=" + d + "/leaks"})
    files = os.listdir(d)
    check("HAHALLOC_OPTIONS=log_path=PATH (LeakSanitizer's): the report in PATH.<pid>",
          len(files) == 1 and re.fullmatch(r"leaks\.\d+", files[0]) is not None, files)

    for how, args, env in spellings("--num-callers", "3"):
        p = tool(*args, LEAKY, env=env)
        recs = [r for r in records(p.stderr) if "300 bytes" in r[0]]
        check(f"{how}: deeper stacks (the thread's leak shows start_thread)",
              recs and any("start_thread" in f for f in recs[0][1]), p.stderr[-800:])
    p = tool(LEAKY)
    recs = [r for r in records(p.stderr) if r[0].split("==")[2].strip().startswith("100 bytes")]
    check("default num-callers: the allocating function, then the call site",
          recs and len(recs[0][1]) == 2 and "malloc" in recs[0][1][0] and "leak_direct" in recs[0][1][1],
          recs)
    for how, args, env in spellings("--stack-depth", "3"):
        p = tool(*args, LEAKY, env=env)
        recs = [r for r in records(p.stderr) if r[0].split("==")[2].strip().startswith("100 bytes")]
        check(f"{how} (hahalloc's older name): main is in the stack",
              recs and any(" main " in f for f in recs[0][1]), p.stderr[-600:])
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "malloc_context_size=3"})
    recs = [r for r in records(p.stderr) if r[0].split("==")[2].strip().startswith("100 bytes")]
    check("HAHALLOC_OPTIONS=malloc_context_size=3 (LeakSanitizer's): main is in the stack",
          recs and any(" main " in f for f in recs[0][1]), p.stderr[-600:])

    child = "%s >/dev/null; %s >/dev/null" % (LEAKY, LEAKY)
    for how, args, env in spellings("--trace-children", "yes"):
        p = tool(*args, "sh", "-c", child, env=env)
        check(f"{how}: the program's children report too", p.stderr.count("LEAK SUMMARY") == 3,
              p.stderr.count("LEAK SUMMARY"))
    for how, args, env in spellings("--trace-children", "no"):
        p = tool(*args, "sh", "-c", child, env=env)
        check(f"{how}: only the program reports", p.stderr.count("LEAK SUMMARY") == 1, p.stderr.count("LEAK SUMMARY"))

    each_spelling("--gen-suppressions", "all", leaky,
                  lambda p: (p.stderr.count("   Memcheck:Leak") == len(records(p.stderr)) > 0, None),
                  "a suppression after every loss record")
    each_spelling("--gen-suppressions", "no", leaky, lambda p: ("Memcheck:Leak" not in p.stderr, None), "none")
    for flag in ("-q", "--quiet"):
        p = tool(flag, LEAKY)
        check(f"{flag}: the leaks only, as valgrind -q", records(p.stderr) and "heap summary" not in p.stderr and
              "LEAK SUMMARY" not in p.stderr, p.stderr[-600:])
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "q"})
    check("HAHALLOC_OPTIONS=q: the leaks only", records(p.stderr) and "LEAK SUMMARY" not in p.stderr, p.stderr[-400:])
    for flag in ("-v", "--verbose"):
        p = tool(flag, LEAKY)
        check(f"{flag}: the scan's figures, the site numbers and the use per root",
              "(leak scan:" in p.stderr and "(site " in p.stderr and "use per root" in p.stderr, p.stderr[-600:])
    # The start-up line of -v comes from the processes that report only:
    # an untraced child's stderr is someone else's (helper-53: every process
    # a build started wrote it).
    for trace, lines in (("no", 1), ("yes", 2)):
        p = tool("-v", "--trace-children=" + trace, "sh", "-c", LEAKY + "; true")
        said = len(re.findall(r"^hahalloc: pid \d+: ", p.stderr, re.M))
        check(f"-v --trace-children={trace}: the start-up line from the {lines} process(es) that report, "
              f"not from an untraced child", said == lines, f"{said} lines: {p.stderr[-600:]}")
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "summary=yes:verbose=yes"})
    check("HAHALLOC_OPTIONS=summary=yes:verbose=yes: the scan's figures", "(leak scan:" in p.stderr, p.stderr[-300:])
    p = tool(LEAKY)
    text = re.sub(r"\S*/\S*", "", p.stderr).lower()  # paths may hold any word (a checkout in /tmp/ciroot)
    words = [w for w in ("root", "seed", "site ", "(leak scan") if w in text]
    check("without -v the report has none of the allocator's words (root, seed, site N, the scan)", not words, words)
    p = tool("--version")
    check("--version: hahalloc's version, as valgrind --version", p.returncode == 0 and
          re.fullmatch(r"hahalloc-\d+\.\d+\.\d+\n", p.stdout) is not None, p.stdout + p.stderr)

    for how, args, env in spellings("--xml", "yes"):
        f = os.path.join(work, "x%d.xml" % len(results))
        args = args + ["--xml-file=" + f] if args else []
        if env:
            env = {"HAHALLOC_OPTIONS": "xml=yes:xml-file=" + f}
        p = tool(*args, LEAKY, env=env)
        try:
            root = ET.parse(f).getroot()
            ok = root.tag == "valgrindoutput" and root.find("error/kind").text.startswith("Leak_")
        except Exception as ex:  # noqa: BLE001
            ok, root = False, ex
        check(f"{how} with an xml file: valgrind's XML there, nothing on stderr", ok and "LEAK SUMMARY" not in p.stderr,
              f"{root} {p.stderr[-300:]}")
    for how, args, env in spellings("--xml-file", os.path.join(work, "xf.xml")):
        if os.path.exists(os.path.join(work, "xf.xml")):
            os.unlink(os.path.join(work, "xf.xml"))
        p = tool("--xml=yes", *args, LEAKY, env=env)
        check(f"--xml=yes {how}: the XML is written to that file", os.path.exists(os.path.join(work, "xf.xml")),
              p.stderr[-300:])

    for how, args, env in spellings("--format", "json"):
        p = tool(*args, LEAKY, env=env)
        try:
            ok = json.loads(p.stderr)["summary"]["definite"]["bytes"] == 464
        except Exception:  # noqa: BLE001
            ok = False
        check(f"{how}: the JSON report", ok, p.stderr[-300:])
    p = tool("--json", LEAKY)
    check("--json: the JSON report", p.stderr.lstrip().startswith("{"), p.stderr[:200])
    for how, args, env in spellings("--format", "collapsed"):
        p = tool(*args, LEAKY, env=env)
        check(f"{how}: collapsed stacks", re.search(r"(?m)^main;leak_direct;malloc 100$", p.stderr) is not None or
              re.search(r"(?m)^leak_direct;malloc 100$", p.stderr) is not None, p.stderr[-400:])
    def sizes(text):
        return [int(re.search(r"== ([\d,]+)", h).group(1).replace(",", "")) for h, _ in records(text)]
    each_spelling("--min-size", "200", leaky, lambda p: (sizes(p.stderr) and min(sizes(p.stderr)) >= 200, sizes(p.stderr)),
                  "only blocks of 200 bytes or more listed", extra=("--show-leak-kinds=all",))
    each_spelling("--summary", "no", leaky, lambda p: (p.stderr == "", None), "no report")
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "detect_leaks=0:exitcode=3"})
    check("HAHALLOC_OPTIONS=detect_leaks=0 (LeakSanitizer's): no report, no exit code", p.stderr == "" and
          p.returncode == 0, p.stderr[-300:])
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "exitcode=23"})
    check("HAHALLOC_OPTIONS=exitcode=23 (LeakSanitizer's): status 23", p.returncode == 23, p.returncode)
    each_spelling("--symbolize-timeout", "0", leaky, lambda p: ("leaky.c:" not in p.stderr and "LEAK SUMMARY" in p.stderr, None),
                  "no time for addr2line: no file:line, the report all the same")
    scen = os.path.join(BIN, "scenarios")
    for how, args, env in spellings("--on-error", "continue"):
        p = tool(*args, "python3", "-c", "import ctypes; l = ctypes.CDLL(None); l.free(ctypes.c_void_p(4096)); print('alive')",
                 env=env)
        check(f"{how}: a bad free is reported and ignored", "alive" in p.stdout and "invalid pointer" in p.stderr,
              p.stderr[-300:])
    each_spelling("--profile", "yes", [os.path.join(BIN, "peak")],
                  lambda p: ("PEAK:" in p.stderr and "ALLOCATIONS:" in p.stderr, None), "the peak and the allocations by site")
    p = tool("--suppressions", "/nonexistent/x.supp", LEAKY)
    check("a suppression file that cannot be read is said so, and the report goes on",
          "cannot read the suppressions in /nonexistent/x.supp" in p.stderr and "LEAK SUMMARY" in p.stderr, p.stderr[-300:])
    for bad in (["--leak-check=maybe"], ["--show-leak-kinds=lost"], ["--num-callers=x"], ["--no-such-option"],
                ["--xml"], ["--log-file"]):
        p = tool(*bad, "true") if bad[0] != "--log-file" else tool(*bad)
        check(f"{' '.join(bad)}: a usage error (status 2)", p.returncode == 2 and "hahalloc:" in p.stderr, p.stderr)
    p = tool("--help")
    missing = [o for o in ("--leak-check", "--show-leak-kinds", "--errors-for-leak-kinds", "--log-file", "--xml",
                           "--xml-file", "--num-callers", "--trace-children", "--suppressions", "--gen-suppressions",
                           "-q", "--version", "--profile", "--format", "HAHALLOC_OPTIONS", "--show-reachable")
               if o not in p.stdout]
    check("--help lists every option", p.returncode == 0 and not missing, missing)
    man = open(os.path.join(ROOT, "docs", "hahalloc.1")).read().replace("\\-", "-")
    missing = [o for o in ("--leak-check", "--show-leak-kinds", "--errors-for-leak-kinds", "--log-file", "--xml",
                           "--xml-file", "--num-callers", "--trace-children", "--suppressions", "--gen-suppressions",
                           "-q", "--version", "--profile", "--format", "HAHALLOC_OPTIONS", "--default-suppressions",
                           "hahalloc_leak_check", "hahalloc_ignore")
               if o not in man]
    check("the man page documents every option", not missing, missing)
    # the environment's HAHALLOC_OPTIONS comes first, the command line wins
    p = tool("--leak-check=full", LEAKY, env={"HAHALLOC_OPTIONS": "leak-check=no"})
    check("the command line wins over HAHALLOC_OPTIONS from the environment", bool(records(p.stderr)), p.stderr[-300:])
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_SHOW_REACHABLE": "1", "HAHALLOC_OPTIONS": "show-reachable=no"})
    check("HAHALLOC_OPTIONS wins over the older HAHALLOC_* variables", "reachable" not in kinds_listed(p.stderr),
          p.stderr[-300:])
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_SHOW_REACHABLE": "1"})
    check("the older variables keep working: HAHALLOC_SHOW_REACHABLE=1", "reachable" in kinds_listed(p.stderr),
          p.stderr[-300:])


# ---------------------------------------------------------------- valgrind's XML

def xml_shape(path):
    """The element names of a memcheck XML document: the top level, and for
    each leak error, its children, its xwhat's and the set of frame children."""
    root = ET.parse(path).getroot()
    top = [c.tag for c in root]
    errors = [e for e in root.findall("error") if (e.findtext("kind") or "").startswith("Leak_")]
    err = {tuple(c.tag for c in e) for e in errors}
    xwhat = {tuple(c.tag for c in e.find("xwhat")) for e in errors}
    frame = set()
    for e in errors:
        for f in e.iter("frame"):
            frame |= {c.tag for c in f}
    leaks = sorted((e.findtext("kind"), int(e.findtext("xwhat/leakedbytes")), int(e.findtext("xwhat/leakedblocks")))
                   for e in errors if e.findtext("kind") in ("Leak_DefinitelyLost", "Leak_IndirectlyLost"))
    return top, err, xwhat, frame, leaks, errors


def xml_suite():
    if not shutil.which("valgrind"):
        check("valgrind is installed (apt-get install valgrind)", False)
        return
    vg, hh = os.path.join(work, "vg.xml"), os.path.join(work, "hh.xml")
    opts = ["--leak-check=full", "--show-leak-kinds=all", "--xml=yes"]
    run(["valgrind", *opts, "--xml-file=" + vg, LEAKY], timeout=300)
    tool(*opts, "--xml-file=" + hh, LEAKY)
    try:
        vt, ve, vx, vf, vl, _ = xml_shape(vg)
        ht, he, hx, hf, hl, herr = xml_shape(hh)
    except Exception as ex:  # noqa: BLE001
        check("valgrind's and hahalloc's XML parse", False, ex)
        return

    def squash(tags):  # repeated elements (status, error) once
        out = []
        for t in tags:
            if not out or out[-1] != t:
                out.append(t)
        return out
    check("XML: the same top-level elements, in valgrind's order", squash(ht) == squash(vt), f"{squash(ht)} vs {squash(vt)}")
    check("XML: every leak <error> has valgrind's elements (unique, tid, kind, xwhat, stack)", he == ve, f"{he} vs {ve}")
    check("XML: <xwhat> has text, leakedbytes, leakedblocks", hx == vx, f"{hx} vs {vx}")
    check("XML: frames use valgrind's elements (ip, obj, fn, dir, file, line)", hf == vf, f"{hf} vs {vf}")
    check("XML: the definitely and indirectly lost records have valgrind's bytes and blocks", hl == vl, f"{hl} vs {vl}")
    texts = [e.findtext("xwhat/text") for e in herr]
    check("XML: the text says what valgrind's says ('N (D direct, I indirect) bytes in M blocks are definitely lost in "
          "loss record i of n')", any(re.fullmatch(r"96 \(48 direct, 48 indirect\) bytes in 1 blocks are definitely lost "
                                                   r"in loss record \d+ of \d+", t or "") for t in texts), texts)
    s = sites("leaky.c")
    ok = any(f.findtext("fn") == "leak_direct" and f.findtext("file") == "leaky.c" and
             f.findtext("line") == str(s["direct"]) and f.findtext("dir") == SRC for e in herr for f in e.iter("frame"))
    check("XML: the user's frame has fn, dir, file and line", ok)
    # a source directory whose name holds XML's special characters: <dir> is text, escaped like the rest
    odd = os.path.join(work, "src&<'\">")
    os.makedirs(odd, exist_ok=True)
    shutil.copy(os.path.join(SRC, "leaky.c"), odd)
    odd_bin = os.path.join(work, "leaky_odd")
    built = run(["cc", "-g", "-O0", "-pthread", "-o", odd_bin, os.path.join(odd, "leaky.c")])
    hh3 = os.path.join(work, "hh-odd.xml")
    tool(*opts, "--xml-file=" + hh3, odd_bin)
    try:
        dirs = {f.findtext("dir") for f in ET.parse(hh3).getroot().iter("frame")}
        check("XML: a <dir> with &, <, >, ' and \" in it is escaped (the file parses, the name reads back)",
              built.returncode == 0 and odd in dirs, dirs)
    except ET.ParseError as ex:
        check("XML: a <dir> with &, <, >, ' and \" in it is escaped (the file parses, the name reads back)", False, ex)
    hh2 = os.path.join(work, "hh-gen.xml")  # report files are appended to, never truncated: a new name
    p = tool("--xml=yes", "--gen-suppressions=all", "--xml-file=" + hh2, LEAKY)
    root = ET.parse(hh2).getroot()
    check("XML with --gen-suppressions: each error carries valgrind's <suppression> element",
          all(e.find("suppression/rawtext") is not None and e.findtext("suppression/skind") == "Memcheck:Leak"
              for e in root.findall("error")), ET.tostring(root)[-400:])


# ---------------------------------------------------------------- suppressions

def supp_suite():
    s = sites("leaky.c")
    f = os.path.join(work, "v.supp")
    open(f, "w").write("# comment\n{\n   the direct leak\n   Memcheck:Leak\n   match-leak-kinds: definite\n"
                       "   fun:mall?c\n   fun:leak_d*\n}\n"
                       "{\n   the strdup one, through an obj: and a ...\n   Memcheck:Leak\n   fun:malloc\n"
                       "   obj:*libc.so*\n   ...\n   fun:main\n}\n")
    base = summary(tool(LEAKY).stderr, "suppressed")  # the built-in set's (a joined thread's TLS vector)
    p = tool("--num-callers=4", "--suppressions=" + f, LEAKY)
    recs = [h for h, _ in records(p.stderr)]
    check("valgrind format: the suppressed leaks are gone",
          not any(h.split("== ")[1].startswith(("100 bytes", "16 bytes")) for h in recs) and recs, recs)
    check("valgrind format: the LEAK SUMMARY counts them as suppressed (100 + 16 bytes in 2 blocks)",
          tuple(a - b for a, b in zip(summary(p.stderr, "suppressed"), base)) == (116, 2) and
          summary(p.stderr, "definitely lost") == (348, 2),
          re.findall(r"(?m)^.*(lost|suppressed):.*$", p.stderr))
    f2 = os.path.join(work, "kinds.supp")
    open(f2, "w").write("{\n   only reachable\n   Memcheck:Leak\n   match-leak-kinds: reachable\n   fun:malloc\n"
                        "   fun:leak_direct\n}\n")
    p = tool("--suppressions=" + f2, LEAKY)
    check("valgrind format: match-leak-kinds that does not name the leak's kind suppresses nothing",
          summary(p.stderr, "definitely lost") == (464, 4), summary(p.stderr, "definitely lost"))
    lsan = os.path.join(work, "lsan.supp")
    open(lsan, "w").write("# LeakSanitizer's format\nleak:leak_direct\nleak:leaky.c\n")
    p = tool("--suppressions=" + lsan, LEAKY)
    check("LeakSanitizer format: leak:function and leak:file suppress every leak they name",
          summary(p.stderr, "definitely lost") == (0, 0) and summary(p.stderr, "suppressed")[0] >= 464,
          re.findall(r"(?m)^.*(lost|suppressed):.*$", p.stderr))
    open(lsan, "w").write("leak:^leak_dir$\nleak:^dup_str\n")
    p = tool("--suppressions=" + lsan, LEAKY)
    check("LeakSanitizer format: ^ and $ anchor the pattern",
          summary(p.stderr, "definitely lost") == (448, 3), summary(p.stderr, "definitely lost"))
    # two files
    a, b = os.path.join(work, "a.supp"), os.path.join(work, "b.supp")
    open(a, "w").write("leak:leak_direct\n")
    open(b, "w").write("leak:thread_main\n")
    p = tool("--suppressions", a, "--suppressions", b, LEAKY)
    check("--suppressions is repeatable: both files apply", summary(p.stderr, "definitely lost") == (64, 2),
          summary(p.stderr, "definitely lost"))
    p = run([LEAKY], env={"LD_PRELOAD": LIB, "HAHALLOC_OPTIONS": "suppressions=%s:suppressions=%s" % (a, b)})
    check("HAHALLOC_OPTIONS=suppressions=A:suppressions=B: both files apply",
          summary(p.stderr, "definitely lost") == (64, 2), p.stderr[-400:])
    # --gen-suppressions output fed back
    for prog, label in ((LEAKY, "C"), (os.path.join(BIN, "containers_O0"), "C++")):
        p = tool("--gen-suppressions=all", "--show-leak-kinds=all", prog)
        gen = "\n".join(re.findall(r"(?ms)^\{\n.*?^\}$", p.stderr))
        f = os.path.join(work, "gen-%s.supp" % label)
        open(f, "w").write(gen)
        before = sum(summary(p.stderr, k)[0] for k in ("definitely lost", "indirectly lost", "possibly lost",
                                                        "still reachable"))
        q = tool("--suppressions=" + f, "--show-leak-kinds=all", prog)
        check(f"--gen-suppressions output read back with --suppressions suppresses every leak ({label})",
              gen.count("{") >= 3 and not records(q.stderr) and summary(q.stderr, "suppressed")[0] >=
              before and summary(q.stderr, "definitely lost") == (0, 0), q.stderr[-600:])
    # the built-in set: libstdc++'s emergency pool
    cxx = os.path.join(BIN, "leaky_cxx")
    p = tool("--show-leak-kinds=all", cxx)
    check("built-in suppressions: libstdc++'s 72,704-byte pool is not listed, it is counted as suppressed",
          "72,704 bytes in 1 blocks are" not in p.stderr and summary(p.stderr, "suppressed")[0] >= 72704, p.stderr[-600:])
    p = tool("--show-leak-kinds=all", "--default-suppressions=no", cxx)
    check("--default-suppressions=no: the pool is listed as still reachable",
          "72,704 bytes in 1 blocks are still reachable" in p.stderr, p.stderr[-600:])
    p = tool("git", "--version")
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    check(f"hahalloc -- git --version: a few lines ({len(lines)}), no reachable block listed", len(lines) <= 14 and
          not records(p.stderr) and "LEAK SUMMARY" in p.stderr, p.stderr)


# ---------------------------------------------------------------- stacks that name the user's line

def user_frame(stack_lines, src):
    for f in stack_lines:
        m = re.search(r": (.*) \((%s):(\d+)\)$" % re.escape(src), f)
        if m:
            return m.group(1), int(m.group(3))
    return None


def stack_suite():
    s = sites("containers.cpp")
    for prog in ("containers_O0", "containers_O2"):
        p = tool(os.path.join(BIN, prog))
        recs = records(p.stderr)
        def rec_with(nbytes, direct=None):
            for h, frames in recs:
                if re.search(r"== %s( \(%s direct, [\d,]+ indirect\))? bytes in 1 blocks are definitely lost" %
                             (re.escape(nbytes), re.escape(direct or nbytes)), h):
                    return frames
            return None
        frames = rec_with("512")
        check(f"{prog}, default options: a std::vector's buffer names the user's push_back line",
              frames is not None and "operator new(unsigned long)" in frames[0] and
              user_frame(frames, "containers.cpp") == ("fill(Bag*)", s["push_back"]), frames or p.stderr[-800:])
        frames = rec_with("480", "48")
        check(f"{prog}, default options: a std::map's nodes name the user's operator[] line",
              frames is not None and user_frame(frames, "containers.cpp") is not None and
              user_frame(frames, "containers.cpp")[1] in (s["map_insert"], s["map_insert"] + 8), frames)
        frames = rec_with("200")
        check(f"{prog}: new int[50] shows operator new[] first, then the user's line",
              frames is not None and "operator new[](unsigned long)" in frames[0] and
              user_frame(frames, "containers.cpp") == ("leak_array()", s["new_array"]), frames)
        frames = rec_with("201")
        check(f"{prog}: a std::string's buffer names the user's function (libstdc++'s frames skipped)",
              frames is not None and user_frame(frames, "containers.cpp") is not None, frames)
    u = sites("userline.c")
    p = tool(os.path.join(BIN, "userline_g"))
    by = {h.split("== ")[1].split(" bytes")[0]: fr for h, fr in records(p.stderr)}
    check("strdup: malloc, then strdup, then the user's line",
          "17" in by and "malloc" in by["17"][0] and "strdup" in by["17"][1] and
          user_frame(by["17"], "userline.c") == ("leak_strdup", u["strdup"]), by.get("17"))
    check("realloc in place: the block takes the realloc call's stack (realloc first, then its line)",
          "44" in by and " realloc " in by["44"][0] + " " and user_frame(by["44"], "userline.c") == ("leak_realloc", u["realloc_in_place"]),
          by.get("44"))
    check("realloc that moves the block: the realloc call's stack too",
          "100,000" in by and " realloc " in by["100,000"][0] + " " and
          user_frame(by["100,000"], "userline.c") == ("leak_realloc", u["realloc_moved"]), by.get("100,000"))
    p = tool("--num-callers=8", os.path.join(BIN, "userline_g"))
    frames = [fr for h, fr in records(p.stderr) if "77 bytes" in h][0]
    check("deeper stacks stop at main: nothing of the C library's start-up below it",
          " main " in frames[-1] and not any("libc_start" in f for f in frames), frames)
    p = tool(os.path.join(BIN, "userline_nog"))
    frames = [fr for h, fr in records(p.stderr) if "77 bytes" in h]
    check("a binary without -g: no line 0, the function from the symbol table and the object",
          frames and re.search(r": hidden \(in .*userline_nog\)$", frames[0][1]) is not None and ":0)" not in p.stderr,
          frames or p.stderr[-400:])
    # addr2line runs only for objects with a line table: without one it
    # could only name the symbol below the address, which the report reads
    # from the symbol table itself (a 3 MB process for nothing)
    log = os.path.join(work, "addr2line.log")
    os.mkdir(os.path.join(work, "logged"))
    wrapper = os.path.join(work, "logged", "addr2line")  # binutils' name: see symbols.c
    with open(wrapper, "w") as f:
        f.write('#!/bin/sh\necho "$@" >> %s\nexec %s "$@"\n' % (log, shutil.which("addr2line")))
    os.chmod(wrapper, 0o755)
    for prog, runs in (("userline_nog", False), ("userline_g", True)):
        if os.path.exists(log):
            os.unlink(log)
        p = tool(os.path.join(BIN, prog), env={"HAHALLOC_ADDR2LINE": wrapper})
        ran = open(log).read() if os.path.exists(log) else ""
        frames = [fr for h, fr in records(p.stderr) if "77 bytes" in h]
        named = frames and re.search(r"hidden \(.*userline", frames[0][1]) is not None
        check("%s: addr2line %s for the program, and the report names its function" %
              (prog, "runs" if runs else "does not run (no line table)"),
              ((prog in ran) == runs) and bool(named), ran[-300:] + str(frames)[:400])
    # ... and for a library whose line table is in a separate file named by
    # .gnu_debuglink (objcopy --only-keep-debug), loaded through a link to
    # it in another directory, whose .debug directory holds the file:
    # binutils looks there, from the path the library was loaded by
    d = os.path.join(work, "debuglink")
    real, linked = os.path.join(d, "real"), os.path.join(d, "linked")
    os.makedirs(real)
    os.makedirs(os.path.join(linked, ".debug"))
    os.symlink(os.path.join(real, "libsplit.so"), os.path.join(linked, "libsplit.so"))
    with open(os.path.join(d, "split.c"), "w") as f:
        f.write("#include <stdlib.h>\n#include <string.h>\n"
                "void *split_leak(void) {\n  void *p = malloc(91);\n  memset(p, 1, 91);\n  return p;\n}\n")
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write("void *split_leak(void);\nvoid *keep;\n"
                "int main(void) {\n  split_leak();\n  return 0;\n}\n")
    so = os.path.join(real, "libsplit.so")
    cc = shutil.which("cc")
    steps = [[cc, "-g", "-O0", "-fPIC", "-shared", os.path.join(d, "split.c"), "-o", so],
             ["objcopy", "--only-keep-debug", so, os.path.join(linked, ".debug", "libsplit.so.debug")],
             ["objcopy", "--strip-debug", "--add-gnu-debuglink=" + os.path.join(linked, ".debug", "libsplit.so.debug"), so],
             [cc, "-O0", os.path.join(d, "main.c"), "-o", os.path.join(d, "main"), "-L" + real, "-lsplit"]]
    built = all(run(step).returncode == 0 for step in steps)
    if os.path.exists(log):
        os.unlink(log)
    p = tool(os.path.join(d, "main"), env={"HAHALLOC_ADDR2LINE": wrapper, "LD_LIBRARY_PATH": linked})
    frames = [fr for h, fr in records(p.stderr) if "91 bytes" in h]
    check("a library with its line table in a .gnu_debuglink file, loaded through a link to it: "
          "its frame has its file:line", built and bool(frames) and len(frames[0]) > 1 and
          re.search(r"split_leak \(split\.c:4\)", frames[0][1]) is not None,
          (open(log).read() if os.path.exists(log) else "no addr2line run") + p.stderr[-600:])
    # a function name longer than any buffer of the report's (names are
    # read from the symbol table in pieces): named whole
    longname = "leaks_" + "x" * 5000
    with open(os.path.join(d, "long.c"), "w") as f:
        f.write("#include <stdlib.h>\n#include <string.h>\n"
                "__attribute__((noinline)) void *%s(void) {\n  void *p = malloc(93);\n  memset(p, 1, 93);\n"
                "  return p;\n}\nint main(void) {\n  %s();\n  return 0;\n}\n" % (longname, longname))
    r = run([cc, "-O1", os.path.join(d, "long.c"), "-o", os.path.join(d, "long")])
    p = tool(os.path.join(d, "long"))
    frames = [fr for h, fr in records(p.stderr) if "93 bytes" in h]
    check("a function named by 5,006 characters: its frame shows the whole name",
          r.returncode == 0 and bool(frames) and len(frames[0]) > 1 and (" %s (" % longname) in frames[0][1],
          r.stderr + str(frames)[:300])
    # frame information registered at run time (a JIT's, or an object linked
    # without .eh_frame_hdr) lives in the program's libgcc_s: the report
    # walks with that unwinder, not only with libhahalloc's own copy
    exe = os.path.join(d, "regframe")
    r = run([cc, "-O2", "-fomit-frame-pointer", "-g", "-Wl,--no-eh-frame-hdr", os.path.join(SRC, "regframe.c"),
             "-o", exe, "-lgcc_s"])
    p = tool("--num-callers=12", exe)
    frames = [fr for h, fr in records(p.stderr) if "4,321 bytes" in h]
    names = [f.split(": ")[1].split(" (")[0] if ": " in f else f for f in (frames[0] if frames else [])]
    check("frames known only through __register_frame_info: the stack goes on through them to main",
          r.returncode == 0 and names[1:5] == ["leaf", "mid", "top", "main"], r.stderr + str(frames)[:600])
    p = tool(os.path.join(BIN, "userline_strip"))
    frames = [fr for h, fr in records(p.stderr) if "77 bytes" in h]
    check("a stripped binary: ??? for a function no symbol covers, not the nearest exported one",
          frames and re.search(r": \?\?\? \(in .*userline_strip\)$", frames[0][1]) is not None and
          "exported" not in frames[0][1], frames or p.stderr[-400:])


# ---------------------------------------------------------------- the leak-check API

def api_values(p):
    v = {}
    for line in p.stdout.splitlines():
        k, *rest = line.split()
        v[k] = [int(x) for x in rest]
    return v


def api_suite():
    # silent: narrow records (the size alone)
    p = run([os.path.join(BIN, "checks")], env={"HAHALLOC_SUMMARY": "0"})
    v = api_values(p)
    check("hahalloc_leak_baseline: 0", v.get("baseline.return") == [0], p.stdout + p.stderr)
    check("hahalloc_leak_check after the baseline: the earlier leak counted, nothing new, returns 0",
          v.get("start.definite") == [111, 1] and v.get("start.new_definite") == [0, 0] and v.get("start.return") == [0], v)
    check("four leaks since the baseline: new_definite is 40,377 bytes in 4 blocks, the check returns 4",
          v.get("leaked.new_definite") == [40377, 4] and v.get("leaked.definite") == [40488, 5] and
          v.get("leaked.return") == [4], v)
    check("a new baseline: nothing new again", v.get("rebased.new_definite") == [0, 0] and
          v.get("rebased.return") == [0], v)
    check("hahalloc_ignore: the ignored block is suppressed and what it holds is reachable, not lost",
          v.get("ignored.new_definite") == [0, 0] and v.get("ignored.suppressed", [0, 0])[0] >= 40064 and
          v.get("ignored.suppressed", [0, 0])[1] >= 2 and
          v.get("ignored.reachable", [0])[0] >= 1000 and v.get("ignored.return") == [0], v)
    check("a 512- and a 1024-aligned block of 8 and 24 bytes, and 1000 bytes realloc'd to 600: exactly 632 bytes "
          "in 3 blocks", v.get("odd.new_definite") == [632, 3] and v.get("odd.return") == [3], v)
    check("hahalloc_leak_check(NULL) returns the count alone (the 3 odd blocks)", v.get("null.return") == [3], v)
    p = run([os.path.join(BIN, "checks")])
    check("the API prints nothing: the exit report is the program's only report",
          p.stderr.count("LEAK SUMMARY") == 1 and "40,488 bytes in 5 blocks are definitely lost" in p.stderr,
          p.stderr[-600:])
    check("the exit report lists the aligned and the realloc'd blocks at their exact sizes (8, 24, 600 bytes)",
          all(re.search(r"== %s bytes in 1 blocks are definitely lost" % n, p.stderr) for n in ("8", "24", "600")) and
          "definitely lost: 41,120 bytes in 8 blocks" in p.stderr, p.stderr[-1500:])
    # the report on: packed records (site and slack in one word) up to 1 KiB blocks
    w = api_values(p)
    keys = ("start.definite", "leaked.new_definite", "leaked.definite", "ignored.new_definite", "odd.new_definite",
            "odd.return")
    check("with the report on, the API counts the same sizes as without: " + ", ".join(keys),
          all(k in v and w.get(k) == v.get(k) for k in keys), (v, w))
    check("with the report on, hahalloc_ignore (a 64- and a 40,000-byte block): suppressed, and what it holds "
          "reachable", w.get("ignored.suppressed", [0, 0])[0] >= 40064 and w.get("ignored.suppressed", [0, 0])[1] >= 2 and
          w.get("ignored.reachable", [0])[0] >= 1000, w)


# ---------------------------------------------------------------- where memory goes

def profile_suite():
    s = sites("peak.c")
    prog = os.path.join(BIN, "peak")
    p = tool("--profile=yes", prog)
    peak = p.stderr[p.stderr.find("PEAK:"):p.stderr.find("ALLOCATIONS:")]
    first = records_after(peak)
    check("--profile: the first site at the peak holds the 8 MiB of make_buffer",
          first and first[0].startswith("8,388,608 bytes in 8 blocks") and
          any("peak.c:%d" % s["peak_buffer"] in f for f in first[1]), peak[:1200])
    allocs = p.stderr[p.stderr.find("ALLOCATIONS:"):]
    check("--profile: the allocations by site count the churn's 20,000 allocations of 100 bytes",
          re.search(r"2,000,000 bytes in 20,000 allocations\n(==\d+==    (at|by) .*\n)*.*peak.c:%d" % s["churn"], allocs)
          is not None, allocs[:1500])
    p = tool("--profile=yes", "--format=collapsed", prog)
    lines = [l for l in p.stderr.splitlines() if l]
    parsed = []
    for l in lines:
        stack, _, n = l.rpartition(" ")
        parsed.append((stack.split(";"), int(n)))
    big = [st for st, n in parsed if n == 8 << 20]
    check("--format=collapsed --profile: read back, the stack holding 8 MiB at the peak runs main;...;make_buffer;malloc",
          len(big) == 1 and big[0][0] == "main" and big[0][-1] == "malloc" and "make_buffer" in big[0], lines[:5])
    p = tool("--format=collapsed", prog)
    parsed = [(l.rpartition(" ")[0].split(";"), int(l.rpartition(" ")[2])) for l in p.stderr.splitlines() if l]
    check("--format=collapsed without --profile: the bytes in use at exit, by stack (the 4,000-byte leak)",
          any(n == 4000 and st[-1] == "malloc" for st, n in parsed), parsed[:5])


def records_after(text):
    m = re.search(r"(?m)^==\d+== ([\d,]+ bytes in [\d,]+ blocks at the peak.*)\n((==\d+==    (at|by) .*\n)*)", text)
    return (m.group(1), m.group(2).splitlines()) if m else None


# ---------------------------------------------------------------- linking as written

def link_suite():
    cc, cxx = shutil.which("cc"), shutil.which("g++")
    inc, lib = os.path.join(ROOT, "include"), BUILD
    d = os.path.join(work, "link")
    os.mkdir(d)
    # new only, with gcc's --as-needed: our operator new keeps the library
    exe = os.path.join(d, "new_only")
    r = run([cxx, "-Wl,--as-needed", os.path.join(SRC, "new_only.cpp"), "-o", exe, "-L" + lib, "-lhahalloc",
             "-Wl,-rpath," + lib])
    p = run([exe])
    check("g++ prog.cpp -lhahalloc (--as-needed) for a program that only calls new[]: the library is kept and reports",
          r.returncode == 0 and "100 bytes in 1 blocks are definitely lost" in p.stderr and "operator new[]" in p.stderr,
          r.stderr + p.stderr[-400:])
    # a bare LD_PRELOAD adds one object to a C program, not two: libgcc's
    # unwinder is linked into the library, hidden (each object more costs
    # every process's start-up); the stack tests above walk with that copy
    so = os.path.join(BUILD, "libhahalloc.so")
    p = run(["cat", "/proc/self/maps"], env={"LD_PRELOAD": so})
    loaded = sorted({line.split()[-1] for line in p.stdout.splitlines() if ".so" in line.split()[-1]})
    check("LD_PRELOAD into a C program (cat) loads libhahalloc.so and nothing the program did not need (no libgcc_s)",
          p.returncode == 0 and so in loaded and not any("libgcc_s" in x for x in loaded), loaded)
    exported = run(["nm", "-D", "--defined-only", so]).stdout
    check("libhahalloc.so exports no unwinder symbol (_Unwind_*, __register_frame*): the program's libgcc_s keeps them",
          "T malloc" in exported and "_Unwind_" not in exported and "register_frame" not in exported,
          [x for x in exported.splitlines() if "Unwind" in x or "frame" in x][:5])
    # strdup only, the flags pkg-config gives after make install, whatever the prefix
    for prefix in ("/opt/hh-one", "/usr/local/hh-two"):
        dest = os.path.join(work, "dest" + prefix.replace("/", "_"))
        r = run(["make", "-C", ROOT, "--no-print-directory", "install", "PREFIX=" + prefix, "DESTDIR=" + dest], timeout=600)
        pc = os.path.join(dest + prefix, "lib", "pkgconfig", "hahalloc.pc")
        text = open(pc).read() if os.path.exists(pc) else ""
        check(f"make install PREFIX={prefix}: hahalloc.pc names that prefix", f"prefix={prefix}\n" in text,
              text or r.stdout[-300:] + r.stderr[-300:])
    pcdir = os.path.join(work, "dest_opt_hh-one", "opt", "hh-one", "lib", "pkgconfig")
    flags = run(["pkg-config", "--define-prefix", "--cflags", "--libs", "hahalloc"],
                env={"PKG_CONFIG_PATH": pcdir}).stdout.split()
    exe = os.path.join(d, "strdup_only")
    r = run([cc, "-Wl,--as-needed", os.path.join(SRC, "strdup_only.c"), "-o", exe, *flags,
             "-Wl,-rpath," + os.path.join(work, "dest_opt_hh-one", "opt", "hh-one", "lib")])
    p = run([exe])
    check("cc prog.c $(pkg-config --libs hahalloc) for a program that only calls strdup: the library is kept",
          r.returncode == 0 and "31 bytes in 1 blocks are definitely lost" in p.stderr, " ".join(flags) + r.stderr + p.stderr[-300:])
    # the README's recipe, run as written in a copy of the checkout's layout
    readme = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- recipe -->\n```sh\n(.*?)```", readme, re.S)
    check("README has its link recipe", m is not None)
    if m:
        tree = os.path.join(d, "checkout")
        os.mkdir(tree)
        for name in ("include", "examples"):
            os.symlink(os.path.join(ROOT, name), os.path.join(tree, name))
        os.symlink(BUILD, os.path.join(tree, "build"))
        p = run(["sh", "-ec", m.group(1)], cwd=tree)
        check("the README's link recipe runs as written and the program reports its leaks",
              p.returncode == 0 and "definitely lost" in p.stderr and "LEAK SUMMARY" in p.stderr,
              m.group(1) + p.stdout[-300:] + p.stderr[-600:])


option_suite()
xml_suite()
supp_suite()
stack_suite()
api_suite()
profile_suite()
link_suite()
shutil.rmtree(work, ignore_errors=True)
passed = sum(results)
print(f"{passed} passed, {len(results) - passed} failed")
sys.exit(0 if passed == len(results) else 1)
