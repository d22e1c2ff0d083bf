"""Shared fixtures: the project root and a scratch copy of the project for workflow runs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _offline_environment() -> None:
    """No test talks to wandb's servers or DVC's analytics."""
    os.environ.setdefault("WANDB_MODE", "offline")
    os.environ["DVC_NO_ANALYTICS"] = "1"
    os.environ.pop("WANDB_API_KEY", None)


def project_files(root: Path = PROJECT_ROOT) -> list[str]:
    """Files a fresh clone would hold (tracked plus untracked-but-not-ignored)."""
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [f for f in out.split("\0") if f and (root / f).is_file()]


def copy_project(dest: Path) -> Path:
    """Copy the project as a fresh clone would see it, and make it a git repository."""
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / rel, target)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "snapshot")
    return dest


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` with a fixed identity."""
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.org",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.org",
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus, built once per session (a second build there is a checked no-op)."""
    from talking_heads.datasets.demo import build_demo_corpus

    return build_demo_corpus(tmp_path_factory.getbasetemp() / "demo-corpus")


@pytest.fixture(scope="session")
def media_kit(demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory):
    """Small real media (carphone talking face with eSpeak speech, speech wav) for fixtures."""
    from dataset_media import MediaKit

    return MediaKit.build(demo_manifest.parent, tmp_path_factory.mktemp("media-kit"))


@pytest.fixture
def fixture_server(tmp_path: Path):
    """A loopback HTTP server over ``tmp_path / 'www'`` (ranges, auth, faults, request log)."""
    from fixture_server import FixtureServer

    root = tmp_path / "www"
    root.mkdir()
    server = FixtureServer(root).start()
    yield server
    server.stop()
