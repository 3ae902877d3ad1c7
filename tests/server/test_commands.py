"""The server's commands: galsearch create-user and galsearch db (through the real CLI group)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from server.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run ``galsearch ...`` against a fresh SQLite database in a temporary instance folder."""
    monkeypatch.setenv("GALSEARCH_INSTANCE", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "test")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("GALSEARCH_ENV", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def test_create_user_from_stdin_then_sign_in(run, tmp_path):
    result = run("create-user", "Alice", "--admin", "--password-stdin",
                 input="correct horse battery\n")
    assert result.exit_code == 0, result.output
    assert "administrator 'alice'" in result.output

    from server.app import create_app
    from server.extensions import db

    app = create_app()
    response = app.test_client().post("/api/session", json={
        "username": "alice", "password": "correct horse battery"})
    assert response.status_code == 200
    assert response.json["user"]["is_admin"] is True
    with app.app_context():
        db.engine.dispose()


def test_create_user_prompts_twice(run):
    result = run("create-user", "bob", input="bob-password\nbob-password\n")
    assert result.exit_code == 0, result.output
    assert "created user 'bob'" in result.output


def test_create_user_errors_are_clear(run):
    assert run("create-user", "bob", "--password-stdin", input="bob-password\n").exit_code == 0
    again = run("create-user", "BOB", "--password-stdin", input="another-one\n")
    assert again.exit_code == 1 and "already exists" in again.output
    short = run("create-user", "carol", "--password-stdin", input="short\n")
    assert short.exit_code == 1 and "8 to 1024 characters" in short.output
    bad = run("create-user", "no spaces", "--password-stdin", input="long-enough\n")
    assert bad.exit_code == 1 and "username" in bad.output


def test_production_without_secret_key_is_a_clear_error(run, monkeypatch):
    monkeypatch.setenv("GALSEARCH_ENV", "production")
    monkeypatch.delenv("SECRET_KEY")
    result = run("create-user", "dave", "--password-stdin", input="dave-password\n")
    assert result.exit_code == 1 and "SECRET_KEY is not set" in result.output


def test_db_commands_act_on_the_app_database(run):
    from server.app import create_app
    from server.db_upgrade import current_revision, head_revision
    from server.extensions import db

    def revision() -> tuple[str | None, str | None]:
        app = create_app({"AUTO_UPGRADE_DATABASE": False})
        with app.app_context():
            found = current_revision(db.engine)
            db.engine.dispose()
            return found, head_revision()

    assert run("db", "upgrade").exit_code == 0
    current, head = revision()
    assert current == head is not None
    assert run("db", "current").exit_code == 0
    assert run("db", "downgrade", "base").exit_code == 0
    assert revision()[0] is None


def test_serve_help_lists_its_options(run):
    result = run("serve", "--help")
    assert result.exit_code == 0
    assert "--host" in result.output and "--port" in result.output


def test_serve_renders_cutouts_on_one_torch_thread(run, monkeypatch):
    import torch
    from apiflask import APIFlask

    served = {}
    monkeypatch.setattr(APIFlask, "run", lambda self, **kwargs: served.update(kwargs))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        result = run("serve", "--port", "5123")
        assert result.exit_code == 0, result.output
        assert served["port"] == 5123 and served["threaded"] is True
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


def test_nginx_config_needs_a_survey(run):
    result = run("nginx-config")
    assert result.exit_code == 1 and "GALSEARCH_SURVEY" in result.output


def test_nginx_config_writes_a_private_file_that_nginx_accepts(run, monkeypatch, tmp_path,
                                                               survey_path):
    import os
    import shutil
    import subprocess

    from server.auth.image_pass import image_pass_key
    from server.front import NGINX

    monkeypatch.setenv("GALSEARCH_SURVEY", str(survey_path))
    site = tmp_path / "galsearch.conf"
    result = run("nginx-config", "--listen", "127.0.0.1:8081", "--out", str(site))
    assert result.exit_code == 0, result.output
    assert "GALSEARCH_PROXY_COUNT=1" in result.output  # the note for gunicorn
    text = site.read_text()
    assert os.stat(site).st_mode & 0o777 == 0o600  # it holds the pass key
    assert f'$galsearch_pass_user {image_pass_key("test")}";' in text  # derived, not SECRET_KEY
    assert "listen 127.0.0.1:8081;" in text and "server 127.0.0.1:8000;" in text
    assert f"root \"{tmp_path / 'cutouts' / 'current'}\"" in text
    standalone = tmp_path / "front"
    result = run("nginx-config", "--standalone", str(standalone), "--app", "127.0.0.1:9000")
    assert result.exit_code == 0, result.output
    conf = standalone / "nginx.conf"
    assert "server 127.0.0.1:9000;" in conf.read_text()
    if shutil.which(NGINX) or os.path.exists(NGINX):
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (standalone / "tmp" / kind).mkdir(parents=True)
        checked = subprocess.run([NGINX, "-t", "-c", str(conf), "-p", str(standalone)],
                                 capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
