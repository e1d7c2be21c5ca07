"""bench.run's phase selection and the gRPC section's settings."""

from __future__ import annotations

import pytest

from bench.run import SECTIONS, parse_args


def test_every_phase_runs_unless_some_are_asked_for_in_the_jobs_order() -> None:
    args = parse_args([])
    assert args.sections == list(SECTIONS) and args.only is None
    assert (args.grpc_seconds, args.grpc_warmup, args.grpc_in_flight) == (5.0, 1.0, 64)
    args = parse_args(["--only", "grpc", "--only", "latency", "--quick"])
    assert args.sections == ["latency", "grpc"] and args.grpc_seconds == 2.0


def test_bad_grpc_settings_and_unknown_phases_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--grpc-in-flight", "0"], ["--grpc-seconds", "-1"], ["--only", "memory"]):
        with pytest.raises(SystemExit) as exc:
            parse_args(argv)
        assert exc.value.code == 2
    assert "invalid choice: 'memory'" in capsys.readouterr().err
