"""facerec: face verification and recognition.

The public Python API is the names in `__all__`, imported from here:

    from facerec import FaceRec

    with FaceRec("gallery.db") as fr:
        fr.enroll("ada", ["ada1.jpg", "ada2.jpg"])
        print(fr.verify("ada", "door.jpg").accepted)

They are loaded on first use (PEP 562), so `import facerec` costs no model,
no torch and no database driver; the modules they live in are the
implementation and may move.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from facerec.gallery.erasers import Erasers, compose
from facerec.util.lazy import lazy_exports

if TYPE_CHECKING:
    from facerec.album.api import Album, AlbumSettings
    from facerec.album.errors import AlbumError
    from facerec.album.records import (
        AlbumView,
        NameResult,
        NotResult,
        RefreshResult,
        ScanSummary,
        UnfoldResult,
    )
    from facerec.api import FaceRec, Forgotten, IdentifiedFace, ImageIdentification, Info
    from facerec.config import Settings
    from facerec.decisions.decision import (
        Candidate,
        Claim,
        DecisionThreshold,
        Identification,
        ThresholdSource,
        Verification,
    )
    from facerec.decisions.enrolment import (
        AlreadyEnrolledError,
        EnrolmentError,
        LooksLikeOtherError,
        PhotoMismatchError,
    )
    from facerec.detectors import DetectedFace, DetectorConfig, DetectorKind
    from facerec.errors import (
        FacerecError,
        GalleryError,
        ImageError,
        InvalidNameError,
        ModelError,
        ModelMismatchError,
        MultipleFacesError,
        NoFaceError,
        UnknownPersonError,
        WeightsNotFoundError,
    )
    from facerec.faces.images import LoadedImage, load_image
    from facerec.faces.quality import QualityLimits
    from facerec.gallery import EnrollResult, GalleryInfo, Hit, Person
    from facerec.gallery.erasers import AlbumForgotten, AuditForgotten

#: Public name -> the module that defines it.
_EXPORTS = {
    # the two entry points and their settings
    "FaceRec": "facerec.api",
    "Settings": "facerec.config",
    "Album": "facerec.album.api",
    "AlbumSettings": "facerec.album.api",
    "DetectorConfig": "facerec.detectors",
    "DetectorKind": "facerec.detectors",
    "QualityLimits": "facerec.faces.quality",
    "load_image": "facerec.faces.images",
    "LoadedImage": "facerec.faces.images",
    # what the verbs return
    "Verification": "facerec.decisions.decision",
    "Identification": "facerec.decisions.decision",
    "Candidate": "facerec.decisions.decision",
    "Claim": "facerec.decisions.decision",
    "DecisionThreshold": "facerec.decisions.decision",
    "ThresholdSource": "facerec.decisions.decision",
    "DetectedFace": "facerec.detectors",
    "IdentifiedFace": "facerec.api",
    "ImageIdentification": "facerec.api",
    "Forgotten": "facerec.api",
    "AlbumForgotten": "facerec.gallery.erasers",
    "AuditForgotten": "facerec.gallery.erasers",
    "Info": "facerec.api",
    "EnrollResult": "facerec.gallery",
    "GalleryInfo": "facerec.gallery",
    "Hit": "facerec.gallery",
    "Person": "facerec.gallery",
    "ScanSummary": "facerec.album.records",
    "RefreshResult": "facerec.album.records",
    "NameResult": "facerec.album.records",
    "NotResult": "facerec.album.records",
    "UnfoldResult": "facerec.album.records",
    "AlbumView": "facerec.album.records",
    # what they raise: FacerecError is the root of every anticipated failure
    "FacerecError": "facerec.errors",
    "ImageError": "facerec.errors",
    "NoFaceError": "facerec.errors",
    "MultipleFacesError": "facerec.errors",
    "ModelError": "facerec.errors",
    "WeightsNotFoundError": "facerec.errors",
    "ModelMismatchError": "facerec.errors",
    "UnknownPersonError": "facerec.errors",
    "GalleryError": "facerec.errors",
    "InvalidNameError": "facerec.errors",
    "EnrolmentError": "facerec.decisions.enrolment",
    "PhotoMismatchError": "facerec.decisions.enrolment",
    "LooksLikeOtherError": "facerec.decisions.enrolment",
    "AlreadyEnrolledError": "facerec.decisions.enrolment",
    "AlbumError": "facerec.album.errors",
}

__all__ = [
    "Album",
    "AlbumError",
    "AlbumForgotten",
    "AlbumSettings",
    "AlbumView",
    "AlreadyEnrolledError",
    "AuditForgotten",
    "Candidate",
    "Claim",
    "DecisionThreshold",
    "DetectedFace",
    "DetectorConfig",
    "DetectorKind",
    "EnrollResult",
    "EnrolmentError",
    "FaceRec",
    "FacerecError",
    "Forgotten",
    "GalleryError",
    "GalleryInfo",
    "Hit",
    "Identification",
    "IdentifiedFace",
    "ImageError",
    "ImageIdentification",
    "Info",
    "InvalidNameError",
    "LoadedImage",
    "LooksLikeOtherError",
    "ModelError",
    "ModelMismatchError",
    "MultipleFacesError",
    "NameResult",
    "NoFaceError",
    "NotResult",
    "Person",
    "PhotoMismatchError",
    "QualityLimits",
    "RefreshResult",
    "ScanSummary",
    "Settings",
    "ThresholdSource",
    "UnfoldResult",
    "UnknownPersonError",
    "Verification",
    "WeightsNotFoundError",
    "load_image",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, __all__)


def _erasers() -> Erasers:
    """The album's and the door camera's erasers, for `FaceRec.remove` (`facerec.gallery.erasers`).

    Composed here, above the apps, because this module runs before any other
    facerec module is imported: whatever a program imports, forgetting a
    person reaches every store that holds their face.
    """
    from facerec.album.store import AlbumStore
    from facerec.camera.audit import AuditLog

    return Erasers(
        album=AlbumStore.forget,
        audit_images=lambda database, name: AuditLog(database).images_about_others(name),
        audit=AuditLog.forget,
    )


compose(_erasers)
