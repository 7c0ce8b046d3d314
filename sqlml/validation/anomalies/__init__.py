"""Anomalies: what ``ml_validate`` reports, one row each, and the detectors that find them.

``TYPES`` names every anomaly type with its severity and family. TFDV's names
(anomalies.proto) are used where TFDV has the anomaly; the others (key uniqueness,
missing-rate and mean shifts) are sqlml's. ``DETECTORS`` is the ordered tuple of
detector modules; each has ``plan(run) -> [Extra]`` (aggregates it needs in the
validation scan) and ``detect(run) -> [Anomaly]``.
"""

from sqlml.validation.anomalies import checks, comparisons, dataset, presence, structure, values  # noqa: E402
from sqlml.validation.anomalies.model import (
    COLUMNS as COLUMNS,
    ERROR as ERROR,
    SEVERITY_ORDER as SEVERITY_ORDER,
    TYPES as TYPES,
    WARNING as WARNING,
    Anomaly as Anomaly,
    Measurement as Measurement,
    make as make,
)

#: Detector modules, in the order their anomalies are listed: errors first, then the drift
#: comparisons, which skip columns an error already explains when drift is checked by default.
DETECTORS = (structure, dataset, presence, values, checks, comparisons)
