"""The end-to-end tour (``sqlml demo``): one chapter per stage of an ML project.

``CHAPTERS`` lists chapter modules in order; each has ``TITLE`` and ``run(tour)``.
"""

from __future__ import annotations

CHAPTERS: tuple[str, ...] = (
    "sqlml.demo.ch0_load",
    "sqlml.demo.ch1_labeling",
    "sqlml.demo.ch2_validation",
    "sqlml.demo.ch3_training",
    "sqlml.demo.ch4_large_models",
    "sqlml.demo.ch5_serving",
    "sqlml.demo.ch6_video",
)
