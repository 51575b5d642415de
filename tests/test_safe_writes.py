"""Writes that cannot half-happen or collide: checkpoints saved atomically and loaded without
running code, adapter versions taken atomically on local storage and S3 (conditional writes),
fetch checking what the campaign recorded, failed storage writes that leave no temporaries, and the
web app's picture folder kept pruned."""

import json
import os
import resource
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.test_backends import s3, s3_server  # noqa: F401, F811 (the moto server fixtures)

# ----- checkpoints -----


def test_a_partial_checkpoint_is_ignored_and_cleared(tmp_path):
    from finetune.checkpoints import latest, refuse_unfinished, save

    run = tmp_path / "run"
    crashed = run / "checkpoints" / "step-4.partial"
    crashed.mkdir(parents=True)
    (crashed / "state.pt").write_bytes(b"half a file")
    assert latest(run) is None
    refuse_unfinished(run, resume=False)  # nothing whole to resume: a fresh run may start
    assert not crashed.exists()
    save(run / "checkpoints" / "step-2", {"step": 2})
    assert latest(run).name == "step-2" and [p.name for p in (run / "checkpoints").iterdir()] == ["step-2"]


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_checkpoints_load_without_running_code_and_keep_pictures(tmp_path, monkeypatch):
    from finetune.checkpoints import resume_state, save
    from finetune.config import TextConfig
    from finetune.data import DataError

    config = TextConfig(steps=8)
    shot = Image.new("RGB", (8, 4), (200, 30, 40))
    save(tmp_path / "good" / "checkpoints" / "step-4", {
        "config": __import__("dataclasses").asdict(config), "data": "abc", "step": 4, "adapter": {"w": torch.ones(2)},
        "shots": [("step 4", [shot])]})
    state = resume_state(tmp_path / "good", True, config, "abc")
    assert state["step"] == 4 and torch.equal(state["adapter"]["w"], torch.ones(2))
    assert state["shots"][0][1][0].tobytes() == shot.tobytes()

    evil = tmp_path / "evil" / "checkpoints" / "step-4"
    evil.mkdir(parents=True)
    torch.save({"config": {}, "data": "abc", "x": _Payload()}, evil / "state.pt")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="is not a readable adgen checkpoint"):
        resume_state(tmp_path / "evil", True, config, "abc")
    assert not (tmp_path / "pwned").exists()


# ----- the adapter registry -----


def _adapter(folder: Path, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "tag": tag}))
    (folder / "adapter_model.safetensors").write_bytes(tag.encode() * 64)
    return folder


def _push_at_once(storage, folders) -> list[int]:
    from adgen.adapters import push

    barrier, got = threading.Barrier(len(folders)), []

    def one(folder):
        barrier.wait()
        got.append(push(storage, folder, brand="northwind", kind="text", base={"ref": "default", "hash": "h"}).version)

    threads = [threading.Thread(target=one, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(got)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_pushes_at_once_each_get_their_own_version(backend, tmp_path, request):
    from adgen.adapters import versions
    from adgen.settings import Settings
    from adgen.storage import open_storage

    if backend == "s3":
        request.getfixturevalue("s3")
    storage = open_storage(Settings())
    folders = [_adapter(tmp_path / f"a{i}", f"tag{i}") for i in range(6)]
    assert _push_at_once(storage, folders) == [1, 2, 3, 4, 5, 6]
    listed, latest = versions(storage, "northwind", "text")
    assert [v.version for v in listed] == [1, 2, 3, 4, 5, 6] and latest in range(1, 7)
    assert len({v.hash for v in listed}) == 6  # six different adapters, none overwritten


def test_conditional_write_on_s3(s3):  # noqa: F811
    from adgen.settings import Settings
    from adgen.storage import open_storage

    storage = open_storage(Settings())
    assert storage.put_new("k/claim", b"first") and not storage.put_new("k/claim", b"second")
    assert storage.get("k/claim") == b"first"


def test_fetch_checks_the_recorded_hash_and_file_names(tmp_path):
    from adgen.adapters import META, AdapterError, fetch, push
    from adgen.settings import Settings
    from adgen.storage import open_storage

    storage = open_storage(Settings())
    version = push(storage, _adapter(tmp_path / "a", "one"), brand="northwind", kind="text",
                   base={"ref": "default", "hash": "h"})
    lineage = version.lineage()
    # the version is replaced in storage, files and digests consistently: not what the campaign used
    other = push(storage, _adapter(tmp_path / "b", "two"), brand="northwind", kind="text", base={"ref": "default", "hash": "h"})
    for name in other.files:
        storage.put(f"{version.prefix}/{name}", storage.get(f"{other.prefix}/{name}"))
    storage.put(f"{version.prefix}/{META}", storage.get(f"{other.prefix}/{META}"))
    with pytest.raises(AdapterError, match=r"northwind/text@v1: the files in storage are not the ones the campaign recorded"):
        fetch(storage, lineage, tmp_path / "cache")

    meta = json.loads(storage.get(f"{other.prefix}/{META}"))
    meta["files"]["../../escaped.txt"] = meta["files"]["adapter_config.json"]
    storage.put(f"{other.prefix}/{META}", json.dumps(meta).encode())
    with pytest.raises(AdapterError, match="its metadata names '../../escaped.txt', not a file an adapter has"):
        fetch(storage, other.lineage(), tmp_path / "cache")
    assert not list(tmp_path.rglob("escaped.txt"))


# ----- storage temporaries and the picture folder -----


def test_a_failed_write_leaves_no_temporary_file(tmp_path):
    from adgen.storage import LocalStorage

    storage = LocalStorage(tmp_path / "store")
    storage.put("campaigns/c/ok.png", b"x" * 10)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # a full disk, for this process
    try:
        with pytest.raises(OSError):
            storage.put("campaigns/c/big.png", b"x" * 100_000)
        with pytest.raises(OSError):
            storage.put_new("campaigns/c/new.png", b"x" * 100_000)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert sorted(p.name for p in (tmp_path / "store" / "campaigns" / "c").iterdir()) == ["ok.png"]


def test_the_picture_folder_keeps_one_version_per_creative_and_is_pruned(tmp_path):
    from adgen import records
    from adgen.context import Context
    from adgen.settings import Settings
    from ui.actions import _picture, prune_pictures

    ctx, folder = Context(Settings()), tmp_path / "pictures"
    folder.mkdir()
    copy = {"headline": ["Cold brew, your way"], "description": ["Smooth and low in acid."]}
    first = records.Creative(id="c1-000-0", copy=copy, image_key=None, updated_at=datetime(2026, 1, 1, tzinfo=UTC))
    _picture(ctx, first, folder)
    edited = records.Creative(id="c1-000-0", copy=copy, image_key=None, updated_at=datetime(2026, 1, 2, tzinfo=UTC))
    now = _picture(ctx, edited, folder)
    assert [p.name for p in folder.iterdir()] == [Path(now).name]

    stale = folder / "c2-000-0-20250101.png"
    stale.write_bytes(b"old")
    hour_ago = time.time() - 3700
    os.utime(stale, (hour_ago, hour_ago))
    assert prune_pictures(folder) == 1 and not stale.exists() and Path(now).exists()
    stale.write_bytes(b"old")
    os.utime(stale, (hour_ago, hour_ago))
    assert prune_pictures(folder) == 0  # ran a moment ago: not again for ten minutes
