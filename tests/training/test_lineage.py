"""Lineage tags: the git commit, the raw data's DVC hash, the DVC experiment name."""

from __future__ import annotations

import subprocess

import yaml

from training.config import REPO_ROOT
from training.lineage import data_hash, git_commit, git_dirty, lineage_tags


def git(root, *args):
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(root):
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    (root / "data").mkdir()
    (root / "data" / "raw.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": "abc123.dir", "path": "raw", "hash": "md5"}]})
    )
    git(root, "add", "data/raw.dvc")
    git(root, "commit", "-q", "-m", "init")
    return git(root, "rev-parse", "HEAD")


def test_tags_of_a_clean_repo(tmp_path, monkeypatch):
    monkeypatch.delenv("DVC_EXP_NAME", raising=False)
    head = make_repo(tmp_path)
    tags = lineage_tags(tmp_path, tmp_path / "data" / "raw.dvc")
    assert tags == {"git_commit": head, "git_dirty": "false", "dvc_data_hash": "abc123.dir"}


def test_dirty_tracked_files_are_flagged_untracked_ones_not(tmp_path):
    make_repo(tmp_path)
    (tmp_path / "scratch.txt").write_text("untracked")
    assert git_dirty(tmp_path) is False
    (tmp_path / "data" / "raw.dvc").write_text("outs: []\n")
    assert git_dirty(tmp_path) is True


def test_files_the_pipeline_rewrites_do_not_make_the_code_dirty(tmp_path):
    make_repo(tmp_path)
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\n")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "metrics.json").write_text("{}\n")
    git(tmp_path, "add", "dvc.lock", "metrics")
    git(tmp_path, "commit", "-q", "-m", "pipeline outputs")
    (tmp_path / "dvc.lock").write_text("schema: '2.0'\nstages: {}\n")
    (tmp_path / "metrics" / "metrics.json").write_text('{"accuracy": 0.8}\n')
    assert git_dirty(tmp_path) is False


def test_dvc_exp_name_is_tagged_when_dvc_sets_it(tmp_path, monkeypatch):
    make_repo(tmp_path)
    monkeypatch.setenv("DVC_EXP_NAME", "bushy-bass")
    assert lineage_tags(tmp_path, tmp_path / "data" / "raw.dvc")["dvc_exp_name"] == "bushy-bass"


def test_outside_git_and_without_a_dvc_file_the_tags_say_unknown(tmp_path):
    assert git_commit(tmp_path / "nowhere") == "unknown"
    assert data_hash(tmp_path / "missing.dvc") == "unknown"
    (tmp_path / "broken.dvc").write_text("just: text\n")
    assert data_hash(tmp_path / "broken.dvc") == "unknown"


def test_the_repo_data_hash_is_the_one_in_raw_dvc():
    recorded = yaml.safe_load((REPO_ROOT / "data" / "raw.dvc").read_text())["outs"][0]["md5"]
    assert data_hash(REPO_ROOT / "data" / "raw.dvc") == recorded
    assert recorded.endswith(".dir")
    assert len(git_commit(REPO_ROOT)) == 40
