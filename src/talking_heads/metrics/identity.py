"""Identity metrics: CSIM (ArcFace cosine) and AED (OpenFace squared distance), plus offline
variants on dlib's face-recognition ResNet.

- ``csim``: cosine similarity of ArcFace embeddings of the source portrait and each generated
  frame, through the insightface pipeline (5 keypoints, ``norm_crop`` to 112x112,
  ``(x - 127.5) / 127.5`` RGB, 512-d embedding). The network is arcface_torch's ``IResNet``
  (:class:`IResNet`, same parameter names, so the model zoo's ``backbone.pth`` loads strictly).
- ``aed``: pose-evaluation's AED, the squared L2 distance of OpenFace nn4.small2.v1 embeddings
  of the reference and generated frames (:class:`OpenFaceNet`, thnkim/OpenFacePytorch's
  ``netOpenFace`` with the same parameter names, so ``openface.pth`` loads strictly).
- ``csim_dlib`` / ``aed_dlib``: the same statistics on dlib's 128-D face descriptor
  (``dlib_face_recognition_resnet_model_v1.dat`` shipped in face-recognition-models), which need
  no download. They are not the survey's metrics: their numbers are on another scale.

Face detection, landmarks and cropping run on the CPU on uint8 frames (dlib and OpenCV, the
reference operations themselves); the embedding networks run batched on the metric's device.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from talking_heads.metrics.base import METRICS, Metric
from talking_heads.metrics.faces import FaceFinder, per_frame_cached, to_uint8
from talking_heads.nets.arcface import ARCFACE_MODELS, IResNet, load_arcface
from talking_heads.nets.openface import OpenFaceNet, legacy_cross_map_lrn, load_openface

__all__ = [
    "AED",
    "ARCFACE_SRC",
    "CSIM",
    "AEDDlib",
    "CSIMDlib",
    "DlibDescriptor",
    "IResNet",
    "OpenFaceNet",
    "five_points",
    "legacy_cross_map_lrn",
    "norm_crop",
    "similarity_transform",
]

#: insightface ``face_align.arcface_dst``: the 112x112 template of the 5 keypoints (left eye,
#: right eye, nose tip, left and right mouth corners, in image order)
ARCFACE_SRC = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """68 iBUG points ``(..., 68, 2)`` -> the 5 ArcFace keypoints ``(..., 5, 2)``.

    Deep3DFaceRecon's ``extract_5p`` (also in SadTalker's ``face3d``): eye centres as the mean
    of each eye's two corners (36/39, 42/45), the nose tip (30) and the mouth corners (48, 54).
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    return np.stack(
        [
            lm[..., [36, 39], :].mean(axis=-2),
            lm[..., [42, 45], :].mean(axis=-2),
            lm[..., 30, :],
            lm[..., 48, :],
            lm[..., 54, :],
        ],
        axis=-2,
    )


def similarity_transform(src: np.ndarray, dst: np.ndarray = ARCFACE_SRC) -> np.ndarray:
    """Least-squares similarity transforms ``(k, 2, 3)`` mapping points ``src`` ``(k, n, 2)``
    onto ``dst`` ``(n, 2)``: Umeyama's closed form, batched, as scikit-image's
    ``SimilarityTransform.estimate`` computes it (what insightface's ``estimate_norm`` calls).
    """
    src = np.asarray(src, dtype=np.float64)
    squeeze = src.ndim == 2
    src = src[None] if squeeze else src
    dst = np.asarray(dst, dtype=np.float64)
    n = src.shape[1]
    src_mean = src.mean(axis=1, keepdims=True)
    dst_mean = dst.mean(axis=0)
    src_d = src - src_mean
    dst_d = dst - dst_mean
    a = np.einsum("ni,knj->kij", dst_d, src_d) / n
    d = np.ones((len(src), 2))
    d[np.linalg.det(a) < 0, 1] = -1.0
    u, s, vt = np.linalg.svd(a)
    rot = u @ (d[:, :, None] * vt)
    scale = (s * d).sum(axis=1) / src_d.var(axis=1).sum(axis=1)
    out = np.empty((len(src), 2, 3))
    out[:, :, :2] = scale[:, None, None] * rot
    out[:, :, 2] = dst_mean - np.einsum("kij,kj->ki", out[:, :, :2], src_mean[:, 0])
    return out[0] if squeeze else out


def norm_crop(frame: np.ndarray, points: np.ndarray, size: int = 112) -> np.ndarray:
    """insightface ``face_align.norm_crop``: warp ``frame`` so its 5 ``points`` land on the
    ArcFace template (``cv2.warpAffine``, bilinear, border 0), ``size`` x ``size`` (112)."""
    import cv2

    if size % 112:
        raise ValueError("norm_crop supports multiples of 112 only")
    matrix = similarity_transform(points, ARCFACE_SRC * (size / 112.0))
    return cv2.warpAffine(frame, matrix, (size, size), borderValue=0.0)


# ---------------------------------------------------------------------------------- metrics


class _IdentityMetric(Metric):
    """Embeds frames (``embed``) and compares the embeddings of two frame sets per frame."""

    higher_is_better: ClassVar[bool] = True

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self._source_cache: tuple[Tensor, Tensor] | None = None

    def to(self, device: torch.device | str) -> _IdentityMetric:
        """Move the embedding network (if any) to ``device``."""
        self.device = torch.device(device)
        for value in vars(self).values():
            if isinstance(value, nn.Module):
                value.to(self.device)
        return self

    @abstractmethod
    def embed(self, frames: Tensor) -> Tensor:
        """float64 CPU embeddings ``(N, D)`` of float frames; NaN rows where no face is found.

        Values are returned on the CPU in float64 (the scorer accumulates them there).
        """

    @staticmethod
    def compare(first: Tensor, second: Tensor) -> Tensor:
        """Per-row statistic of two embedding sets ``(N, D)``."""
        raise NotImplementedError

    def _embed_source(self, source: Tensor) -> Tensor:
        """Embeddings of the source frame(s); a single source frame is embedded once."""
        if source.shape[0] != 1:
            return self.embed(source)
        cached = self._source_cache
        if (
            cached is not None
            and cached[0].shape == source.shape
            and torch.equal(cached[0], source.detach().cpu())
        ):
            return cached[1]
        embedding = self.embed(source)
        self._source_cache = (source.detach().cpu().clone(), embedding)
        return embedding

    def _check(self, frames: Tensor, what: str) -> None:
        if frames.ndim != 4 or frames.shape[1] != 3 or not frames.is_floating_point():
            raise ValueError(f"{what}: expected float (N, 3, H, W) frames, got {frames.shape}")


class _CSIMBase(_IdentityMetric):
    """Cosine similarity of the source portrait's and each generated frame's embeddings."""

    inputs: ClassVar[frozenset[str]] = frozenset({"source"})
    needs_reference: ClassVar[bool] = False
    higher_is_better: ClassVar[bool] = True

    @staticmethod
    def compare(first: Tensor, second: Tensor) -> Tensor:
        """``dot(a, b) / (|a| |b|)`` per row (insightface ``compute_sim``)."""
        return (first * second).sum(1) / (first.norm(dim=1) * second.norm(dim=1))

    def __call__(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> Tensor:
        """Per-frame cosine similarity to the source; NaN where either has no face."""
        source = inputs.get("source")
        if source is None:
            raise ValueError(f"{self.name} needs the source portrait (source=...)")
        self._check(generated, "generated")
        self._check(source, "source")
        if source.shape[0] not in (1, generated.shape[0]):
            raise ValueError(
                f"{source.shape[0]} source frames for {generated.shape[0]} generated frames"
            )
        src = self._embed_source(source)
        gen = self.embed(generated)
        return self.compare(src.expand_as(gen), gen)


class _AEDBase(_IdentityMetric):
    """Squared L2 distance of the reference and generated frames' embeddings, per frame."""

    higher_is_better: ClassVar[bool] = False

    @staticmethod
    def compare(first: Tensor, second: Tensor) -> Tensor:
        """``sum((a - b)**2)`` per row (pose-evaluation ``cmp.py``)."""
        return (first - second).square().sum(1)

    def __call__(self, generated: Tensor, reference: Tensor | None, **inputs: Any) -> Tensor:
        """Per-frame squared embedding distance; NaN where either frame has no face."""
        if reference is None:
            raise ValueError(f"{self.name} needs reference frames")
        self.check_pair(generated, reference)
        return self.compare(self.embed(reference), self.embed(generated))


def _nan_rows(count: int, dim: int) -> Tensor:
    return torch.full((count, dim), float("nan"), dtype=torch.float64)


@METRICS.register("csim")
class CSIM(_CSIMBase):
    """CSIM: cosine similarity of ArcFace embeddings of the source and each generated frame.

    The insightface python-package pipeline (``FaceAnalysis`` -> ``face_align.norm_crop`` ->
    ``ArcFaceONNX.get_feat`` -> ``compute_sim``): 5 facial keypoints, a similarity transform
    to the ``arcface_dst`` template, ``cv2.warpAffine`` to 112x112 (bilinear, border 0), RGB
    ``(x - 127.5) / 127.5``, a 512-d embedding, the cosine.

    The network is arcface_torch's iresnet (:class:`IResNet`) loading the insightface model
    zoo's ``backbone.pth``: by default ``ms1mv3_arcface_r100_fp16`` (ResNet-100, ArcFace loss,
    MS1MV3); ``model="arcface_r50"`` (``ms1mv3_arcface_r50_fp16``, the recognition model of
    Deep3DFaceRecon/SadTalker) and ``"arcface_glint360k_r100"`` (``glint360k_cosface_r100_
    fp16_0.1``, the network of insightface's antelopev2 ``glintr100.onnx``) are also
    registered. insightface's default buffalo_l pack ships ``w600k_r50.onnx`` (WebFace600K)
    only as ONNX. Absolute CSIM depends on the model (backbone and training data): compare
    numbers only under the same model, which is recorded in the scores (``reference``).

    Keypoints: insightface takes SCRFD's 5 keypoints. We derive them from dlib's 68
    landmarks (``landmarks="dlib68"``; ``"fan68"`` for face-alignment's) in the best-scoring
    face of ``detector`` (dlib HOG by default): eye centres as the mean of each eye's corners,
    nose tip, mouth corners (Deep3DFaceRecon's ``extract_5p``). Frames (or a source) with no
    face give NaN.
    """

    name: ClassVar[str] = "csim"
    reference: ClassVar[str] = (
        "insightface python-package: face_align.norm_crop(img, kps) (skimage "
        "SimilarityTransform to arcface_dst, cv2.warpAffine 112x112 borderValue 0) -> "
        "ArcFace (x - 127.5) / 127.5 RGB -> 512-d -> compute_sim cosine, per generated frame "
        "vs the source; network arcface_torch iresnet (default ms1mv3_arcface_r100_fp16 "
        "backbone.pth); 5 keypoints from dlib 68 "
        "landmarks (eye-corner means, nose tip 30, mouth corners 48/54) instead of SCRFD"
    )

    def __init__(
        self,
        model: str = "arcface_r100",
        detector: str = "dlib_hog",
        landmarks: str = "dlib68",
        batch_size: int = 64,
        network: IResNet | None = None,
    ) -> None:
        super().__init__()
        if model not in ARCFACE_MODELS:
            raise KeyError(f"unknown ArcFace model {model!r}; known: {sorted(ARCFACE_MODELS)}")
        self.model = model
        self.batch_size = int(batch_size)
        if network is None:
            network = load_arcface(model)
        self.network = network.eval().requires_grad_(False)
        self.faces = FaceFinder(detector, landmarks)

    def crops(self, frames: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Aligned 112x112 uint8 RGB crops of the faces found and a per-frame found mask."""
        images = to_uint8(frames)
        found = np.zeros(len(images), dtype=bool)
        crops = []
        for i, (image, lm) in enumerate(zip(images, self.faces(images), strict=True)):
            if lm is not None:
                found[i] = True
                crops.append(norm_crop(image, five_points(lm)))
        stacked = np.stack(crops) if crops else np.zeros((0, 112, 112, 3), np.uint8)
        return stacked, found

    @torch.no_grad()
    def embed_crops(self, crops: np.ndarray) -> Tensor:
        """512-d float64 embeddings of uint8 RGB 112x112 crops (on the metric's device)."""
        out = []
        for begin in range(0, len(crops), self.batch_size):
            batch = torch.from_numpy(crops[begin : begin + self.batch_size]).to(self.device)
            x = (batch.permute(0, 3, 1, 2).float() - 127.5) / 127.5
            out.append(self.network(x).double().cpu())
        return torch.cat(out) if out else torch.zeros((0, 512), dtype=torch.float64)

    def embed(self, frames: Tensor) -> Tensor:
        """ArcFace embeddings per frame (NaN rows where no face is found)."""
        crops, found = self.crops(frames)
        out = _nan_rows(len(found), 512)
        out[torch.from_numpy(found)] = self.embed_crops(crops)
        return out


class DlibDescriptor:
    """dlib's face descriptor of the best-scoring HOG face, as face_recognition computes it
    (``face_encodings(image)``: HOG detection with 1 upsampling, the 5-point shape,
    ``compute_face_descriptor(image, shape, num_jitters=1)``)."""

    def __init__(self) -> None:
        import dlib

        from talking_heads.preprocess.detect import _face_models, make_detector

        models = _face_models()
        self.detector = make_detector("dlib_hog", upsample=1)
        self.shape5 = dlib.shape_predictor(models.pose_predictor_five_point_model_location())
        self.encoder = dlib.face_recognition_model_v1(models.face_recognition_model_location())
        self._dlib = dlib

    def __call__(self, frames: np.ndarray) -> Tensor:
        """128-D descriptors ``(N, 128)``, NaN rows where no face (shared per-frame cache)."""
        rows = per_frame_cached("dlib_descriptor", frames, self._describe)
        return torch.stack(rows) if rows else _nan_rows(0, 128)

    def _describe(self, frames: np.ndarray) -> list[Tensor]:
        out = []
        for frame, boxes in zip(frames, self.detector(frames), strict=True):
            row = _nan_rows(1, 128)[0]
            if len(boxes):
                x1, y1, x2, y2 = (int(v) for v in boxes[0, :4])
                shape = self.shape5(frame, self._dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
                descriptor = self.encoder.compute_face_descriptor(frame, shape, 1)
                row = torch.tensor(list(descriptor), dtype=torch.float64)
            out.append(row)
        return out


class _DlibEmbedding:
    """Identity embedding by :class:`DlibDescriptor` (the offline variants)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[call-arg]
        self.descriptor = DlibDescriptor()

    def embed(self, frames: Tensor) -> Tensor:
        """dlib descriptors per frame (NaN rows where no face is found)."""
        return self.descriptor(to_uint8(frames))


@METRICS.register("csim_dlib")
class CSIMDlib(_DlibEmbedding, _CSIMBase):
    """Offline identity similarity: cosine of dlib's 128-D face descriptors (face-recognition
    -models' ``dlib_face_recognition_resnet_model_v1.dat``) of the source and each generated
    frame. Not the survey's CSIM (a different network and embedding space; dlib descriptors
    of one person typically lie within 0.6 Euclidean distance, so cosines run high): use it
    to compare methods within one report when the ArcFace weights are absent.
    """

    name: ClassVar[str] = "csim_dlib"
    reference: ClassVar[str] = (
        "NOT the survey CSIM: cosine of dlib face_recognition_model_v1 128-D descriptors "
        "(face_recognition.face_encodings: HOG detector upsample 1, 5-point shape predictor, "
        "num_jitters 1) of the source vs each generated frame"
    )


@METRICS.register("aed")
class AED(_AEDBase):
    """AED as pose-evaluation computes it (``extract.py extract_face_id`` + ``cmp.py``).

    Each whole frame (no face crop; the protocol's frames are 256x256 face videos) is turned
    to BGR, resized to 96x96 with ``skimage.transform.resize`` defaults (bilinear,
    anti-aliased, float in [0, 1]) and embedded by OpenFace nn4.small2.v1 (thnkim/
    OpenFacePytorch ``openface.pth``, :class:`OpenFaceNet`, including that port's LRN
    off-by-one); per frame ``sum((e_gt - e_gen)**2)`` (the *squared* L2 distance of the
    unit-norm 128-d embeddings), averaged over frames by the scorer.
    """

    name: ClassVar[str] = "aed"
    reference: ClassVar[str] = (
        "AliaksandrSiarohin/pose-evaluation extract.py extract_face_id (frame[..., ::-1], "
        "skimage.transform.resize(frame, (96, 96)), OpenFacePytorch netOpenFace openface.pth, "
        "first output) + cmp.py np.sum(|e_gt - e_gen|**2) per frame, mean over frames"
    )

    def __init__(self, batch_size: int = 64, network: OpenFaceNet | None = None) -> None:
        super().__init__()
        self.batch_size = int(batch_size)
        if network is None:
            network = load_openface()
        self.network = network.eval().requires_grad_(False)

    @staticmethod
    def preprocess(frames: Tensor) -> Tensor:
        """pose-evaluation's input: BGR, ``skimage.transform.resize(frame, (96, 96))``,
        float32 ``(N, 3, 96, 96)``."""
        from skimage.transform import resize

        images = to_uint8(frames)[..., ::-1]
        resized = np.stack([resize(image, (96, 96)) for image in images])
        return torch.from_numpy(resized.transpose(0, 3, 1, 2).astype(np.float32))

    @torch.no_grad()
    def embed(self, frames: Tensor) -> Tensor:
        """OpenFace embeddings ``(N, 128)`` of whole frames."""
        x = self.preprocess(frames)
        out = [
            self.network(x[b : b + self.batch_size].to(self.device)).double().cpu()
            for b in range(0, len(x), self.batch_size)
        ]
        return torch.cat(out)


@METRICS.register("aed_dlib")
class AEDDlib(_DlibEmbedding, _AEDBase):
    """Offline identity distance: squared L2 distance of dlib's 128-D face descriptors of the
    reference and generated frames (face detected with dlib HOG; NaN where either has none).
    Not the survey's AED (another network and embedding scale; OpenFace embeddings are unit
    norm, dlib's are not normalised).
    """

    name: ClassVar[str] = "aed_dlib"
    reference: ClassVar[str] = (
        "NOT the survey AED: sum((d_gt - d_gen)**2) of dlib face_recognition_model_v1 128-D "
        "descriptors (face_recognition.face_encodings, HOG detector, 5-point shape) per frame"
    )
