#!/usr/bin/env python3
"""Compare two sets of Kubernetes objects, object by object.

    compare-manifests.py RENDERED.yaml FILE.yml [FILE.yml ...]

RENDERED.yaml (e.g. `helm template` output) must hold exactly the objects of the FILEs
(e.g. the k8s/ seed files): same kinds, names and namespaces, and every field equal
after YAML parsing (comments, key order, quoting and document order do not matter;
values do, including their types). Prints one line per difference and exits 1 if
there is any; prints a summary and exits 0 otherwise.
"""
import sys

import yaml


def load(paths):
    objs = {}
    for path in paths:
        with open(path) as fh:
            for doc in yaml.safe_load_all(fh):
                if not doc:
                    continue
                meta = doc.get("metadata", {})
                key = (doc.get("apiVersion"), doc.get("kind"), meta.get("namespace", ""), meta.get("name"))
                if key in objs:
                    raise SystemExit("%s: %s/%s defined twice" % (path, key[1], key[3]))
                objs[key] = doc
    return objs


def diff(a, b, path, out):
    if type(a) is not type(b):
        out.append("%s: %r (%s) != %r (%s)" % (path, a, type(a).__name__, b, type(b).__name__))
    elif isinstance(a, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k not in a:
                out.append("%s.%s: only in the second: %r" % (path, k, b[k]))
            elif k not in b:
                out.append("%s.%s: only in the first: %r" % (path, k, a[k]))
            else:
                diff(a[k], b[k], "%s.%s" % (path, k), out)
    elif isinstance(a, list):
        if len(a) != len(b):
            out.append("%s: %d items != %d items" % (path, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, "%s[%d]" % (path, i), out)
    elif a != b:
        out.append("%s: %r != %r" % (path, a, b))


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    first = load([sys.argv[1]])
    second = load(sys.argv[2:])
    out = []
    for key in sorted(set(first) | set(second), key=str):
        label = "%s %s/%s" % (key[1], key[2], key[3])
        if key not in second:
            out.append("%s: only in %s" % (label, sys.argv[1]))
        elif key not in first:
            out.append("%s: only in %s" % (label, " ".join(sys.argv[2:])))
        else:
            diff(first[key], second[key], label, out)
    if not first:
        out.append("no object in %s" % sys.argv[1])
    for line in out:
        print(line)
    if out:
        sys.exit(1)
    print("%d objects, identical" % len(first))


if __name__ == "__main__":
    main()
