#!/usr/bin/env python3
"""Fails when modules of a crate depend on each other in a cycle.

A module is one source file. `a` depends on `b` when `a` names `crate::b::…`,
`super::…` or `self::…` that resolves into `b`. A child naming its own ancestor
is Rust's normal shape (the parent declares the child) and is not counted; every
other cycle is: siblings, cousins, or a parent and a child that each name the
other's items through a third module.

Usage: import-cycles.py CRATE_SRC_DIR...   (exit 1 and the cycles when any)
"""
import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\buse\s+(crate|super|self)::([^;]*);", re.S)


def module_of(src: Path, file: Path) -> tuple:
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def expand_use(root: str, rest: str) -> list:
    """`use crate::a::{b, c::d}` -> [crate::a::b, crate::a::c::d] (one level of braces is enough here)."""
    rest = re.sub(r"\s+", "", rest)
    out = []

    def walk(prefix, body):
        depth, start, items = 0, 0, []
        for i, ch in enumerate(body):
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            elif ch == "," and depth == 0:
                items.append(body[start:i])
                start = i + 1
        items.append(body[start:])
        for item in items:
            if not item:
                continue
            if "{" in item:
                head, inner = item.split("{", 1)
                walk(prefix + head, inner.rsplit("}", 1)[0])
            else:
                out.append(prefix + item.split(" as ")[0])

    walk(root + "::", rest)
    return out


def resolve(modules: set, current: tuple, path: str):
    segs = path.split("::")
    base = []
    head = segs[0]
    if head == "crate":
        base = []
    elif head == "self":
        base = list(current)
    elif head == "super":
        base = list(current)
        while segs and segs[0] == "super":
            base = base[:-1]
            segs = segs[1:]
        segs = ["super"] + segs  # keep shape for the slice below
    rest = segs[1:]
    best = None
    for n in range(len(rest), -1, -1):
        candidate = tuple(base + rest[:n])
        if candidate in modules:
            best = candidate
            break
    return best


def check(src: Path) -> list:
    files = [f for f in src.rglob("*.rs")]
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for module, file in modules.items():
        text = strip_comments(file.read_text())
        paths = []
        for root, rest in USE_GROUP.findall(text):
            paths += expand_use(root, rest)
        for root, rest in PATH.findall(text):
            paths.append(root + rest)
        for p in paths:
            target = resolve(set(modules), module, p)
            if target is None or target == module:
                continue
            if module[: len(target)] == target:  # a child naming its ancestor
                continue
            edges[module].add(target)
    # Tarjan's strongly connected components.
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in modules:
        if v not in index:
            strong(v)
    return [(src, comp, edges) for comp in sccs]


def main():
    failed = False
    for arg in sys.argv[1:]:
        src = Path(arg)
        for src, comp, edges in check(src):
            failed = True
            names = ["::".join(m) or "(root)" for m in comp]
            print(f"{src}: import cycle among {', '.join(names)}")
            members = set(comp)
            for m in comp:
                for t in sorted(edges[m] & members):
                    print(f"    {'::'.join(m) or '(root)'} -> {'::'.join(t) or '(root)'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
