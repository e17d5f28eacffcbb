"""The explorer (chapter explore) in a real browser: JupyterLab started on 127.0.0.1 and driven by headless Chromium through
Selenium. The browser runs a notebook that trains a tiny 2-D Gaussian VAE and shows `LatentExplorer`, then drags a
slider and clicks a cell of the 2-D pad; each must change the decoded image, the images must be shown at their own
size (not stretched), the sliders must read what Python set, and the browser log must hold no error.
Needs MNIST under `$VAE_NB_DATA`, like the other end-to-end tests. Screenshots go to `$VAE_NB_BROWSER_ARTIFACTS`
(default: pytest's tmp folder). About 30 s on 2 CPU cores.

Skipped, with the reason, where Chromium, chromedriver, Selenium or JupyterLab is missing: on Debian
`tools/ci_browser_setup.sh` installs Chromium and its driver, and `pip install -e ".[dev]"` the rest."""
import base64, importlib.util, io, json, os, re, secrets, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

CHROMIUM = next(filter(None, map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome'))), None)
CHROMEDRIVER = shutil.which('chromedriver')
MISSING = ([] if CHROMIUM else ['chromium']) + ([] if CHROMEDRIVER else ['chromedriver']) + \
          [m for m in ('selenium', 'jupyterlab') if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"the browser test needs {', '.join(MISSING)}: run tools/ci_browser_setup.sh "
                                                      "(Chromium and chromedriver from Debian) and pip install -e '.[dev]'")
REPO = Path(__file__).resolve().parents[1]

NOTEBOOK_CODE = """\
from vae_nb.train import fit_vae
from vae_nb.evaluation.explore import LatentExplorer
learn = fit_vae(dataset='mnist', bottleneck='gaussian', latent_dim=2, arch='mlp400', max_train=2000, epochs=1,
                valid_pct=0.05, quiet=True, device='cpu', seed=0)
ex = LatentExplorer(learn.model, learn.dls)
ex"""

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def write_notebook(path:Path, code:str):
    nb = {'cells': [{'cell_type': 'code', 'execution_count': None, 'id': 'explorer', 'metadata': {}, 'outputs': [], 'source': code}],
          'metadata': {'kernelspec': {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'}},
          'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb))

def start_kernel(lab:dict, path:str):
    "Start the notebook's kernel session through the server's REST API."
    body = json.dumps({'path': path, 'name': path, 'type': 'notebook', 'kernel': {'name': 'python3'}}).encode()
    req = urllib.request.Request(f"{lab['base']}/api/sessions", data=body, method='POST',
                                 headers={'Authorization': f"token {lab['token']}", 'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=60) as r: assert r.status == 201, r.status

def stop(proc:subprocess.Popen):
    "Stop the server's process group: SIGTERM first (the server shuts its kernels down), SIGKILL after 20 s."
    if proc.poll() is not None: return
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try: os.killpg(proc.pid, sig)
        except ProcessLookupError: return
        try: return proc.wait(wait)
        except subprocess.TimeoutExpired: pass

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server on 127.0.0.1 (a free port, a random token) serving `tmp_path/'nb'`; yields its base URL and token."
    root, home = tmp_path/'nb', tmp_path/'jupyter'
    root.mkdir()
    notes = home/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    notes.parent.mkdir(parents=True)
    notes.write_text(json.dumps({'fetchNews': 'false', 'checkForUpdates': False}))   # no news toast over the page
    tracker = home/'settings'/'@jupyterlab'/'notebook-extension'/'tracker.jupyterlab-settings'
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({'autoStartDefaultKernel': True}))                  # no kernel dialog
    page = home/'config'/'labconfig'/'page_config.json'                               # the debugger's own start-up errors are not ours
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps({'disabledExtensions': {'@jupyterlab/debugger-extension': True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_DATA_DIR=str(home/'data'), JUPYTER_RUNTIME_DIR=str(home/'runtime'),
               JUPYTERLAB_SETTINGS_DIR=str(home/'settings'), JUPYTERLAB_WORKSPACES_DIR=str(home/'workspaces'),
               OMP_NUM_THREADS='1', MPLBACKEND='Agg', PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get('PYTHONPATH')])))
    log = (tmp_path/'jupyterlab.log').open('w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--ServerApp.ip=127.0.0.1', f'--ServerApp.port={port}',
                             '--ServerApp.port_retries=0', f'--IdentityProvider.token={token}', f'--ServerApp.root_dir={root}',
                             '--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate', '--ServerApp.allow_root=True'],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f'http://127.0.0.1:{port}'
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None: pytest.fail(f"JupyterLab exited ({proc.returncode}):\n{(tmp_path/'jupyterlab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f'{base}/api/status?token={token}', timeout=2): break
            except OSError:
                if time.monotonic() > deadline: pytest.fail(f"JupyterLab did not answer on {base} within 90 s")
                time.sleep(0.5)
        yield dict(base=base, token=token, root=root, log=tmp_path/'jupyterlab.log')
    finally:
        stop(proc)
        log.close()

@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--window-size=1280,1400', '--force-device-scale-factor=1'):
        opts.add_argument(a)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_script_timeout(30)
    try: yield driver
    finally: driver.quit()

@pytest.fixture
def artifacts(tmp_path):
    d = Path(os.environ.get('VAE_NB_BROWSER_ARTIFACTS') or tmp_path/'artifacts')
    d.mkdir(parents=True, exist_ok=True)
    return d

def wait_for(what, fn, timeout=60., every=0.1):
    "Poll `fn` until it returns something truthy (an element JupyterLab redrew meanwhile counts as not yet); fail naming `what` after `timeout` seconds."
    from selenium.common.exceptions import StaleElementReferenceException
    deadline = time.monotonic() + timeout
    while True:
        try: v = fn()
        except StaleElementReferenceException: v = None
        if v: return v
        if time.monotonic() > deadline: pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)

FETCH_IMG = """const done = arguments[arguments.length - 1];
const img = document.querySelector(arguments[0]);
if (!img || !img.src) { done(null); return; }
fetch(img.src).then(r => r.arrayBuffer()).then(b => {
  const u = new Uint8Array(b); let s = ''; for (const c of u) s += String.fromCharCode(c);
  const r = img.getBoundingClientRect();
  done({src: img.src, png: btoa(s), shown: [r.width, r.height], natural: [img.naturalWidth, img.naturalHeight]});
}).catch(e => done({error: String(e)}));"""

def image(driver, selector:str) -> dict|None:
    "The PNG bytes a widget image in the page holds (fetched from its `src`), with its shown and natural sizes (None before it has any)."
    r = driver.execute_async_script(FETCH_IMG, selector)
    if r is None: return None
    assert 'error' not in r, f"could not read the image {selector}: {r['error']}"
    return {**r, 'png': base64.b64decode(r['png'])}

def changed(driver, selector:str, before:dict):
    "The image at `selector` once its bytes differ from `before` (else None)."
    now = image(driver, selector)
    return now if now and now['png'] != before['png'] else None

def code_text(driver) -> str:
    return driver.find_element('css selector', '.vae-explorer-code').text.strip()

def show_explorer(d, lab, code:str=NOTEBOOK_CODE) -> float:
    "Open a notebook of one cell, `code`, in JupyterLab, run it, and wait for the explorer it shows; returns the seconds it took."
    from selenium.webdriver import ActionChains, Keys
    from selenium.common.exceptions import StaleElementReferenceException, ElementClickInterceptedException
    t0 = time.monotonic()
    write_notebook(lab['root']/'explore.ipynb', code)
    start_kernel(lab, 'explore.ipynb')            # the page then joins this session: no kernel dialog, and the kernel starts meanwhile
    d.get(f"{lab['base']}/lab/tree/explore.ipynb?token={lab['token']}")
    cell = '.jp-Notebook .jp-Cell .jp-InputArea-editor'
    wait_for('the notebook cell in JupyterLab', lambda: [e for e in d.find_elements('css selector', cell) if e.is_displayed()], 90)
    prompt = lambda: d.find_element('css selector', '.jp-Notebook .jp-Cell .jp-InputPrompt').text
    def run_cell():            # Ctrl+Enter runs the cell in place; pressed again while the page is still connecting to the kernel
        for e in d.find_elements('css selector', '.jp-Dialog'):
            if not e.is_displayed(): continue
            if not e.text.startswith('Select Kernel'): pytest.fail(f"JupyterLab shows a dialog: {e.text!r}")
            e.find_element('css selector', '.jp-mod-accept').click()    # asked before the kernel list loaded: the preselected Python 3
            print('accepted the kernel dialog')
            return None
        try:
            d.find_element('css selector', cell).click()
            ActionChains(d).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
        except (StaleElementReferenceException, ElementClickInterceptedException): return None    # the notebook was redrawn
        try: return wait_for('the cell to start', lambda: prompt() not in ('[ ]:', ''), 5)
        except pytest.fail.Exception: return None
    wait_for('the kernel to run the cell', run_cell, 90, 0)
    def shown():
        tb = [e.text for e in d.find_elements('css selector', '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"] pre')
              if 'Traceback' in e.text or 'Error' in e.text]
        if tb: pytest.fail(f"the notebook cell failed:\n{tb[0][-2000:]}")
        return d.find_elements('css selector', '.vae-explorer img.vae-explorer-decoded')
    wait_for('the explorer in the cell output', shown, 120, 0.5)
    d.execute_script("document.querySelector('.vae-explorer').scrollIntoView({block: 'start'});")
    return time.monotonic() - t0

DECODED, PAD = '.vae-explorer img.vae-explorer-decoded', '.vae-explorer .vae-explorer-pad img'
JUPYTERLAB_BARE_REJECTION = re.compile(r'/static/lab/jlab_core\.[0-9a-f]+\.js\S* \d+:\d+ Uncaught \(in promise\)$')
IMAGES = (DECODED, PAD, '.vae-explorer img.vae-explorer-interpolation', '.vae-explorer img.vae-explorer-path')

def check_own_size(d, selectors=IMAGES):
    "Each image is shown at its PNG's own size: nothing stretched, nothing scaled up."
    from PIL import Image
    for sel in selectors:
        im = wait_for(f'the image {sel}', lambda: image(d, sel))
        size = Image.open(io.BytesIO(im['png'])).size
        assert tuple(im['natural']) == size and tuple(round(v) for v in im['shown']) == size, \
            f"{sel}: a {size[0]}×{size[1]} PNG shown at {im['shown'][0]:.0f}×{im['shown'][1]:.0f}"

def test_explorer_in_jupyterlab(lab, browser, artifacts):
    try: drive_explorer(lab, browser, artifacts)
    except BaseException:
        browser.save_screenshot(str(artifacts/'failure.png'))
        raise

def drive_explorer(lab, d, artifacts):
    from selenium.webdriver import ActionChains
    ready = show_explorer(d, lab)
    check_own_size(d)

    # The sliders read what Python set: the prior mean 0, not a neighbouring step of the browser's grid.
    readouts = [e.text for e in d.find_elements('css selector', '.vae-explorer .widget-slider .widget-readout')][:2]
    assert readouts == ['0.00', '0.00'], readouts
    assert code_text(d) == 'z = (0.00, 0.00)', code_text(d)

    # Drag the first slider's handle: the decoded image and the code change.
    before = image(d, DECODED)
    handle = d.find_elements('css selector', '.vae-explorer .widget-slider .noUi-handle')[0]
    ActionChains(d).click_and_hold(handle).move_by_offset(45, 0).pause(0.2).release().perform()
    t1 = time.monotonic()
    after_slide = wait_for('the decoded image to change after the slider moved', lambda: changed(d, DECODED, before), 30)
    slide_s = time.monotonic() - t1
    z1 = float(d.find_elements('css selector', '.vae-explorer .widget-slider .widget-readout')[0].text.replace('\u2212', '-'))
    assert z1 > 0.2, f"the slider was dragged to the right, yet reads {z1}"
    wait_for(f'the code to read z1 = {z1:.2f}', lambda: code_text(d).startswith(f'z = ({z1:.2f}, '), 10)

    # Click a tile of the pad (the decoded grid itself): the code becomes that tile's, the decoded image and the pad change.
    pad_before = image(d, PAD)
    grid = d.find_element('css selector', '.vae-explorer .vae-explorer-pad')
    w, h = grid.size['width'], grid.size['height']
    x, y = round(w * 1.5 / 9), round(h * 7.5 / 9)                                      # second column, eighth row
    tile = d.execute_script("const r = arguments[0].getBoundingClientRect(); return document.elementFromPoint(r.left + arguments[1], r.top + arguments[2]).title;", grid, x, y)
    assert tile.startswith('z = ('), f"the pad has no tile under the click point: {tile!r}"
    ActionChains(d).move_to_element_with_offset(grid, x - w // 2, y - h // 2).click().perform()
    t1 = time.monotonic()
    after_click = wait_for('the decoded image to change after a click on the pad', lambda: changed(d, DECODED, after_slide), 30)
    click_s = time.monotonic() - t1
    wait_for(f"the code to become the clicked tile's {tile}", lambda: code_text(d) == tile, 10)
    wait_for('the red square to move on the pad', lambda: changed(d, PAD, pad_before), 10)
    assert after_click['png'] != before['png']
    d.save_screenshot(str(artifacts/'explorer-page.png'))
    d.find_element('css selector', '.vae-explorer').screenshot(str(artifacts/'explorer.png'))

    # No JavaScript error in the browser's log. One entry is JupyterLab's, not ours: when the page replaces the session's kernel
    # with one of its own (a race in JupyterLab, seen in one of the last three runs on the loaded CI machine: two "Kernel started" lines
    # in its log), its core bundle logs a bare "Uncaught (in promise)" for the disposed connection, with no error text.
    severe = [e for e in d.get_log('browser') if e['level'] == 'SEVERE' and not JUPYTERLAB_BARE_REJECTION.search(e['message'])]
    assert not severe, '\n'.join(e['message'] for e in severe)
    print(f"explorer shown {ready:.1f} s after the page was opened; decoded image updated {slide_s:.2f} s after the drag, "
          f"{click_s:.2f} s after the pad click; screenshots in {artifacts}")
