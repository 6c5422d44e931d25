#!/usr/bin/python3
"""Draw a flame graph from collapsed stacks (hahalloc --format=collapsed).

  py/flamegraph.py STACKS OUT.svg|OUT.png [--title TEXT] [--width INCHES]

STACKS holds one line per stack: frames from the outermost to the
allocating function, separated by ';', then a space and a number (bytes).
Every frame is a box as wide as the bytes under it; a frame's callees sit
on top of it, in name order. The same format is read by flamegraph.pl,
inferno and speedscope; this is our own small drawing of it, with
matplotlib.
"""
import argparse
import hashlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402


class Node:
    __slots__ = ("name", "value", "children")

    def __init__(self, name):
        self.name, self.value, self.children = name, 0, {}


def read(path):
    root = Node("all")
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        node = root
        node.value += n
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, Node(frame))
            node.value += n
    return root


def colour(name):
    """A warm colour of its own for each function, the same from run to run."""
    h = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")
    return (0.86 + (h & 0xff) / 255 * 0.14, 0.35 + ((h >> 8) & 0xff) / 255 * 0.45, 0.10 + ((h >> 16) & 0xff) / 255 * 0.15)


def short(name, room):
    """The name cut to `room` characters, without C++ parameter lists first."""
    if len(name) > room and "(" in name:
        name = name[:name.index("(")] + "()"
    if len(name) <= room:
        return name
    return name[:room - 2] + ".." if room >= 4 else ""


def depth(node):
    return 1 + max((depth(c) for c in node.children.values()), default=0)


def human(n):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024


def draw(root, out, title, width_in):
    levels = depth(root)
    row = 0.22  # inches per frame
    fig_h = levels * row + 0.8
    fig = plt.figure(figsize=(width_in, fig_h), dpi=110)
    ax = fig.add_axes([0.01, 0.02, 0.98, 1 - 0.7 / fig_h])
    ax.set_xlim(0, root.value)
    ax.set_ylim(0, levels)
    ax.axis("off")
    chars_per_unit = width_in * 0.98 * 110 / 6.2 / root.value  # characters a byte's width holds

    def place(node, x, level):
        w = node.value
        if w / root.value < 0.0005:
            return
        label = node.name if node is not root else f"all ({human(root.value)})"
        ax.add_patch(Rectangle((x, level + 0.04), w, 0.92, facecolor=colour(node.name) if node is not root else "#c9c9c9",
                               edgecolor="white", linewidth=0.4))
        text = short(label, int(w * chars_per_unit) - 1)
        if text:
            ax.text(x + w * 0.004 + root.value * 0.001, level + 0.5, text, va="center", ha="left", fontsize=7,
                    family="DejaVu Sans Mono", clip_on=True)
        cx = x
        for name in sorted(node.children):
            child = node.children[name]
            place(child, cx, level + 1)
            cx += child.value

    place(root, 0, 0)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / fig_h, va="top")
    fig.savefig(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stacks")
    ap.add_argument("out")
    ap.add_argument("--title", default="where memory goes")
    ap.add_argument("--width", type=float, default=12.0)
    a = ap.parse_args()
    root = read(a.stacks)
    if root.value == 0:
        sys.exit(f"{a.stacks}: no stacks")
    draw(root, a.out, a.title, a.width)


if __name__ == "__main__":
    main()
