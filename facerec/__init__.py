"""facerec: face verification and recognition."""

from facerec.gallery.erasers import Erasers, compose


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
