"""docs/force-profile.md as a registrar follows it: its files written where it says, its
commands run in order, and the figures it prints found in their output."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from crimeaudit.cli import app

DOC = Path(__file__).parents[1] / "docs" / "force-profile.md"
BLOCK = re.compile(r"<!-- (file: (?P<path>\S+)|run|expect) -->\n```\w*\n(?P<body>.*?)```", re.S)


def test_the_worked_example_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.setenv("CRIMEAUDIT_PSEUDONYM_KEY", "docs-example-key-0123456789")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    outputs: list[str] = []
    expected: list[str] = []
    blocks = list(BLOCK.finditer(DOC.read_text(encoding="utf-8")))
    assert len(blocks) >= 7
    for m in blocks:
        body = m.group("body")
        if m.group("path"):
            target = tmp_path / m.group("path")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(body, encoding="utf-8")
        elif m.group(0).startswith("<!-- run"):
            for line in body.strip().splitlines():
                argv = shlex.split(line)
                assert argv[0] == "crimeaudit"
                res = runner.invoke(app, argv[1:], env={"COLUMNS": "160"})
                assert res.exit_code == 0, (line, res.output)
                outputs.append(res.output)
        else:
            expected.append(body.strip())
            # each expected line appears in the output of the commands run just before it
            assert body.strip() in outputs[-1] or body.strip() in "\n".join(outputs), (
                body, outputs)
    assert expected and len(outputs) >= 4
    # the figures the prose quotes are the ones the tool printed
    check = outputs[0]
    assert "195/4" in check and "unclassified" in check and "crimes.recorded_at" in check
