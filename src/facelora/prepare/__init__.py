"""Prepare: from a folder of photos to a clean, captioned training set.

pipeline.prepare(photos, project, PrepareOptions(...), progress) is what the CLI and the GUI call;
options.py holds every choice and its default; the steps are images, crop, upscale, captions,
quality and contact_sheet. Nothing heavy is imported here, so the options load quickly.
"""
