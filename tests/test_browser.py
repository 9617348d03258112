"""The report and the explorer in a real browser (headless Chromium driven by playwright).

* ``test_report_page_renders``: ``index.html`` and ``gmm_fits.html`` of the tiny report
  (``build_tiny_report`` from test_notebooks.py) opened via ``file://``. Every ``<img>`` has
  loaded (``complete`` and ``naturalWidth > 0``), at least as many images as the page has
  figures, no local file failed to load, and a full-page screenshot is not blank (its pixel
  variance is above a small threshold). Requests off ``file://`` (nbconvert's CDN scripts)
  are aborted, so the check needs no network and does not wait on it.
* ``test_report_figures_fill_the_page_and_their_text_shows``: every figure of ``index.html``
  is shown at its natural width up to the 1,200 px content column (many-panel figures
  across all of it), links to its full-size PNG, and a screenshot crop of its title strip
  holds ink — the label sizes themselves are checked in test_plots.py
  (``test_saved_figures_have_no_text_below_the_readable_floor``).
* ``test_explorer_widget_redraws_in_jupyterlab``: ``jupyter lab`` on a free localhost port,
  rooted in a tmp folder holding a copy of notebooks/explorer.ipynb whose ``parameters``
  cell points at the tiny report's BalanceMix run with ``interactive = True``. The notebook
  is opened, all cells are run through ``window.jupyterapp``; the widget's figure (an
  ``<img>`` in the ipywidgets output) appears, another option of the "class" dropdown is
  chosen, and the figure's ``src`` changes to a new, loaded image; no cell has an error
  output (read from the notebook model, so a failing cell ends the waits at once) and the
  check cell prints "checks passed". The server gets its own config, data, runtime,
  settings and workspace folders (no user kernelspecs or state; news toasts off). It is shut
  down in the fixture's finalizer (SIGTERM, then SIGKILL to its process group with the
  kernels) and every wait is bounded by one overall deadline, so the test cannot hang.

Chromium: ``$BMXLIB_CHROMIUM`` (a path), else ``chromium`` on PATH (.ci/run installs
Debian's). Marked ``browser``; skipped with a one-line reason when Chromium is not found
or playwright (both tests) / jupyterlab (the explorer test) cannot be imported. Playwright
never downloads a browser here: it drives the system one through ``executable_path``.
"""

from __future__ import annotations

import ast
import importlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import numpy as np
import pytest
from test_notebooks import EXPECTED_FIGURES, NOTEBOOK_DIR


def _chromium() -> tuple[str | None, str]:
    path = os.environ.get("BMXLIB_CHROMIUM")
    if path:
        found = shutil.which(path)
        return found, "" if found else f"BMXLIB_CHROMIUM={path} is not an executable"
    found = shutil.which("chromium")
    return found, "" if found else "chromium not found (install it or set BMXLIB_CHROMIUM)"


def _importable(module: str) -> bool:
    try:
        importlib.import_module(module)
    except Exception:  # ImportError, or a broken install
        return False
    return True


CHROMIUM, NO_CHROMIUM = _chromium()
HAS_PLAYWRIGHT = _importable("playwright.sync_api")
HAS_JUPYTERLAB = _importable("jupyterlab")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM),
    pytest.mark.skipif(not HAS_PLAYWRIGHT, reason="playwright is not importable"),
]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 900}
MIN_VARIANCE = 25.0  # grey levels squared; a blank page has 0
LAB_DEADLINE_S = 120  # the whole JupyterLab test: server start, kernel, widget, redraw
SHUTDOWN_S = 15

IMAGES_JS = """() => Array.from(document.images).map(i => ({
    src: i.currentSrc.slice(0, 60), complete: i.complete, width: i.naturalWidth}))"""
# In the open notebook: the errors of its cells (from the model), whether the check cell
# printed "checks passed", and the src of the widget's figure once loaded (an <img> in the
# ipywidgets Output that explorer_widget draws into).
NOTEBOOK_JS = """() => {
    const model = window.jupyterapp.shell.currentWidget.content.model;
    const errors = [];
    for (let k = 0; k < model.cells.length; k++) {
        const cell = model.cells.get(k);
        if (cell.type !== 'code') continue;
        for (const out of cell.outputs.toJSON())
            if (out.output_type === 'error') errors.push(`cell ${k}: ${out.ename}: ${out.evalue}`);
    }
    const passed = Array.from(document.querySelectorAll('.jp-OutputArea-output'))
        .some(o => o.textContent.includes('checks passed'));
    const img = document.querySelector('.widget-output img');
    const src = img && img.complete && img.naturalWidth > 0 ? img.src : null;
    return {errors, passed, src};
}"""
# wait until the figure's src is loaded and unlike ``old`` (or a cell has failed)
NEW_FIGURE_JS = f"""old => {{ const s = ({NOTEBOOK_JS})();
    return s.errors.length || (s.src && s.src !== old) ? s : null; }}"""
CHECKED_JS = f"""() => {{ const s = ({NOTEBOOK_JS})();
    return s.errors.length || s.passed ? s : null; }}"""


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    try:
        chromium = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                           headless=True, timeout=60_000)
    except Exception:
        manager.stop()
        raise
    yield chromium
    chromium.close()
    manager.stop()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    yield context.new_page()
    context.close()


def _pixel_variance(png: bytes) -> float:
    from PIL import Image

    grey = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    return float(grey.var())


# --- the report via file:// -------------------------------------------------------------
@pytest.mark.parametrize("name", ["index", "gmm_fits"])
def test_report_page_renders(name, tiny_report, page):
    out = tiny_report["out"]
    failed: list[str] = []
    # nbconvert pages reference require.js / MathJax on CDNs: not needed to show a report
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else route.abort())
    page.on("requestfailed", lambda r: failed.append(r.url) if r.url.startswith("file:") else None)
    page.goto((out / f"{name}.html").resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")

    images = page.evaluate(IMAGES_JS)
    expected = (sum(map(len, EXPECTED_FIGURES.values())) if name == "index"
                else len(EXPECTED_FIGURES[name]))
    assert len(images) >= expected, f"{name}.html: {len(images)} images, want {expected}"
    broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
    assert not broken, f"{name}.html: broken images {broken}"
    assert not failed, f"{name}.html: local files failed to load: {failed}"
    variance = _pixel_variance(page.screenshot(full_page=True))
    assert variance > MIN_VARIANCE, f"{name}.html looks blank (pixel variance {variance:.1f})"


FIGURES_JS = """() => {
    const body = getComputedStyle(document.body);
    const column = document.body.clientWidth - parseFloat(body.paddingLeft)
        - parseFloat(body.paddingRight);
    return {column, figures: Array.from(document.querySelectorAll('figure img')).map(i => ({
        src: i.getAttribute('src'), natural: i.naturalWidth,
        shown: i.getBoundingClientRect().width,
        wide: i.closest('figure').classList.contains('wide'),
        link: i.closest('a') ? i.closest('a').getAttribute('href') : null}))};
}"""
DARK = 128  # grey level below which a pixel is ink (text, lines) on the white figure


def test_report_figures_fill_the_page_and_their_text_shows(tiny_report, page):
    """Each figure of index.html is shown at its natural width up to the content column,
    many-panel figures across the whole column, links to its full-size PNG, and the strip
    of its title holds ink (the text rendered, at a size the eye can read)."""
    from PIL import Image

    from bmxlib.plots import READING_WIDTH_PX
    from bmxlib.report import PAGE_WIDTH_PX

    assert PAGE_WIDTH_PX == READING_WIDTH_PX  # the figures' fonts are sized for this column
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:")
               else route.abort())
    page.goto((tiny_report["out"] / "index.html").resolve().as_uri(), wait_until="load")
    page.wait_for_function("() => Array.from(document.images).every(i => i.complete)")
    layout = page.evaluate(FIGURES_JS)
    column, figures = layout["column"], layout["figures"]
    assert column == pytest.approx(PAGE_WIDTH_PX, abs=1)  # the 1280 px viewport holds it
    assert len(figures) >= sum(map(len, EXPECTED_FIGURES.values()))
    for figure in figures:
        name, natural, shown = figure["src"], figure["natural"], figure["shown"]
        assert figure["link"] == name, f"{name}: no click-through to the full-size PNG"
        assert shown <= column + 0.5, f"{name}: {shown:.0f} px overflows the {column:.0f} px page"
        if figure["wide"]:
            assert shown == pytest.approx(column, abs=1), f"{name}: a wide figure not full width"
        else:
            assert shown == pytest.approx(min(natural, column), abs=1), \
                f"{name}: shown {shown:.0f} px, natural {natural} px, page {column:.0f} px"
        crop = page.locator(f'figure img[src="{name}"]').first.screenshot()
        grey = np.asarray(Image.open(io.BytesIO(crop)).convert("L"), dtype=np.float64)
        title = grey[: max(8, grey.shape[0] // 12)]  # the suptitle's strip
        assert (title < DARK).mean() > 0.002, f"{name}: no text in the title strip"
        assert grey.var() > MIN_VARIANCE, f"{name}: the figure looks blank"


# --- the explorer in JupyterLab ----------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _explorer_copy(path: Path, **values) -> None:
    """notebooks/explorer.ipynb with ``values`` assigned in its parameters cell."""
    nb = nbformat.read(NOTEBOOK_DIR / "explorer.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    lines = cell.source.splitlines()
    for statement in ast.parse(cell.source).body:
        name = statement.targets[0].id
        if name in values:
            lines[statement.lineno - 1] = f"{name} = {values.pop(name)!r}"
    assert not values, f"not in the parameters cell: {sorted(values)}"
    cell.source = "\n".join(lines)
    nbformat.write(nb, path)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def ms(self) -> float:
        """What is left, in milliseconds, for a playwright timeout (at least 1 s)."""
        return max(1.0, self.end - time.monotonic()) * 1000


def _server_log(server: dict) -> str:
    return server["log"].read_text(errors="replace")[-3000:]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no http_proxy


def _wait_until_up(server: dict) -> bool:
    """True once the server answers; False if it exited; fails after a minute of silence."""
    proc, deadline = server["proc"], server["deadline"]
    while proc.poll() is None:
        try:
            with _DIRECT.open(f"{server['url']}/api/status", timeout=2):
                return True
        except OSError:
            if time.monotonic() > deadline.end - 60:  # leave a minute for the browser
                pytest.fail(f"jupyter lab did not answer at {server['url']}:\n"
                            f"{_server_log(server)}")
            time.sleep(0.25)
    return False


@pytest.fixture
def lab(tmp_path, bm_run):
    """A JupyterLab server rooted in tmp_path with a parameterized explorer.ipynb."""
    root = tmp_path / "root"
    root.mkdir()
    _explorer_copy(root / "explorer.ipynb", run_dir=str(bm_run),
                   out_dir=str(tmp_path / "figures"), interactive=True)
    home = tmp_path / "jupyter"  # no user config, kernelspecs, settings or workspaces
    notifications = home / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)  # no news / update toasts over the notebook
    (notifications / "notification.jupyterlab-settings").write_text(json.dumps(
        {"fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "run"),
           "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
           "IPYTHONDIR": str(home / "ipython"), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.port_retries=0", "--IdentityProvider.token=",
               "--ServerApp.password=", f"--ServerApp.root_dir={root}",
               "--LabApp.expose_app_in_browser=True", "--ServerApp.terminals_enabled=False",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")
    deadline = Deadline(LAB_DEADLINE_S)
    server = {"log": tmp_path / "lab.log", "deadline": deadline, "proc": None}
    try:
        for attempt in range(3):  # the free port may be taken before the server binds it
            port = _free_port()
            with server["log"].open("wb") as sink:
                # own session: on a hung shutdown the server and its kernels die together
                proc = server["proc"] = subprocess.Popen(
                    [*command, f"--ServerApp.port={port}"], cwd=root, env=env, stdout=sink,
                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
            server["url"] = f"http://127.0.0.1:{port}"
            if _wait_until_up(server):
                break
            if attempt == 2 or "already in use" not in _server_log(server):
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{_server_log(server)}")
        yield server
    finally:
        proc = server["proc"]
        if proc is not None and proc.poll() is None:
            proc.terminate()  # SIGTERM: the server shuts its kernels down, then exits
            try:
                proc.wait(SHUTDOWN_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(SHUTDOWN_S)


@pytest.mark.skipif(not HAS_JUPYTERLAB, reason="jupyterlab is not importable")
def test_explorer_widget_redraws_in_jupyterlab(lab, page, tmp_path):
    deadline = lab["deadline"]
    try:
        page.goto(f"{lab['url']}/lab/tree/explorer.ipynb", wait_until="domcontentloaded",
                  timeout=deadline.ms())
        # the app, the notebook panel and its kernel (python3, the server's interpreter)
        page.wait_for_function(
            """() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                       const k = w && w.sessionContext && w.sessionContext.session
                                 && w.sessionContext.session.kernel;
                       return k && k.connectionStatus === 'connected' && k.status === 'idle'; }""",
            timeout=deadline.ms())
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        first = page.wait_for_function(NEW_FIGURE_JS, arg=None, timeout=deadline.ms()).json_value()
        assert not first["errors"], first["errors"]

        select = page.locator(".widget-dropdown").filter(
            has=page.get_by_text("class", exact=True)).locator("select")
        assert select.count() == 1, "one class dropdown"
        options = select.locator("option").all_inner_texts()
        assert len(options) >= 2, f"the class dropdown offers {options}"
        current = select.evaluate("s => s.selectedIndex")
        select.select_option(index=(current + 1) % len(options), timeout=deadline.ms())

        second = page.wait_for_function(NEW_FIGURE_JS, arg=first["src"],
                                        timeout=deadline.ms()).json_value()
        assert not second["errors"], second["errors"]
        assert second["src"].startswith("data:image/png") and second["src"] != first["src"]
        checked = page.wait_for_function(CHECKED_JS, timeout=deadline.ms()).json_value()
        assert not checked["errors"] and checked["passed"], checked["errors"]
    except Exception as error:
        shot = tmp_path / "explorer-failure.png"
        try:
            page.screenshot(path=str(shot), timeout=5_000)
        except Exception:  # the original error is what matters
            shot = "(none)"
        raise AssertionError(f"{error}\nscreenshot: {shot}\nserver log:\n{_server_log(lab)}") \
            from error
