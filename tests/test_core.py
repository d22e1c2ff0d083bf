"""Registry, atomic writes, manifests, weights resolution and the CLI parser."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
import torch

from talking_heads import weights
from talking_heads.cli import build_parser
from talking_heads.manifest import merge_shard_manifests, read_manifest, write_manifest
from talking_heads.registry import Registry
from talking_heads.utils.atomic import atomic_path, atomic_write_json


def test_registry_lookup_and_error_lists_known_names() -> None:
    registry: Registry[int] = Registry("metric")
    registry.add("psnr", 1)

    @registry.register("ssim")
    def ssim() -> int:
        return 2

    assert registry.get("psnr") == 1 and registry.get("ssim")() == 2
    assert registry.names() == ["psnr", "ssim"] and "ssim" in registry
    with pytest.raises(KeyError, match="unknown metric 'fid'; known metrics: psnr, ssim"):
        registry.get("fid")
    with pytest.raises(ValueError, match="already registered"):
        registry.add("psnr", 3)


def test_atomic_path_leaves_target_untouched_on_error(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("interrupted")
    assert target.read_text().strip() == '{\n  "a": 1\n}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_path_replaces_directories(tmp_path: Path) -> None:
    target = tmp_path / "shard"
    for content in ("first", "second"):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "file.txt").write_text(content)
    assert (target / "file.txt").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard"]


def test_manifest_merge_counts_reasons(tmp_path: Path) -> None:
    for shard, rows in {
        "shard-000": [("a", "ok", ""), ("b", "skipped", "no face detected")],
        "shard-001": [("c", "skipped", "no face detected"), ("d", "failed", "cannot decode")],
    }.items():
        df = pd.DataFrame(rows, columns=["clip_id", "status", "reason"])
        write_manifest(df, tmp_path / shard / "manifest.parquet")
    summary = merge_shard_manifests(
        [tmp_path / "shard-000", tmp_path / "shard-001"], tmp_path / "manifest.parquet"
    )
    assert summary["by_status"] == {"ok": 1, "skipped": 2, "failed": 1}
    assert summary["by_reason"] == {"no face detected": 2, "cannot decode": 1}
    merged = read_manifest(tmp_path / "manifest.parquet")
    assert list(merged["shard"]) == ["shard-000"] * 2 + ["shard-001"] * 2
    with pytest.raises(ValueError, match="unknown manifest status"):
        write_manifest(pd.DataFrame({"clip_id": ["x"], "status": ["done"]}), tmp_path / "x.pq")


def test_missing_weights_error_names_file_url_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(weights.WEIGHTS_ENV, str(tmp_path))
    with pytest.raises(weights.MissingWeightsError) as error:
        weights.resolve("vgg19")
    message = str(error.value)
    assert "vgg19-dcbb9e9d.pth" in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message
    assert str(tmp_path) in message


def test_weights_checksum_checked_before_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.pth"
    torch.save({"w": torch.arange(3.0)}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert torch.equal(weights.load_state_dict(path, sha256=digest)["w"], torch.arange(3.0))
    assert weights.load_state_dict(path, sha256=digest[:8])["w"].shape == (3,)
    monkeypatch.delenv(weights.ALLOW_UNVERIFIED_ENV, raising=False)
    with pytest.raises(weights.ChecksumMismatchError, match="does not match"):
        weights.load_state_dict(path, sha256="0" * 64)
    monkeypatch.setenv(weights.ALLOW_UNVERIFIED_ENV, "1")
    with pytest.warns(UserWarning, match="UNVERIFIED WEIGHTS"):
        weights.load_state_dict(path, sha256="0" * 64)


def test_weights_load_refuses_pickled_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"obj": Path("x")}, path)
    with pytest.raises(Exception, match="Weights only load failed"):
        weights.load_state_dict(path)


def test_cli_animate_options() -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "animate",
            "--method",
            "fomm",
            "--checkpoint",
            "c.ckpt",
            "--source",
            "s.png",
            "--driving",
            "d.mp4",
            "--out",
            "o.mp4",
            "--absolute",
            "--batch-size",
            "8",
            "--device",
            "cpu",
        ]
    )
    assert (args.relative, args.batch_size, args.device, args.adapt_scale) == (
        False,
        8,
        "cpu",
        True,
    )
    args = parser.parse_args(
        [
            "preprocess",
            "--manifest",
            "m",
            "--recipe",
            "fomm",
            "--out",
            "o",
            "--param",
            "resolution=64",
            "--param",
            "detector=dlib_hog",
        ]
    )
    assert dict(args.param) == {"resolution": 64, "detector": "dlib_hog"}


def test_cli_reports_unknown_names_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from talking_heads.cli import main

    assert main(["datasets", "prepare", "voxcelebX"]) == 2
    assert capsys.readouterr().err.strip() == (
        "talking-heads datasets: error: unknown dataset 'voxcelebX'; known datasets: "
        "cremad, demo, folder, hdtf, lrs2, lrs3, lrw, mead, voxceleb1, voxceleb2"
    )
    assert main(["datasets", "prepare", "voxceleb1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "talking-heads datasets: error: voxceleb1 is downloaded, not built: use "
        "`talking-heads datasets download voxceleb1`"
    )
