#!/usr/bin/env python3
"""Fails if a module of a crate imports a module that imports it back.

    python3 .ci/check-module-cycles.py crates/platform crates/services/pedidos ...

A module is a file under src/ (`lib.rs`/`main.rs`/`mod.rs` stand for their folder).
An edge a -> b is a path `crate::b::...` or `super::...` written in a's code (comments
and doc links do not count; `mod` declarations do not count: a parent owns its
children, it does not depend on them). A cycle is two modules that reach each other.
"""
import os
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


def module_of(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return tuple(parts)


def edges_of(src):
    files = [os.path.join(d, f) for d, _, fs in os.walk(src) for f in fs if f.endswith(".rs")]
    modules = {module_of(src, f): f for f in files}
    edges = {m: set() for m in modules}
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            code = "\n".join(l for l in f.read().split("\n") if not l.strip().startswith("//"))
        is_folder = os.path.basename(path) in ("lib.rs", "main.rs", "mod.rs")
        for root, rest in PATH.findall(code):
            if root == "crate":
                base = []
            else:  # super: the parent of this module
                base = list(module[:-1]) if not is_folder or module else []
            parts = rest.strip(":").split("::")
            target = tuple(base)
            for n in range(len(parts), 0, -1):
                if tuple(base + parts[:n]) in modules:
                    target = tuple(base + parts[:n])
                    break
            if target != module and target in modules:
                edges[module].add(target)
    return edges


def reaches(edges, start, goal):
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for nxt in edges[node] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return False


def main(crates):
    cycles = set()
    for crate in crates:
        edges = edges_of(os.path.join(crate, "src"))
        for a, targets in edges.items():
            for b in targets:
                if reaches(edges, b, a):
                    pair = tuple(sorted(("::".join(a) or "crate", "::".join(b) or "crate")))
                    cycles.add((crate, pair))
    for crate, (a, b) in sorted(cycles):
        print(f"[FAIL] {crate}: {a} and {b} import each other")
    print(f"{len(crates)} crates checked, {len(cycles)} module cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
