"""The ingester's counters. One registry per ingester instance, never module-global, so
tests and several workers in one process do not share numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("plowshare_ingest_messages", "MQTT messages received",
                                registry=r)
        self.stored = Counter("plowshare_ingest_positions_stored",
                              "fixes stored in pings", registry=r)
        self.rejected = Counter("plowshare_ingest_rejected", "fixes or messages rejected",
                                ["reason"], registry=r)
        self.batches = Counter("plowshare_ingest_batches", "batches committed", registry=r)
        self.retries = Counter("plowshare_ingest_retries",
                               "batch attempts that failed on a database outage",
                               registry=r)
        self.batch_seconds = Histogram("plowshare_ingest_batch_seconds",
                                       "time to write one batch", registry=r)
        self.coverage_fixes = Counter("plowshare_coverage_fixes",
                                      "fixes fed to the map matcher", registry=r)
        self.coverage_services = Counter("plowshare_coverage_services",
                                         "service passes recorded", registry=r)
        self.coverage_errors = Counter("plowshare_coverage_errors",
                                       "vehicle rounds the matcher failed on", registry=r)
        self.ack_failures = Counter("plowshare_ingest_ack_failures",
                                    "batches whose end-to-end acks could not be sent",
                                    registry=r)
        self.coverage_late_fixes = Counter("plowshare_coverage_late_fixes",
                                           "fixes matched after their vehicle's cursor",
                                           registry=r)
        self.queue_depth = Gauge("plowshare_ingest_queue_depth",
                                 "messages waiting to be written", registry=r)

    def rejected_count(self, reason: str) -> float:
        value = self.registry.get_sample_value("plowshare_ingest_rejected_total",
                                               {"reason": reason})
        return value or 0.0
