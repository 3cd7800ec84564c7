"""Door-camera verification over a video stream."""
