"""Replacing files in a folder of code sets all or none, so that neither a reload reading the
folder meanwhile nor a failure part way leaves new files beside old ones.

    replace_files({folder / "trigger.toml": manifest, folder / "trigger.csv": members})
"""

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["PartlyReplaced", "replace_files"]


class PartlyReplaced(OSError):
    """A rename failed part way and a file already renamed could not be put back: `changed`
    holds the import, `kept` says where each changed file's old content is (if it had one),
    `untouched` are the other files, as they were."""

    def __init__(
        self, error: OSError, changed: list[Path], kept: dict[Path, Path], untouched: list[Path]
    ) -> None:
        super().__init__(error.errno, error.strerror)
        self.error, self.changed, self.kept, self.untouched = error, changed, kept, untouched


def replace_files(files: dict[Path, bytes]) -> None:
    """Write every file whole, or none of them: a reload reading the folder meanwhile, or a
    crash, never meets half a file (a rename within the folder is atomic). All are staged
    beside their targets, and each file they replace is kept aside (a second link to it, so no
    copy), before any is renamed into place. So a write that fails (no space, no permission)
    leaves the folder as it was, never a new manifest beside old members; and so does a rename
    that fails part way, as the files already renamed get their old content back. Raises the
    OSError then, or `PartlyReplaced` if one of them could not be put back."""
    staged: list[tuple[Path, Path]] = []
    kept: dict[Path, Path] = {}
    try:
        for target, data in files.items():
            temporary = target.with_name(f".{target.name}.importing")
            temporary.write_bytes(data)
            staged.append((temporary, target))
            if os.path.lexists(target):
                kept[target] = _keep_aside(target)
    except OSError:
        _remove(temporary for temporary, _target in staged)
        _remove(kept.values())
        raise
    renamed: list[Path] = []
    try:
        for temporary, target in staged:
            os.replace(temporary, target)
            renamed.append(target)
    except OSError as error:
        changed = _put_back(renamed, kept)
        _remove(temporary for temporary, target in staged if target not in renamed)
        _remove(old for target, old in kept.items() if target not in changed)
        if changed:
            left = {target: kept[target] for target in changed if target in kept}
            untouched = [target for _temporary, target in staged if target not in changed]
            raise PartlyReplaced(error, changed, left, untouched) from error
        raise
    _remove(kept.values())


def _keep_aside(target: Path) -> Path:
    """A second name for `target`'s content, which renaming the new file into place keeps."""
    old = target.with_name(f".{target.name}.before-import")
    old.unlink(missing_ok=True)  # left by an import that was stopped part way (a crash)
    try:
        os.link(target, old, follow_symlinks=False)
    except OSError:  # a file system without hard links
        shutil.copyfile(target, old, follow_symlinks=False)
    return old


def _put_back(renamed: list[Path], kept: dict[Path, Path]) -> list[Path]:
    """Undo the renames into place, newest first: the old content back, a new file removed.
    Returns the files that could not be put back."""
    changed = []
    for target in reversed(renamed):
        try:
            if target in kept:
                os.replace(kept[target], target)
            else:
                target.unlink()
        except OSError:
            changed.append(target)
    return changed[::-1]


def _remove(paths: Iterable[Path]) -> None:
    """Remove files of an import's own (never loaded: not named *.toml or *.csv), if it can."""
    for path in list(paths):
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
