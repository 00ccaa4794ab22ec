"""One pipeline for every mode: an experiment runs its mode's stages, then evaluates and reports.

- ``experiment.py``: set-up (device, run folder, data), evaluation, export, summary
- ``stages.py``: the stages modes are made of (check a pair, prepare the teacher, train on labels, distil)
- ``building.py``: models from the config; ``run_folder.py``: naming and resuming run folders
- ``modes/``: one small file per mode
"""
