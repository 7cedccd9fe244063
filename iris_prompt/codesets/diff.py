"""What changed between two versions of the code sets, and what a version holds (stats).

Pure functions over `CodeSets`; the command turns them into text for people or JSON for
machines. A change is shown by category, so a reviewer sees "anxiety: + 1, - 1" at a glance.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from iris_prompt.codesets.codes import SYSTEM_NAMES
from iris_prompt.codesets.model import CodeSet, CodeSets, Member

__all__ = ["SetDiff", "diff_codesets", "diff_as_json", "diff_as_text", "stats", "stats_as_text"]

_MANIFEST_FIELDS = (
    "id",
    "title",
    "version",
    "status",
    "owner",
    "last_reviewed",
    "next_review_due",
    "description",
)


@dataclass
class SetDiff:
    """The differences within one purpose (trigger, recording or known-abuse)."""

    purpose: str
    old_version: str
    new_version: str
    manifest: list[str] = field(default_factory=list)
    added: list[Member] = field(default_factory=list)
    removed: list[Member] = field(default_factory=list)
    changed: list[tuple[Member, Member]] = field(default_factory=list)

    # Categories added or removed, or a lookback or min_entries changed: what the service does,
    # not wording.
    categories_changed: bool = False

    @property
    def empty(self) -> bool:
        return not (self.manifest or self.added or self.removed or self.changed)

    @property
    def warnings(self) -> list[str]:
        """What a reviewer should not let through: new content under an unchanged version, which
        would go live looking the same at /readyz and in the service description."""
        if self.old_version != self.new_version or not (
            self.added or self.removed or self.changed or self.categories_changed
        ):
            return []
        return [
            f"{self.purpose}: the codes or categories changed but the version is still "
            f"{self.new_version}: raise 'version' in the manifest (codesets/README.md, step 3), "
            "or the change goes live looking like the old version"
        ]


def diff_codesets(old: CodeSets, new: CodeSets) -> list[SetDiff]:
    """One `SetDiff` per purpose, in the order trigger, recording, known-abuse."""
    return [_diff_set(a, b) for a, b in zip(old, new, strict=True)]


def _diff_set(old: CodeSet, new: CodeSet) -> SetDiff:
    diff = SetDiff(new.purpose, old.version, new.version)
    for name in _MANIFEST_FIELDS:
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            if name == "description":
                diff.manifest.append("description changed")
            else:
                diff.manifest.append(f"{name}: {before} -> {after}")
    diff.categories_changed = old.categories.keys() != new.categories.keys() or any(
        (old.categories[name].lookback, old.categories[name].min_entries)
        != (settings.lookback, settings.min_entries)
        for name, settings in new.categories.items()
        if name in old.categories
    )
    for name in old.categories.keys() - new.categories.keys():
        diff.manifest.append(f"category {name} removed")
    for name, settings in new.categories.items():
        if name not in old.categories:
            diff.manifest.append(f"category {name} added (lookback {settings.lookback_text})")
            continue
        before = old.categories[name]
        if before.lookback_text != settings.lookback_text:
            diff.manifest.append(
                f"category {name}: lookback {before.lookback_text} -> {settings.lookback_text}"
            )
        if before.min_entries != settings.min_entries:
            diff.manifest.append(
                f"category {name}: min_entries {before.min_entries} -> {settings.min_entries}"
            )
        for part in ("title", "reason"):
            if getattr(before, part) != getattr(settings, part):
                diff.manifest.append(f"category {name}: {part} changed")
    for member in new.members:
        earlier = old.lookup(member.system, member.code)
        if earlier is None:
            diff.added.append(member)
        elif earlier != member:
            diff.changed.append((earlier, member))
    diff.removed = [m for m in old.members if new.lookup(m.system, m.code) is None]
    return diff


def _describe_change(old: Member, new: Member) -> list[str]:
    parts = []
    if old.term != new.term:
        parts.append(f"term {old.term!r} -> {new.term!r}")
    if old.category != new.category:
        parts.append(f"category {old.category} -> {new.category}")
    if old.source != new.source:
        parts.append(f"source {old.source!r} -> {new.source!r}")
    if old.note != new.note:
        parts.append(f"note {old.note!r} -> {new.note!r}")
    return parts


def _label(member: Member) -> str:
    return f"{SYSTEM_NAMES.get(member.system, member.system)} {member.code} {member.term}"


def diff_as_text(diffs: list[SetDiff]) -> str:
    """For people: per set, the manifest changes, then codes by category (+ added, - removed,
    ~ changed)."""
    lines: list[str] = []
    for diff in diffs:
        lines.append(f"{diff.purpose} ({diff.old_version} -> {diff.new_version})")
        if diff.empty:
            lines.append("  no differences")
            continue
        lines.extend(f"  WARNING: {warning}" for warning in diff.warnings)
        lines.extend(f"  {change}" for change in diff.manifest)
        by_category: dict[str, list[str]] = {}
        for member in diff.added:
            by_category.setdefault(member.category, []).append(f"+ {_label(member)}")
        for member in diff.removed:
            by_category.setdefault(member.category, []).append(f"- {_label(member)}")
        for old, new in diff.changed:
            details = "; ".join(_describe_change(old, new))
            by_category.setdefault(new.category, []).append(f"~ {_label(old)}: {details}")
        for category in sorted(by_category):
            lines.append(f"  {category}:")
            lines.extend(f"    {entry}" for entry in by_category[category])
        lines.append(
            f"  total: {len(diff.added)} added, {len(diff.removed)} removed, "
            f"{len(diff.changed)} changed"
        )
    return "\n".join(lines) + "\n"


def _member_json(member: Member) -> dict[str, str]:
    return {
        "system": member.system,
        "code": member.code,
        "term": member.term,
        "category": member.category,
        "source": member.source,
        "note": member.note,
    }


def diff_as_json(diffs: list[SetDiff]) -> dict[str, Any]:
    """For machines: {"changed": bool, "warnings": [...], "sets": [...]}."""
    sets = []
    for diff in diffs:
        sets.append(
            {
                "purpose": diff.purpose,
                "oldVersion": diff.old_version,
                "newVersion": diff.new_version,
                "manifest": diff.manifest,
                "warnings": diff.warnings,
                "added": [_member_json(m) for m in diff.added],
                "removed": [_member_json(m) for m in diff.removed],
                "changed": [
                    {"old": _member_json(old), "new": _member_json(new)}
                    for old, new in diff.changed
                ],
            }
        )
    warnings = [warning for diff in diffs for warning in diff.warnings]
    return {"changed": any(not d.empty for d in diffs), "warnings": warnings, "sets": sets}


def stats(codesets: CodeSets) -> dict[str, Any]:
    """Counts per set, by category and by system."""
    result: dict[str, Any] = {}
    for codeset in codesets:
        by_category: dict[str, dict[str, int]] = {}
        for name in codeset.categories:
            counts = Counter(SYSTEM_NAMES[m.system] for m in codeset.in_category(name))
            by_category[name] = dict(sorted(counts.items()))
        systems = Counter(SYSTEM_NAMES[m.system] for m in codeset.members)
        result[codeset.purpose] = {
            "id": codeset.id,
            "version": codeset.version,
            "total": len(codeset),
            "bySystem": dict(sorted(systems.items())),
            "byCategory": by_category,
        }
    return result


def stats_as_text(codesets: CodeSets) -> str:
    """A table per set: category, lookback, then a count per system and the total."""
    systems = list(SYSTEM_NAMES.values())
    lines = []
    width = max([len("category"), *(len(name) for cs in codesets for name in cs.categories)])
    for codeset in codesets:
        lines.append(f"{codeset.purpose}: {codeset.id} {codeset.version}, {len(codeset)} codes")
        header = f"  {'category':<{width}} {'lookback':<13}" + "".join(f"{s:>11}" for s in systems)
        lines.append(header + f"{'total':>8}")
        for name, settings in codeset.categories.items():
            members = codeset.in_category(name)
            counts = Counter(m.system for m in members)
            row = f"  {name:<{width}} {settings.lookback_text:<13}"
            row += "".join(f"{counts.get(uri, 0):>11}" for uri in SYSTEM_NAMES)
            lines.append(row + f"{len(members):>8}")
        lines.append("")
    return "\n".join(lines)
