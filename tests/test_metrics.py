from prometheus_client.parser import text_string_to_metric_families

from santamon.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple, float]:
    out = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_metric_is_prefixed_and_counts_are_rendered():
    m = Metrics()
    m.count_ingest(stored=3, duplicates=1)
    m.count_ingest_rejected(422)
    m.count_ingest_rejected(599)
    m.observe_commit(42, 0.003)
    m.agents.labels(status="active").set(5)

    s = samples(m)
    assert all(name.startswith("santamon_") for name, _ in s if not name.startswith("python_"))
    assert s[("santamon_ingest_signals_total", (("outcome", "stored"),))] == 3
    assert s[("santamon_ingest_signals_total", (("outcome", "duplicate"),))] == 1
    assert s[("santamon_ingest_rejected_total", (("reason", "invalid"),))] == 1
    assert s[("santamon_ingest_rejected_total", (("reason", "error"),))] == 1
    assert s[("santamon_store_write_batch_size_count", ())] == 1
    assert s[("santamon_store_write_batch_size_sum", ())] == 42
    assert s[("santamon_agents", (("status", "active"),))] == 5
    assert ("santamon_process_resident_memory_bytes", ()) in s


def test_registries_are_per_instance():
    a, b = Metrics(), Metrics()
    a.count_ingest(stored=1, duplicates=0)
    key = ("santamon_ingest_signals_total", (("outcome", "stored"),))
    assert samples(a)[key] == 1
    assert key not in samples(b)
