"""Discovery: the scenes a config lists, as :class:`~greensink.ingest.scene.Scene` records.

Scenes are listed in a scenes table (CSV, ``imagery.scenes``; :func:`read_scenes_table`) or found
by globs (``imagery.files``; :func:`scenes_from_files`) whose file names (or a metadata tag) carry
the date. :func:`load_scenes` gathers both, sorted by date and id, each id once.
"""

from __future__ import annotations

import datetime as dt
import glob
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import rasterio

from greensink.errors import InputDataError
from greensink.ingest.profiles import PROFILES, resolve_profiles
from greensink.ingest.scene import Scene, make_scene

REQUIRED_COLUMNS = ("scene_id", "datetime", "sensor", "red", "nir")

# A date in a file name: YYYYMMDD or YYYY-MM-DD / YYYY_MM_DD, not inside a longer run of digits.
DEFAULT_PATTERN = r"(?<!\d)(?P<date>(?:19|20)\d{2}[-_]?(?:0[1-9]|1[0-2])[-_]?(?:0[1-9]|[12]\d|3[01]))(?!\d)"


def read_scenes_table(path: str | Path, profiles: Mapping[str, Mapping] | None = None) -> list[Scene]:
    """Read and check a scenes table; paths are relative to the table's folder. Sorted by date, id.

    ``sensor`` names a profile (built-in or from ``profiles``). The quality file is in the column
    the profile names (``scl``, ``qa_pixel``, ``pq``) or in ``quality``; Sentinel-2 rows may give
    ``processing_baseline`` and ``boa_add_offset`` (or ``radio_add_offset`` for L1C)."""
    profiles = profiles or PROFILES
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: scenes table not found. Check imagery.scenes in the config.")
    from greensink.io import read_csv_as_text

    table = read_csv_as_text(path)  # names the file on a parse error, a ';'-separated file or a device
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {missing}. A scenes table needs {list(REQUIRED_COLUMNS)}.")
    if table.empty:
        raise InputDataError(f"{path}: the scenes table has no rows. List at least one scene.")
    problems: list[str] = []
    scenes: list[Scene] = []
    for i, row in enumerate(table.to_dict("records"), start=2):  # row 1 is the header
        where = f"{path} row {i} (scene {row['scene_id']!r})"
        sensor = row["sensor"].strip().lower()
        if sensor not in profiles:
            problems.append(f"{where}: sensor must be one of {sorted(profiles)} (a profile; add others under "
                            f"imagery.profiles). Got {row['sensor']!r}.")
            continue
        try:
            dt.date.fromisoformat(row["datetime"][:10])
        except ValueError:
            problems.append(f"{where}: datetime must be ISO 8601 (e.g. 2023-06-15T02:30:00Z). Got {row['datetime']!r}.")
            continue
        profile = profiles[sensor]
        qcols = [c for c in (profile.get("quality_column"), "quality") if c]
        qcol = next((c for c in qcols if row.get(c, "")), None)
        files = {"red": row.get("red", ""), "nir": row.get("nir", ""), "quality": row.get(qcol, "") if qcol else ""}
        resolved: dict[str, str | None] = {}
        for key, rel in files.items():
            if not rel:
                if key == "quality":
                    resolved[key] = None
                    continue
                problems.append(f"{where}: column {key!r} is empty. Give the {key} band file.")
                continue
            p = (path.parent / rel).resolve() if not Path(rel).is_absolute() else Path(rel)
            if not p.exists():
                problems.append(f"{where}: {key} file {str(p)!r} not found. Fix the path (relative to the table).")
            resolved[key] = str(p)
        if resolved.get("quality") and not profile.get("quality"):
            problems.append(f"{where}: a quality file is given but profile {sensor!r} has no quality rule. "
                            f"Remove the file, or give imagery.profiles.{sensor}.quality.")
            continue
        if len(resolved) < 3:
            continue
        add_offset = row.get("boa_add_offset", "") or row.get("radio_add_offset", "")
        try:
            scenes.append(make_scene(row["scene_id"], row["datetime"], sensor, profile, resolved["red"], resolved["nir"],
                                     resolved["quality"], row.get("processing_baseline", ""), add_offset, where))
        except InputDataError as exc:
            problems.append(str(exc))
    if problems:
        raise InputDataError("Problems in the scenes table:\n" + "\n".join(f"  - {p}" for p in problems))
    check_unique_ids(scenes, str(path))
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def check_unique_ids(scenes: Sequence[Scene], where: str) -> None:
    """Raise InputDataError naming ``where`` and the ids if two scenes share a scene_id."""
    ids = [s.scene_id for s in scenes]
    dupes = sorted({s for s in ids if ids.count(s) > 1})
    if dupes:
        raise InputDataError(f"{where}: duplicate scene_id {dupes}. Give each scene a unique id.")


# ----------------------------------------------------------------------------- scenes from globs


def date_from_text(text: str) -> dt.date:
    """A date from YYYYMMDD, YYYY-MM-DD, YYYY_MM_DD, YYYY:MM:DD (TIFF tags, time after it ignored) or YYYYDDD (day of year)."""
    m = re.match(r"(\d{4})[-_:./]?(\d{2})[-_:./]?(\d{2})(?!\d)", text.strip())
    if m:
        return dt.date(*map(int, m.groups()))
    m = re.fullmatch(r"(\d{4})(\d{3})", text.strip())
    if m:
        return dt.date(int(m.group(1)), 1, 1) + dt.timedelta(days=int(m.group(2)) - 1)
    raise ValueError(f"{text!r} is not a date (YYYYMMDD, YYYY-MM-DD or YYYYDDD)")


def _expand(globs: str | Sequence[str] | None) -> list[str]:
    if not globs:
        return []
    found: set[str] = set()
    for g in [globs] if isinstance(globs, str) else globs:
        found.update(str(Path(p).resolve()) for p in glob.glob(str(Path(g).expanduser()), recursive=True) if Path(p).is_file())
    return sorted(found)


def _file_key(path: str, pattern: re.Pattern, date_tag: str | None) -> tuple[dt.date, str, str]:
    """(date, scene, baseline) of a file: from the pattern's named groups, searched in the file name and,
    if it does not match there, in the whole path (e.g. a .SAFE folder name); or the date from a metadata tag."""
    m = pattern.search(Path(path).name) or pattern.search(path)
    if date_tag:
        from greensink.io import reading

        with reading(path, "imagery file"), rasterio.open(path) as src:
            value = src.tags().get(date_tag)
        if not value:
            raise ValueError(f"has no metadata tag {date_tag!r} (tags: {sorted(src.tags())[:10]})")
        date = date_from_text(value[:10])
    else:
        if m is None or m.groupdict().get("date") is None:
            raise ValueError(f"does not match pattern {pattern.pattern!r}")
        date = date_from_text(m.group("date"))
    groups = m.groupdict() if m else {}
    baseline = groups.get("baseline") or ""
    if re.fullmatch(r"\d{4}", baseline):  # N0400 in product names -> 04.00
        baseline = f"{baseline[:2]}.{baseline[2:]}"
    return date, groups.get("scene") or "", baseline


def entry_problems(entry: Mapping, where: str, profiles: Mapping) -> list[str]:
    """What is wrong with one ``imagery.files`` entry (at ``where``), without reading files."""
    problems = []
    name = entry.get("profile")
    if name not in profiles:
        problems.append(f"{where}.profile: must name a sensor profile, one of {sorted(profiles)} (or add one under "
                        f"imagery.profiles). Got {name!r}.")
    if entry.get("path") and (entry.get("red") or entry.get("nir")):
        problems.append(f"{where}: give either path (files holding every band) or red and nir (one file per band), not both.")
    elif not entry.get("path") and not (entry.get("red") and entry.get("nir")):
        problems.append(f"{where}: give path (files holding every band) or both red and nir globs.")
    if entry.get("quality") and name in profiles and not profiles[name].get("quality"):
        problems.append(f"{where}.quality: profile {name!r} has no quality rule. Drop quality, or give imagery.profiles.{name}.quality.")
    try:
        pattern = re.compile(entry.get("pattern") or DEFAULT_PATTERN)
        if "date" not in pattern.groupindex and not entry.get("date_tag"):
            problems.append(f"{where}.pattern: needs a named group date, e.g. '_(?P<date>\\d{{8}})_'. Got {pattern.pattern!r}.")
    except re.error as exc:
        problems.append(f"{where}.pattern: not a valid regular expression ({exc}). Got {entry.get('pattern')!r}.")
    return problems


def scenes_from_files(entries: Sequence[Mapping], profiles: Mapping[str, Mapping] | None = None) -> list[Scene]:
    """Scenes found by the globs of ``imagery.files``, sorted by date, id.

    Each entry gives ``path`` (globs of files holding every band, band indexes from the profile)
    or ``red`` and ``nir`` (and optionally ``quality``) globs of one-band files; ``profile``; and
    ``pattern``, a regex searched in each file name (then in its whole path) whose named group
    ``date`` gives the date (default: the first YYYYMMDD), optional ``scene`` tells apart scenes of one date and
    ``baseline`` gives the Sentinel-2 processing baseline (N0400 or 04.00). ``date_tag`` reads
    the date from a metadata tag instead. Files of one scene are matched by (date, scene).
    Raises InputDataError listing every problem of every entry."""
    profiles = profiles or PROFILES
    problems: list[str] = []
    scenes: list[Scene] = []
    for i, entry in enumerate(entries):
        where = f"imagery.files[{i}]"
        found_problems = entry_problems(entry, where, profiles)
        if not found_problems:
            found, found_problems = _entry_scenes(entry, where, profiles[entry["profile"]])
            scenes += found
        problems += found_problems
    if problems:
        raise InputDataError("Problems finding the imagery files:\n" + "\n".join(f"  - {p}" for p in problems))
    check_unique_ids(scenes, "imagery.files")
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))


def _index_files(entry: Mapping, where: str) -> tuple[dict[str, dict[tuple, list[tuple[str, str]]]], list[str]]:
    """For each band role, the files its glob finds keyed by (date, scene), each with its baseline."""
    pattern = re.compile(entry.get("pattern") or DEFAULT_PATTERN)
    globs = {"red": entry.get("path") or entry["red"], "nir": entry.get("path") or entry["nir"], "quality": entry.get("quality")}
    keyed: dict[str, dict[tuple, list[tuple[str, str]]]] = {}
    problems: list[str] = []
    for role, g in globs.items():
        if not g:
            continue
        files = _expand(g)
        if not files:
            key = "path" if entry.get("path") and role != "quality" else role
            problems.append(f"{where}.{key}: {g!r} matches no file (relative paths start at {Path.cwd()}). Fix the path or glob.")
            continue
        keyed[role] = {}
        for f in files:
            try:
                date, scene, baseline = _file_key(f, pattern, entry.get("date_tag"))
            except (ValueError, rasterio.errors.RasterioIOError) as exc:
                how = "date_tag" if entry.get("date_tag") else "pattern"
                problems.append(f"{where}: file {f} {exc}; its date cannot be read. Fix {where}.{how}, or remove the file.")
                continue
            keyed[role].setdefault((date, scene), []).append((f, baseline))
    return keyed, problems


def _entry_scenes(entry: Mapping, where: str, profile: Mapping) -> tuple[list[Scene], list[str]]:
    """The scenes of one imagery.files entry: its files matched across band roles by (date, scene)."""
    keyed, problems = _index_files(entry, where)
    if "red" not in keyed or "nir" not in keyed or (entry.get("quality") and "quality" not in keyed):
        return [], problems  # a glob found nothing: said already
    name = entry["profile"]
    for role, by_key in keyed.items():
        for (date, scene), found in by_key.items():
            if len(found) > 1:
                problems.append(
                    f"{where}: {len(found)} {role} files for the scene of {date}{' ' + scene if scene else ''}: "
                    f"{[f for f, _ in found]}. Add a named group (?P<scene>...) to {where}.pattern to tell them apart, or narrow the glob.")
    scenes = []
    for key in sorted(set(keyed["red"]) | set(keyed["nir"])):
        date, scene = key
        have = {role: keyed[role].get(key) for role in keyed}
        missing = [role for role in keyed if not have[role]]
        for role in missing:
            other = next(f for r in ("red", "nir") if have.get(r) for f, _ in have[r])
            problems.append(f"{where}: no {role} file for the scene of {date}{' ' + scene if scene else ''} (found {other}). "
                            f"Add the missing band file or fix {where}.{role}.")
        if missing or any(len(v) > 1 for v in have.values()):
            continue
        red, baseline = have["red"][0]
        quality = have["quality"][0][0] if "quality" in have else None
        scene_id = Path(red).stem if entry.get("path") else "_".join(p for p in (name, scene, f"{date:%Y%m%d}") if p)
        try:
            scenes.append(make_scene(scene_id, date.isoformat(), name, profile, red, have["nir"][0][0], quality, baseline, "",
                                     f"{where}: {red}"))
        except InputDataError as exc:
            problems.append(str(exc))
    return scenes, problems


def load_scenes(imagery: Mapping, table: str | Path | None = None) -> list[Scene]:
    """Every scene the config lists: those of the scenes ``table`` and those ``imagery.files`` finds."""
    profiles = resolve_profiles(imagery.get("profiles"))
    scenes: list[Scene] = []
    if table:
        scenes += read_scenes_table(table, profiles)
    if imagery.get("source") == "local" and imagery.get("files"):
        scenes += scenes_from_files(imagery["files"], profiles)
    if not scenes:
        raise InputDataError("No scene is listed. Set imagery.scenes (a scenes table) or imagery.files (globs) in the config.")
    check_unique_ids(scenes, "imagery (scenes table and files)")
    return sorted(scenes, key=lambda s: (s.datetime, s.scene_id))
