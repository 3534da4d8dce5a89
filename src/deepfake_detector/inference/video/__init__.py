"""Videos: frames (decode and sample), tracking (faces across frames), aggregation (per track and
per video), scoring (the image pipeline applied to frames) and pictures (contact sheet, timeline)."""
