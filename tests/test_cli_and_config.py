"""The CLI framework: options from dataclasses, YAML + flags precedence, one-line errors, atomic IO."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import pytest

from slam_align.cli import COMMANDS, main
from slam_align.config import build_options, option, resolve_options
from slam_align.errors import SlamError
from slam_align.io import atomic_write_json, check_run_dir, open_run_dir, read_jsonl


@dataclass
class DemoOpts:
    model: str = option(help="model")
    max_steps: int = option(10, help="steps")
    learning_rate: float = option(2e-5, help="lr")
    langs: list[str] = option(["en", "de"], help="languages")
    resume: bool = option(False, help="resume")
    method: str = option("slam", choices=["slam", "full"], help="method")
    limit: int | None = option(None, help="limit")


def test_yaml_then_flags_precedence(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: m1\nmax-steps: 5\nlearning_rate: 1e-4\nlangs: [bn, th]\n")
    opts = resolve_options(DemoOpts, str(cfg), {"max_steps": "7"})
    assert opts.model == "m1" and opts.max_steps == 7  # flag beats YAML
    assert opts.learning_rate == pytest.approx(1e-4) and opts.langs == ["bn", "th"]
    assert opts.limit is None and opts.resume is False


def test_values_are_checked_with_one_line_errors(tmp_path):
    with pytest.raises(SlamError, match="option 'max-steps': expected int, got 'ten'"):
        build_options(DemoOpts, {"model": "m", "max_steps": "ten"})
    with pytest.raises(SlamError, match="unknown option 'max-step'"):
        build_options(DemoOpts, {"model": "m", "max-step": 3})
    with pytest.raises(SlamError, match="option 'method' is 'lora'; expected one of: slam, full"):
        build_options(DemoOpts, {"model": "m", "method": "lora"})
    with pytest.raises(SlamError, match="missing required option --model"):
        build_options(DemoOpts, {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(SlamError, match="bad.yaml"):
        resolve_options(DemoOpts, str(bad), {})
    assert build_options(DemoOpts, {"model": "m", "langs": "bn, th,sw", "limit": "none"}).langs == [
        "bn",
        "th",
        "sw",
    ]


def test_every_command_has_help(capsys):
    for cmd in COMMANDS:
        with pytest.raises(SystemExit) as e:
            main([*cmd.name.split(), "--help"])
        assert e.value.code == 0, cmd.name
        out = capsys.readouterr().out
        assert "usage: slam" in out and "unavailable" not in out, f"{cmd.name}: {out[:400]}"


def test_cli_subprocess_help_and_version(cli):
    out = cli("--help").stdout
    for cmd in {c.name.split()[0] for c in COMMANDS}:
        assert cmd in out
    assert "slam-align" in cli("--version").stdout


def test_dashed_and_underscored_flags_are_the_same():
    import argparse

    from slam_align.config import add_options

    parser = argparse.ArgumentParser()
    add_options(parser, DemoOpts)
    for spelling in ("--max-steps", "--max_steps"):
        ns = vars(parser.parse_args(["--model", "m", spelling, "3", "--resume", "--langs", "bn,th"]))
        opts = build_options(DemoOpts, ns)
        assert (opts.max_steps, opts.resume, opts.langs) == (3, True, ["bn", "th"])
    assert build_options(DemoOpts, vars(parser.parse_args(["--model", "m", "--no-resume"]))).resume is False


def test_unknown_flag_is_a_usage_error(cli):
    proc = cli("score", "--no-such-flag", "1", check=False)
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "m.json"
    atomic_write_json(target, {"a": 1})

    class Boom:
        pass

    with pytest.raises(TypeError):
        atomic_write_json(target, {"a": Boom()})
    assert json.loads(target.read_text()) == {"a": 1}  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]  # no temp file left


def test_output_dir_is_never_silently_overwritten(tmp_path):
    out = tmp_path / "run"
    with open_run_dir(out, "train", config={"a": 1}, resumable=True) as run:
        run.begin_work()
        (out / "metrics.json").write_text("{}")
        run.finish()
    assert sorted(os.listdir(out)) == ["config.yaml", "environment.json", "metrics.json", "run.json"]
    with pytest.raises(SlamError, match="--resume to continue it or --overwrite"):
        check_run_dir(out, "train", resumable=True)
    assert check_run_dir(out, "train", resume=True, resumable=True) == "resume"
    assert check_run_dir(out, "train", overwrite=True) == "replace"
    with pytest.raises(SlamError, match="holds a 'slam train' run, not a 'slam eval' run"):
        check_run_dir(out, "eval", overwrite=True)
    (out / "notes.txt").write_text("mine")  # something the command did not write
    with pytest.raises(SlamError, match="would delete 'notes.txt'"):
        check_run_dir(out, "train", overwrite=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "data.csv").write_text("x")
    with pytest.raises(SlamError, match="holds no slam run"):
        check_run_dir(foreign, "train", overwrite=True)


def test_run_that_fails_before_its_work_leaves_nothing(tmp_path):
    out = tmp_path / "new"
    with pytest.raises(SlamError, match="boom"), open_run_dir(out, "identify", config={}):
        raise SlamError("boom")
    assert not out.exists()  # the corrected command starts as if nothing had happened
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SlamError), open_run_dir(empty, "identify", config={}):
        raise SlamError("boom")
    assert os.listdir(empty) == []
    with pytest.raises(SlamError), open_run_dir(out, "train", config={}, resumable=True) as run:
        run.begin_work()
        raise SlamError("disk full")
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "failed" and record["error"] == "disk full"  # resumable, not removed


def test_read_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"a": 1}\n\n{"a": 2\n')
    with pytest.raises(SlamError, match=r"d.jsonl: line 3: not valid JSON"):
        read_jsonl(f)
