#!/usr/bin/env bash
# Checks that imports inside sentry-lite-core only point down the layers:
#
#   api -> hub/scopes/spans -> client -> pipeline -> worker -> transport -> ground
#
#   bash scripts/check-layers.sh
#
# Every `crate::…` path outside test modules is resolved to the file it names
# (root re-exports through lib.rs) and compared by layer. A path into a higher
# layer fails the check unless it is one of the few listed crossings below, each
# with the reason it exists. Exits non-zero on a violation, naming file and line.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - sentry-lite-core/src <<'PY'
import os
import re
import sys

SRC = sys.argv[1]

# Lowest first. A file's layer is the first prefix (path under src/) it matches.
LAYERS = [
    ("ground", ["protocol/", "dsn.rs", "ids.rs", "unwind/", "stacktrace.rs", "limits.rs", "contexts.rs",
                "error_chain.rs", "integration.rs", "options.rs", "deadline.rs", "privacy.rs"]),
    ("transport", ["transport/"]),
    ("worker", ["worker/"]),
    ("pipeline", ["pipeline/"]),
    ("client", ["client.rs"]),
    ("hub", ["hub.rs", "task_hubs.rs", "scope.rs", "trace/"]),
    ("api", ["api.rs", "test_support.rs", "lib.rs"]),
]

# Known upward crossings: (importing file prefix, imported path prefix, why).
ALLOWED = [
    ("options.rs", "trace::SamplingContext",
     "the options declare the callbacks users set, and name the types those take"),
    ("options.rs", "trace::propagation::TracePropagationTargets",
     "the options hold the propagation targets users set"),
    ("options.rs", "transport::TransportFactory",
     "the options hold the transport factory users set"),
    ("pipeline/", "hub::ScopeSnapshot", "an event job carries the scopes snapshotted at capture"),
    ("pipeline/", "scope::Scope", "the pipeline applies the snapshotted scopes on the worker"),
    ("pipeline/", "trace::PropagationContext", "an event without a span links to the scope's trace"),
    ("client.rs", "hub::Hub", "capture snapshots the scopes of the hub it was called on"),
    ("client.rs", "trace::buffer", "the client owns its span buffer and is the buffer's sink"),
    ("client.rs", "trace::clock::calibrate", "the worker thread calibrates span clocks when it starts"),
]

LEVEL = {name: i for i, (name, _) in enumerate(LAYERS)}


def layer_of(rel):
    for name, prefixes in LAYERS:
        if any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in prefixes):
            return name
    return None


def module_file(first):
    """The path prefix (under src/) of top-level module `first`."""
    if os.path.isdir(os.path.join(SRC, first)):
        return first + "/"
    if first == "test":
        return "test_support.rs"
    return first + ".rs"


# Root re-exports: `pub use module::{A, B}` in lib.rs.
ROOT = {}
lib = open(os.path.join(SRC, "lib.rs")).read()
for module, names in re.findall(r"pub use (\w+)::\{([^}]*)\}", lib):
    for name in re.findall(r"\w+", names):
        ROOT[name] = module + "::" + name
for module, name in re.findall(r"pub use (\w+)::(\w+);", lib):
    ROOT[name] = module + "::" + name


def code_lines(path):
    """(line number, text) of non-test code, comments removed."""
    lines = open(path).read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "#[cfg(test)]" and i + 1 < len(lines) and re.match(r"\s*mod tests\s*\{", lines[i + 1]):
            break  # unit tests sit at the end of their file and may use anything
        code = re.sub(r"//.*", "", line)
        out.append((i + 1, code))
        i += 1
    return out


def paths_in(text):
    """Every `crate::…` path in `text`, with `crate::{a, b::c}` groups expanded."""
    found = []
    for m in re.finditer(r"crate::\{([^}]*)\}", text):
        found += [p.strip() for p in m.group(1).split(",") if p.strip()]
    text = re.sub(r"crate::\{[^}]*\}", "", text)
    found += re.findall(r"crate::((?:\w+::)*\w+)", text)
    return found


violations = []
for root, _, files in os.walk(SRC):
    for f in sorted(files):
        if not f.endswith(".rs") or f == "tests.rs":
            continue
        path = os.path.join(root, f)
        rel = os.path.relpath(path, SRC)
        here = layer_of(rel)
        if here is None:
            violations.append(f"{rel}: not in any layer; add it to scripts/check-layers.sh")
            continue
        lines = code_lines(path)
        # Join `use crate::{` groups spread over several lines.
        text = "\n".join(code for _, code in lines)
        starts = [n for n, _ in lines]
        for m in re.finditer(r"crate::(\{[^}]*\}|(?:\w+::)*\w+)", text):
            line_no = starts[text.count("\n", 0, m.start())]
            for p in paths_in(m.group(0)):
                first = p.split("::")[0]
                is_module = os.path.exists(os.path.join(SRC, module_file(first)))
                full = p if is_module else ROOT.get(first, p)
                target = layer_of(module_file(full.split("::")[0]))
                if target is None or LEVEL[target] <= LEVEL[here]:
                    continue
                if any(rel.startswith(src) and full.startswith(dst) for src, dst, _ in ALLOWED):
                    continue
                violations.append(f"{rel}:{line_no}: {here} layer imports crate::{full} ({target} layer)")

if violations:
    print("layering violations (lower layers must not import higher ones):")
    for v in violations:
        print("  " + v)
    sys.exit(1)
print("layers ok: imports in sentry-lite-core point down "
      "(api -> hub/scopes/spans -> client -> pipeline -> worker -> transport -> ground)")
PY
