"""The ditkit zarr episode store (written by ``make data-policy``)::

    demos.zarr/
      .attrs: format="ditkit-episodes", version=1, obs_dim, action_dim, action_low [A], action_high [A],
              tasks [names; task_id indexes it], source (free text), num_episodes (optional: checked)
      episodes/000000/            one group per episode, 6-digit zero-padded index
        obs     float32 [T, obs_dim]     observation before each action
        action  float32 [T, action_dim]  action taken at that step (already inside the env bounds)
        .attrs: task (str), task_id (int), success (bool), seed (int)

Zarr format 3 (``zarr.json``) and format 2 (``.zgroup`` / ``.zarray`` / ``.zattrs``) stores are read. The metadata
of every node is parsed and checked here first (UTF-8, JSON, shapes and chunk shapes bounded, numeric dtypes), so a
hostile header is reported by file before zarr allocates anything; consolidated metadata is ignored.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ditkit_core.errors import DataError, naming_file, read_text
from ditkit_robotics.episodes import (
    MAX_DIM,
    MAX_ELEMENTS,
    MAX_EPISODES,
    MAX_STEPS,
    MAX_TASKS,
    REQUIRED_KEYS,
    Episode,
    EpisodeError,
    as_int,
    atomic_dir,
    check_on_error,
    collect,
    parse_json,
)

FORMAT, VERSION = "ditkit-episodes", 1
_META_FILES = ("zarr.json", ".zarray", ".zgroup", ".zattrs")
_META_BYTES = 16 << 20
_V3_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"}
_V3_DTYPES |= {"float16", "float32", "float64"}
_V2_DTYPE = re.compile(r"^[<>|=]?[biuf][1248]$")


def write_zarr_episodes(
    path: str | Path,
    episodes: Sequence[Episode],
    *,
    tasks: Sequence[str],
    action_low: Sequence[float],
    action_high: Sequence[float],
    source: str = "",
) -> Path:
    """Write episodes in the ditkit zarr schema (see the module docstring); replaces ``path`` atomically.

    The store is built in a temporary sibling folder and renamed onto ``path`` when complete, so a killed run
    leaves the previous store (or none), never a truncated one. Chunks are zstd frames with a checksum.
    """
    import zarr
    from zarr.codecs import ZstdCodec

    if not episodes:
        raise ValueError("write_zarr_episodes: no episodes to write")
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w")
        root.attrs.update(
            {
                "format": FORMAT,
                "version": VERSION,
                "obs_dim": int(episodes[0].obs.shape[1]),
                "action_dim": int(episodes[0].action.shape[1]),
                "action_low": [float(v) for v in action_low],
                "action_high": [float(v) for v in action_high],
                "tasks": list(tasks),
                "source": source,
                "num_episodes": len(episodes),
            }
        )
        eps = root.create_group("episodes")
        for i, ep in enumerate(episodes):
            g = eps.create_group(f"{i:06d}")
            for key in ("obs", "action"):  # zstd with a checksum: a damaged chunk is detected on read
                g.create_array(
                    key, data=np.asarray(getattr(ep, key), dtype=np.float32), compressors=ZstdCodec(checksum=True)
                )
            g.attrs.update(
                {"task": ep.task, "task_id": int(ep.task_id), "success": bool(ep.success), "seed": int(ep.seed)}
            )
    return Path(path)


# ---------------------------------------------------------------------------------------------- metadata
def _node_meta(node: Path) -> tuple[dict[str, Any], dict[str, Any], Path | None]:
    """``(node metadata, attributes, metadata file)`` of a zarr node folder, parsed and checked by file."""
    meta: dict[str, Any] = {}
    attrs: dict[str, Any] = {}
    main = None
    for name in _META_FILES:
        f = node / name
        if not f.is_file():
            continue
        data = parse_json(read_text(f, _META_BYTES), f)
        if not isinstance(data, dict):
            raise DataError(f"expected a JSON object, got {type(data).__name__}", path=f)
        if name == ".zattrs":
            attrs = data
        else:
            meta, main = data, f
            if name == "zarr.json":
                attrs = data.get("attributes", {})
                if not isinstance(attrs, dict):
                    raise DataError("expected a JSON object", path=f, field="attributes", value=attrs)
    return meta, attrs, main


def _check_array_meta(meta: dict[str, Any], file: Path, key: str, index: int) -> int:
    """Check an array header (rank 2, bounded shape and chunks, numeric dtype); returns its zarr format."""
    where = {"path": file, "episode": index}
    fmt = meta.get("zarr_format")
    if fmt == 3:
        if meta.get("node_type") != "array":
            raise EpisodeError("is not an array", field="node_type", value=meta.get("node_type"), **where)
        dtype = meta.get("data_type")
        grid = meta.get("chunk_grid")
        config = grid.get("configuration") if isinstance(grid, dict) else None
        chunks = config.get("chunk_shape") if isinstance(config, dict) else None
        ok_dtype = isinstance(dtype, str) and dtype in _V3_DTYPES
        dtype_field = "data_type"
    elif fmt == 2:
        dtype, chunks = meta.get("dtype"), meta.get("chunks")
        ok_dtype = isinstance(dtype, str) and bool(_V2_DTYPE.match(dtype))
        dtype_field = "dtype"
    else:
        raise EpisodeError("unsupported zarr format", field="zarr_format", value=fmt, kind="bad metadata", **where)
    if not ok_dtype:
        complex_ = isinstance(dtype, str) and ("complex" in dtype or re.match(r"^[<>|=]?c", dtype))
        raise EpisodeError(
            "complex values are not accepted" if complex_ else "expected a real numeric dtype",
            field=dtype_field,
            value=dtype,
            kind="complex values" if complex_ else "not numeric",
            **where,
        )
    shape = meta.get("shape")
    if not isinstance(shape, list) or len(shape) != 2:
        raise EpisodeError(f"'{key}' must be [T, dim]", field="shape", value=shape, kind="wrong rank", **where)
    T = as_int(shape[0], lo=0, hi=MAX_STEPS, path=file, episode=index, field="shape[0]", kind="hostile size")
    d = as_int(shape[1], lo=0, hi=MAX_DIM, path=file, episode=index, field="shape[1]", kind="hostile size")
    if T * d > MAX_ELEMENTS:
        raise EpisodeError(
            f"{T * d} values exceed {MAX_ELEMENTS}", field="shape", value=shape, kind="hostile size", **where
        )
    if not isinstance(chunks, list) or len(chunks) != 2:
        raise EpisodeError("expected 2 chunk sizes", field="chunks", value=chunks, kind="bad metadata", **where)
    for c in chunks:
        as_int(c, lo=1, hi=MAX_ELEMENTS, path=file, episode=index, field="chunks", kind="hostile size")
    if math.prod(int(c) for c in chunks) > MAX_ELEMENTS:
        raise EpisodeError(
            f"chunks exceed {MAX_ELEMENTS} values", field="chunks", value=chunks, kind="hostile size", **where
        )
    return fmt


_ITEMSIZE = {"bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "float16": 2, "int32": 4, "uint32": 4}
_ITEMSIZE |= {"float32": 4, "int64": 8, "uint64": 8, "float64": 8}


def _blosc_frame_size(meta: dict[str, Any]) -> int | None:
    """Uncompressed bytes of one chunk when the array's chunks are blosc frames (-1: size unknown), else None."""
    if meta["zarr_format"] == 2:
        chunks = meta["chunks"]
        comp = meta.get("compressor")
        if not (isinstance(comp, dict) and comp.get("id") == "blosc"):
            return None
        return -1 if meta.get("filters") else math.prod(chunks) * int(meta["dtype"][-1])
    chunks = meta["chunk_grid"]["configuration"]["chunk_shape"]  # checked by _check_array_meta
    codecs = meta.get("codecs") if isinstance(meta.get("codecs"), list) else []
    names = [c.get("name") if isinstance(c, dict) else c for c in codecs]
    if "blosc" not in names:
        return None
    plain = names[: names.index("blosc")] == ["bytes"]
    return math.prod(chunks) * _ITEMSIZE[meta["data_type"]] if plain else -1


def _check_blosc_chunks(node: Path, meta: dict[str, Any], key: str, index: int) -> None:
    """Refuse truncated or inconsistent blosc frames before the codec reads them: numcodecs' blosc decoder reads
    past the end of a truncated frame and returns whatever memory follows (zarr-developers/numcodecs#228)."""
    expected = _blosc_frame_size(meta)
    if expected is None:
        return
    for f in sorted(node.rglob("*")):
        if not f.is_file() or f.name in _META_FILES:
            continue
        with naming_file(f):
            with f.open("rb") as fh:
                head = fh.read(16)
            size = f.stat().st_size
        nbytes, blocksize, cbytes = (int.from_bytes(head[i : i + 4], "little") for i in (4, 8, 12))
        problem = None
        if len(head) < 16:
            problem = f"a blosc frame needs a 16-byte header, the file holds {size} bytes"
        elif not 16 <= cbytes <= size:
            problem = f"blosc frame of {cbytes} bytes declared, the file holds {size} (truncated or damaged)"
        elif expected >= 0 and nbytes != expected:
            problem = f"blosc frame decompresses to {nbytes} bytes, a chunk holds {expected}"
        elif blocksize > max(nbytes, 1) or nbytes > 8 * MAX_ELEMENTS:
            problem = f"blosc block size {blocksize} / size {nbytes} are inconsistent"
        if problem:
            raise EpisodeError(problem, path=f, episode=index, field=key, kind="corrupt chunk")


def _check_root_attrs(attrs: dict[str, Any], file: Path | None) -> dict[str, Any]:
    if attrs.get("format") != FORMAT:
        raise DataError(f"expected {FORMAT!r}", path=file, field="format", value=attrs.get("format"))
    if attrs.get("version") != VERSION:
        raise DataError(
            f"unsupported version (this reader knows {VERSION})", path=file, field="version", value=attrs.get("version")
        )
    tasks = attrs.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks) or len(tasks) > MAX_TASKS:
        raise DataError("expected a list of task names", path=file, field="tasks", value=tasks)
    out = dict(attrs)
    for key in ("obs_dim", "action_dim"):
        if key in attrs:
            out[key] = as_int(attrs[key], lo=1, hi=MAX_DIM, path=file, field=key)
    for key in ("action_low", "action_high"):
        if key in attrs:
            v = attrs[key]
            ok = isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            if not ok or not np.isfinite(np.asarray(v, dtype=np.float64)).all():
                raise DataError("expected a list of finite numbers", path=file, field=key, value=v)
            if "action_dim" in out and len(v) != out["action_dim"]:
                raise DataError(f"expected action_dim={out['action_dim']} values", path=file, field=key, value=v)
    if "action_low" in out and "action_high" in out and np.any(np.asarray(out["action_low"]) > out["action_high"]):
        raise DataError("action_low exceeds action_high", path=file, field="action_low", value=out["action_low"])
    if "num_episodes" in attrs:
        out["num_episodes"] = as_int(attrs["num_episodes"], lo=1, hi=MAX_EPISODES, path=file, field="num_episodes")
    return out


# ---------------------------------------------------------------------------------------------- reading
def _read_episode(group: Path, index: int, zarr: Any) -> dict[str, Any]:
    """One episode group: its attributes and arrays (headers checked before reading)."""
    _, attrs, _ = _node_meta(group)
    data: dict[str, Any] = {k: attrs[k] for k in ("task", "task_id", "success", "seed") if k in attrs}
    data["file"] = group
    for key in REQUIRED_KEYS:
        node = group / key
        meta, _, file = _node_meta(node) if node.is_dir() else ({}, {}, None)
        if file is None:
            continue  # missing: reported by validate_episode
        fmt = _check_array_meta(meta, file, key, index)
        _check_blosc_chunks(node, meta, key, index)
        try:
            data[key] = zarr.open_array(str(node), mode="r", zarr_format=fmt)[:]
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001 - any codec / chunk failure is reported by file and episode
            raise EpisodeError(
                f"cannot read: {type(e).__name__}: {e}", path=node, episode=index, field=key, kind="unreadable chunk"
            ) from e
    return data


def load_zarr_episodes(
    path: str | Path, on_error: Literal["raise", "skip"] = "raise"
) -> tuple[list[Episode], dict[str, Any]]:
    """Read a ditkit zarr episode store.

    Args:
        path: the ``.zarr`` directory.
        on_error: ``raise`` (default) on the first malformed episode, or ``skip`` malformed episodes (counted per
            reason in ``attrs["skipped"]``, logged and warned). Store-level problems always raise.

    Returns:
        ``(episodes, attrs)`` with the root attributes (tasks, action bounds, dims) and ``skipped``.

    Raises:
        FileNotFoundError: no store at ``path``.
        EpisodeError / DataError: a malformed store or episode, naming the file, the episode, field and value.
    """
    import zarr

    check_on_error(on_error)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"load_zarr_episodes: {path} does not exist (run `make data-policy`)")
    if not path.is_dir():
        raise DataError("a zarr store is a folder, got a file", path=path)
    _, root_attrs, root_file = _node_meta(path)
    if root_file is None:
        raise DataError(f"not a zarr group (no {' / '.join(_META_FILES[:3])})", path=path)
    attrs = _check_root_attrs(root_attrs, root_file)
    eps_dir = path / "episodes"
    if not eps_dir.is_dir() or _node_meta(eps_dir)[2] is None:
        raise DataError("missing group 'episodes'", path=path)
    tasks: list[str] = attrs.get("tasks", [])
    names = sorted(p.name for p in eps_dir.iterdir() if p.is_dir())
    if len(names) > MAX_EPISODES:
        raise DataError(f"more than {MAX_EPISODES} episodes", path=eps_dir)
    raw: list[tuple[int, Any]] = []
    seen: set[int] = set()
    for name in names:
        if not re.fullmatch(r"\d{1,8}", name):
            raise DataError(
                "episode groups are named by their index (digits)", path=eps_dir / name, field="name", value=name
            )
        index = int(name)
        if index in seen:
            raise DataError(f"a second group of episode {index}", path=eps_dir / name, field="name", value=name)
        seen.add(index)
        try:
            raw.append((index, _read_episode(eps_dir / name, index, zarr)))
        except EpisodeError as e:
            raw.append((index, e))
        except DataError as e:  # unreadable metadata of one episode: belongs to that episode
            kw = {"line": e.line, "field": e.field, "value": e.value, "kind": "unreadable metadata"}
            raw.append((index, EpisodeError(e.reason, path=e.path, episode=index, **kw)))
    if "num_episodes" in attrs and attrs["num_episodes"] != len(names):
        raise DataError(
            f"the store holds {len(names)} episode group(s) (truncated or extended store)",
            path=root_file,
            field="num_episodes",
            value=attrs["num_episodes"],
        )
    episodes, report = collect(raw, path, on_error, num_tasks=len(tasks) or None, tasks=tasks or None)
    for key, dim_key in (("obs", "obs_dim"), ("action", "action_dim")):
        if episodes and dim_key in attrs and getattr(episodes[0], key).shape[1] != attrs[dim_key]:
            raise DataError(
                f"the episodes' '{key}' width is {getattr(episodes[0], key).shape[1]}",
                path=root_file,
                field=dim_key,
                value=attrs[dim_key],
            )
    attrs["skipped"] = report.counts()
    return episodes, attrs


__all__ = ["FORMAT", "VERSION", "load_zarr_episodes", "write_zarr_episodes"]
