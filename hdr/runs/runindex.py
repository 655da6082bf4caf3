"""`.hdr-index`: what `hdr runs` and `hdr compare` read from each run folder of a folder of runs,
kept so that a folder of 10,000 runs lists in a second instead of parsing 10,000 of each file.

Each run's entry holds what was read (the fields listings use, hdr.runs) and a digest of a stamp of
every file it came from: kind, inode, size, modification and change time in nanoseconds, or
"absent". A run is taken from the index only when the stamps of its files, taken now, give the
same digest; otherwise it is read afresh. So a run that finished, was resumed, wrote an epoch
(rewritten or appended), gained metrics.json, or whose files were edited, touched or replaced is
read again; a folder that is gone is dropped and a new one read. The change time (ctime) cannot
be set back by a program (os.utime, cp -p and tar set mtime, and so change ctime), so an edit that
restores a file's size and mtime is still seen. Statuses that depend on a live process (rundir.RUNNING
or rundir.CRASHED) are decided by the caller on every listing, never stored.

What the stamps cannot see is a change inside the file system's timestamp granularity (a few
milliseconds on ext4) that keeps a file's inode and size. So a run whose files changed less than
MARGIN_NS before the listing began is read but not stored: any later change gets later times.
That relies on the file system's clock agreeing with this machine's within MARGIN_NS (true on a
local disk; on a network file system keep the server's clock synchronised), and on no one
setting the system clock back.

The file is rewritten whole, to a temporary name and renamed into place, so concurrent listings
never see half of one (the last writer wins; every entry checks itself). A file that is damaged,
half-written (each part carries its CRC), of another version or unreadable is ignored and
rebuilt; one that cannot be written (a read-only folder) is simply not kept. Small folders (fewer
than MIN_RUNS runs) get no index unless one is there already. HDR_RUNS_INDEX=0 turns it off.

The file: three lines of JSON. 1: the header (format, version, the Python whose hash() made the
digests, CRC-32 of lines 2 and 3). 2: every run's record: [digest, whether summary.txt was read,
info, metrics, history figures, params], mappings stored as [schema number, values...] against a
table of schemas (keys, and which keys hold a number into a table of shared nested values such
as a runtime or data checksums), so 10,000 runs' keys and runtimes are written once. 3: every
run's flattened config: [digest of config.yaml's stamp, schema number, values...], read only by
hdr compare; hdr runs copies it through unparsed.

Reading with configs (hdr compare) also gives each folder a token: the digest of the stamps of all
five files, taken before anything was read, or None while they are not settled. It stands for
everything read from the folder, so hdr/analysis/comparecache.py keys its result by it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from hdr.runs import rundir
from pathlib import Path
from stat import S_ISREG

NAME = ".hdr-index"
VERSION = 3  # 2: every field checked when read (rundir.checked_info ...); 3: run.json's label kept
MARGIN_NS = 2_000_000_000   # at least the coarsest timestamp granularity of a common file system (FAT: 2 s)
MIN_RUNS = 50               # below this, reading every folder is as quick as reading an index
CORE = (rundir.RUN, rundir.METRICS, rundir.HISTORY)
PARAMS_FILE = rundir.SUMMARY  # stamped only for runs whose parameter count came from it
_CORE_PARAMS = CORE + (PARAMS_FILE,)
_CONFIG = (rundir.CONFIG,)
_ALL = _CORE_PARAMS + _CONFIG  # stamps of 5 files: core [:15], with summary.txt [:20], config [20:]
_PYTHON = f"{sys.implementation.name}-{sys.hexversion:x}"  # whose hash() the digests are


def enabled() -> bool:
    return os.environ.get("HDR_RUNS_INDEX", "1") != "0"


class Absent(Exception):
    """The folder holds no run.json: not a run."""


def _stamps(folder: str, names) -> tuple:
    """(kind, inode, size, mtime_ns, ctime_ns) of each file, flat; kind -1: absent, 0: a file."""
    out = []
    for n in names:
        try:
            s = os.stat(f"{folder}/{n}")
        except OSError:  # absent, or not ours to read: as a listing without the index sees it
            out += (-1, 0, 0, 0, 0)
            continue
        out += (0 if S_ISREG(s.st_mode) else s.st_mode, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
    return tuple(out)


def _digest(stamps: tuple) -> int:
    """hash() of the stamps: for a tuple of ints it is CPython's xxHash-style combination, the same
    in every process (ints are not salted), and any one changed field changes it, as each round is
    a bijection of the accumulator and ints hash to themselves modulo 2**61-1 (73 years in ns).
    The header records the Python version, so another implementation means a new index."""
    return hash(stamps)


def _settled(stamps: tuple, before_ns: int) -> bool:
    """Whether every file last changed at least MARGIN_NS before the listing began."""
    return max(max(stamps[3::5]), max(stamps[4::5])) < before_ns


# ------------------------------------------------------------------------------ encoding

class _Tables:
    """Schemas ([keys, keys holding shared values]) and shared nested values, appended to as
    entries are encoded."""

    def __init__(self, schemas=(), shared=()):
        self.schemas = [[list(k), list(r)] for k, r in schemas]
        self.shared = list(shared)
        self._keys = [(tuple(k), tuple(r)) for k, r in self.schemas]
        self._schema_ids = {kr: i for i, kr in enumerate(self._keys)}
        self._shared_ids: dict | None = None

    def _schema(self, keys: tuple, refs: tuple) -> int:
        sid = self._schema_ids.get((keys, refs))
        if sid is None:
            sid = self._schema_ids[(keys, refs)] = len(self.schemas)
            self.schemas.append([list(keys), list(refs)])
            self._keys.append((keys, refs))
        return sid

    def encode(self, mapping: dict) -> list:
        refs = tuple(k for k, v in mapping.items() if isinstance(v, (dict, list, tuple)))
        sid = self._schema(tuple(mapping), refs)
        return [sid, *(self._share(v) if isinstance(v, (dict, list, tuple)) else v for v in mapping.values())]

    def _share(self, value) -> int:
        if self._shared_ids is None:
            self._shared_ids = {json.dumps(v, sort_keys=True): i for i, v in enumerate(self.shared)}
        text = json.dumps(value, sort_keys=True)
        n = self._shared_ids.get(text)
        if n is None:
            n = self._shared_ids[text] = len(self.shared)
            self.shared.append(value)
        return n

    def decode(self, enc: list) -> dict:
        keys, refs = self._keys[enc[0]]
        d = dict(zip(keys, enc[1:]))
        for k in refs:  # shared between runs: listings only read them
            d[k] = self.shared[d[k]]
        return d

    def encode_config(self, flat: dict) -> list:
        refs = tuple(k for k, v in flat.items() if isinstance(v, tuple))
        return [self._schema(tuple(flat), refs), *flat.values()]  # tuples are written as lists

    def decode_config(self, enc: list) -> dict:
        keys, refs = self._keys[enc[0]]
        d = dict(zip(keys, enc[1:]))
        for k in refs:
            d[k] = tuple(d[k])
        return d


# ------------------------------------------------------------------------------ the file

def frame(header: dict, line2: bytes, line3: bytes) -> bytes:
    """Three lines: header (with the CRC-32 of the other two), line2, line3. The index and
    compare's kept result (hdr/analysis/comparecache.py) are both written so."""
    head = json.dumps({**header, "crc": [zlib.crc32(line2), zlib.crc32(line3)]}).encode()
    return head + b"\n" + line2 + b"\n" + line3 + b"\n"


def unframe(data: bytes, header: dict):
    """(line2, line3) of a file frame() wrote with this header, checked; None when it is not
    whole or its header differs (another format, version or Python)."""
    parts = data.split(b"\n")
    if len(parts) != 4 or parts[3]:
        return None
    try:
        head = json.loads(parts[0])
    except ValueError:
        return None
    if not isinstance(head, dict) or any(head.get(k) != v for k, v in header.items()):
        return None
    crc = head.get("crc")
    if not isinstance(crc, list) or len(crc) != 2 or any(zlib.crc32(p) != c for p, c in zip(parts[1:3], crc)):
        return None
    return parts[1], parts[2]


def _header() -> dict:
    return {"format": "hdr-runs-index", "version": VERSION, "python": _PYTHON}


def _parse(line: bytes, *, shared: bool):
    try:
        doc = json.loads(line)
        tables = _Tables(doc["schemas"], doc["shared"] if shared else ())
        runs = doc["runs"]
        if not isinstance(runs, dict):
            raise TypeError
        return tables, runs
    except (ValueError, KeyError, TypeError):
        return None


def _write(path: str, core_tables: _Tables, core: dict, config_line: bytes) -> None:
    from hdr.runs.rundir import replacing

    line2 = json.dumps({"schemas": core_tables.schemas, "shared": core_tables.shared, "runs": core},
                       separators=(",", ":")).encode()
    # A temporary file renamed into place; no fsync: a file torn by a crash fails its CRC.
    with replacing(Path(path)) as tmp:
        tmp.write_bytes(frame(_header(), line2, config_line))


def _config_line(tables: _Tables, configs: dict) -> bytes:
    return json.dumps({"schemas": tables.schemas, "runs": configs}, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------ reading runs

def token(folder: str) -> int:
    """What read() gives as the folder's token when nothing changed since: hdr/analysis/comparecache.py."""
    return _digest(_stamps(folder, _ALL))


def read(parent: str, names: list[str], with_config: bool, read_core, read_config, tokens=None) -> list:
    """Per name (a run folder in parent), (core, config) or the exception reading it raised:
    Absent when it holds no run.json, else whatever read_core or read_config raised. With
    with_config and a list as tokens, each folder's token is appended to it (module docstring).

    read_core(folder) -> (info, metrics, figures, params, used_params_file);
    read_config(folder) -> flattened config. Both return JSON-able plain data."""
    path = f"{parent}/{NAME}"
    data = None
    if enabled():
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            data = None
    use = enabled() and (data is not None or len(names) >= MIN_RUNS)
    before = time.time_ns() - MARGIN_NS
    lines = unframe(data, _header()) if data else None
    core_t, core = (_parse(lines[0], shared=True) if lines else None) or (_Tables(), {})
    cfg_raw = lines[1] if lines else None
    cfg_t = cfg = None
    if with_config:
        cfg_t, cfg = (_parse(cfg_raw, shared=False) if cfg_raw else None) or (_Tables(), {})
    new_core, new_cfg, dirty = {}, {}, False
    out = []
    decode, decode_config = core_t.decode, cfg_t.decode_config if with_config else None
    for name in names:
        folder = f"{parent}/{name}"
        st = None
        if with_config:  # all five files in one go, before anything is read
            st = _stamps(folder, _ALL)
            if tokens is not None:
                tokens.append(_digest(st) if _settled(st, before) else None)
        old = core.get(name) if use else None
        # The common case first, inline (a tenth of a second over 10,000 runs): both entries
        # kept, their files unchanged.
        if old is not None:
            old_cfg = cfg.get(name) if with_config else None
            try:
                if (not with_config and _digest(_stamps(folder, _CORE_PARAMS if old[1] else CORE)) == old[0]
                        or with_config and old_cfg is not None and _digest(st[:20] if old[1] else st[:15]) == old[0]
                        and _digest(st[20:]) == old_cfg[0]):
                    out.append(((decode(old[2]), decode(old[3]), tuple(old[4]), old[5]),
                                decode_config(old_cfg[1:]) if with_config else None))
                    new_core[name] = old
                    if with_config:
                        new_cfg[name] = old_cfg
                    continue
            except (IndexError, TypeError, KeyError, ValueError):
                pass  # an entry of another shape: as below, read afresh
        try:
            got, keep = _core(folder, old, core_t, read_core, before, st and st[:20])
        except Exception as e:  # noqa: BLE001  (handed back to the caller, which names it)
            out.append((e, None))
            dirty = dirty or old is not None
            continue
        if keep is not None:
            new_core[name] = keep
        dirty = dirty or keep is not old
        conf = None
        if with_config:
            old = cfg.get(name) if use else None
            try:
                conf, keep = _config(folder, old, cfg_t, read_config, before, st[20:])
            except Exception as e:  # noqa: BLE001
                out.append((e, None))
                dirty = dirty or old is not None
                continue
            if keep is not None:
                new_cfg[name] = keep
            dirty = dirty or keep is not old
        out.append((got, conf))
    if use and dirty:
        _save(path, names, core, core_t, new_core, cfg_raw, cfg, cfg_t, new_cfg, with_config)
    return out


def _core(folder, entry, tables: _Tables, read_core, before, stamps=None):
    """(the run's record, its index entry or None when it is not to be stored). stamps: of
    _CORE_PARAMS, taken before this is called, if they were."""
    # before reading: a change while reading shows next time
    stamps = stamps or _stamps(folder, _CORE_PARAMS)
    if entry is not None:
        try:
            if _digest(stamps if entry[1] else stamps[:5 * len(CORE)]) == entry[0]:
                return (tables.decode(entry[2]), tables.decode(entry[3]), tuple(entry[4]), entry[5]), entry
        except (IndexError, TypeError, KeyError, ValueError):
            pass  # an entry of another shape: read afresh
    if stamps[0] != 0:  # run.json absent, or not a file
        raise Absent()
    info, metrics, figures, params, used = read_core(folder)
    kept = stamps if used else stamps[:5 * len(CORE)]
    fresh = None
    if _settled(kept, before):
        fresh = [_digest(kept), int(used), tables.encode(info), tables.encode(metrics), list(figures), params]
    return (info, metrics, tuple(figures), params), fresh


def _config(folder, entry, tables: _Tables, read_config, before, stamps=None):
    stamps = stamps or _stamps(folder, _CONFIG)
    if entry is not None:
        try:
            if _digest(stamps) == entry[0]:
                return tables.decode_config(entry[1:]), entry
        except (IndexError, TypeError, KeyError, ValueError):
            pass
    flat = read_config(folder)
    fresh = None
    if _settled(stamps, before):
        try:
            json.dumps(list(flat.values()))  # a value JSON cannot hold (a YAML date): not stored
            fresh = [_digest(stamps), *tables.encode_config(flat)]
        except (TypeError, ValueError):
            fresh = None
    return flat, fresh


def _save(path, names, core, core_t, new_core, cfg_raw, cfg, cfg_t, new_cfg, with_config) -> None:
    """Write the index: the entries of this listing, and of folders it did not read that were
    in the old index and still exist (another listing's folders of the same parent)."""
    listed = set(names)
    for name, entry in core.items():
        if name not in listed and name not in new_core and os.path.isdir(f"{os.path.dirname(path)}/{name}"):
            new_core[name] = entry
    if with_config:
        for name, entry in cfg.items():
            if name not in listed and name not in new_cfg and os.path.isdir(f"{os.path.dirname(path)}/{name}"):
                new_cfg[name] = entry
        config_line = _config_line(cfg_t, new_cfg)
    else:
        config_line = cfg_raw if cfg_raw is not None else _config_line(_Tables(), {})
    try:
        _write(path, core_t, new_core, config_line)
    except OSError:
        pass  # a read-only or full folder: listings work without an index
