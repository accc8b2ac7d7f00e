"""The README's nightly job (``nightly.sh``) run as written, against the stand-in server."""

from __future__ import annotations

import re
import sqlite3
import subprocess

from tests.kayako_api.helpers import REPO, pull_env
from tests.kayako_server import KayakoServer

API_KEY, SECRET = "nightly-key", "nightly-Secret-0f9"


def nightly_script() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"The nightly job, `/srv/ipchange/nightly.sh`.*?```sh\n(.*?)```", readme, re.S
    )
    assert found, "the README shows nightly.sh"
    return found.group(1)


def test_the_readme_nightly_job_pulls_and_loads_the_audit_report(tmp_path):
    home = tmp_path / "srv"
    home.mkdir()
    (home / ".venv").symlink_to(REPO / ".venv")
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "kayako-audit.csv").write_bytes((REPO / "data/sample/kayako-audit.csv").read_bytes())
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "date").write_text(  # a Wednesday: the Monday reports are not built
        '#!/bin/sh\nif [ "$1" = "+%u" ]; then echo 3; else exec /bin/date "$@"; fi\n'
    )
    (fake / "date").chmod(0o755)
    with KayakoServer(API_KEY, SECRET, tickets=80, seed=2) as kayako:
        script = (
            nightly_script()
            .replace("/srv/ipchange", str(home))
            .replace("/srv/exports", str(exports))
            .replace("https://helpdesk.example.com/api/index.php", kayako.url)
        )
        (home / "nightly.sh").write_text(script)
        (home / "nightly.sh").chmod(0o755)
        env = pull_env(API_KEY, SECRET, IPCHANGE_DB_URL=f"sqlite:///{home}/ipchange.db")
        env["PATH"] = f"{fake}:{env['PATH']}"
        done = subprocess.run([str(home / "nightly.sh")], env=env, capture_output=True, text=True)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    assert "pulled 80 ticket(s)" in done.stdout
    assert "kayako-audit.csv: kayako-audit → ticket_events" in done.stdout
    with sqlite3.connect(home / "ipchange.db") as conn:
        formats = {r[0] for r in conn.execute("SELECT format FROM load_manifests")}
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 80
        from_posts = conn.execute("SELECT count(*) FROM intake WHERE source LIKE 'post %'")
        assert from_posts.fetchone()[0] > 0  # the requests' macros, pulled with their posts
    assert formats == {"kayako-lookups", "kayako-xml", "kayako-posts", "kayako-audit"}
    assert "index:" not in done.stdout  # not a Monday: no reports built
