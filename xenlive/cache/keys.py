"""Stage keys: the sha256 of the canonical JSON of everything a stage reads, and why a key changed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_of(inputs_json: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs_json).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class StageInputs:
    """What a stage reads. `files` maps a label to a {relative path: digest} table. `epoch`: the time every
    file the stage writes is dated by (xenlive.context.Dates says which, per stage); a setting of its key."""

    stage: str
    version: int
    settings: Mapping[str, Any]
    files: Mapping[str, Mapping[str, str]]
    upstream: Mapping[str, str]  # stage name -> key
    epoch: int | None = None  # None: the stage dates nothing

    def as_json(self) -> dict[str, Any]:
        dated = {} if self.epoch is None else {"source_date_epoch": self.epoch}
        return {
            "stage": self.stage,
            "version": self.version,
            "settings": {**self.settings, **dated},
            "files": {k: dict(v) for k, v in self.files.items()},
            "upstream": dict(self.upstream),
        }

    @property
    def date(self) -> int:
        """The epoch of a stage that dates its files (one whose inputs name it)."""
        if self.epoch is None:
            raise ValueError(f"stage {self.stage}: its inputs name no epoch to date its files by")
        return self.epoch

    @property
    def key(self) -> str:
        return key_of(self.as_json())


def explain_change(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> str:
    """One line saying why a stage's key changed, from the inputs of its previous entry."""
    if old is None:
        return "no cached entry for this stage"
    reasons: list[str] = []
    if old.get("version") != new["version"]:
        reasons.append(f"stage version {old.get('version')} -> {new['version']}")
    for name, value in new["settings"].items():
        if old.get("settings", {}).get(name) != value:
            reasons.append(f"setting '{name}' changed")
    for label, table in new["files"].items():
        before = old.get("files", {}).get(label, {})
        changed = sorted(p for p in set(table) | set(before) if table.get(p) != before.get(p))
        if changed:
            shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
            reasons.append(f"{label}: {shown}")
    for name, key in new["upstream"].items():
        if old.get("upstream", {}).get(name) != key:
            reasons.append(f"{name} was rebuilt")
    return "; ".join(reasons) or "inputs differ"
