"""Peak memory of an upload at /programs/import, whatever the file.

    .venv/bin/python benchmarks/bench_upload_memory.py [--small] [--no-gunicorn] [--repeat 1]

Builds, in a temporary folder:

* the baseline: a 100-row CSV of the bundled programs (new ids), imported;
* the zip bomb of issue 13 (row 2): an XLSX whose one sheet holds a header and
  1,000,000 identical rows, its XML written here (shared strings, deflated):
  156 KB on disk, 53 MB expanded; and the same with 300,000 rows (49 KB,
  16 MB expanded: under IMPORT_MAX_BYTES, so it is the row limit that stops it);
* a big CSV: IMPORT_MAX_ROWS + 5,000 rows of the bundled programs (about
  15 MB, under MAX_UPLOAD_LENGTH, so the upload itself is accepted);
* without ``--small``, a CSV and an XLSX of exactly IMPORT_MAX_ROWS rows:
  the largest files that are imported.

Each file is uploaded by a logged-in coordinator to ``POST /programs/import``
of a fresh copy of one SQLite instance (made with ``kyodo db upgrade``). A
file over IMPORT_BACKGROUND_BYTES is answered with its import's page and
read by the worker; the measure follows it there:

* the Flask test client of ``web.create_app()``, in a process of its own per
  file, which then runs the queued import itself as ``kyodo worker`` would
  (huey's dequeue and execute): one figure, that process;
* gunicorn started with ``web.gunicorn_conf`` and one worker, with ``kyodo
  worker`` beside it (unless ``--no-gunicorn``), until the import's page says
  it ended: two figures, the gunicorn worker's and kyodo worker's.

Before the upload each process has served the import page and refused one
tiny XLSX (so openpyxl is imported and the page's templates compiled); its
peak RSS is then reset (``/proc/PID/clear_refs``), and at the end the growth
is the peak (VmHWM) minus the RSS before. Prints a Markdown table with the
answer (status, the message shown, programs stored); exits 1 when any growth
is 100 MB or more (the bar of issue 13).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
USER, PASSWORD = "bench", "bench-password-0"
BAR_MB = 100

# -- the files ----------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_PARTS = {
    "[Content_Types].xml": (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{_CT}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_CT}.sharedStrings+xml"/>'
        f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_CT}.worksheet+xml"/></Types>'
    ),
    "_rels/.rels": (
        f'<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
        f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="事業一覧" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        f'<Relationships xmlns="{_PKG}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        f'<Relationship Id="rId2" Type="{_REL}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId3" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
    ),
    # The smallest stylesheet openpyxl reads without a warning.
    "xl/styles.xml": (
        f'<styleSheet xmlns="{_MAIN}"><fonts count="1"><font/></fonts><fills count="1"><fill><patternFill/></fill></fills>'
        '<borders count="1"><border/></borders><cellStyleXfs count="1"><xf/></cellStyleXfs>'
        '<cellXfs count="1"><xf/></cellXfs><cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/>'
        '</cellStyles></styleSheet>'
    ),
}
# The sheet's strings, by index: a header (事業名, 目的) and one program.
STRINGS = ("事業名", "目的", "防災講座の開催", "市民の防災意識を高める")


def _row_xml(*indexes: int) -> bytes:
    # Shared strings and no r="…" coordinates (openpyxl counts rows and cells
    # itself): rows that are byte for byte the same, and short, deflate best.
    return ("<row>" + "".join(f'<c t="s"><v>{i}</v></c>' for i in indexes) + "</row>").encode()


def write_bomb(path: Path, rows: int) -> Path:
    """An XLSX of a header and ``rows`` identical rows, the sheet's XML
    deflated (1,000,000 rows: about 150 KB on disk, 40 MB expanded)."""
    row = _row_xml(2, 3)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        strings = "".join(f"<si><t>{text}</t></si>" for text in STRINGS)
        parts = {**_PARTS, "xl/sharedStrings.xml": f'<sst xmlns="{_MAIN}">{strings}</sst>'}
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + xml)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_MAIN}"><sheetData>'.encode())
            sheet.write(_row_xml(0, 1))
            block = row * 10_000
            for _ in range(rows // 10_000):
                sheet.write(block)
            sheet.write(row * (rows % 10_000))
            sheet.write(b"</sheetData></worksheet>")
    return path


def write_csv(path: Path, rows: int) -> Path:
    """``rows`` programs: the bundled ones over and over, each with its own id."""
    sys.path.insert(0, str(ROOT))
    from corpus import load_programs

    programs = load_programs()
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "年度", "施策名", "目的", "事業名", "取り組み内容", "担当課", "予算"])
        for i in range(rows):
            p = programs[i % len(programs)]
            writer.writerow([f"B{i:07d}", 2026, p.policy, p.purpose, p.name, p.activities, p.department, p.budget])
    return path


def tiny_bad_xlsx() -> bytes:
    """An XLSX without the 事業名 column: refused, but openpyxl is loaded by then."""
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["担当課"])
    book.active.append(["危機管理課"])
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


# -- measuring a process ---------------------------------------------------------------


def _status_kb(pid: int | str, key: str) -> int:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(rf"^{key}:\s+(\d+) kB", text, re.M).group(1))  # type: ignore[union-attr]


def reset_peak(pid: int | str) -> int:
    """The process's RSS now (kB), after resetting its peak to it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _status_kb(pid, "VmRSS")


def peak(pid: int | str) -> int:
    return _status_kb(pid, "VmHWM")


_MESSAGES = (
    re.compile(r'id="file-error"[^>]*>\s*(.*?)\s*<', re.S),  # the upload page, refused at once
    re.compile(r'data-testid="import-result"[^>]*>\s*(.*?)\s*<', re.S),  # a queued import's page
    re.compile(r"(事業一覧を取り込みました[^<]*)"),  # the flash of one imported at once
)


def message_of(status: int, html: str) -> str:
    for pattern in _MESSAGES:
        found = pattern.search(html)
        if found:
            return found.group(1).strip()
    return f"HTTP {status}"


def _queued(location: str) -> bool:
    """A large upload is answered with its import's page and read by the worker."""
    return "/programs/imports/" in location


def _result(status: int, html: str, seconds: float, rss: dict[str, int], top: dict[str, int],
            stored: int) -> dict[str, Any]:
    growth = {name: (top[name] - rss[name]) / 1024 for name in rss}
    return {"status": status, "message": message_of(status, html), "seconds": seconds, "stored": stored,
            "growth": growth, "rss": {name: kb / 1024 for name, kb in rss.items()}}


# -- the Flask test client (one process per file) ---------------------------------------


def _run_queued_imports(app: Any) -> None:
    """What ``kyodo worker`` would do next, here: run the queued import."""
    from web.jobs import get_jobs

    huey = get_jobs(app).huey
    while (task := huey.dequeue()) is not None:
        if task.name == "import_programs":
            huey.execute(task)


def child(instance: Path, path: Path) -> dict[str, Any]:
    """Upload ``path`` with the test client of ``create_app()`` (and run the
    import it queued, in this process); what it measured."""
    from sqlmodel import Session, func, select

    from models.tables import Program
    from web import create_app
    from web.db import get_engine

    app = create_app({"INSTANCE_PATH": str(instance), "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    assert client.post("/login", data={"username": USER, "password": PASSWORD}).status_code == 302
    client.get("/programs/import")
    client.post("/programs/import", data={"kind": "catalogue", "file": (io.BytesIO(tiny_bad_xlsx()), "t.xlsx")})
    with Session(get_engine(app)) as session:
        before_count = session.exec(select(func.count()).select_from(Program)).one()
    with path.open("rb") as f:
        rss = reset_peak("self")
        started = time.monotonic()
        response = client.post("/programs/import", data={"kind": "catalogue", "file": (f, path.name)})
        location = response.headers.get("Location", "")
        if _queued(location):
            _run_queued_imports(app)
        seconds = time.monotonic() - started
        top = peak("self")
    page = client.get(location) if location else response
    with Session(get_engine(app)) as session:
        stored = session.exec(select(func.count()).select_from(Program)).one() - before_count
    return _result(response.status_code, page.get_data(as_text=True), seconds, {"app": rss}, {"app": top}, stored)


def via_test_client(instance: Path, path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(instance), str(path)],
        check=True, capture_output=True, text=True, cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT), KYODO_MATCH_MODE="lexical"),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- gunicorn and kyodo worker -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise RuntimeError("no gunicorn worker")


def _csrf(page: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)  # type: ignore[union-attr]


def _login(base: str) -> Any:
    import requests

    http = requests.Session()
    deadline = time.monotonic() + 60
    while True:
        try:
            page = http.get(base + "/login", timeout=10).text
            break
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    http.post(base + "/login", data={"username": USER, "password": PASSWORD, "csrf_token": _csrf(page)}, timeout=10)
    return http


def _upload(http: Any, base: str, name: str, content: Any) -> Any:
    token = _csrf(http.get(base + "/programs/import", timeout=30).text)
    return http.post(base + "/programs/import", data={"kind": "catalogue", "csrf_token": token},
                     files={"file": (name, content)}, timeout=600, allow_redirects=False)


def _finished(http: Any, url: str) -> Any:
    """The import's page once it no longer reloads itself (the import ended)."""
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        page = http.get(url, timeout=30)
        if "Refresh" not in page.headers:
            return page
        time.sleep(0.5)
    raise RuntimeError(f"the import at {url} did not end within 15 minutes")


def _programs(instance: Path) -> int:
    from sqlmodel import Session, func, select

    from models.db import make_engine
    from models.tables import Program

    engine = make_engine(f"sqlite:///{instance / 'kyodo.sqlite3'}")
    try:
        with Session(engine) as session:
            return int(session.exec(select(func.count()).select_from(Program)).one())
    finally:
        engine.dispose()


def via_gunicorn(instance: Path, path: Path) -> dict[str, Any]:
    """Upload ``path`` to gunicorn (web.gunicorn_conf, one worker) with
    ``kyodo worker`` beside it; the growth of each of the two processes."""
    port = _free_port()
    env = dict(os.environ, KYODO_INSTANCE_PATH=str(instance), KYODO_MATCH_MODE="lexical", PYTHONPATH=str(ROOT))
    env.pop("KYODO_DATABASE_URL", None)
    with (instance / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "python:web.gunicorn_conf", "--workers", "1",
             "--bind", f"127.0.0.1:{port}", "web:create_app()"],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        jobs = subprocess.Popen([str(BIN / "kyodo"), "worker", "--workers", "1"],
                                env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        http = _login(base)
        _upload(http, base, "t.xlsx", tiny_bad_xlsx())
        pids = {"web": _worker_pid(server.pid), "worker": jobs.pid}
        before_count = _programs(instance)
        with path.open("rb") as f:
            rss = {name: reset_peak(pid) for name, pid in pids.items()}
            started = time.monotonic()
            response = _upload(http, base, path.name, f)
            location = response.headers.get("Location", "")
            page = _finished(http, base + location) if _queued(location) else None
            seconds = time.monotonic() - started
            top = {name: peak(pid) for name, pid in pids.items()}
        if page is None:
            page = http.get(base + location, timeout=30) if location else response
        return _result(response.status_code, page.text, seconds, rss, top, _programs(instance) - before_count)
    finally:
        for process in (jobs, server):
            process.terminate()
            process.wait(timeout=60)


# -- the run ------------------------------------------------------------------------------


def make_template(folder: Path) -> Path:
    """An instance made by the command line: the database, the secret key, a coordinator."""
    instance = folder / "template"
    env = dict(os.environ, KYODO_INSTANCE_PATH=str(instance), KYODO_MATCH_MODE="lexical")
    env.pop("KYODO_DATABASE_URL", None)
    subprocess.run([str(BIN / "kyodo"), "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([str(BIN / "kyodo"), "users", "create", USER, "--password-stdin"], input=PASSWORD + "\n",
                   env=env, check=True, capture_output=True, text=True)
    return instance


def build_files(folder: Path, small: bool) -> list[tuple[str, Path]]:
    sys.path.insert(0, str(ROOT))
    from web.settings import defaults

    max_rows = int(defaults().get("IMPORT_MAX_ROWS", 20_000))
    files = [
        ("baseline: 100 rows", write_csv(folder / "baseline.csv", 100)),
        ("zip bomb: 1,000,000 rows", write_bomb(folder / "bomb.xlsx", 1_000_000)),
        ("zip bomb: 300,000 rows", write_bomb(folder / "bomb-300k.xlsx", 300_000)),
        (f"big CSV: {max_rows + 5000:,} rows", write_csv(folder / "big.csv", max_rows + 5000)),
    ]
    if not small:
        at_limit = write_csv(folder / "at-limit.csv", max_rows)
        files += [(f"at the limit: {max_rows:,} rows", at_limit),
                  (f"at the limit: {max_rows:,} rows", csv_as_xlsx(at_limit, folder / "at-limit.xlsx"))]
    return files


def csv_as_xlsx(source: Path, path: Path) -> Path:
    """The same rows as an XLSX written by openpyxl (inline strings, as Excel's own are bigger)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    with source.open(encoding="utf-8", newline="") as f:
        for row in csv.reader(f):
            sheet.append(row)
    book.save(path)
    return path


def _expanded(path: Path) -> int:
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as archive:
            return sum(i.file_size for i in archive.infolist())
    return path.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI: without the at-the-limit file")
    parser.add_argument("--no-gunicorn", action="store_true", help="the test client only")
    parser.add_argument("--child", nargs=2, metavar=("INSTANCE", "FILE"), help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.child:
        print(json.dumps(child(Path(opts.child[0]), Path(opts.child[1])), ensure_ascii=False))
        return 0
    sys.path.insert(0, str(ROOT))
    servers = [("test client", via_test_client)] + ([] if opts.no_gunicorn else [("gunicorn", via_gunicorn)])
    # gunicorn: two figures, its worker's and kyodo worker's (which reads a queued import).
    print("| server | file | size (expanded) | answer | programs stored | time | RSS before | peak growth |")
    print("|---|---|---|---|---|---|---|---|")
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="kyodo-upload-bench-") as tmp:
        folder = Path(tmp)
        template = make_template(folder)
        files = build_files(folder, opts.small)
        for server, measure in servers:
            for label, path in files:
                instance = folder / f"run-{server.replace(' ', '-')}-{path.stem}"
                shutil.copytree(template, instance)
                result = measure(instance, path)
                worst = max(worst, *result["growth"].values())
                size = f"{path.stat().st_size / 1e6:.2f} MB ({_expanded(path) / 1e6:.0f} MB)"
                answer = f"{result['status']} 「{result['message'][:60]}」"
                rss = " / ".join(f"{mb:.0f}" for mb in result["rss"].values())
                growth = " / ".join(f"{mb:.1f}" for mb in result["growth"].values())
                print(f"| {server} | {label} | {size} | {answer} | {result['stored']} | {result['seconds']:.1f} s "
                      f"| {rss} MB | {growth} MB |", flush=True)
                shutil.rmtree(instance)
    print(f"\nlargest growth: {worst:.1f} MB (bar: under {BAR_MB} MB)")
    return 0 if worst < BAR_MB else 1


if __name__ == "__main__":
    sys.exit(main())
