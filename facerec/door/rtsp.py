"""Why a camera stream did not open, in words: OpenCV only says that it did not.

When OpenCV (FFmpeg) cannot open an `rtsp://` source, the door asks the
camera itself with one RTSP DESCRIBE, the request FFmpeg failed on, and reads
the status line: 401 means the user name or password is wrong, 404 a wrong
path, a refused connection a camera that is off. The credentials go only into
the request's Authorization header; nothing returned here contains them.
"""

from __future__ import annotations

import base64
import socket
import urllib.parse

#: Bytes of the camera's answer read at most (only the status line matters).
MAX_ANSWER = 4096


def explain_rtsp_failure(url: str, timeout_s: float = 3.0) -> str | None:
    """A sentence on why `url` could not be opened, or None when the camera does not say."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port or 554
    except ValueError:
        return "the stream URL is malformed"
    if parts.scheme.lower() != "rtsp" or not parts.hostname:
        return None  # rtsps:// needs TLS; http:// streams have no DESCRIBE
    host = parts.hostname
    netloc = host if port == 554 else f"{host}:{port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    lines = [f"DESCRIBE {clean} RTSP/1.0", "CSeq: 1", "User-Agent: facerec-door",
             "Accept: application/sdp"]  # fmt: skip
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        lines.append(f"Authorization: Basic {token}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as sock:
            sock.sendall(request)
            answer = sock.recv(MAX_ANSWER)
    except OSError as exc:
        return f"cannot reach {host}:{port} ({exc.strerror or type(exc).__name__})"
    status = answer.split(b"\r\n", 1)[0].decode("latin-1", "replace").split(" ", 2)
    if len(status) < 2 or not status[0].startswith("RTSP/") or not status[1].isdigit():
        return f"{host}:{port} does not answer as an RTSP server"
    code = int(status[1])
    if code == 401:
        return "the camera refused the user name or password (RTSP 401 Unauthorized)"
    if code == 404:
        return "the camera has no stream at this path (RTSP 404 Not Found)"
    if code >= 300:
        return (
            f"the camera answered RTSP {code} {status[2][:80] if len(status) > 2 else ''}".strip()
        )
    return None
