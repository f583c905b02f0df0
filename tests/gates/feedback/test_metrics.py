"""Prometheus metrics: both exposition formats parse, and a Pushgateway receives the push."""

from __future__ import annotations

import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from gates.base import Status
from tests.gates.feedback.helpers import run_stage


def _samples(text: str, parser=parse_text) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in parser(text)
        for s in family.samples
    }


def test_textfile_has_verdicts_durations_cv_scores_and_findings(passed_run):
    samples = _samples((passed_run / "reports" / "metrics.prom").read_text())
    assert samples[("gates_run_passed", ())] == 1.0
    assert samples[("gates_gate_status", (("gate", "cv"), ("status", "PASSED")))] == 1.0
    assert samples[("gates_gate_status", (("gate", "cv"), ("status", "FAILED")))] == 0.0
    assert samples[("gates_gate_duration_seconds", (("gate", "train"),))] > 0
    accuracy = samples[("gates_cv_score", (("metric", "accuracy"), ("stat", "mean")))]
    assert 0.9 < accuracy <= 1.0
    assert samples[("gates_gate_findings", (("gate", "data"), ("severity", "error")))] == 0.0
    assert samples[("gates_history_records", ())] >= 1


def test_openmetrics_variant_parses_and_ends_with_eof(passed_run):
    text = (passed_run / "reports" / "metrics.openmetrics.txt").read_text()
    assert text.endswith("# EOF\n")
    samples = _samples(text, parse_om)
    assert samples[("gates_run_passed", ())] == 1.0


class _Recorder(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, bytes]]] = []

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).requests.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    do_PUT = do_POST = _record

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def pushgateway():
    _Recorder.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Recorder.requests
    server.shutdown()
    server.server_close()


def test_metrics_are_pushed_to_a_configured_pushgateway(
    passed_run, tmp_path, pushgateway, monkeypatch
):
    url, requests = pushgateway
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    monkeypatch.setenv("GATES_PUSHGATEWAY_URL", url)
    result = run_stage(root)
    assert result.status is Status.PASSED
    assert result.metrics["pushed"] is True
    assert len(requests) == 1
    method, path, body = requests[0]
    assert method == "PUT"
    assert path == "/metrics/job/secure_ml_pipeline"
    samples = _samples(body.decode())
    assert samples[("gates_run_passed", ())] == 1.0


def test_an_unreachable_pushgateway_is_a_warning_not_a_failure(passed_run, tmp_path, monkeypatch):
    root = tmp_path / "copy"
    shutil.copytree(passed_run, root)
    monkeypatch.setenv("GATES_PUSHGATEWAY_URL", "http://127.0.0.1:9")  # discard port: refused
    result = run_stage(root)
    assert result.status is Status.PASSED
    assert result.metrics["pushed"] is False
    assert [f.rule for f in result.findings] == ["FB201"]
