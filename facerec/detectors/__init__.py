"""Detector backends behind `facerec.detection.Detector`, one file each."""
