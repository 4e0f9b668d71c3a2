"""The Dagster UI as a user meets it: `dagster dev` on 127.0.0.1, driven by Debian's headless chromium.

What the module does, end to end:

1. prepares a tiny data folder with the real CLI (`abaco generate` 60 loans x 2 month-ends,
   `abaco run`), so the instance already holds runs, materializations and check results;
2. starts `dagster dev -w workspace.yaml` from the repository root on a free loopback port,
   through a tiny Python wrapper that puts SIGINT/SIGTERM back to their defaults (a process
   started from a non-interactive shell inherits them ignored, and `dagster dev` would then
   never stop), waits until the code location is loaded and dismisses the community pop-up
   with the `setNuxSeen` mutation;
3. with Playwright's Python package driving /usr/bin/chromium (never a downloaded browser):
   opens the asset graph (groups ingest / staging / marts), the page of the KPI mart
   `marts/kpi_portfolio_monthly` (description, owners, kinds, row count, the
   `preview_latest_month` table, the dbt tests as checks), checks that every asset the UI
   lists has a description, an owner, kinds and a `domain` tag, then presses the mart's
   "Materialize" button and waits until that run shows Success; no page may log an error.

Screenshots of every step are kept under `<pytest basetemp>/screenshots/` and copied to
`$ABACO_TEST_ARTIFACTS/dagster-ui/` when that variable is set, with the `dagster dev` log,
each page's console messages and `timings.json`.

Without Debian's chromium (.ci/browser.sh installs it) or the `playwright` package the tests
skip, unless ABACO_REQUIRE_BROWSER=1 (CI), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ABACO = VENV_BIN / "abaco"
DAGSTER = VENV_BIN / "dagster"
CHROMIUM = os.environ.get("ABACO_CHROMIUM", "/usr/bin/chromium")
# The flags for a root user in a container: no sandbox, nothing the browser fetches on its own.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
ARTIFACTS_ENV = "ABACO_TEST_ARTIFACTS"

MART = "marts/kpi_portfolio_monthly"
GROUPS = ("ingest", "staging", "marts")
# the dbt tests of the mart that must show as its checks (generic column rules and singular tests)
MART_CHECKS = ("column_rules_kpi_portfolio_monthly", "unique_kpi_portfolio_monthly_month_end",
               "assert_par_ladder_monotone", "assert_cuts_add_up_to_portfolio")
LATEST_MONTH = "2026-10-31"  # `abaco generate` ends on --end-date, 2026-10-31 by default

SERVER_TIMEOUT_S = 120  # `dagster dev` answers after ~22 s on an idle 2-core machine
RUN_TIMEOUT_S = 300
UI_TIMEOUT_MS = 30_000

# exec `dagster dev` with SIGINT/SIGTERM at their defaults, whatever the parent ignored
SIGNAL_RESET_WRAPPER = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)

TIMINGS: dict[str, float] = {}

WORKSPACE_QUERY = """{ workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }"""
RUN_STATUS_QUERY = "query RunStatus($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }"
RUN_ERRORS_QUERY = """query RunErrors($id: ID!) { logsForRun(runId: $id) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message level stepKey } } } } }"""
ASSET_NODES_QUERY = """{ assetNodes { assetKey { path } groupName description kinds tags { key value }
  owners { __typename ... on TeamAssetOwner { team } ... on UserAssetOwner { email } } } }"""
LATEST_MATERIALIZATION_QUERY = """query Latest($path: [String!]!) { assetOrError(assetKey: {path: $path}) {
  __typename ... on Asset { assetMaterializations(limit: 1) { runId metadataEntries { label } } } } }"""


# --------------------------------------------------------------------------------------------
# helpers


def _require(condition: bool, message: str) -> None:
    if condition:
        return
    if os.environ.get("ABACO_REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def graphql(base_url: str, query: str, variables: dict | None = None, timeout: float = 10.0) -> dict:
    """POST a query to the webserver's GraphQL endpoint (the one the UI itself uses)."""
    request = urllib.request.Request(f"{base_url}/graphql", method="POST",
                                     data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.loads(response.read())
    if payload.get("errors"):
        raise RuntimeError(f"GraphQL errors: {payload['errors']}")
    return payload["data"]


@dataclass
class Artifacts:
    """Screenshots and logs of the module: under pytest's basetemp, copied to $ABACO_TEST_ARTIFACTS."""

    directory: Path
    export: Path | None
    taken: list[Path] = field(default_factory=list)

    def keep(self, path: Path) -> Path:
        if self.export is not None:
            self.export.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, self.export / path.name)
        return path

    def screenshot(self, page, name: str) -> Path:
        path = self.directory / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path))
        self.taken.append(path)
        return self.keep(path)

    def write(self, name: str, text: str) -> Path:
        path = self.directory / name
        path.write_text(text)
        return self.keep(path)


@dataclass
class PageWatch:
    """What a page logged while the test used it: errors fail the test, warnings are kept."""

    base_url: str
    errors: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    external_requests: list[str] = field(default_factory=list)

    def attach(self, page) -> None:
        host = urlparse(self.base_url).netloc
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))
        page.on("requestfailed", self._on_request_failed)
        page.on("request", lambda request: None if urlparse(request.url).netloc in (host, "")
                or request.url.startswith(("data:", "blob:", "about:")) else self.external_requests.append(request.url))

    def _on_console(self, message) -> None:
        line = f"[{message.type}] {message.text}"
        self.messages.append(line)
        if message.type in ("error", "assert"):
            self.errors.append(f"console {line}")

    def _on_request_failed(self, request) -> None:
        failure = request.failure or ""
        # requests cancelled by a navigation or a closed subscription are not failures of the page
        if "ERR_ABORTED" not in failure:
            self.errors.append(f"request failed: {request.method} {request.url}: {failure}")

    def assert_clean(self) -> None:
        assert self.errors == [], "the UI logged errors:\n" + "\n".join(self.errors)
        assert self.external_requests == [], f"the UI fetched from outside 127.0.0.1: {self.external_requests}"


@contextmanager
def timed(name: str):
    start = time.monotonic()
    try:
        yield
    finally:
        TIMINGS[name] = round(time.monotonic() - start, 1)


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def chromium_and_playwright():
    _require(Path(CHROMIUM).exists(), f"Debian's chromium is not at {CHROMIUM}: run .ci/browser.sh")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "the playwright package is not installed (requirements.lock)")
    return CHROMIUM


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Artifacts:
    start = time.monotonic()
    directory = tmp_path_factory.getbasetemp() / "screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    export = os.environ.get(ARTIFACTS_ENV)
    found = Artifacts(directory, Path(export).resolve() / "dagster-ui" if export else None)
    yield found
    TIMINGS["module_total"] = round(time.monotonic() - start, 1)
    found.write("timings.json", json.dumps(TIMINGS, indent=1))
    print(f"\ndagster UI screenshots: {directory}" + (f" (copied to {found.export})" if found.export else ""))
    print(f"timings (s): {TIMINGS}")


@pytest.fixture(scope="module")
def ui_env(chromium_and_playwright, tmp_path_factory, artifacts) -> dict[str, str]:
    """A data folder with runs and materializations in its instance, made by the real CLI."""
    root = tmp_path_factory.mktemp("dagster-ui")
    data = root / "data"
    env = {key: value for key, value in os.environ.items() if key not in ("ABACO_LANDING", "DAGSTER_HOME")}
    env.update({
        "ABACO_DATA": str(data),
        "DAGSTER_HOME": str(data / "dagster_home"),
        "ABACO_ENV": "local",
        # as after `source .venv/bin/activate`: the code location finds `dbt` on PATH at load time
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    })
    landing = root / "landing"
    steps = {
        "abaco_generate": [str(ABACO), "generate", "--out", str(landing), "--loans", "60", "--months", "2",
                           "--seed", "3", "--delinquency-cadence", "month-end"],
        "abaco_run": [str(ABACO), "run", "--landing", str(landing)],
    }
    for name, command in steps.items():
        with timed(name):
            done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
        artifacts.write(f"{name}.log", f"$ {' '.join(command)}\n{done.stdout}\n{done.stderr}")
        assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return env


def _stop(process: subprocess.Popen) -> str:
    """SIGINT (what Ctrl-C sends: dagster dev stops its webserver and daemon), then the whole group."""
    how = "SIGINT"
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=45)
        except subprocess.TimeoutExpired:
            how = "SIGTERM to the process group"
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                how = "SIGKILL to the process group"
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
    # whatever it left behind (a run worker still going, a code server) goes with the group
    _signal_group(process.pid, signal.SIGKILL)
    return how


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="module")
def dagster_dev(ui_env, tmp_path_factory, artifacts):
    """`dagster dev` on a free loopback port; yields its base URL, stops it (and its group) afterwards."""
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.getbasetemp() / "dagster-dev.log"
    command = [sys.executable, "-c", SIGNAL_RESET_WRAPPER, str(DAGSTER), "dev", "-w", "workspace.yaml",
               "-h", "127.0.0.1", "-p", str(port)]
    start = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=ui_env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_loaded(base_url, process, log_path)
        TIMINGS["dagster_dev_ready"] = round(time.monotonic() - start, 1)
        # the community pop-up of the first visit would cover the pages
        assert graphql(base_url, "mutation { setNuxSeen }")["setNuxSeen"] is True
        yield base_url
    finally:
        stop_start = time.monotonic()
        how = _stop(process)
        TIMINGS["dagster_dev_stop"] = round(time.monotonic() - stop_start, 1)
        artifacts.keep(log_path)
        print(f"\ndagster dev stopped by {how} (exit code {process.returncode})")
    assert how == "SIGINT", f"dagster dev did not stop on SIGINT; needed {how}. Log:\n{_tail(log_path)}"


def _wait_until_loaded(base_url: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"dagster dev exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            workspace = graphql(base_url, WORKSPACE_QUERY, timeout=5)["workspaceOrError"]
        except (urllib.error.URLError, ConnectionError, TimeoutError, RuntimeError) as exc:
            last = str(exc)
        else:
            entries = workspace.get("locationEntries") or []
            for entry in entries:
                error = entry.get("locationOrLoadError") or {}
                if error.get("__typename") == "PythonError":
                    pytest.fail(f"code location {entry['name']} failed to load: {error['message']}")
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                return
            last = f"workspace: {workspace}"
        time.sleep(1)
    pytest.fail(f"dagster dev not ready after {SERVER_TIMEOUT_S} s ({last}):\n{_tail(log_path)}")


@pytest.fixture(scope="module")
def browser(dagster_dev, chromium_and_playwright, tmp_path_factory):
    """Chromium with a fresh profile, driven by Playwright (executable_path: Debian's package)."""
    from playwright.sync_api import sync_playwright

    with timed("browser_start"):
        playwright = sync_playwright().start()
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium_and_playwright, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000}, timezone_id="UTC",
            # pytest's own signal handling stays in charge of Ctrl-C
            handle_sigint=False, handle_sigterm=False, handle_sighup=False)
        context.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()
        playwright.stop()


@pytest.fixture()
def ui(browser, dagster_dev, artifacts, request):
    """A new tab whose console, errors and requests are watched (kept as console-<test>.txt)."""
    page = browser.new_page()
    watch = PageWatch(dagster_dev)
    watch.attach(page)
    try:
        yield page, watch
    finally:
        name = request.node.name.removeprefix("test_")
        artifacts.write(f"console-{name}.txt", "\n".join(watch.messages + ["", "errors:"] + watch.errors))
        page.close()


@contextmanager
def on_failure_screenshot(page, artifacts: Artifacts, name: str):
    try:
        yield
    except BaseException:
        try:
            artifacts.screenshot(page, f"{name}-FAILED")
        except Exception:  # the screenshot must not hide the real failure
            pass
        raise


def _open(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded")
    # the app is client-rendered: wait until its GraphQL requests have settled
    page.wait_for_load_state("networkidle")


# --------------------------------------------------------------------------------------------
# the tests (in this order: the last one launches a run)


def test_asset_graph_shows_the_groups(ui, dagster_dev, artifacts):
    page, watch = ui
    with on_failure_screenshot(page, artifacts, "asset-graph"), timed("step_asset_graph"):
        _open(page, f"{dagster_dev}/asset-groups")
        # the global lineage shows one collapsed node per group, drawn inside the graph's SVG
        page.wait_for_function(
            """groups => { const drawn = [...document.querySelectorAll('svg foreignObject')]
                 .map(node => node.firstElementChild ? node.firstElementChild.innerText.trim().split('\\n')[0].trim() : '');
               return groups.every(group => drawn.includes(group)); }""",
            arg=list(GROUPS), timeout=UI_TIMEOUT_MS)
        assert page.locator("[role=dialog]").count() == 0, "a pop-up covers the UI (setNuxSeen did not take)"
        artifacts.screenshot(page, "asset-graph-groups")

        # the marts group opened: the KPI marts as nodes with their checks and kinds
        _open(page, f"{dagster_dev}/locations/abaco/asset-groups/marts")
        page.get_by_text("kpi_portfolio_monthly", exact=True).first.wait_for()
        artifacts.screenshot(page, "asset-graph-marts-group")
    watch.assert_clean()


def test_kpi_mart_page_shows_metadata_and_checks(ui, dagster_dev, artifacts):
    page, watch = ui
    with on_failure_screenshot(page, artifacts, "kpi-mart"), timed("step_kpi_mart_page"):
        _open(page, f"{dagster_dev}/assets/{MART}")
        page.get_by_text("preview_latest_month", exact=True).first.wait_for()
        text = page.inner_text("body")
        assert "The portfolio KPIs" in text  # the description, in business words
        assert re.search(r"Row count\s+2\b", text), "the row count (2 month-ends) is not shown"
        for shown in ("Owners", "finance", "risk", "Kinds", "dbt", "DuckDB", "domain: transform",
                      "warehouse.marts.kpi_portfolio_monthly", "transform_job"):
            assert shown in text, f"{shown!r} is not on the mart's page"
        artifacts.screenshot(page, "kpi-mart-overview")

        # the metadata table with the latest month's KPI row
        preview = page.get_by_text("preview_latest_month", exact=True).first
        preview.scroll_into_view_if_needed()
        metadata_text = page.inner_text("body")
        assert LATEST_MONTH in metadata_text, "the preview of the latest month is not shown"
        assert "par30" in metadata_text and "collection_rate" in metadata_text
        artifacts.screenshot(page, "kpi-mart-metadata")

        # the dbt tests as the mart's checks, each with its latest result
        page.get_by_role("tab", name="Checks").or_(page.get_by_role("link", name="Checks", exact=True)).first.click()
        page.get_by_text(re.compile(r"^Checks \(\d+\)$")).first.wait_for()
        # long names are truncated in the middle on screen; the full name is the item's tooltip (title)
        page.wait_for_function(
            """checks => { const titles = [...document.querySelectorAll('[title]')].map(e => e.getAttribute('title'));
               return checks.every(check => titles.some(title => title.startsWith(check))); }""",
            arg=list(MART_CHECKS), timeout=UI_TIMEOUT_MS)
        checks_text = page.inner_text("body")
        assert "Failed" not in checks_text
        assert checks_text.count("Succeeded") >= len(MART_CHECKS)
        artifacts.screenshot(page, "kpi-mart-checks")
    watch.assert_clean()


def test_every_asset_has_description_owner_kinds_and_domain(ui, dagster_dev, artifacts):
    """What the catalog shows for each asset (the UI's own GraphQL answer), and a catalog screenshot."""
    page, watch = ui
    with on_failure_screenshot(page, artifacts, "catalog"), timed("step_catalog"):
        _open(page, f"{dagster_dev}/assets?view=flat")
        page.get_by_text("marts / kpi_portfolio_monthly", exact=True).first.wait_for()
        artifacts.screenshot(page, "asset-catalog")

        response = page.request.post(f"{dagster_dev}/graphql", data={"query": ASSET_NODES_QUERY})
        assert response.ok, response.text()
        nodes = response.json()["data"]["assetNodes"]
        missing = {}
        for node in nodes:
            tags = {tag["key"]: tag["value"] for tag in node["tags"]}
            lacks = [what for what, present in (("description", bool((node["description"] or "").strip())),
                                                ("owner", bool(node["owners"])), ("kinds", bool(node["kinds"])),
                                                ("domain tag", bool(tags.get("domain")))) if not present]
            if lacks:
                missing["/".join(node["assetKey"]["path"])] = lacks
        artifacts.write("asset-documentation.json", json.dumps(
            {"/".join(n["assetKey"]["path"]): {"group": n["groupName"], "owners": n["owners"], "kinds": n["kinds"],
                                               "tags": n["tags"], "description": (n["description"] or "")[:200]}
             for n in nodes}, indent=1))
        assert len(nodes) > 20
        assert {node["groupName"] for node in nodes} >= set(GROUPS)
        assert missing == {}, f"assets without a description, owner, kinds or domain tag: {missing}"
    watch.assert_clean()


def test_materialize_mart_from_the_ui_and_wait_for_success(ui, dagster_dev, artifacts):
    page, watch = ui
    with on_failure_screenshot(page, artifacts, "materialize"), timed("step_materialize_from_ui"):
        _open(page, f"{dagster_dev}/assets/{MART}")
        # the header button is "Materialize" (its icon adds to the accessible name, so match the text)
        button = page.locator("button").filter(has_text=re.compile(r"^\s*Materialize\s*$")).first
        button.wait_for()  # click() below also waits until it is enabled
        with page.expect_response(lambda r: urlparse(r.url).path.endswith("/graphql") and r.request.method == "POST"
                                  and "LaunchPipelineExecution" in (r.request.post_data or "")) as launched:
            button.click()
        answer = launched.value.json()["data"]["launchPipelineExecution"]
        assert answer["__typename"] == "LaunchRunSuccess", f"the UI could not launch the run: {answer}"
        run_id = answer["run"]["id"]
        page.get_by_text(f"Launched run {run_id[:8]}").first.wait_for()
        page.wait_for_timeout(600)  # the toast fades in
        artifacts.screenshot(page, "materialize-launched")

        # the toast's View button opens the run
        view = page.get_by_role("button", name="View", exact=True)
        if view.count():
            view.first.click()
            page.wait_for_url(f"**/runs/{run_id}**")
        else:
            _open(page, f"{dagster_dev}/runs/{run_id}")
        page.wait_for_load_state("networkidle")

        status = _wait_for_run(dagster_dev, run_id, page, artifacts)
        if status != "SUCCESS":
            events = graphql(dagster_dev, RUN_ERRORS_QUERY, {"id": run_id})["logsForRun"].get("events", [])
            errors = [f"{e.get('stepKey')}: {e.get('message')}" for e in events if e.get("level") == "ERROR"]
            artifacts.screenshot(page, "run-not-successful")
            pytest.fail(f"run {run_id} ended {status}: " + "\n".join(errors[-10:]))
        # the run page shows it too (the page updates itself over its subscription)
        page.get_by_text("Success", exact=True).first.wait_for()
        page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for()
        artifacts.screenshot(page, "run-success")

        # and the mart's latest materialization is that run's
        latest = graphql(dagster_dev, LATEST_MATERIALIZATION_QUERY, {"path": MART.split("/")})["assetOrError"]
        materialization = latest["assetMaterializations"][0]
        assert materialization["runId"] == run_id
        assert "preview_latest_month" in {entry["label"] for entry in materialization["metadataEntries"]}
        _open(page, f"{dagster_dev}/assets/{MART}?view=events")
        page.get_by_text(run_id[:8]).first.wait_for()
        artifacts.screenshot(page, "kpi-mart-events-after-run")
    watch.assert_clean()


def _wait_for_run(base_url: str, run_id: str, page, artifacts: Artifacts) -> str:
    start = time.monotonic()
    deadline = start + RUN_TIMEOUT_S
    in_progress_shot = False
    status = "UNKNOWN"
    while time.monotonic() < deadline:
        status = graphql(base_url, RUN_STATUS_QUERY, {"id": run_id})["runOrError"].get("status", "UNKNOWN")
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            TIMINGS["ui_run_launch_to_end"] = round(time.monotonic() - start, 1)
            return status
        if status == "STARTED" and not in_progress_shot:
            artifacts.screenshot(page, "run-in-progress")
            in_progress_shot = True
        time.sleep(2)
    pytest.fail(f"run {run_id} still {status} after {RUN_TIMEOUT_S} s")
