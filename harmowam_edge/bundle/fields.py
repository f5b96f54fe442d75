"""Readers for JSON/YAML documents whose every error names the file and the field path.

`manifest.json: policy.chunk_size: expected an integer >= 1, got -1`. One reader for every file format of the
project (bundle manifest, checkpoint config, rig config, calibration file), each raising its own error type.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any


def parse_yaml(text: str, source: str, error: type[Exception] = ValueError) -> Any:
    """`yaml.safe_load`, with a syntax error as one line: `rig.yaml:3:4: not valid YAML: expected ...`."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        what = e.problem or e.context or "syntax error"
        context = f" ({e.context})" if e.context and e.problem else ""
        raise error(f"{where}: not valid YAML: {what}{context}") from None
    except yaml.YAMLError as e:
        raise error(f"{source}: not valid YAML: {' '.join(str(e).split())}") from None


def join(path: str, key: str | int) -> str:
    """`a.b` + `c` → `a.b.c`; an integer key indexes: `a.b[2]`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class FieldReader:
    """Typed getters over a parsed document. `error` is the exception type raised (it takes one message)."""

    def __init__(self, source: str, error: type[Exception] = ValueError) -> None:
        self.source = source
        self.error = error

    def fail(self, path: str, expected: str, got: object) -> Exception:
        shown = repr(got)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        return self.error(f"{self.source}: {path or '(top level)'}: expected {expected}, got {shown}")

    def problem(self, path: str, what: str) -> Exception:
        """Any other complaint about a field: `source: path: what`."""
        return self.error(f"{self.source}: {path or '(top level)'}: {what}")

    def obj(self, d: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(d, Mapping):
            raise self.fail(path, "an object", d)
        return d

    def only(self, d: Mapping[str, Any], path: str, keys: tuple[str, ...]) -> None:
        """Refuse unknown keys (a typo in a config must not silently fall back to a default)."""
        for k in d:
            if k not in keys:
                raise self.problem(join(path, str(k)), f"unknown field (expected one of: {', '.join(keys)})")

    def get(self, d: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in d:
            raise self.problem(join(path, key), "missing")
        return d[key]

    def str_(self, d: Mapping[str, Any], key: str, path: str, pattern: str | None = None) -> str:
        v = self.get(d, key, path)
        where = join(path, key)
        if not isinstance(v, str) or not v:
            raise self.fail(where, "a non-empty string", v)
        if pattern is not None and not re.fullmatch(pattern, v):
            raise self.fail(where, f"a string matching {pattern}", v)
        return v

    def choice(self, d: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...]) -> str:
        v = self.get(d, key, path)
        if v not in choices:
            raise self.fail(join(path, key), "one of " + ", ".join(choices), v)
        return str(v)

    def int_(self, d: Mapping[str, Any], key: str, path: str, minimum: int = 0) -> int:
        v = self.get(d, key, path)
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise self.fail(join(path, key), f"an integer >= {minimum}", v)
        return v

    def finite(self, v: Any, where: str, minimum: float | None = None, positive: bool = False) -> float:
        """Check one value that is already in hand (`float_` reads it from a key)."""
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.fail(where, "a finite number", v)
        if positive and v <= 0:
            raise self.fail(where, "a number > 0", v)
        if minimum is not None and v < minimum:
            raise self.fail(where, f"a number >= {minimum}", v)
        return float(v)

    def float_(
        self, d: Mapping[str, Any], key: str, path: str, minimum: float | None = None, positive: bool = False
    ) -> float:
        return self.finite(self.get(d, key, path), join(path, key), minimum=minimum, positive=positive)

    def floats(self, d: Mapping[str, Any], key: str, path: str, n: int) -> list[float]:
        v = self.get(d, key, path)
        if (
            not isinstance(v, list)
            or len(v) != n
            or any(isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) for x in v)
        ):
            raise self.fail(join(path, key), f"a list of {n} finite numbers", v)
        return [float(x) for x in v]

    def bool_(self, d: Mapping[str, Any], key: str, path: str) -> bool:
        v = self.get(d, key, path)
        if not isinstance(v, bool):
            raise self.fail(join(path, key), "true or false", v)
        return v

    def list_(self, d: Mapping[str, Any], key: str, path: str, nonempty: bool = True) -> list[Any]:
        v = self.get(d, key, path)
        if not isinstance(v, list) or (nonempty and not v):
            raise self.fail(join(path, key), "a non-empty list" if nonempty else "a list", v)
        return v

    def str_map(self, d: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
        where = join(path, key)
        v = self.obj(self.get(d, key, path), where)
        out: dict[str, str] = {}
        for k, item in v.items():
            if not isinstance(item, str):
                raise self.fail(join(where, k), "a string", item)
            out[k] = item
        return out
