"""``ntsops simulate`` end to end through main()."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

# Until the package is installed (pip install -e .), import it from the checkout.
if importlib.util.find_spec("ntsops_cli") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from ntsops_cli.main import main
from ntsops_cli.simulate import parse_client_spec


def test_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["simulate", "--clients", "2000", "--client", "chrony-4.3,maxpoll=6", "--nat-group-size", "20"])
    out = capsys.readouterr().out
    assert code == 0
    assert "chrony-4.3" in out and "recommended chrony: ntsratelimit" in out
    assert "rate limit (recommended): 0 of" in out


def test_json_output_matches_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "simulate",
            "--clients",
            "3000",
            "--client",
            "chrony-4.3,maxpoll=5,share=0.5",
            "--client",
            "ntpsec-1.2,maxpoll=5",
            "--ttl",
            "30",
            "--update-latency",
            "10",
            "--json",
            "--pure",
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert summary["ke_total"] == 3000
    for kind in summary["kinds"]:
        low, high = kind["model_recovery_s"]
        assert low <= kind["p50_s"] <= kind["max_s"] <= high
    assert [k["count"] for k in summary["kinds"]] == [1500, 1500]


def test_selectable_again_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    # The second model output next to recovery: chrony at maxpoll 5 needs two more polls
    # (3 samples) after its first authenticated response.
    argv = ["simulate", "--clients", "500", "--client", "chrony-4.4+,minpoll=5,maxpoll=5", "--pure"]
    assert main([*argv, "--json"]) == 0
    kind = json.loads(capsys.readouterr().out)["kinds"][0]
    low, high = kind["model_selectable_s"]
    assert low == pytest.approx(kind["model_recovery_s"][0] + 2 * 32)
    assert high == pytest.approx(kind["model_recovery_s"][1] + 2 * 32 * 1.02)
    assert main(argv) == 0
    assert "source selectable again (model)" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_plot_is_written(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"sim{suffix}"
    assert main(["simulate", "--clients", "500", "--plot", str(target)]) == 0
    assert target.stat().st_size > 1000


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--clients", "10", "--client", "chrony-9"]) == 2
    assert "'chrony-9'" in capsys.readouterr().err
    assert main(["simulate", "--clients", "10", "--plot", "x.pdf"]) == 2
    with pytest.raises(SystemExit):
        main(["simulate", "--client", "chrony-4.3,maxpoll"])


def test_client_spec_parsing() -> None:
    assert parse_client_spec("ntpsec-1.2,maxpoll=8,share=0.25,poll_state=ramping") == {
        "client": "ntpsec-1.2",
        "maxpoll": 8,
        "share": 0.25,
        "poll_state": "ramping",
    }
