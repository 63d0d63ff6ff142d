#!/usr/bin/env python3
"""Run events through Relay's store normalizer (the `sentry-relay` package).

Reads one JSON event per line on stdin and writes one JSON line per input on stdout:

    {"ok": bool, "errors": [...], "meta_errors": [...], "notes": [...],
     "normalized": {...} | null, "exception": str | null}

* `errors`: the normalized event's top-level `errors` list (Relay's processing errors,
  e.g. {"type": "invalid_data", "name": "level", "value": "nonsense"}).
* `meta_errors`: every error Relay recorded in `_meta`, as {"path": "a.b.0", "errors": [...]}
  (informational; usually mirrors `errors`).
* `notes`: silent rewrites that are not errors, e.g. an unknown `platform` (this Relay's
  list has no "rust": it becomes "other"; "native" is kept).
* `ok` is true iff no exception was raised and `errors` is empty.

Blank input lines are skipped. A line that is not valid JSON yields ok=false with the
parse error in `exception`.
"""
import json
import sys

from sentry_relay.processing import StoreNormalizer


def collect_meta_errors(meta, path, out):
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key == "":
            if isinstance(value, dict) and value.get("err"):
                out.append({"path": ".".join(path), "errors": value["err"]})
        else:
            collect_meta_errors(value, path + [key], out)


def main():
    normalizer = StoreNormalizer(project_id=1)
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        result = {"ok": False, "errors": [], "meta_errors": [], "notes": [], "normalized": None, "exception": None}
        try:
            original = json.loads(line)  # reject non-JSON before Relay sees it
            normalized = normalizer.normalize_event(raw_event=line.strip())
            result["normalized"] = normalized
            result["errors"] = normalized.get("errors") or []
            collect_meta_errors(normalized.get("_meta"), [], result["meta_errors"])
            if isinstance(original, dict) and "platform" in original \
                    and original["platform"] != normalized.get("platform"):
                result["notes"].append(
                    f"platform {original['platform']!r} normalized to {normalized.get('platform')!r}")
            result["ok"] = not result["errors"]
        except Exception as e:  # noqa: BLE001 - report everything to the caller
            # Relay appends a native stack trace after a blank line: keep the message only
            result["exception"] = f"{type(e).__name__}: {str(e).split(chr(10) + chr(10))[0]}"
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
