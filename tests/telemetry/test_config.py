"""Export is switched by the standard OTEL_* variables; bad ones fail with what to use."""

from __future__ import annotations

import logging
import sys

import pytest

from proctor.errors import ConfigError
from proctor.telemetry import telemetry_from_environment
from proctor.telemetry.export import OtelTelemetry, QueueSizing
from tests.shop import Env

from .receiver import HttpReceiver


def test_nothing_set_means_no_export() -> None:
    assert telemetry_from_environment() is None


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"},
        {"OTEL_TRACES_EXPORTER": "otlp"},
    ],
)
def test_an_endpoint_or_the_otlp_exporter_turns_export_on(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    telemetry = telemetry_from_environment()
    assert isinstance(telemetry, OtelTelemetry)
    telemetry.shutdown()


@pytest.mark.parametrize(
    "variables",
    [
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"},
    ],
)
def test_export_can_be_switched_off(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert telemetry_from_environment() is None


def test_an_unknown_protocol_names_the_allowed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")
    with pytest.raises(
        ConfigError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL='thrift'.*http/protobuf, grpc"
    ):
        telemetry_from_environment()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")
    with pytest.raises(
        ConfigError, match=r"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL.*do not send http/json"
    ):
        telemetry_from_environment()


def test_an_unknown_exporter_names_the_allowed_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin")
    with pytest.raises(ConfigError, match="otlp, console, none; not zipkin"):
        telemetry_from_environment()


def test_queue_sizes_come_from_the_bsp_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    assert QueueSizing.from_environment() == QueueSizing()
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100000")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    sizing = QueueSizing.from_environment()
    assert (sizing.max_queue_size, sizing.schedule_delay_millis) == (100_000, 50)
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "200000")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    with pytest.raises(ConfigError, match="must not exceed OTEL_BSP_MAX_QUEUE_SIZE"):
        telemetry_from_environment()
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="OTEL_BSP_MAX_EXPORT_BATCH_SIZE='lots' is not a number"):
        telemetry_from_environment()


def test_without_the_otel_packages_runs_go_on_and_a_warning_says_why(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace.export", None)  # not installed
    with caplog.at_level(logging.WARNING, logger="proctor.telemetry"):
        assert telemetry_from_environment() is None
    assert "Install proctor[otel]" in caplog.text


async def test_every_string_attribute_goes_through_the_tenants_redaction(
    env: Env, http_receiver: HttpReceiver
) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    seen: list[tuple[str, str]] = []

    def redact(tenant: str, text: str) -> str:
        seen.append((tenant, text))
        return f"<{tenant}>"

    telemetry = OtelTelemetry(
        OTLPSpanExporter(endpoint=f"{http_receiver.endpoint}/v1/traces"), redact=redact
    )
    rt = env.runtime(telemetry=telemetry)
    run = await rt.start_run(env.spec(tenant="globex"))
    await run.call("lookup", {"order_id": "G-7"})
    await run.complete()
    rt.close()
    spans = http_receiver.received.spans()
    assert len(spans) == 4
    assert seen
    assert {tenant for tenant, _ in seen} == {"globex"}
    for span in spans:
        assert span["name"] == "<globex>"
        for key, value in span["attributes"].items():
            if isinstance(value, str):
                assert value == "<globex>", key
            elif isinstance(value, list):
                assert set(value) <= {"<globex>"}, key
    assert rt.telemetry is telemetry
    assert telemetry.dropped == 0


async def test_a_runtime_without_telemetry_exports_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch, http_receiver: HttpReceiver
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", http_receiver.endpoint)
    rt = env.runtime(telemetry=None)
    run = await rt.start_run(env.spec())
    await run.complete()
    rt.close()
    assert rt.telemetry is None
    assert http_receiver.received.count() == 0
