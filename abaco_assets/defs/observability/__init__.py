"""Observability: OpenLineage events, alerts, JSON logs and the lineage walk, around every run."""

from abaco_assets.defs.observability.json_logger import json_logger, observability_loggers
from abaco_assets.defs.observability.run_observer import Observation, observe_run
from abaco_assets.defs.observability.sensors import observability_sensors

__all__ = ["Observation", "json_logger", "observability_loggers", "observability_sensors", "observe_run"]
