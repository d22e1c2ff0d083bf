"""Checked decoding: container checks, ffmpeg's fps-filter resampling, fallbacks and reasons."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from talking_heads.preprocess import decode
from talking_heads.preprocess.decode import (
    UndecodableVideoError,
    constant_rate_cfr_indices,
    fps_filter_indices,
    open_video,
    probe_container,
)
from talking_heads.utils.media import ffmpeg_exe


@pytest.fixture(scope="module")
def corpus(demo_manifest: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from preprocess_corpus import build_corpus

    return build_corpus(demo_manifest.parent, tmp_path_factory.mktemp("corpus")).parent


def ffmpeg_frames(path: Path, *args: str) -> np.ndarray:
    """All frames ffmpeg decodes from ``path`` with output options ``args``, as RGB."""
    with open_video(path, check=False) as video:
        width, height = video.width, video.height
    raw = subprocess.run(
        [
            ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-i",
            str(path),
            *args,
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-",
        ],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)


def test_constant_rate_clip_reads_every_frame_like_ffmpeg(corpus: Path) -> None:
    with open_video(corpus / "good.mp4") as video:
        assert (video.backend, video.num_frames, video.width, video.height) == (
            "decord",
            120,
            176,
            144,
        )
        assert video.fps == pytest.approx(30000 / 1001) and video.notes == []
        frames = video.read(range(video.num_frames))
    np.testing.assert_array_equal(
        frames, ffmpeg_frames(corpus / "good.mp4", "-fps_mode", "passthrough")
    )


@pytest.mark.parametrize("fps", [25, 10])
def test_resampling_equals_ffmpegs_fps_filter_frame_for_frame(corpus: Path, fps: int) -> None:
    with open_video(corpus / "good.mp4", target_fps=fps) as video:
        assert video.notes == [f"resampled 29.970 -> {fps} fps"] and video.fps == fps
        frames = video.read(np.arange(video.num_frames))
    expected = ffmpeg_frames(corpus / "good.mp4", "-vf", f"fps={fps}")
    assert len(expected) == round(120 * 1001 / 30000 * fps)
    np.testing.assert_array_equal(frames, expected)


def test_variable_rate_clip_is_detected_and_resampled_like_ffmpeg(corpus: Path) -> None:
    info = probe_container(corpus / "vfr.mp4")
    assert info.num_frames == 60 and info.is_variable_rate()  # 20 frames at 10 fps + 40 at 20
    for target in (None, 25):
        with open_video(corpus / "vfr.mp4", target_fps=target) as video:
            rate = target or 20  # the median interval's rate when no target is given
            assert video.notes[0] == "variable frame rate (frame intervals 50-100 ms)"
            assert video.fps == rate and video.num_frames == 4 * rate
            frames = video.read(range(video.num_frames))
        np.testing.assert_array_equal(
            frames, ffmpeg_frames(corpus / "vfr.mp4", "-vf", f"fps={rate}")
        )


def test_fps_filter_rounds_exact_halves_up_in_integer_time() -> None:
    # 0.7 s * 25 = 17.5 exactly in the 1/10240 timebase (a float product gives 17.4999...)
    pts = np.array([0, 6144, 7168], dtype=np.int64)  # 0.0 s, 0.6 s, 0.7 s
    indices = fps_filter_indices(pts, 8192, Fraction(1, 10240), 25)
    assert indices.tolist() == [0] * 15 + [1, 1, 1, 2, 2]


@pytest.mark.parametrize(
    ("rate", "count"),
    [("30000/1001", 250), ("30", 60), ("50", 40), ("24", 30), ("15", 20), ("12.5", 20)],
)
def test_cfr_indices_equal_ffmpeg_r_25(rate: str, count: int, tmp_path: Path) -> None:
    """``ffmpeg -i IN -r 25 OUT`` (syncnet_python's conversion) keeps and repeats exactly the
    frames :func:`constant_rate_cfr_indices` names, drift tolerance and end flush included."""
    frames = np.zeros((count, 16, 32, 3), np.uint8)
    for index in range(count):  # the index in two flat halves, robust to codec rounding
        frames[index, :, :16] = (index // 16) * 16 + 8
        frames[index, :, 16:] = (index % 16) * 16 + 8
    source = tmp_path / "in.mp4"
    subprocess.run(
        [
            *(ffmpeg_exe(), "-nostdin", "-loglevel", "error"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x16", "-r", rate, "-i", "-"),
            *("-c:v", "libx264rgb", "-qp", "0", str(source)),
        ],
        input=frames.tobytes(),
        check=True,
    )
    converted = ffmpeg_frames(source, "-qscale:v", "2", "-async", "1", "-r", "25")
    halves = converted[:, 8, [8, 24], 1].astype(int) // 16
    shown = (halves[:, 0] * 16 + halves[:, 1]).tolist()
    expected = constant_rate_cfr_indices(count, float(Fraction(rate)), 25).tolist()
    assert shown == expected
    if Fraction(rate) > 25:
        assert len(set(shown)) < count  # frames were dropped
    else:
        assert len(shown) > count  # frames were repeated


def test_ffmpeg_path_gives_the_same_frames_when_decord_cannot_open(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_video(corpus / "good.mp4", target_fps=25) as video:
        reference = video.read(range(video.num_frames))
    real_reader = decode._decord_reader

    def refuse_originals(path: Path):
        if "talking-heads-decode-" not in str(path):
            raise RuntimeError("cannot open")
        return real_reader(path)

    monkeypatch.setattr(decode, "_decord_reader", refuse_originals)
    with open_video(corpus / "good.mp4", target_fps=25) as video:
        tmpdir = video._tmpdir
        assert video.backend == "ffmpeg" and tmpdir is not None and tmpdir.exists()
        assert video.notes[0] == "decoded with ffmpeg: decord cannot open it (cannot open)"
        np.testing.assert_array_equal(video.read(range(video.num_frames)), reference)
    assert not tmpdir.exists()


def test_decord_disagreeing_with_the_container_sends_the_clip_to_ffmpeg(
    corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_probe = decode.probe_container

    def one_packet_more(path: Path) -> decode.ContainerInfo:
        info = real_probe(path)
        pts = np.append(info.pts, info.pts[-1] + info.frame_pts)
        return decode.ContainerInfo(pts, info.timebase, info.frame_pts, info.duration_s, info.fps)

    monkeypatch.setattr(decode, "probe_container", one_packet_more)
    with open_video(corpus / "good.mp4") as video:
        assert video.backend == "ffmpeg"
        assert video.notes == ["decoded with ffmpeg: decord counts 120 frames, the container 121"]
        assert video.num_frames == 120


def test_truncated_file_keeps_the_decodable_frames_and_says_so(corpus: Path) -> None:
    with open_video(corpus / "truncated_tail.mp4") as video:
        assert video.backend == "ffmpeg"
        assert 30 < video.num_frames < 100
        assert any(
            note.startswith("truncated: decoded ")
            and "of the 4.00 s the container declares" in note
            for note in video.notes
        ), video.notes
        head = video.read(range(20))
    with open_video(corpus / "good.mp4") as good:
        np.testing.assert_array_equal(head, good.read(range(20)))


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("zero_byte.mp4", "empty file (0 bytes)"),
        ("truncated_index.mp4", "cannot decode: moov atom not found"),
        ("missing.mp4", "missing file: missing.mp4"),
    ],
)
def test_unusable_files_raise_the_manifest_reason(corpus: Path, item: str, reason: str) -> None:
    with pytest.raises(UndecodableVideoError) as raised:
        open_video(corpus / item)
    assert str(raised.value) == reason


def test_audio_only_file_has_no_video_stream(tmp_path: Path) -> None:
    wav = tmp_path / "tone.wav"
    subprocess.run(
        [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=d=1", str(wav)],
        check=True,
    )
    with pytest.raises(UndecodableVideoError, match=r"^no video stream$"):
        open_video(wav)


def test_reads_outside_the_timeline_are_refused(corpus: Path) -> None:
    with open_video(corpus / "good.mp4", target_fps=25) as video:
        assert video.read([]).shape == (0, 144, 176, 3)
        with pytest.raises(IndexError, match=r"outside 0\.\.99"):
            video.read([100])


@pytest.mark.parametrize(
    ("item", "fps", "keep"),
    [
        ("good.mp4", None, False),
        ("good.mp4", 25, False),
        ("vfr.mp4", None, False),
        ("good.mp4", None, True),
        ("vfr.mp4", 20, True),
    ],
)
def test_streamed_frames_and_regions_equal_random_access_reads(
    corpus: Path, item: str, fps: int | None, keep: bool
) -> None:
    with open_video(corpus / item, target_fps=fps) as video:
        count = video.num_frames
        every = video.read(range(count))
        stride = [*range(0, count - 1, 5), count - 1]
        if keep:  # a detection-style pass keeps the decoded timeline; later streams read it
            sampled = np.concatenate([f for f, _ in video.stream(stride, keep_decoded=True)])
            np.testing.assert_array_equal(sampled, every[stride])
            assert video._cache is not None and video._cache.stat().st_size > every.nbytes / 3
        for indices in (list(range(count)), list(range(3, count - 2)), stride, [0, 2, 7]):
            for region in (None, (31, 17, 131, 120)):
                got = np.concatenate([frames for frames, _ in video.stream(indices, region=region)])
                expected = every[indices]
                if region is not None:
                    expected = expected[:, region[1] : region[3], region[0] : region[2]]
                np.testing.assert_array_equal(got, expected)
        batches = list(video.stream(stride, max_side=88, batch=4))
    assert [len(frames) for frames, _ in batches][:2] == [4, 4]
    assert {frames.shape[1:] for frames, _ in batches} == {(72, 88, 3)}
    assert {scale for _, scale in batches} == {0.5}
    if keep:
        assert video._cache is None  # closing removed the decoded frames


def test_decoded_frames_are_kept_only_within_the_budget_and_after_a_full_pass(
    corpus: Path,
) -> None:
    with open_video(corpus / "good.mp4") as video:
        count = video.num_frames
        head = list(range(10))
        list(video.stream(head, keep_decoded=True))  # does not reach the last frame
        assert video._cache is None
        video.cache_bytes = video.width * video.height * 3 * count - 1
        list(video.stream([0, count - 1], keep_decoded=True))
        assert video._cache is None
        video.cache_bytes = video.width * video.height * 3 * count
        stream = video.stream(range(count), batch=4, keep_decoded=True)
        next(stream)
        stream.close()  # an abandoned pass leaves nothing behind
        assert video._cache is None and not list(video._scratch().iterdir())
        list(video.stream([0, count - 1], keep_decoded=True))
        assert video._cache is not None and video._cache.exists()
