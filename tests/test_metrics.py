import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from santamon.metrics import LATENCY_BUCKETS, Metrics


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


def test_request_series_render_as_prometheus_clients_own_would():
    """The request counter and latency histogram are plain lists (no lock per request): what
    they render must match prometheus_client's Counter and Histogram fed the same requests,
    bucket bounds included (a value on a bound is counted in that bound's bucket)."""
    registry = CollectorRegistry()
    counter = Counter("santamon_http_requests", "x", ["route", "method", "status"],
                      registry=registry)
    histogram = Histogram("santamon_http_request_duration_seconds", "x", ["route", "method"],
                          buckets=LATENCY_BUCKETS, registry=registry)
    m = Metrics()
    requests = [("/ingest", "POST", 200, 0.0004), ("/ingest", "POST", 200, 0.001),
                ("/ingest", "POST", 422, 0.0026), ("/ingest", "POST", 200, 12.0),
                ("/signals", "GET", 200, 0.05), ("/signals", "GET", 401, 0.0),
                ("/ingest", "POST", 200, 10.0)]
    for route, method, status, seconds in requests:
        m.observe_request(route, method, status, seconds)
        counter.labels(route=route, method=method, status=str(status)).inc()
        histogram.labels(route=route, method=method).observe(seconds)

    ours = {key: value for key, value in samples(m).items()
            if key[0].startswith("santamon_http_request")}
    theirs = {}
    for family in text_string_to_metric_families(
            generate_latest(registry).decode()):
        for s in family.samples:
            if not s.name.endswith("_created"):
                theirs[(s.name, tuple(sorted(s.labels.items())))] = s.value
    assert ours == pytest.approx(theirs)  # sums may differ in the last bit (order of adding)
    assert ours[("santamon_http_requests_total",
                 (("method", "POST"), ("route", "/ingest"), ("status", "422")))] == 1
    assert m.render().count(b"# TYPE santamon_http_request_duration_seconds histogram") == 1
