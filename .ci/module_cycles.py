#!/usr/bin/env python3
"""Cycles between the top-level modules of a Rust crate (lib.rs left out: it only re-exports).

usage: module_cycles.py CRATE_SRC_DIR
Prints each cycle (a strongly connected set of top-level modules) and, last, their count;
exits 1 when there is a cycle.
An edge A -> B is any `crate::B` path written in A's files (use lines or inline paths)."""
import os, re, sys
src = sys.argv[1]
mods = {}
for entry in os.listdir(src):
    p = os.path.join(src, entry)
    if entry.endswith(".rs") and entry not in ("lib.rs", "main.rs"):
        mods[entry[:-3]] = [p]
    elif os.path.isdir(p):
        mods[entry] = [os.path.join(d, f) for d, _, fs in os.walk(p) for f in fs if f.endswith(".rs")]
edges = {m: set() for m in mods}
for m, files in mods.items():
    for f in files:
        text = open(f, encoding="utf-8").read()
        text = re.sub(r"//[^\n]*", "", text)  # comments, doc links included
        names = set(re.findall(r"\bcrate::(\w+)", text))
        # `use crate::{a, b::c}` groups
        for grp in re.findall(r"\bcrate::\{([^}]*)\}", text):
            names |= set(re.findall(r"(?:^|,)\s*(\w+)", grp))
        edges[m] |= {n for n in names if n in mods and n != m}
# Tarjan
index, low, stack, on, out, i = {}, {}, [], set(), [], [0]
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges[v]:
        if w not in index:
            sc(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: out.append(sorted(comp))
sys.setrecursionlimit(10000)
for v in mods:
    if v not in index: sc(v)
for c in out:
    print("cycle:", " <-> ".join(c))
print(f"{len(out)} module cycles among {len(mods)} top-level modules of {src}")
sys.exit(1 if out else 0)
