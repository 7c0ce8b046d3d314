"""The anomaly record, the catalog of anomaly types, and comparison measurements."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

ERROR = "error"
WARNING = "warning"

#: anomaly type -> (severity, family, what it means)
TYPES: dict[str, tuple[str, str, str]] = {
    "SCHEMA_MISSING_COLUMN": (ERROR, "schema", "a column the schema requires is absent"),
    "SCHEMA_NEW_COLUMN": (WARNING, "schema", "a column the schema does not know"),
    "UNEXPECTED_DATA_TYPE": (ERROR, "schema", "a column's type changed"),
    "FEATURE_TYPE_NOT_PRESENT": (ERROR, "presence", "a required column is NULL in every row"),
    "FEATURE_TYPE_LOW_FRACTION_PRESENT": (ERROR, "presence", "a column is NULL more often than the schema allows"),
    "ENUM_TYPE_UNEXPECTED_STRING_VALUES": (ERROR, "values", "string values outside the domain"),
    "INT_TYPE_SMALL_INT": (ERROR, "values", "integers below the lower bound"),
    "INT_TYPE_BIG_INT": (ERROR, "values", "integers above the upper bound"),
    "FLOAT_TYPE_SMALL_FLOAT": (ERROR, "values", "numbers below the lower bound"),
    "FLOAT_TYPE_BIG_FLOAT": (ERROR, "values", "numbers above the upper bound"),
    "FLOAT_TYPE_HAS_NAN": (ERROR, "values", "NaN where the schema allows none"),
    "FLOAT_TYPE_HAS_INF": (ERROR, "values", "infinities where the schema allows none"),
    "FEATURE_TYPE_LOW_NUMBER_VALUES": (ERROR, "values", "lists shorter than the schema allows"),
    "FEATURE_TYPE_HIGH_NUMBER_VALUES": (ERROR, "values", "lists longer than the schema allows"),
    "UNIQUENESS_VIOLATED": (ERROR, "values", "duplicate values in a key column"),
    "DATASET_LOW_NUM_EXAMPLES": (ERROR, "dataset", "fewer rows than the schema's min_rows"),
    "DATASET_HIGH_NUM_EXAMPLES": (ERROR, "dataset", "more rows than the schema's max_rows"),
    "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH": (WARNING, "drift", "numeric distribution moved (JSD over baseline quantile bins)"),
    "COMPARATOR_L_INFTY_HIGH": (WARNING, "drift", "categorical frequencies moved (L-infinity)"),
    "MISSING_RATE_SHIFT": (WARNING, "drift", "the share of NULLs changed"),
    "MEAN_SHIFT": (WARNING, "drift", "the mean moved"),
    "CUSTOM_VALIDATION": (ERROR, "check", "a custom check failed"),
}

SEVERITY_ORDER = {WARNING: 1, ERROR: 2}

#: Output columns of ml_validate, in order.
COLUMNS = [
    ("column_name", "VARCHAR"),
    ("anomaly_type", "VARCHAR"),
    ("severity", "VARCHAR"),
    ("description", "VARCHAR"),
    ("observed", "VARCHAR"),
    ("expected", "VARCHAR"),
    ("examples", "VARCHAR[]"),
    ("family", "VARCHAR"),
    ("metric", "DOUBLE"),
    ("threshold", "DOUBLE"),
    ("schema_name", "VARCHAR"),
    ("schema_version", "INTEGER"),
]


@dataclass(frozen=True)
class Anomaly:
    """One finding. ``family`` is schema, presence, values, dataset, drift, skew or check."""

    column_name: str | None
    anomaly_type: str
    severity: str
    description: str
    observed: str | None = None
    expected: str | None = None
    examples: tuple[str, ...] = ()
    family: str = "schema"
    metric: float | None = None
    threshold: float | None = None
    schema_name: str | None = None
    schema_version: int | None = None

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def as_row(self) -> dict:
        row = asdict(self)
        row["examples"] = list(self.examples)
        return row


def make(anomaly_type: str, column: str | None, description: str, *, family: str | None = None, **fields) -> Anomaly:
    """An anomaly with the severity and family its type has in ``TYPES``."""
    severity, default_family, _ = TYPES[anomaly_type]
    return Anomaly(column, anomaly_type, severity, description, family=family or default_family, **fields)


@dataclass
class Measurement:
    """A comparison measured against a baseline, anomalous or not (TFDV's drift_skew_info)."""

    column_name: str
    metric: str
    value: float
    threshold: float
    baseline_rows: int
    rows: int
    is_anomaly: bool = False
    detail: str = ""
    extra: dict = field(default_factory=dict)
