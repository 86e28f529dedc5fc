from prometheus_client.parser import text_string_to_metric_families

from santamon.metrics import DUPLICATE, REJECTED, STORED, Metrics


def _samples(metrics: Metrics) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_metric_is_prefixed_and_counts_are_rendered():
    m = Metrics()
    m.count_ingest(STORED, 3)
    m.count_ingest(DUPLICATE)
    m.count_ingest(REJECTED, reason="validation")
    m.count_ingest(STORED, 0)
    m.observe_commit(42, 0.003)
    m.agents.labels(status="active").set(5)

    samples = _samples(m)
    assert all(name.startswith("santamon_") for name, _ in samples if "python_" not in name)
    assert samples[("santamon_ingest_signals_total", (("outcome", "stored"), ("reason", "")))] == 3
    assert (
        samples[
            ("santamon_ingest_signals_total", (("outcome", "rejected"), ("reason", "validation")))
        ]
        == 1
    )
    assert samples[("santamon_store_write_batch_size_count", ())] == 1
    assert samples[("santamon_store_write_batch_size_sum", ())] == 42
    assert samples[("santamon_agents", (("status", "active"),))] == 5
    assert ("santamon_process_resident_memory_bytes", ()) in samples


def test_registries_are_per_instance():
    a, b = Metrics(), Metrics()
    a.count_ingest(STORED)
    key = ("santamon_ingest_signals_total", (("outcome", "stored"), ("reason", "")))
    assert key in _samples(a)
    assert key not in _samples(b)
